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


@pytest.fixture(autouse=True)
def _nested_runs_ignore_our_own_xdist(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the environment of a plain (non-xdist) run. When this suite itself runs under xdist
    (``-n 2``), the worker's ``PYTEST_XDIST_*`` variables would otherwise leak into nested pytest runs (pytester,
    in-process or subprocess, and ``subprocess.run([python, -m, pytest])``) and make them behave as an xdist worker
    (e.g. benchmarks disabled). Tests that want a worker set the variables themselves."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
