"""pytest-trtbench: build TensorRT / ONNX Runtime engines for model suites, compare, gate, report.

Importing this package is cheap: no numpy, torch, onnxruntime, tensorrt or pandas.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_trtbench.compare import Tolerance
    from pytest_trtbench.profile import InputRange, ShapeProfile
    from pytest_trtbench.suite import Case, Input, Suite, SuiteError
    from pytest_trtbench.task_data import Dataset

__version__ = "0.1.0"

# the public names, imported on first use (PEP 562): loading the plugin does not import the suite machinery
_EXPORTS = {"Tolerance": "compare", "InputRange": "profile", "ShapeProfile": "profile", "Case": "suite",
            "Input": "suite", "Suite": "suite", "SuiteError": "suite", "Dataset": "task_data"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_trtbench' has no attribute {name!r}")
    # not cached here: always the class of the module in sys.modules (pytester's in-process runs drop modules)
    return getattr(importlib.import_module(f"pytest_trtbench.{module}"), name)


def model_size() -> str:
    """``tiny`` or ``full``: the size the shipped suites build (``--trt-size``, ini ``trt_size``), read from
    the running pytest session's config stash; ``tiny`` outside a session."""
    from pytest_trtbench.plugin import model_size as size_of_session

    return size_of_session()


__all__ = ["Case", "Dataset", "Input", "InputRange", "ShapeProfile", "Suite", "SuiteError", "Tolerance", "model_size"]
