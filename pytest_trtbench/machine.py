"""Which machine a latency was measured on, as a hash: nothing identifying is stored in clear.

The latency gate separates the spread between runs on one machine from the spread between
machines (:mod:`pytest_trtbench.gate`), so every stored run records :func:`machine_identity`: a
SHA-256 over the host id (``/etc/machine-id``), the CPU model, the NVIDIA driver version and the
GPU's UUID, cut to 16 hex digits. Two GPUs of one host are two machines (their UUIDs differ); the
same GPU after a driver upgrade is a new machine too, as it may time differently. No hostname, no
serial number, no user name goes in, and the hash cannot be turned back into any of them.

torch and NVML are optional: without them (CPU runs) the identity is the host id and CPU model.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pytest_trtbench.device import DeviceInfo, cpu_model

HOST_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def host_id() -> str:
    """The OS's random host id (systemd's machine-id), or ``""`` where there is none."""
    for name in HOST_ID_FILES:
        try:
            text = Path(name).read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text:
            return text
    return ""


def _gpu_uuid_and_driver() -> tuple[str, str]:
    """UUID of the visible CUDA device 0 (torch) and the driver version (NVML); ``""`` where unknown."""
    uuid = driver = ""
    try:
        import torch

        if torch.cuda.is_available():
            uuid = str(getattr(torch.cuda.get_device_properties(0), "uuid", ""))
    except ImportError:  # a runner without torch: the same UUID text through cuda-python, so the hash matches
        from pytest_trtbench.cuda.select import device_uuid

        uuid = device_uuid()
    except Exception:  # a CUDA error: the identity is then coarser, never an error
        pass
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        raw: Any = pynvml.nvmlSystemGetDriverVersion()
        driver = raw.decode() if isinstance(raw, bytes) else str(raw)
    except Exception:
        pass
    return uuid, driver


def identity_fields(device: DeviceInfo, cuda_layer: str = "torch") -> dict[str, str]:
    """What goes into the hash (kept in memory only, never written). A CUDA layer other than torch (the only
    one before ``--trt-cuda``, so older hashes stay valid) is part of it: the layer's host overhead is inside a
    launch-bound timing, so a run through cuda-python or pycuda counts as another machine for the gate."""
    fields = {"host_id": host_id(), "cpu_model": cpu_model(), "device_name": device.device_name}
    if device.has_cuda:
        fields["gpu_uuid"], fields["driver"] = _gpu_uuid_and_driver()
        if cuda_layer != "torch":
            fields["cuda_layer"] = cuda_layer
    return fields


def hash_identity(fields: dict[str, str]) -> str:
    """16 hex digits of SHA-256 over the sorted fields."""
    text = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def machine_identity(device: DeviceInfo, cuda_layer: str = "torch") -> str:
    return hash_identity(identity_fields(device, cuda_layer))
