"""The TensorRT backend: TensorRT 10, TensorRT 11 and TensorRT-RTX behind one :class:`Backend`.

This module decides what can be done where and delegates: :mod:`.build` builds, :mod:`.runtime`
loads and executes, :mod:`.flavor` knows the library's version and capabilities.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from pytest_trtbench.backends.base import BackendError, BuildOption, BuildOutput, BuildRequest
from pytest_trtbench.backends.tensorrt.build import ENGINE_FILE, build_engine, precision_mode
from pytest_trtbench.backends.tensorrt.flavor import FP8_REFUSED, NOT_INSTALLED, TensorRTFlavor, detect_flavor
from pytest_trtbench.backends.tensorrt.runtime import TensorRTEngine, checked_engine, deserialize
from pytest_trtbench.build_options import int_in, one_of
from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.precision import PRECISIONS

HARDWARE_COMPAT = ("none", "ampere_plus", "same_compute_capability")
"""Values of the ``hardware_compat`` build option."""


class TensorRTBackend:
    """Builds TensorRT engines from ONNX and runs them on a CUDA device through the CUDA layer (--trt-cuda)."""

    name = "tensorrt"
    build_options = (
        BuildOption("workspace_mib", int_in(1, None), None, "workspace memory pool limit, MiB (default: TensorRT's)"),
        BuildOption("opt_level", int_in(0, 5), 3, "builder optimization level"),
        BuildOption("hardware_compat", one_of(*HARDWARE_COMPAT), "none",
                    "hardware compatibility level (TensorRT 10/11; TensorRT-RTX has none)"),
    )

    def __init__(self, module_name: str | None = None) -> None:
        self._module_name = module_name

    @property
    def flavor(self) -> TensorRTFlavor | None:
        return detect_flavor(self._module_name)

    def _require_flavor(self) -> TensorRTFlavor:
        flavor = self.flavor
        if flavor is None:
            raise BackendError(NOT_INSTALLED)
        return flavor

    # -- what can be done here --------------------------------------------------------------

    def unsupported_reason(self, precision: str, device: DeviceInfo) -> str | None:
        flavor = self.flavor
        if flavor is None:
            return NOT_INSTALLED
        if flavor.too_old_reason:
            return flavor.too_old_reason
        if precision not in PRECISIONS:
            return f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})"
        if precision == "fp8":
            # Refused rather than faked: BuilderFlag.FP8 (TensorRT 10) only enables fp8 plugins and is gone
            # in TensorRT 11; fp8 needs explicit FLOAT8E4M3FN Q/DQ, which no recipe here writes or validates.
            return FP8_REFUSED
        if not device.has_cuda and flavor.needs_gpu_to_build:
            where = f"for {device.gpu}, which is not present" if device.target_only else "without a CUDA device"
            return f"{flavor.label} cannot build {where}; tensorrt-rtx can (pip install tensorrt-rtx)"
        if device.target_only:
            cc = device.compute_capability
            if not cc:
                return f"compute capability of {device.gpu!r} is unknown; cannot build for it without the GPU"
            if cc not in flavor.target_compute_capabilities:
                can = ", ".join(flavor.target_compute_capabilities) or "none"
                return f"{flavor.label} cannot build for compute capability {cc} ({device.gpu}); it targets: {can}"
        if precision == "tf32" and not flavor.has_tf32_flag:
            return f"{flavor.label} has no TF32 builder flag"
        if precision == "bf16" and not flavor.has_bf16:
            return f"{flavor.label} has no bf16 data type"
        return None

    def execution_unavailable_reason(self, device: DeviceInfo) -> str | None:
        flavor = self.flavor
        if flavor is None:
            return NOT_INSTALLED
        if flavor.too_old_reason:
            return flavor.too_old_reason
        if device.target_only:
            return f"built for {device.gpu}, which is not present: built, not executed"
        if not device.has_cuda:
            return "no CUDA device: built, not executed"
        runnable = flavor.runnable_compute_capabilities
        if runnable is not None and device.compute_capability not in runnable:
            return (
                f"{flavor.label} does not run engines on compute capability {device.compute_capability} "
                f"({device.gpu}): built, not executed; install tensorrt for this GPU"
            )
        from pytest_trtbench.cuda.select import AUTO, CudaLayerError, choose, probe

        try:
            choose(AUTO, probe(AUTO))  # torch, cuda-python or pycuda drives the engine
        except CudaLayerError as exc:
            return f"{exc}: built, not executed"
        return None

    def cache_identity(self, request: BuildRequest) -> dict[str, str]:
        flavor = self._require_flavor()
        options = {k: request.options[k] for k in sorted(request.options)}
        return {
            "flavor": flavor.module_name,
            "version": flavor.version,
            "precision_mode": precision_mode(flavor, request),
            "builder_options": json.dumps(options, sort_keys=True, default=str),
            "gpu": request.device.device_name,
            "compute_capability": request.device.compute_capability,
            "hardware_compat": str(request.options.get("hardware_compat", "none")),
        }

    # -- build, verify, load ----------------------------------------------------------------

    def build(self, request: BuildRequest, out_dir: Path, cache_root: Path) -> BuildOutput:
        flavor = self._require_flavor()
        reason = self.unsupported_reason(request.precision, request.device)
        if reason:
            raise BackendError(reason)
        can_execute = self.execution_unavailable_reason(request.device) is None
        return build_engine(flavor, request, out_dir, cache_root, can_execute=can_execute)

    def verify(self, entry_dir: Path, metadata: Mapping[str, Any]) -> None:
        """Check the engine file's header (no CUDA needed); corrupt or truncated files raise BackendError."""
        checked_engine(self._require_flavor(), entry_dir / ENGINE_FILE)

    def load(self, entry_dir: Path, metadata: Mapping[str, Any], request: BuildRequest) -> TensorRTEngine:
        """Deserialize an engine. Call only where :meth:`execution_unavailable_reason` is ``None``;
        an unreadable or corrupt file raises :class:`BackendError` (the cache then rebuilds)."""
        flavor = self._require_flavor()
        path = entry_dir / ENGINE_FILE
        blob, runtime, logger = checked_engine(flavor, path)
        reason = self.execution_unavailable_reason(request.device)
        if reason is not None:
            raise RuntimeError(f"load() called where engines cannot run: {reason}")
        from pytest_trtbench.cuda.select import CudaLayerError, cuda_layer

        try:
            cuda = cuda_layer(request.cuda)
        except CudaLayerError as exc:
            raise BackendError(str(exc)) from None
        engine = deserialize(flavor, path, blob, runtime, logger, request.profiles, cuda)
        engine.layer_types = {str(layer.get("name")): str(layer.get("type")) for layer in metadata.get("layers") or []}
        return engine
