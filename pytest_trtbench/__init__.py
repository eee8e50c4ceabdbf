"""pytest-trtbench: build TensorRT / ONNX Runtime engines for model suites, compare, gate, report.

Importing this package is cheap: no numpy, torch, onnxruntime, tensorrt or pandas.
"""
from __future__ import annotations

import os

from pytest_trtbench.compare import Tolerance
from pytest_trtbench.profile import InputRange, ShapeProfile
from pytest_trtbench.suite import Case, Input, Suite, SuiteError

__version__ = "0.1.0"


def model_size() -> str:
    """``tiny`` or ``full``: the size the shipped suites build (``--trt-size``, ini ``trt_size``)."""
    return os.environ.get("TRTBENCH_SIZE", "tiny")


__all__ = ["Case", "Input", "InputRange", "ShapeProfile", "Suite", "SuiteError", "Tolerance", "model_size"]
