"""The pytest entry point: hook wiring. Options live in :mod:`pytest_trtbench.options`, suite items in
:mod:`pytest_trtbench.items`; here are the hooks that connect them, the session plugin object
(:class:`TrtBenchPlugin`: settings, harness, results gathered from (possibly remote) reports, outputs,
terminal summary) and the fixtures.

Nothing heavy is imported here: the runner (and through it numpy, onnxruntime, torch, pandas)
is imported the first time a case runs or a fixture is requested.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator

import pytest

from pytest_trtbench.options import (
    BASELINE_DIR,
    BLOCKS,
    BUILD_ONLY,
    BUILD_OPTION_WHERE,
    CACHE_DIR,
    CACHE_MAX_SIZE,
    CONFIRM,
    CUDA,
    CUDA_GRAPH,
    ENERGY_S,
    GPU,
    HISTORY,
    LATENCY_GATE,
    LATENCY_TOLERANCE,
    MIN_BLOCK_ITERS,
    MIN_BLOCK_S,
    NO_LATENCY_GATE,
    PROFILE_LAYERS,
    REBUILD,
    REPORT,
    SIZE,
    STRICT,
    UPDATE_BASELINES,
    WARMUP_S,
    add_options,
    build_options,
    checked_cuda,
    get_option,
)

if TYPE_CHECKING:
    from pytest_trtbench.outcome import CaseOutcome
    from pytest_trtbench.runner import Harness
    from pytest_trtbench.settings import Settings

ITEMS_MODULE = "pytest_trtbench.items"
"""Imported with the first suite collected (``pytest_pycollect_makeitem``): hooks check ``sys.modules`` for it
first, so a pytest run without suites never imports it (Hypothesis' plugin does the same with hypothesis)."""
REPORT_ATTRIBUTE = "trtbench_result"
"""The call report's attribute holding a case's result as JSON (see ``pytest_runtest_makereport``)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


plugin_key = pytest.StashKey["TrtBenchPlugin"]()
size_key = pytest.StashKey[str]()
_configured: list[pytest.Config] = []
"""Configs between ``pytest_configure`` and ``pytest_unconfigure``, innermost last (pytester nests runs)."""


def model_size(config: pytest.Config | None = None) -> str:
    """``--trt-size`` of *config*, or of the running session (suite modules call this at import, during
    collection, where no config is at hand); ``tiny`` outside a session."""
    config = config or (_configured[-1] if _configured else None)
    return config.stash.get(size_key, "tiny") if config is not None else "tiny"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[size_key] = get_option(config, SIZE)
    _configured.append(config)
    if config.pluginmanager.hasplugin("benchmark"):
        from pytest_trtbench.benchmark_json import disable_benchmarks_under_xdist

        disable_benchmarks_under_xdist(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        from pytest_trtbench.workers import pin_worker, visible_gpus

        pin_worker(workerinput, visible_gpus())
    plugin = TrtBenchPlugin(config)
    config.stash[plugin_key] = plugin
    config.pluginmanager.register(plugin, "trtbench-plugin")
    if config.pluginmanager.hasplugin("benchmark"):
        from pytest_trtbench.benchmark_json import BenchmarkJsonInterop

        config.pluginmanager.register(BenchmarkJsonInterop(plugin.controller_results), "trtbench-benchmark-json")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` on a multi-GPU host: one worker per GPU (else xdist's default, the CPU count)."""
    from pytest_trtbench.workers import visible_gpus

    gpus = len(visible_gpus())
    return gpus if gpus > 1 else None


def pytest_unconfigure(config: pytest.Config) -> None:
    if config in _configured:
        _configured.remove(config)
    plugin = config.stash.get(plugin_key, None)
    if plugin is not None:
        plugin.close()
        config.pluginmanager.unregister(plugin)
        if config.pluginmanager.has_plugin("trtbench-benchmark-json"):
            config.pluginmanager.unregister(name="trtbench-benchmark-json")
        del config.stash[plugin_key]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    # a suite file importing torch at the top, on a runner without torch: skipped, not a collection error
    if not isinstance(collector, pytest.Module):
        return (yield)
    from pytest_trtbench.suite_import import missing_torch, skip_report

    missing = missing_torch(collector)
    report = yield
    if missing is not None and report.failed:
        skip_report(collector, report, missing)
    return report


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> list[pytest.Item] | None:
    # a module holding a Suite imported pytest_trtbench.suite: until one has, nothing can be a Suite
    suite_module = sys.modules.get("pytest_trtbench.suite")
    if suite_module is None or not isinstance(obj, suite_module.Suite):
        return None
    if not collector.funcnamefilter(name):  # type: ignore[attr-defined]
        return None
    from pytest_trtbench.items import suite_items  # with the first suite: runs without suites never import it

    return suite_items(collector, name, obj, collector.config.stash[plugin_key])


class TrtBenchPlugin:
    """Session state: settings, the harness, results gathered from (possibly remote) reports."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: list[CaseOutcome] = []
        self._harness: Harness | None = None
        self._settings: Settings | None = None
        self.is_worker = hasattr(config, "workerinput")
        self.written_baselines: list[str] = []
        self.suite_files: list[Path] = []
        self.anchor_why = ""
        self.pruned: tuple[int, int] | None = None
        self.cache_notes: list[str] = []
        self.write_failures: list[str] = []
        self.suite_names: dict[str, Path] = {}
        self.setup_error = ""

    # --- lazily built state --------------------------------------------------------------------

    def settings(self) -> Settings:
        if self._settings is None:
            from pytest_trtbench.device import GpuSelectionError, resolve_device
            from pytest_trtbench.measure import TimingConfig
            from pytest_trtbench.settings import Settings

            config = self.config
            build_only = bool(get_option(config, BUILD_ONLY))
            try:
                device = resolve_device(get_option(config, GPU), build_only=build_only)
            except (GpuSelectionError, ValueError) as exc:
                raise pytest.UsageError(str(exc)) from None
            from pytest_trtbench.anchor import find_anchor, resolve

            anchor = find_anchor(config.inipath, config.rootpath, self.suite_files)
            self.anchor_why = anchor.why
            self._settings = Settings(
                device=device,
                cache_dir=resolve(anchor, os.environ.get("TRTBENCH_CACHE_DIR") or get_option(config, CACHE_DIR)),
                baseline_dir=resolve(anchor, get_option(config, BASELINE_DIR)),
                timing=TimingConfig(
                    warmup_s=get_option(config, WARMUP_S), blocks=get_option(config, BLOCKS),
                    min_block_iters=get_option(config, MIN_BLOCK_ITERS), min_block_s=get_option(config, MIN_BLOCK_S),
                    use_cuda_graph=bool(get_option(config, CUDA_GRAPH)), energy_s=get_option(config, ENERGY_S),
                ),
                latency_tolerance=get_option(config, LATENCY_TOLERANCE),
                latency_gate="off" if get_option(config, NO_LATENCY_GATE) else get_option(config, LATENCY_GATE),
                strict=bool(get_option(config, STRICT)),
                update_baselines=bool(get_option(config, UPDATE_BASELINES)),
                build_only=build_only,
                rebuild=bool(get_option(config, REBUILD)),
                confirm=get_option(config, CONFIRM),
                history=max(1, get_option(config, HISTORY)),
                build_options=build_options(config),
                cuda=checked_cuda(get_option(config, CUDA), device,
                                  executes=not (build_only or config.getoption("collectonly"))),
                profile_layers=bool(get_option(config, PROFILE_LAYERS)),
            )
        return self._settings

    def harness(self) -> Harness:
        if self._harness is None:
            from pytest_trtbench.runner import Harness

            self._harness = Harness(self.settings(), on_build=self._on_build)
            self._harness.cache.clean_stale_tmp()  # what it removed or could not: in cache.notes, with the next case
        return self._harness

    def _on_build(self, label: str, phase: str, seconds: float) -> None:
        """Progress of a long build, on the terminal even while output is captured (without ``-s``)."""
        from pytest_trtbench.progress import write_progress

        text = {"start": f"building engine {label} ...", "progress": f"still building {label}: {seconds:.0f} s",
                "done": f"built engine {label} in {seconds:.1f} s"}[phase]
        write_progress(self.config, f"[trtbench] {text}")

    def close(self) -> None:
        if self._harness is not None:
            self._harness.close()  # the session's exported / normalized models
        self._harness = None

    # --- hooks ---------------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Outputs the user asked for must be writable before anything is built."""
        if self.is_worker:
            return
        from pytest_trtbench.paths import PathProblem
        from pytest_trtbench.session_outputs import check_output_paths

        report = self._report_path()
        baselines = self.config.rootpath / get_option(self.config, BASELINE_DIR) if get_option(self.config, UPDATE_BASELINES) else None
        try:
            check_output_paths(report, baselines, report_option=REPORT, baseline_option=BASELINE_DIR)
        except PathProblem as exc:
            raise pytest.UsageError(str(exc)) from None

    def _report_path(self) -> Path | None:
        report = get_option(self.config, REPORT)
        if not report:
            return None
        return Path(report) if Path(report).is_absolute() else self.config.rootpath / report

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        if ITEMS_MODULE not in sys.modules:  # no suite was collected
            return
        from pytest_trtbench.items import CaseItem, InvalidSuiteItem

        self.suite_files = list(dict.fromkeys(i.path for i in items if isinstance(i, (CaseItem, InvalidSuiteItem))))
        if self.suite_files:  # suites were collected (valid or not): option errors are usage errors first
            from pytest_trtbench.cache import CacheDirError, EngineCache

            try:  # a --trt-gpu mismatch or an unusable cache dir is a usage error before anything runs
                EngineCache(self.settings().cache_dir, self.settings().device.gpu).check_usable()
                self._check_build_options([i.case.backend for i in items if isinstance(i, CaseItem)])
            except CacheDirError as exc:
                self.setup_error = f"{CACHE_DIR}: {exc}"
            except pytest.UsageError as exc:  # an xdist worker can't raise one (INTERNALERROR): its cases fail
                self.setup_error = str(exc)
            if self.setup_error and not self.is_worker:
                raise pytest.UsageError(self.setup_error)

    def _check_build_options(self, backend_names: list[str]) -> None:
        """The session's build options must each be accepted by a backend of the collected cases."""
        if not self.settings().build_options:
            return
        from pytest_trtbench.backends.registry import get_backend
        from pytest_trtbench.build_options import check_accepted

        try:
            check_accepted(self.settings().build_options, map(get_backend, dict.fromkeys(backend_names)),
                           BUILD_OPTION_WHERE)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        """Attach the case's outcome (JSON) to the call report, as Hypothesis attaches its statistics: report
        attributes travel from xdist workers (pytest's report serialization keeps them) and stay out of
        ``--junitxml`` files, which write ``user_properties``."""
        report = yield
        if call.when != "call" or ITEMS_MODULE not in sys.modules:
            return report
        from pytest_trtbench.items import CaseItem, result_key

        if isinstance(item, CaseItem) and result_key in item.stash:
            setattr(report, REPORT_ATTRIBUTE, item.stash[result_key])
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        value = getattr(report, REPORT_ATTRIBUTE, None)
        if report.when != "call" or not isinstance(value, str):
            return
        from pytest_trtbench.outcome import CaseOutcome

        data = json.loads(value)
        self.results.append(replace(CaseOutcome.from_json(data), nodeid=report.nodeid))
        self.cache_notes.extend(data.get("cache_notes", []))

    def controller_results(self) -> list[CaseOutcome]:
        """The outcomes gathered so far on the controller (or in a run without xdist); none on a worker."""
        return [] if self.is_worker else list(self.results)

    def rows(self) -> list[dict[str, Any]]:
        from pytest_trtbench.report import row

        return [row(r) for r in self.results]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write every output; one that fails does not stop the others, and fails the session."""
        if self.is_worker:
            return
        from pytest_trtbench.session_outputs import write_session_outputs

        update = bool(self.results) and self.settings().update_baselines
        gpu = self.settings().device.gpu if self.results else ""
        self.written_baselines, self.write_failures = write_session_outputs(
            self.results, self._report_path(), update=update, gpu=gpu)
        max_size = get_option(self.config, CACHE_MAX_SIZE)
        if self.results and max_size is not None:
            from pytest_trtbench.cache_admin import prune

            removed = prune(self.settings().cache_dir, max_size=max_size)
            self.pruned = (len(removed), sum(e.bytes for e in removed))
        if self.write_failures and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        for line in self.cache_notes:
            terminalreporter.write_line(f"trtbench: {line}", yellow=True)
        for line in self.write_failures:
            terminalreporter.write_line(f"trtbench error: {line}", red=True, bold=True)
        if not self.results:
            return
        from pytest_trtbench.report import counts, text_table

        tr = terminalreporter
        tr.write_sep("=", "trtbench summary")
        if self.config.get_verbosity() >= 0:
            for line in text_table(self.rows()):
                tr.write_line(line)
        rows = self.rows()
        built: dict[str, float] = {}
        for r in (r for r in rows if r["engine_cache"] == "built"):
            keys = str(r["engine_key"]).split(",")  # a fuzz row over several profiles names each engine
            for key in keys:
                built.setdefault(key, float(r["build_s"]) / len(keys))
        hits = {key for r in rows if r["engine_cache"] == "hit" for key in str(r["engine_key"]).split(",")}
        tr.write_line(f"engines: {len(built)} built ({sum(built.values()):.1f} s), {len(hits)} cache hit(s)")
        tr.write_line("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts(rows).items())))
        for path in self.written_baselines:
            tr.write_line(f"baselines written: {path}")
        if not self.settings().update_baselines:
            from pytest_trtbench.session_outputs import latency_not_compared_line, unused_baselines_warning

            warning = unused_baselines_warning(rows, self.settings().baseline_dir, self.settings().device.gpu)
            if warning:
                tr.write_sep("!", "trtbench: no baselines used", red=True, bold=True)
                tr.write_line(f"WARNING: {warning}", red=True, bold=True)
            ungated = latency_not_compared_line(rows)
            if ungated:
                tr.write_line(f"trtbench: {ungated}", yellow=True)
        self._summary_locations(tr, rows)

    def _summary_locations(self, tr: Any, rows: list[dict[str, Any]]) -> None:
        from pytest_trtbench.anchor import location_lines

        settings = self.settings()
        for text, warn in location_lines(settings.baseline_dir / settings.device.gpu, self.anchor_why,
                                         settings.cache_dir, self.pruned, rows, self.suite_files):
            tr.write_line(text, yellow=warn, bold=warn)


@pytest.fixture(scope="session")
def trtbench(pytestconfig: pytest.Config) -> Harness:
    """The session's harness: ``trtbench.engine(case)``, ``.inputs(case)``, ``.reference(case)``, ``.run_case(case)``."""
    return pytestconfig.stash[plugin_key].harness()


@pytest.fixture(scope="session")  # stateless; session scope lets Hypothesis' @given tests use it
def trt_check() -> Callable[..., None]:
    """``trt_check(actual, expected, precision="fp32", tolerance=None)``: assert outputs match, with statistics."""
    from pytest_trtbench.compare import Tolerance, compare_outputs

    def check(actual: Any, expected: Any, precision: str = "fp32", tolerance: Tolerance | None = None,
              classifier_outputs: tuple[str, ...] = ()) -> None:
        __tracebackhide__ = True
        tol = tolerance or Tolerance.default_for(precision)
        results = compare_outputs(actual, expected, lambda name: tol, classifier_outputs)
        failed = [r for r in results if not r.passed]
        if failed:
            lines = [f"{len(failed)} of {len(results)} outputs differ ({precision}, {tol}):"]
            for r in failed:
                lines.append(f"  {r.name}: " + "; ".join(r.failures) +
                             f" (max rel err {r.max_rel_err:.3g}, cosine {r.cosine_similarity:.6f})")
            pytest.fail("\n".join(lines), pytrace=False)

    return check
