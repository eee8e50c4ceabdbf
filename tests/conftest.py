from __future__ import annotations

import importlib

import pytest

pytest_plugins = ["pytester"]

# pytester's in-process runs restore sys.modules afterwards; C extensions such as onnx's must not be
# imported a second time in one process, so import them once here, before any inner run.
for _name in ("numpy", "torch", "onnx", "onnxruntime", "onnxruntime.quantization", "pandas"):
    try:
        importlib.import_module(_name)
    except ImportError:
        pass
# steady_clock (below) patches this module: inner runs must use this very module object, imported before them
importlib.import_module("pytest_trtbench.measure")


@pytest.fixture(autouse=True)
def _nested_runs_ignore_our_own_xdist(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the environment of a plain (non-xdist) run. When this suite itself runs under xdist
    (``-n 2``), the worker's ``PYTEST_XDIST_*`` variables would otherwise leak into nested pytest runs (pytester,
    in-process or subprocess, and ``subprocess.run([python, -m, pytest])``) and make them behave as an xdist worker
    (e.g. benchmarks disabled). Tests that want a worker set the variables themselves."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


class SteadyClock:
    """FAKE ``time`` for :mod:`pytest_trtbench.measure`: every ``perf_counter`` reading advances 10 us, so every
    timed iteration of a REAL engine measures exactly 0.01 ms (blocks without spread), whatever the load on this
    shared 2-vCPU machine. The engines, outputs, accuracy, layer profiles and the gate are real; only the clock
    the latency is read from is fake (tests/test_promises.py scripts per-measurement latencies instead)."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1e-5
        return self.now


@pytest.fixture
def steady_clock(monkeypatch: pytest.MonkeyPatch) -> SteadyClock:
    """Latencies measured by this test's in-process (pytester) runs are exactly 0.01 ms per iteration: a test that
    expects a latency verdict against a stored baseline must not get it from a CPU timing (they swing 2x here)."""
    from types import SimpleNamespace

    from pytest_trtbench import measure

    clock = SteadyClock()
    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    return clock

