"""pytest-xdist on a multi-GPU host: ``-n auto`` gives one worker per GPU, each pinned to its device.

Pinning works through ``CUDA_VISIBLE_DEVICES``, set in the worker before anything initializes CUDA
(CUDA reads it once, at initialization). GPUs are counted without importing torch: NVML if present,
else ``nvidia-smi -L``.
"""
from __future__ import annotations

import os
import shutil
import subprocess


def visible_gpus() -> list[str]:
    """Device ids this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else every GPU found."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip() and d.strip() != "-1"]
    return [str(i) for i in range(_count_gpus())]


def _count_gpus() -> int:
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML library, no driver, no permission: fall back to nvidia-smi
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def worker_index(workerinput: dict[str, object]) -> int:
    """``gw3`` -> 3."""
    workerid = str(workerinput.get("workerid", "gw0"))
    digits = "".join(ch for ch in workerid if ch.isdigit())
    return int(digits) if digits else 0


def pin_worker(workerinput: dict[str, object], gpus: list[str]) -> str | None:
    """Restrict this worker to one GPU (round robin over *gpus*); returns the device id, or None."""
    if len(gpus) < 2:
        return None
    device = gpus[worker_index(workerinput) % len(gpus)]
    os.environ["CUDA_VISIBLE_DEVICES"] = device
    return device
