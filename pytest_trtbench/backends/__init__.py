"""Engine backends behind one small interface (see :mod:`pytest_trtbench.backends.base`)."""
from __future__ import annotations

from pytest_trtbench.backends.base import Backend, BackendError, BuildOutput, BuildRequest, Engine, Launch

BACKEND_NAMES = ("onnxruntime", "tensorrt")


def get_backend(name: str) -> Backend:
    """Return the backend called *name*; its heavy imports happen inside its methods."""
    if name == "onnxruntime":
        from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend()
    if name == "tensorrt":
        from pytest_trtbench.backends.tensorrt import TensorRTBackend

        return TensorRTBackend()
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")


__all__ = ["Backend", "BackendError", "BuildOutput", "BuildRequest", "Engine", "Launch", "get_backend"]
