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
FP8_REFUSED = (
    "fp8 is not supported: TensorRT builds fp8 only from an fp8-quantized (Q/DQ) model and pytest-trtbench "
    "has no fp8 quantization recipe (TensorRT 10's FP8 builder flag quantizes nothing; TensorRT 11 removed "
    "it); use int8 or fp16"
)
MIN_TENSORRT = "10.1"
"""Full TensorRT below this lacks ``device_memory_size_v2`` / ``get_device_memory_size_for_profile_v2``."""


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
    too_old_reason: str | None = None
    """Why this library version cannot be used at all (``None``: it can)."""
    hardware_compat_levels: tuple[str, ...] = ()
    """``HardwareCompatibilityLevel`` members of this version, lower case (``SAME_COMPUTE_CAPABILITY``
    arrived in a later TensorRT 10 than ``AMPERE_PLUS``)."""
    runtime_kernel_specialization: bool = False
    """TensorRT-RTX: an ``IRuntimeConfig`` takes a dynamic-shape kernel specialization strategy."""
    builtin_cuda_graphs: bool = False
    """TensorRT-RTX >= 1.2: ``IRuntimeConfig.cuda_graph_strategy`` captures and replays inside enqueue."""

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
        engine = getattr(trt, "ICudaEngine", object)
        too_old = None
        if not is_rtx and not all(
            hasattr(engine, a) for a in ("device_memory_size_v2", "get_device_memory_size_for_profile_v2")
        ):
            too_old = (
                f"{name} {trt.__version__} is too old: pytest-trtbench needs TensorRT >= {MIN_TENSORRT} "
                f"(device_memory_size_v2); pip install 'tensorrt>={MIN_TENSORRT}'"
            )
        levels = getattr(trt, "HardwareCompatibilityLevel", None)
        runtime_config = hasattr(engine, "create_runtime_config")
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
            too_old_reason=too_old,
            hardware_compat_levels=tuple(m.lower() for m in levels.__members__) if levels is not None else (),
            runtime_kernel_specialization=runtime_config and hasattr(trt, "DynamicShapesKernelSpecializationStrategy"),
            builtin_cuda_graphs=runtime_config and hasattr(trt, "CudaGraphStrategy"),
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
