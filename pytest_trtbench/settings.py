"""The session's settings: read once from the command line and ini file by the plugin, frozen."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.measure import TimingConfig


@dataclass(frozen=True)
class Settings:
    device: DeviceInfo
    cache_dir: Path
    baseline_dir: Path
    timing: TimingConfig = TimingConfig()
    latency_tolerance: float = 0.05
    latency_gate: str = "auto"
    """``on``, ``off`` or ``auto`` (on for GPUs, advisory on CPU): :func:`pytest_trtbench.gate.effective_mode`."""
    strict: bool = False
    update_baselines: bool = False
    build_only: bool = False
    rebuild: bool = False
    confirm: int = 1
    history: int = 10
    profile_layers: bool = False
    """``--trt-profile-layers``: a per-layer profile for every executed case (:mod:`pytest_trtbench.layer_report`)."""
    build_options: Mapping[str, Any] = field(default_factory=dict)
    """``--trt-build-option`` / ini ``trt_build_option`` as text; each backend takes and parses the ones it declares
    (:func:`pytest_trtbench.build_options.options_for`)."""
    cuda: str = "auto"
    """``--trt-cuda``: ``auto``, ``torch``, ``cuda-python`` or ``pycuda`` (:mod:`pytest_trtbench.cuda.select`)."""
