"""What can be wrong with a suite declaration, found before anything is built.

:meth:`pytest_trtbench.suite.Suite.validate` runs :func:`suite_problems` and raises one
:class:`~pytest_trtbench.suite_types.SuiteError` listing them all; the plugin turns that into an error for that
suite only, so the other suites still run. Each check is a small function returning messages that say
what is wrong and what is allowed; add new ones to :data:`CHECKS`.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from pytest_trtbench.compare import Tolerance
from pytest_trtbench.precision import PRECISIONS
from pytest_trtbench.suite_types import Input, SuiteError
from pytest_trtbench.task_checks import task_problems

if TYPE_CHECKING:
    from pytest_trtbench.suite import Suite

INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8")
DTYPES = ("float32", "float16", "float64", *INT_DTYPES, "bool")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _duplicates(values: Iterable[Any]) -> list[Any]:
    return [v for v, n in Counter(values).items() if n > 1]


def _positive_ints(label: str, values: Any) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return [f"{label} must be a list of positive integers, got {values!r}"]
    values = list(values)
    if not values:
        return [f"{label} must be positive integers, got []"]
    out = []
    bad = [v for v in values if not _is_int(v) or v < 1]
    if bad:
        out.append(f"{label} must be positive integers, got {values}")
    dup = _duplicates(v for v in values if _is_int(v))
    if dup:
        out.append(f"{label} {values} repeats {dup}: each value would run the same case twice")
    return out


def check_precisions(suite: Suite) -> list[str]:
    out = []
    for p in suite.precisions:
        if p not in PRECISIONS:
            out.append(f"unknown precision {p!r}; choose from {', '.join(PRECISIONS)}")
    if not suite.precisions:
        out.append(f"precisions is empty; choose from {', '.join(PRECISIONS)}")
    dup = _duplicates(suite.precisions)
    if dup:
        out.append(f"precisions repeat {dup}")
    return out


def check_sweep(suite: Suite) -> list[str]:
    out = _positive_ints("batch_sizes", suite.batch_sizes)
    if not isinstance(suite.dims, Mapping):
        return out + [f"dims must map a dim name to its values, got {suite.dims!r}"]
    for name, values in suite.dims.items():
        out += _positive_ints(f"dims[{name!r}]", values)
    if "batch" in suite.dims:
        out.append("dims must not name 'batch': batch sizes come from batch_sizes")
    if not _is_int(suite.calibration_batches) or suite.calibration_batches < 1:
        out.append(f"calibration_batches must be a positive integer, got {suite.calibration_batches!r}")
    fuzz = getattr(suite, "fuzz_shapes", 0)
    if not _is_int(fuzz) or fuzz < 0:
        out.append(f"fuzz_shapes must be an integer >= 0 (0: no shape fuzzing), got {fuzz!r}")
    if not _is_int(suite.seed):
        out.append(f"seed must be an integer, got {suite.seed!r}")
    return out


def _input_problems(spec: Any, dims: Mapping[str, Any]) -> list[str]:
    if not isinstance(spec, Input):
        return [f"inputs must be Input(...) values, got {spec!r}"]
    where = f"input {spec.name!r}"
    out = []
    if not isinstance(spec.name, str) or not spec.name:
        out.append(f"input name must be a non-empty string, got {spec.name!r}")
    for d in spec.shape if isinstance(spec.shape, (tuple, list)) else [spec.shape]:
        if isinstance(d, str):
            if d != "batch" and d not in dims:
                out.append(f"{where} uses dim {d!r} but the suite gives no values for it: add dims={{{d!r}: [...]}}")
        elif not _is_int(d) or d < 1:
            out.append(f"{where}: shape entries are positive integers or dim names, got {d!r} in {spec.shape!r}")
    if spec.dtype not in DTYPES:
        out.append(f"{where}: unknown dtype {spec.dtype!r}; choose from {', '.join(DTYPES)}")
    rng = spec.range
    if not isinstance(rng, (tuple, list)) or len(rng) != 2 or not all(_is_number(v) and math.isfinite(v) for v in rng):
        out.append(f"{where}: range must be two finite numbers (low, high), got {rng!r}")
    elif spec.data is None and spec.dtype in INT_DTYPES and not int(rng[0]) < int(rng[1]):
        out.append(f"{where}: integer range={tuple(rng)!r} is empty (values are drawn from [low, high)); "
                   "use high > low, e.g. range=(0, 2)")
    elif not rng[0] <= rng[1]:
        out.append(f"{where}: range={tuple(rng)!r} has low > high")
    return out


def check_inputs(suite: Suite) -> list[str]:
    if isinstance(suite.inputs, (str, bytes)) or not suite.inputs:
        return ["a suite needs at least one Input"]
    out = []
    for spec in suite.inputs:
        out += _input_problems(spec, suite.dims if isinstance(suite.dims, Mapping) else {})
    dup = _duplicates(getattr(spec, "name", None) for spec in suite.inputs)
    if dup:
        out.append(f"input names repeat {dup}")
    return out


def check_tolerances(suite: Suite) -> list[str]:
    if not isinstance(suite.tolerances, Mapping):
        return [f"tolerances must map a precision to a Tolerance, got {suite.tolerances!r}"]
    out = []
    for precision, given in suite.tolerances.items():
        where = f"tolerances[{precision!r}]"
        if precision not in PRECISIONS:
            out.append(f"{where}: unknown precision; choose from {', '.join(PRECISIONS)}")
        per_output = given.items() if isinstance(given, Mapping) else [("", given)]
        for output, tol in per_output:
            label = f"{where}[{output!r}]" if output else where
            if not isinstance(tol, Tolerance):
                out.append(f"{label} must be a Tolerance(...), got {tol!r}")
                continue
            out += [f"{label}: {problem}" for problem in tol.problems()]
    return out


def check_build_options(suite: Suite) -> list[str]:
    """The mapping's form; which keys the suite's backends accept, and their values, are checked once its
    cases' backends are known (:func:`pytest_trtbench.build_options.check_accepted`, at collection)."""
    options = getattr(suite, "build_options", {}) or {}
    if not isinstance(options, Mapping):
        return [f"build_options must be a dict of option name -> value, got {type(options).__name__}"]
    bad = [key for key in options if not (isinstance(key, str) and key.strip())]
    return [f"build_options keys must be option names (str), got {bad[0]!r}"] if bad else []


def check_outputs(suite: Suite) -> list[str]:
    if suite.output_names is None:
        return []
    dup = _duplicates(suite.output_names)
    out = [f"output_names repeat {dup}"] if dup else []
    unknown = [n for n in suite.classifier_outputs if n not in suite.output_names]
    if unknown:
        out.append(f"classifier_outputs {unknown} are not in output_names {list(suite.output_names)}")
    return out


def claim_suite_name(seen: dict[str, Any], suite: Suite, path: Any, rootpath: Any) -> None:
    """Baselines are keyed by suite name (``<baseline dir>/<gpu>/<name>.json``): a second suite of the same
    name in another file would overwrite the first one's entries, so it is refused naming both files.
    *seen* maps the names collected so far to their files."""
    first = seen.setdefault(suite.name, path)
    if first != path:
        rel = lambda p: os.path.relpath(str(p), str(rootpath))  # noqa: E731
        raise SuiteError(
            f"suite {suite.name} in {rel(path)} has the same name as the suite in {rel(first)}; baselines are "
            f"keyed by suite name (<baseline dir>/<gpu>/{suite.name}.json), so one would overwrite the other's "
            "entries: rename one (the variable, or Suite(name=...))"
        )


def check_task(suite: Suite) -> list[str]:
    return task_problems(suite)


CHECKS: list[Callable[[Suite], list[str]]] = [
    check_precisions, check_inputs, check_sweep, check_tolerances, check_build_options, check_outputs, check_task,
]


def suite_problems(suite: Suite, *, inputs: bool = True) -> list[str]:
    """Every problem with the declaration, in a stable order (empty when the suite is valid). With
    ``inputs=False`` only the checks that don't read ``inputs`` (an ONNX-file suite may get them from the file)."""
    out: list[str] = []
    for check in CHECKS:
        if (check is check_inputs) == inputs:
            out += check(suite)
    return out
