"""What the importable TensorRT library can do, decided once (TensorRT 10, 11 or TensorRT-RTX).

The library is imported lazily, on first use, and its capabilities are read into a
:class:`TensorRTFlavor`; nothing else in this package asks the library which version it is.
"""
from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from typing import Any

NOT_INSTALLED = "TensorRT is not installed: pip install tensorrt-rtx (or tensorrt)"


@dataclass(frozen=True)
class TensorRTFlavor:
    """What the importable TensorRT library can do. Every version difference is decided here."""

    module: Any
    module_name: str  # "tensorrt" or "tensorrt_rtx"
    version: str
    strongly_typed_only: bool
    """No FP16/INT8 builder flags: precision comes from the model's types and explicit Q/DQ."""
    has_fp16_flag: bool
    has_tf32_flag: bool
    has_bf16: bool
    has_fp8: bool
    has_timing_cache: bool
    """TensorRT-RTX >= 1.2 keeps the API but makes every timing-cache call a deprecated no-op."""
    has_hardware_compat: bool
    needs_gpu_to_build: bool
    target_compute_capabilities: tuple[str, ...]
    """Compute capabilities the builder can target without that GPU present (empty: none)."""
    runnable_compute_capabilities: tuple[str, ...] | None
    """Where engines can run; ``None`` when the library does not restrict it."""

    @property
    def label(self) -> str:
        return f"{self.module_name} {self.version}"

    @classmethod
    def of(cls, trt: Any) -> TensorRTFlavor:
        name = trt.__name__
        flags = trt.BuilderFlag.__members__
        dtypes = trt.DataType.__members__
        is_rtx = name == "tensorrt_rtx"
        ccs: tuple[str, ...] = ()
        if hasattr(trt, "ComputeCapability") and hasattr(trt.IBuilderConfig, "set_compute_capability"):
            ccs = tuple(
                f"{int(m[2:-1])}.{m[-1]}" for m in trt.ComputeCapability.__members__ if re.fullmatch(r"SM\d+", m)
            )
        return cls(
            module=trt,
            module_name=name,
            version=trt.__version__,
            strongly_typed_only="FP16" not in flags,
            has_fp16_flag="FP16" in flags,
            has_tf32_flag="TF32" in flags,
            has_bf16="BF16" in dtypes,
            has_fp8="FP8" in dtypes,
            has_timing_cache=not is_rtx,
            has_hardware_compat=hasattr(trt, "HardwareCompatibilityLevel") and not is_rtx,
            needs_gpu_to_build=not is_rtx,
            target_compute_capabilities=ccs,
            runnable_compute_capabilities=ccs if is_rtx else None,
        )


@functools.cache
def detect_flavor(module_name: str | None = None) -> TensorRTFlavor | None:
    """The first importable of ``tensorrt`` and ``tensorrt_rtx`` (or *module_name*), or ``None``."""
    for name in [module_name] if module_name else ["tensorrt", "tensorrt_rtx"]:
        try:
            trt = importlib.import_module(name)
            return TensorRTFlavor.of(trt)
        except (ImportError, OSError, AttributeError):  # PyPI stubs import, then lack the API
            continue
    return None
