"""Which device this run is on, and the short GPU names that select baselines and cache namespaces."""
from __future__ import annotations

import functools
import platform
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    """The device a run measures on. ``gpu`` is the short name (``a10``, ``h100``, ``cpu``)."""

    gpu: str
    device_name: str
    kind: str  # "cuda" or "cpu"
    compute_capability: str = ""
    """``"8.6"`` etc. for CUDA devices; empty on CPU."""
    target_only: bool = False
    """True when building for a GPU that is not present (``--trt-build-only --trt-gpu=a10``)."""

    @property
    def has_cuda(self) -> bool:
        return self.kind == "cuda" and not self.target_only

    def identity(self) -> dict[str, str]:
        """What of the device goes into an engine's cache key."""
        return {"device_name": self.device_name, "compute_capability": self.compute_capability}


# compute capability of well-known GPU short names, for build-only targeting
KNOWN_COMPUTE_CAPABILITY = {
    "t4": "7.5", "a10": "8.6", "a10g": "8.6", "a100": "8.0", "a30": "8.0", "a40": "8.6",
    "l4": "8.9", "l40": "8.9", "l40s": "8.9", "h100": "9.0", "h200": "9.0", "h20": "9.0",
    "b200": "10.0", "rtx4090": "8.9", "rtx3090": "8.6", "rtx5090": "12.0",
}


def short_gpu_name(device_name: str) -> str:
    """``"NVIDIA A10"`` -> ``a10``, ``"NVIDIA H100 80GB HBM3"`` -> ``h100``,
    ``"NVIDIA GeForce RTX 4090"`` -> ``rtx4090``, ``"NVIDIA RTX A6000"`` -> ``a6000``."""
    words = [w for w in re.split(r"[\s_-]+", device_name.strip()) if w]
    words = [w for w in words if w.lower() not in {"nvidia", "geforce", "tesla", "quadro"}]
    if not words:
        raise ValueError(f"cannot derive a GPU name from {device_name!r}; pass --trt-gpu=NAME")
    first = words[0].lower()
    if first == "rtx" and len(words) > 1:
        second = words[1].lower()
        # "RTX A6000" is a workstation card named by its model; "RTX 4090" keeps the prefix
        return second if second[0].isalpha() else f"rtx{second}"
    if first in {"gtx", "titan"} and len(words) > 1:
        return f"{first}{words[1].lower()}"
    return re.sub(r"[^a-z0-9]", "", first)


def cpu_model() -> str:
    """The CPU's model string (``/proc/cpuinfo`` on Linux), used to decide whether CPU latency compares."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def detect_cuda_device() -> tuple[str, str] | None:
    """(device name, compute capability) of CUDA device 0, or ``None``. Imports torch lazily; without
    torch, NVML, then cuda-python or pycuda (:func:`pytest_trtbench.cuda.select.detect_device`)."""
    try:
        import torch
    except ImportError:
        from pytest_trtbench.cuda.select import detect_device as detect_with_cuda_layer

        return _detect_with_nvml() or detect_with_cuda_layer()
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return torch.cuda.get_device_name(0), f"{major}.{minor}"


def _detect_with_nvml() -> tuple[str, str] | None:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
    except pynvml.NVMLError:
        return None
    return (name.decode() if isinstance(name, bytes) else name), f"{major}.{minor}"


class GpuSelectionError(Exception):
    """``--trt-gpu`` names a device that is not the one present."""


def detect_device() -> DeviceInfo | None:
    """The CUDA device this machine would run on (device 0), or ``None`` without one."""
    found = detect_cuda_device()
    if found is None:
        return None
    name, cc = found
    return DeviceInfo(gpu=short_gpu_name(name), device_name=name, kind="cuda", compute_capability=cc)


_DETECT = object()


def resolve_device(requested: str, *, build_only: bool = False, present: DeviceInfo | None | object = _DETECT) -> DeviceInfo:
    """Turn ``--trt-gpu`` (``auto``, ``cpu`` or a short name) into the device this run uses.

    A named GPU that is not present is refused, unless *build_only* (then engines are built
    for that GPU and nothing is executed or compared). *present* is the detected CUDA device
    (:func:`detect_device` when not given; tests inject one to play a machine with another GPU).
    """
    requested = requested.strip().lower()
    if requested == "cpu":  # before detection: that imports torch (seconds), at collection time
        return DeviceInfo(gpu="cpu", device_name=cpu_model(), kind="cpu")
    detected = detect_device() if present is _DETECT else present
    if detected is not None and not isinstance(detected, DeviceInfo):
        raise TypeError(f"present must be a DeviceInfo or None, got {detected!r}")
    found = (detected.device_name, detected.compute_capability) if detected is not None else None
    if requested == "auto":
        if found is None:
            return DeviceInfo(gpu="cpu", device_name=cpu_model(), kind="cpu")
        name, cc = found
        return DeviceInfo(gpu=short_gpu_name(name), device_name=name, kind="cuda", compute_capability=cc)
    if found is not None and short_gpu_name(found[0]) == requested:
        return DeviceInfo(gpu=requested, device_name=found[0], kind="cuda", compute_capability=found[1])
    if build_only:
        return DeviceInfo(
            gpu=requested,
            device_name=requested,
            kind="cuda",
            compute_capability=KNOWN_COMPUTE_CAPABILITY.get(requested, ""),
            target_only=True,
        )
    has = f"this machine has {found[0]!r} ({short_gpu_name(found[0])})" if found else "this machine has no CUDA device"
    raise GpuSelectionError(
        f"--trt-gpu={requested} but {has}. Baselines of one GPU are never compared on another: "
        f"use --trt-gpu=auto, or --trt-gpu=cpu, or add --trt-build-only to only build engines for {requested}."
    )
