"""Engine backends behind one small interface (see :mod:`pytest_trtbench.backends.base`)."""
from __future__ import annotations

from pytest_trtbench.backends.base import Backend, BackendError, BuildOutput, BuildRequest, Engine, Launch

BACKEND_NAMES = ("onnxruntime", "tensorrt")


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


def get_backend(name: str) -> Backend:
    """Return the backend called *name*; its heavy imports happen inside its methods."""
    if name == "onnxruntime":
        from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend()
    if name == "tensorrt":
        from pytest_trtbench.backends.tensorrt import TensorRTBackend

        return TensorRTBackend()
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")


__all__ = [
    "Backend", "BackendError", "BuildOutput", "BuildRequest", "Engine", "Launch", "default_backend", "get_backend",
]
