"""Engine backends behind one small interface (:mod:`pytest_trtbench.backends.base`), found by name through
:mod:`pytest_trtbench.backends.registry` (built-ins and the ``pytest_trtbench.backends`` entry-point group)."""
from __future__ import annotations

from pytest_trtbench.backends.base import (
    Backend,
    BackendError,
    BuildOption,
    BuildOutput,
    BuildRequest,
    Engine,
    Launch,
)
from pytest_trtbench.backends.registry import ENTRY_POINT_GROUP, BackendRegistryError, backend_names, get_backend


def default_backend() -> str:
    """``tensorrt`` on a machine where TensorRT is installed and a CUDA GPU can run its engines, else
    ``onnxruntime``. Looks for the modules without importing them; detects the GPU through torch/NVML."""
    import importlib.util

    from pytest_trtbench.device import detect_cuda_device

    has_full = importlib.util.find_spec("tensorrt") is not None
    has_rtx = importlib.util.find_spec("tensorrt_rtx") is not None
    if not (has_full or has_rtx):
        return "onnxruntime"
    present = detect_cuda_device()
    if present is None:
        return "onnxruntime"
    # TensorRT-RTX builds for, but refuses to run on, compute capability 9.0 (H100/H200)
    if not has_full and present[1] == "9.0":
        return "onnxruntime"
    return "tensorrt"


__all__ = [
    "ENTRY_POINT_GROUP", "Backend", "BackendError", "BackendRegistryError", "BuildOption", "BuildOutput", "BuildRequest", "Engine",
    "Launch", "backend_names", "default_backend", "get_backend",
]
