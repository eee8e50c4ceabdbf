"""pytest-benchmark interop: our cases in its JSON files, timed by us.

Users who already run pytest-benchmark keep their tooling: with ``--benchmark-json=FILE`` (or
``--benchmark-autosave`` / ``--benchmark-save``) every executed trtbench case is written as one
more benchmark entry in pytest-benchmark's own format, so ``pytest-benchmark compare FILE``,
``pytest-benchmark list`` and ``--benchmark-compare`` read them next to the user's benchmarks.

Why a JSON hook and not the ``benchmark`` fixture. The fixture times a Python callable with a
host clock (``time.perf_counter``) and calibrates how many calls make one round from the timer's
resolution. For a GPU launch that measures enqueue time, not GPU time (the call returns before the
GPU finishes), or adds a ``synchronize`` per call that the calibration then folds into the
result. So the harness measures as it always does (CUDA-graph replay or CUDA events on the
launch's stream, in independent blocks: :mod:`pytest_trtbench.measure`), and this module only
*reports* the result in pytest-benchmark's format through its ``pytest_benchmark_update_json``
hook. pytest-benchmark's own regression check (``--benchmark-compare-fail``) therefore does not
see our cases; ours (``--trt-latency-tolerance``) gates them, per case.

Format of an entry, matching ``pytest_benchmark.stats.Metadata.as_dict``: ``group`` is the suite,
``name`` the case id (``test_encoder[onnxruntime-fp16-b8-seq128]``), ``fullname`` the pytest
node id, ``params`` backend / precision / batch size / shapes; ``stats`` in **seconds** per
launch (min, max, mean, stddev, median, q1, q3, iqr, Tukey and stddev outlier counts, ld15iqr,
hd15iqr, ops = launches per second, total, rounds = timed iterations, iterations = 1), computed
from all timed samples with linear-interpolation quartiles (pytest-benchmark's own quartile
rule differs slightly for small sample counts); no ``data`` (the samples are not kept).
``extra_info`` has our ``timing_method`` (``cuda-graph`` / ``cuda-events`` / ``host-clock``), the
block medians (ms), status, GPU, enqueue time, and telemetry; ``options`` says which timer ran.

pytest-benchmark writes no file in a session where none of *its* benchmarks ran ("Not saving
anything, no benchmarks have been run!"); a session of trtbench suites alone is such a session.
So when there is something of ours to save, :meth:`BenchmarkJsonInterop.pytest_sessionfinish` lends it
a placeholder benchmark that every part of pytest-benchmark skips (``has_error`` is true and it is falsy),
and takes it back afterwards. The plugin registers a :class:`BenchmarkJsonInterop` only when
pytest-benchmark is registered, and hands it the results; nothing here imports the plugin.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterable

import pytest

if TYPE_CHECKING:
    from pytest_trtbench.outcome import CaseOutcome

_S_PER_MS = 1e-3
_TIMERS = {"cuda-graph": "torch.cuda.Event (CUDA graph replay)", "cuda-events": "torch.cuda.Event",
           "host-clock": "time.perf_counter"}


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def benchmark_entry(result: CaseOutcome) -> dict[str, Any] | None:
    """One pytest-benchmark JSON entry for a measured case; ``None`` for a case without latency."""
    from pytest_trtbench.report import row as report_row

    if result.latency is None or not result.latency.distribution.get("rounds"):
        return None
    lat, row, case = result.latency.distribution, report_row(result), result.case
    sec = {k[: -len("_ms")]: lat[k] * _S_PER_MS for k in
           ("min_ms", "max_ms", "mean_ms", "std_ms", "median_ms", "q1_ms", "q3_ms", "ld15iqr_ms", "hd15iqr_ms", "total_ms")}
    stats = {
        "min": sec["min"], "max": sec["max"], "mean": sec["mean"], "stddev": sec["std"],
        "rounds": int(lat["rounds"]), "median": sec["median"], "iqr": sec["q3"] - sec["q1"],
        "q1": sec["q1"], "q3": sec["q3"], "iqr_outliers": int(lat["iqr_outliers"]),
        "stddev_outliers": int(lat["stddev_outliers"]), "outliers": f"{lat['stddev_outliers']};{lat['iqr_outliers']}",
        "ld15iqr": sec["ld15iqr"], "hd15iqr": sec["hd15iqr"],
        "ops": lat["rounds"] / sec["total"] if sec["total"] > 0 else 0.0, "total": sec["total"], "iterations": 1,
    }
    extra = {
        "source": "pytest-trtbench", "timing_method": result.latency.method,
        "block_medians_ms": [b.median_ms for b in result.latency.blocks], "status": result.status, "gpu": case.gpu,
        "device_name": case.device_name, "batch_size": case.batch_size,
        "throughput_qps": row.get("throughput_qps"), "enqueue_ms_median": result.latency.enqueue_ms_median,
        "energy_j_per_inference": row.get("energy_j_per_inference"), "mean_power_w": row.get("mean_power_w"),
        "gpu_clock_mhz_start": row.get("gpu_clock_mhz_start"), "gpu_clock_mhz_end": row.get("gpu_clock_mhz_end"),
        "gpu_temp_c_end": row.get("gpu_temp_c_end"), "notes": list(result.latency.notes),
    }
    return {
        "group": case.suite,
        "name": case.case_id,
        "fullname": result.nodeid or case.case_id,
        "params": {"backend": case.backend, "precision": case.precision,
                   "batch_size": case.batch_size, "shapes": case.shapes},
        "param": case.param_id,
        "extra_info": {k: _finite(v) for k, v in extra.items()},
        "options": {"timer": _TIMERS.get(result.latency.method, result.latency.method), "disable_gc": False,
                    "min_rounds": None, "max_time": None, "min_time": None, "warmup": True},
        "stats": stats,
    }


def benchmark_entries(results: Iterable[CaseOutcome]) -> list[dict[str, Any]]:
    return [e for e in (benchmark_entry(r) for r in results) if e is not None]


class _Placeholder:
    """A benchmark that makes pytest-benchmark save its file; skipped wherever it lists benchmarks."""

    has_error = True
    name = fullname = "pytest-trtbench placeholder"

    def __bool__(self) -> bool:
        return False


class BenchmarkJsonInterop:
    """The pytest-benchmark hooks, registered by the plugin (only where pytest-benchmark is) with the
    callable that returns our results: this module never imports the plugin back."""

    def __init__(self, results: Callable[[], list[CaseOutcome]]) -> None:
        self._results = results

    def pytest_benchmark_update_json(self, config: pytest.Config, benchmarks: list[Any], output_json: dict[str, Any]) -> None:
        """Append one entry per measured trtbench case to pytest-benchmark's output."""
        output_json["benchmarks"].extend(benchmark_entries(self._results()))

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        # pytest-benchmark saves in its own pytest_sessionfinish wrapper, inside this one. It offers no hook
        # to save a file without benchmarks of its own, so this reads its session object: the plugin it
        # registers under the name "pytest-benchmark" (public pluggy API, no private config attribute),
        # and that object's `benchmarks` list and `json` / `save` / `autosave` settings.
        bench_session = session.config.pluginmanager.get_plugin("pytest-benchmark")
        benchmarks = getattr(bench_session, "benchmarks", None)
        wants_file = any(getattr(bench_session, attr, None) for attr in ("json", "save", "autosave"))
        placeholder = None
        if isinstance(benchmarks, list) and not benchmarks and wants_file and benchmark_entries(self._results()):
            placeholder = _Placeholder()
            benchmarks.append(placeholder)
        try:
            yield
        finally:
            if placeholder is not None and isinstance(benchmarks, list) and placeholder in benchmarks:
                benchmarks.remove(placeholder)


def disable_benchmarks_under_xdist(config: Any) -> None:
    """pytest-benchmark disables itself under xdist anyway; 5.2 says so with a ``PytestBenchmarkWarning``
    raised from its ``pytest_configure``, which ``filterwarnings = error`` turns into an INTERNALERROR.
    Disabling it up front (before its configure runs) gives the same behaviour without the warning."""
    option = config.option
    if not hasattr(option, "benchmark_disable"):
        return
    import os

    xdist = config.getoption("dist", "no") != "no" or bool(os.environ.get("PYTEST_XDIST_WORKER"))
    if xdist and not getattr(option, "benchmark_skip", False) and not getattr(option, "benchmark_enable", False):
        option.benchmark_disable = True
