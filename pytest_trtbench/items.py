"""A collected ``Suite`` as pytest items: one :class:`CaseItem` per case, one :class:`FuzzItem` per backend x
precision when the suite fuzzes shapes, or one :class:`InvalidSuiteItem` (an error naming the suite and the fix)
when the suite can't be expanded. The plugin's ``pytest_pycollect_makeitem`` calls :func:`suite_items`.

Items get the session they run in (:class:`SessionState`, the plugin object) as a collaborator, never by
importing the plugin module. Nothing heavy is imported here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_trtbench.options import BACKEND, FUZZ, FUZZ_SEED, get_option
from pytest_trtbench.suite import Case, Suite
from pytest_trtbench.suite_checks import claim_suite_name
from pytest_trtbench.verdict import SKIPPED

if TYPE_CHECKING:
    from pytest_trtbench.fuzz import FuzzTarget
    from pytest_trtbench.outcome import CaseOutcome
    from pytest_trtbench.runner import Harness

result_key = pytest.StashKey[str]()
"""An item's stash entry holding its case's outcome as JSON, for the plugin's ``pytest_runtest_makereport``."""


class SessionState(Protocol):
    """What items need of the session (the plugin's ``TrtBenchPlugin``)."""

    setup_error: str  # a usage error found after collection: every case fails with it
    suite_names: dict[str, Path]  # suite name -> the file that claimed it (duplicates are errors)

    def harness(self) -> Harness: ...


class CaseFailed(Exception):
    """A case's verdict failed the test; the message is the whole report."""


class SuiteItem(pytest.Item):
    """An item of a suite, reported at the suite's assignment line; a :class:`CaseFailed` is its whole report."""

    def __init__(self, *, session_state: SessionState, line: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session_state = session_state
        self._line = line

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self._line, self.name


class CaseItem(SuiteItem):
    """One case of a suite, e.g. ``test_mlp[onnxruntime-fp32-b8]``."""

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.keywords[case.backend] = True
        self.keywords[case.precision] = True

    def runtest(self) -> None:
        state = self.session_state
        if state.setup_error:
            raise CaseFailed(f"usage error: {state.setup_error}")
        result = self._result(state.harness())
        cache = state.harness().cache
        data = {**result.to_json(), "cache_notes": cache.notes[:]}
        cache.notes.clear()
        self.stash[result_key] = json.dumps(data, allow_nan=True)
        if result.status == SKIPPED:
            # reported at the suite's location, as pytest does for skip markers
            raise pytest.skip.Exception(result.reason, _use_item_location=True)
        if result.message and result.failed:
            raise CaseFailed(result.message)

    def _result(self, harness: Harness) -> CaseOutcome:
        return harness.run_case(self.case)


class FuzzItem(CaseItem):
    """Shape fuzzing for one backend x precision of a suite, e.g. ``test_mlp[fuzz-onnxruntime-fp32]``:
    draws shapes inside the profile, runs the listed cases' engine and the reference at each."""

    def __init__(self, *, target: FuzzTarget, **kwargs: Any) -> None:
        super().__init__(case=target.anchors[0], **kwargs)
        self.target = target
        self.keywords["fuzz"] = True

    def _result(self, harness: Harness) -> CaseOutcome:
        from pytest_trtbench.fuzz import run_fuzz

        return run_fuzz(harness, self.target, get_option(self.config, FUZZ_SEED))


class InvalidSuiteItem(pytest.Item):
    """Stands for a suite that could not be expanded into cases: one error (at setup) naming the suite
    and the fix, while the other suites still run (a collection error would stop the whole session)."""

    def __init__(self, *, message: str, line: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message
        self._line = line

    def setup(self) -> None:
        pytest.fail(self.message, pytrace=False)

    def runtest(self) -> None:  # never reached: setup fails
        pytest.fail(self.message, pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self._line, self.name


def suite_items(collector: pytest.Collector, name: str, suite: Suite, state: SessionState) -> list[pytest.Item]:
    """The items of *suite*, found as ``name`` in *collector*'s module: its cases, its fuzz targets, or one
    :class:`InvalidSuiteItem` if it can't be expanded (this suite only; the others still run)."""
    if not suite.name:
        suite.name = name
    if not suite.source_file:
        suite.source_file = os.path.relpath(str(collector.path), str(collector.config.rootpath))
    if suite.is_onnx_file and not Path(os.fspath(suite.model)).is_absolute():  # type: ignore[arg-type]
        suite.model = str(collector.path.parent / os.fspath(suite.model))  # type: ignore[arg-type]  # relative to the suite file
    line = _assignment_line(collector.path, name)
    try:
        claim_suite_name(state.suite_names, suite, collector.path, collector.config.rootpath)
        suite.validate()
        cases = suite.cases(_resolve_backends(collector.config))
        _check_backends({case.backend for case in cases})
        _check_build_options(suite, cases)
    except ValueError as exc:  # SuiteError and the profile's ValueError
        message = f"suite {name} ({suite.source_file}:{line + 1}) is invalid: {exc}"
        return [InvalidSuiteItem.from_parent(collector, name=f"{name}[invalid-suite]", message=message, line=line)]
    items: list[pytest.Item] = [
        CaseItem.from_parent(collector, name=f"{name}[{case.param_id}]", case=case, line=line, session_state=state)
        for case in cases
    ]
    examples = get_option(collector.config, FUZZ)
    examples = suite.fuzz_shapes if examples is None else examples
    if examples:  # shape fuzzing: one more item per backend x precision
        from pytest_trtbench.fuzz import fuzz_targets

        items += [
            FuzzItem.from_parent(collector, name=f"{name}[{t.param_id}]", target=t, line=line, session_state=state)
            for t in fuzz_targets(cases, examples)
        ]
    return items


def _resolve_backends(config: pytest.Config) -> list[str]:
    names = get_option(config, BACKEND).split(",")
    if "auto" in names:
        from pytest_trtbench.backends import default_backend

        chosen = default_backend()
        names = [chosen if n == "auto" else n for n in names]
    return list(dict.fromkeys(names))


def _check_backends(names: set[str]) -> None:
    """A suite's own ``backends=`` must name registered backends (``--trt-backend`` is checked when parsed)."""
    from pytest_trtbench.backends.registry import backend_names, unknown_backend_message

    unknown = sorted(names - set(backend_names()))
    if unknown:
        raise ValueError(unknown_backend_message(unknown[0]))


def _check_build_options(suite: Suite, cases: list[Case]) -> None:
    """Each key of the suite's ``build_options`` is a build option of one of its cases' backends."""
    if not suite.build_options:
        return
    from pytest_trtbench.backends.registry import get_backend
    from pytest_trtbench.build_options import check_accepted

    backends = [get_backend(name) for name in dict.fromkeys(case.backend for case in cases)]
    check_accepted(suite.build_options, backends, "build_options")


def _assignment_line(path: Path, name: str) -> int:
    """0-based line of ``name = Suite(...)`` in the suite module, for report locations."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 0
    return next((i for i, text in enumerate(lines) if text.startswith((f"{name} =", f"{name}:"))), 0)
