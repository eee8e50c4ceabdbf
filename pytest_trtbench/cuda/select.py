"""Which CUDA layer a run uses: ``--trt-cuda=auto|torch|cuda-python|pycuda`` (ini ``trt_cuda``).

``auto`` takes the first usable one of torch → cuda-python → pycuda (torch first: a run with a live
PyTorch reference has it anyway). Probing imports the library and asks it for a device, so it happens
only on a GPU run, once per process (:func:`cuda_layer`), never at plugin import.
"""
from __future__ import annotations

import functools
from typing import Callable, Mapping

from pytest_trtbench.cuda.layer import CudaLayer, CudaLayerError

AUTO = "auto"
LAYERS = ("torch", "cuda-python", "pycuda")
"""Every implementation, in ``auto``'s order of preference."""
CHOICES = (AUTO, *LAYERS)
OPTION = "--trt-cuda"
INSTALL = {"torch": "pip install torch (a CUDA build)", "cuda-python": "pip install 'pytest-trtbench[cuda]'",
           "pycuda": "pip install 'pytest-trtbench[pycuda]' (it compiles against the CUDA toolkit)"}


def parse_layer(text: str) -> str:
    """``--trt-cuda``'s value, checked; :class:`ValueError` naming the choices otherwise."""
    value = text.strip().lower()
    if value not in CHOICES:
        raise ValueError(f"expected one of {', '.join(CHOICES)}; got {text!r}")
    return value


def choose(requested: str, reasons: Mapping[str, str | None]) -> str:
    """The layer to use given why each one is unusable (``None``: usable). Pure.

    ``auto`` takes the first usable in :data:`LAYERS` order; a named one must be usable. Raises
    :class:`CudaLayerError` with one line naming the option, every reason and the fix.
    """
    if requested != AUTO:
        why = reasons.get(requested, "unknown CUDA layer")
        if why is None:
            return requested
        usable = [name for name in LAYERS if reasons.get(name) is None]
        other = f"use {OPTION}={usable[0]} (usable here) or {OPTION}=auto" if usable else INSTALL[requested]
        raise CudaLayerError(f"{OPTION}={requested}: {why}; {other}")
    for name in LAYERS:
        if reasons.get(name, "not probed") is None:
            return name
    said = "; ".join(f"{name}: {reasons.get(name, 'not probed')}" for name in LAYERS)
    raise CudaLayerError(f"{OPTION}=auto: no CUDA layer is usable on this GPU run ({said}); "
                         f"install one: {INSTALL['cuda-python']} (no PyTorch needed) or {INSTALL['pycuda']}")


def _torch_reason() -> str | None:
    try:
        import torch
    except ImportError as exc:
        return f"torch cannot be imported ({exc})"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device (a CPU build, or no driver)"
    return None


def _bindings_reason(module: str, library: str) -> str | None:
    """Why the layer in ``pytest_trtbench.cuda.<module>`` (on *library*) can't run here, or ``None``."""
    import importlib

    try:
        count = importlib.import_module(f"pytest_trtbench.cuda.{module}").device_count()
    except ImportError:
        return f"{library} is not installed"
    except CudaLayerError as exc:
        return str(exc)
    return None if count else f"{library.split()[0]} sees no CUDA device"


def _cuda_python_reason() -> str | None:
    return _bindings_reason("cuda_python_layer", "cuda-python (cuda-bindings)")


def _pycuda_reason() -> str | None:
    return _bindings_reason("pycuda_layer", "pycuda")


PROBES: Mapping[str, Callable[[], str | None]] = {
    "torch": _torch_reason, "cuda-python": _cuda_python_reason, "pycuda": _pycuda_reason}


@functools.cache
def unavailable_reason(name: str) -> str | None:
    """Why layer *name* can't be used in this process (``None``: it can); imports the library."""
    return PROBES[name]()


def probe(requested: str) -> dict[str, str | None]:
    """The reasons :func:`choose` needs: only as many layers as it has to look at."""
    if requested != AUTO:
        why = unavailable_reason(requested)
        return {requested: None} if why is None else {name: unavailable_reason(name) for name in LAYERS}
    reasons: dict[str, str | None] = {}
    for name in LAYERS:
        reasons[name] = unavailable_reason(name)
        if reasons[name] is None:
            break
    return reasons


@functools.cache
def cuda_layer(requested: str = AUTO) -> CudaLayer:
    """The process's layer for *requested* (one per name: streams and buffers of a layer stay with it)."""
    name = choose(requested, probe(requested))
    return _make(name)


@functools.cache
def _make(name: str) -> CudaLayer:
    if name == "torch":
        from pytest_trtbench.cuda.torch_layer import TorchLayer

        return TorchLayer()
    if name == "cuda-python":
        from pytest_trtbench.cuda.cuda_python_layer import CudaPythonLayer

        return CudaPythonLayer()
    from pytest_trtbench.cuda.pycuda_layer import PycudaLayer

    return PycudaLayer()


def detect_device() -> tuple[str, str] | None:
    """(name, compute capability) of device 0 through cuda-python, for runners without torch and NVML."""
    try:
        from pytest_trtbench.cuda.cuda_python_layer import device_count, device_properties

        return device_properties(0) if device_count() else None
    except (ImportError, CudaLayerError):
        pass
    try:
        from pytest_trtbench.cuda.pycuda_layer import device_count as pycuda_count
        from pytest_trtbench.cuda.pycuda_layer import driver

        if pycuda_count():
            device = driver().Device(0)
            major, minor = device.compute_capability()
            return str(device.name()), f"{major}.{minor}"
    except (ImportError, CudaLayerError):
        pass
    return None


def device_uuid() -> str:
    """Device 0's UUID through cuda-python in the text torch gives it (``8-4-4-4-12`` hex digits); ``""``
    where it can't be read."""
    try:
        from pytest_trtbench.cuda.cuda_python_layer import _check, runtime

        cudart = runtime()
        raw = bytes(_check(cudart, "cudaGetDeviceProperties", cudart.cudaGetDeviceProperties(0)).uuid.bytes)
    except Exception:  # not installed, no driver, an older cudaUUID_t: the identity is coarser, never an error
        return ""
    h = raw[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}" if len(h) == 32 else ""
