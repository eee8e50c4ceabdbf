"""The TensorRT backend: TensorRT 10, TensorRT 11 and TensorRT-RTX behind one :class:`Backend`.

The library is imported lazily, on first use, and what it can do is read once into a
:class:`TensorRTFlavor`; nothing else in this module asks the library which version it is.

Device buffers, the stream and CUDA graphs go through torch (``torch.cuda`` tensors): the PyTorch
reference path already needs torch, so this adds no dependency (no cuda-python, no pycuda).
"""
from __future__ import annotations

import functools
import importlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pytest_trtbench.backends.base import BackendError, BuildOutput, BuildRequest
from pytest_trtbench.backends.tensorrt_layers import (
    _layer_from_json,
    count_engine_precisions,
    parse_layer_listing,
)
from pytest_trtbench.device import DeviceInfo

if TYPE_CHECKING:
    import numpy as np

NOT_INSTALLED = "TensorRT is not installed: pip install tensorrt-rtx (or tensorrt)"
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8")
ENGINE_FILE = "engine.plan"
TIMING_CACHE_FILE = "timing.cache"
"""Bump when :mod:`pytest_trtbench.convert` changes what it writes: it is part of the cache key."""


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


class TensorRTBackend:
    """Builds TensorRT engines from ONNX and runs them on a CUDA device through torch."""

    name = "tensorrt"

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
        if precision not in PRECISIONS:
            return f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})"
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
        if precision == "fp8":
            if not flavor.has_fp8:
                return f"{flavor.label} has no fp8 data type"
            cc = device.compute_capability
            if cc and tuple(map(int, cc.split("."))) < (8, 9):
                return f"fp8 needs compute capability >= 8.9, {device.gpu} has {cc}"
        return None

    def execution_unavailable_reason(self, device: DeviceInfo) -> str | None:
        flavor = self.flavor
        if flavor is None:
            return NOT_INSTALLED
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
        import torch

        if not torch.cuda.is_available():
            return f"torch {torch.__version__} has no usable CUDA: built, not executed"
        return None

    def cache_identity(self, request: BuildRequest) -> dict[str, str]:
        flavor = self._require_flavor()
        options = {k: request.options[k] for k in sorted(request.options)}
        return {
            "flavor": flavor.module_name,
            "version": flavor.version,
            "precision_mode": self._precision_mode(flavor, request),
            "builder_options": json.dumps(options, sort_keys=True, default=str),
            "gpu": request.device.device_name,
            "compute_capability": request.device.compute_capability,
            "hardware_compat": str(request.options.get("hardware_compat", "none")),
        }

    @staticmethod
    def _precision_mode(flavor: TensorRTFlavor, request: BuildRequest) -> str:
        """``strongly_typed`` (the model carries the types) or ``builder_flags`` (TensorRT 10)."""
        if request.precision in ("fp16", "bf16") and request.options.get("fp32_ops"):
            return "strongly_typed"  # per-op fp32 is what a converted model expresses exactly
        return "strongly_typed" if flavor.strongly_typed_only else "builder_flags"

    # -- build ------------------------------------------------------------------------------

    def build(self, request: BuildRequest, out_dir: Path, cache_root: Path) -> BuildOutput:
        flavor = self._require_flavor()
        reason = self.unsupported_reason(request.precision, request.device)
        if reason:
            raise BackendError(reason)
        trt = flavor.module
        mode = self._precision_mode(flavor, request)
        model_path, files, metadata = self._prepare_model(request, mode, out_dir)

        logger = _RecordingLogger(trt)
        builder = trt.Builder(logger)
        network_flags = 0
        if mode == "strongly_typed" and not flavor.strongly_typed_only:
            network_flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(network_flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(model_path)):
            raise BackendError(_parser_failure(parser, model_path, request.onnx_path, flavor))

        config = builder.create_builder_config()
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        self._set_precision(flavor, config, request.precision, mode)
        self._add_profiles(builder, network, config, request)
        if "workspace_mib" in request.options:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(request.options["workspace_mib"]) << 20)
        if "opt_level" in request.options:
            config.builder_optimization_level = int(request.options["opt_level"])
        if flavor.has_hardware_compat and request.options.get("hardware_compat", "none") != "none":
            level = str(request.options["hardware_compat"]).upper()
            config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.__members__[level]
        if request.device.target_only:
            major, minor = request.device.compute_capability.split(".")
            config.num_compute_capabilities = 1
            config.set_compute_capability(trt.ComputeCapability.__members__[f"SM{major}{minor}"], 0)

        timing_cache = TimingCacheFile(cache_root / TIMING_CACHE_FILE) if flavor.has_timing_cache else None
        if timing_cache is not None:
            timing_cache.attach(config)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            errors = "\n".join(logger.errors[-10:]) or "(no error was logged)"
            raise BackendError(f"{flavor.label} failed to build {request.onnx_path} ({request.precision}):\n{errors}")
        if timing_cache is not None:
            timing_cache.merge_and_save(config)

        engine_path = out_dir / ENGINE_FILE
        with open(engine_path, "wb") as f:
            f.write(serialized)
        layers, source = self._layer_info(flavor, serialized, logger, request.device)
        metadata.update(
            flavor=flavor.module_name,
            version=flavor.version,
            precision_mode=mode,
            engine_bytes=engine_path.stat().st_size,
            layers=layers,
            layer_info_source=source,
            engine_precisions=count_engine_precisions(layers, _onnx_op_types(model_path)),
            timing_cache=str(timing_cache.path) if timing_cache else f"not supported by {flavor.label}",
            profiles=[p.as_dict() for p in request.profiles],
        )
        return BuildOutput(files=[*files, ENGINE_FILE], metadata=metadata)

    def _prepare_model(self, request: BuildRequest, mode: str, out_dir: Path) -> tuple[Path, list[str], dict]:
        """The ONNX file to parse: the source, a converted fp16/bf16 copy, or an int8 Q/DQ copy."""
        precision = request.precision
        if precision in ("fp16", "bf16") and mode == "strongly_typed":
            from pytest_trtbench.convert import convert_float_precision

            dst = out_dir / f"model.{precision}.onnx"
            try:
                summary = convert_float_precision(
                    request.onnx_path, dst, "fp16" if precision == "fp16" else "bf16", keep_fp32_ops=tuple(request.options.get("fp32_ops", ()))
                )
            except Exception as exc:  # onnx raises many types; the user needs the file and the cause
                raise BackendError(f"could not convert {request.onnx_path} to {precision}: {exc}") from exc
            return dst, [dst.name], {"conversion": summary}
        if precision == "int8":
            if request.calibration is None:
                raise BackendError(
                    "int8 needs calibration data: give the case calibration inputs (BuildRequest.calibration); "
                    "TensorRT builds int8 only from an explicitly quantized (Q/DQ) model"
                )
            try:
                from pytest_trtbench.quantize import QuantizationError, quantize_qdq
            except ImportError as exc:
                raise BackendError(f"int8 needs pytest_trtbench.quantize: {exc}") from exc
            dst = out_dir / "model.int8.onnx"
            try:
                quantize_qdq(request.onnx_path, dst, request.calibration())
            except QuantizationError as exc:
                raise BackendError(str(exc)) from exc
            return dst, [dst.name], {}
        return request.onnx_path, [], {}

    @staticmethod
    def _set_precision(flavor: TensorRTFlavor, config: Any, precision: str, mode: str) -> None:
        trt = flavor.module
        if flavor.has_tf32_flag:  # TensorRT enables TF32 by default: fp32 means fp32
            (config.set_flag if precision == "tf32" else config.clear_flag)(trt.BuilderFlag.TF32)
        if mode != "builder_flags":
            return
        flag = {"fp16": "FP16", "bf16": "BF16", "int8": "INT8", "fp8": "FP8"}.get(precision)
        if flag is not None:
            config.set_flag(trt.BuilderFlag.__members__[flag])

    @staticmethod
    def _add_profiles(builder: Any, network: Any, config: Any, request: BuildRequest) -> None:
        inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
        for shape_profile in request.profiles:
            unknown = sorted(set(shape_profile.names()) - set(inputs))
            if unknown:
                raise BackendError(
                    f"profile {shape_profile.label()} names {unknown}, which {request.onnx_path} has no input for "
                    f"(inputs: {sorted(inputs)})"
                )
            profile = builder.create_optimization_profile()
            for name, shape in inputs.items():
                if name in shape_profile.names():
                    r = shape_profile[name]
                    profile.set_shape(name, r.min, r.opt, r.max)
                elif any(d < 0 for d in shape):
                    raise BackendError(
                        f"input {name!r} of {request.onnx_path} has dynamic shape {list(shape)} but profile "
                        f"{shape_profile.label()} gives no min/opt/max for it"
                    )
            config.add_optimization_profile(profile)

    def _layer_info(
        self, flavor: TensorRTFlavor, serialized: Any, logger: _RecordingLogger, device: DeviceInfo
    ) -> tuple[list[dict], str]:
        """Engine layers: from the engine inspector where the engine can be loaded here, else from
        the layer listing the builder logs at verbose level with detailed profiling verbosity."""
        if self.execution_unavailable_reason(device) is None:
            trt = flavor.module
            engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
            if engine is not None:
                inspector = engine.create_engine_inspector()
                info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
                return [_layer_from_json(layer) for layer in info.get("Layers", [])], "inspector"
        for message in logger.layer_listings:
            return parse_layer_listing(message), "builder_log"
        return [], "unavailable"

    # -- load and run -----------------------------------------------------------------------

    def verify(self, entry_dir: Path, metadata: Mapping[str, Any]) -> None:
        """Check the engine file's header (no CUDA needed); corrupt or truncated files raise BackendError."""
        self._checked_engine(entry_dir / ENGINE_FILE)

    def _checked_engine(self, path: Path) -> tuple[bytes, Any, Any]:
        trt = self._require_flavor().module
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise BackendError(f"cannot read engine {path}: {exc}") from exc
        if not blob:
            raise BackendError(f"engine {path} is empty; it will be rebuilt")
        logger = _RecordingLogger(trt)
        runtime = trt.Runtime(logger)
        if hasattr(runtime, "get_engine_validity"):
            header = blob[: runtime.engine_header_size]
            _, diagnostics = runtime.get_engine_validity(header) if len(header) == runtime.engine_header_size else (0, 32)
            problems = [k for k, v in trt.EngineInvalidityDiagnostics.__members__.items() if int(diagnostics) & int(v)]
            if problems:
                raise BackendError(f"engine {path} is not usable ({', '.join(problems).lower()}); it will be rebuilt")
        return blob, runtime, logger

    def load(self, entry_dir: Path, metadata: Mapping[str, Any], request: BuildRequest) -> TensorRTEngine:
        """Deserialize an engine. Call only where :meth:`execution_unavailable_reason` is ``None``;
        an unreadable or corrupt file raises :class:`BackendError` (the cache then rebuilds)."""
        flavor = self._require_flavor()
        path = entry_dir / ENGINE_FILE
        blob, runtime, logger = self._checked_engine(path)
        reason = self.execution_unavailable_reason(request.device)
        if reason is not None:
            raise RuntimeError(f"load() called where engines cannot run: {reason}")
        start = time.perf_counter()
        engine = runtime.deserialize_cuda_engine(blob)
        deserialize_s = time.perf_counter() - start
        if engine is None:
            errors = "\n".join(logger.errors[-5:]) or "(no error was logged)"
            raise BackendError(f"{flavor.label} could not deserialize {path}; it will be rebuilt:\n{errors}")
        return TensorRTEngine(flavor, runtime, engine, request.profiles, deserialize_s)


class TensorRTEngine:
    """A deserialized engine with one execution context per optimization profile."""

    def __init__(self, flavor: TensorRTFlavor, runtime: Any, engine: Any, profiles: tuple, deserialize_s: float):
        import torch

        trt = flavor.module
        self._trt = trt
        self._runtime = runtime
        self._engine = engine
        self._profiles = profiles
        self.stream = torch.cuda.Stream()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._contexts = []
        memory = []
        for index in range(max(1, engine.num_optimization_profiles)):
            context = engine.create_execution_context()
            if index:
                context.set_optimization_profile_async(index, self.stream.cuda_stream)
            self._contexts.append(context)
            memory.append(int(engine.get_device_memory_size_for_profile_v2(index)))
        self.stream.synchronize()
        self._bound: dict[int, int] = {}  # context index -> id of the Launch whose buffers are bound
        self.stats: dict[str, Any] = {
            "deserialize_s": deserialize_s,
            "context_device_memory_bytes": memory,
            "device_memory_bytes": sum(memory),
        }

    def _profile_index(self, shapes: Mapping[str, tuple[int, ...]]) -> int:
        if not self._profiles:
            return 0
        for index, profile in enumerate(self._profiles):
            if profile.contains({k: v for k, v in shapes.items() if k in profile.names()}):
                return index
        labels = ", ".join(p.label() for p in self._profiles)
        raise BackendError(f"input shapes {dict(shapes)} fit no profile of this engine ({labels})")

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> TensorRTLaunch:
        import numpy as np
        import torch

        missing = sorted(set(self.input_names) - set(feeds))
        if missing:
            raise BackendError(f"missing inputs {missing}; the engine takes {self.input_names}")
        arrays = {name: np.ascontiguousarray(feeds[name]) for name in self.input_names}
        index = self._profile_index({n: a.shape for n, a in arrays.items()})
        inputs = {}
        for name, array in arrays.items():
            want = _torch_dtype(self._trt, self._engine.get_tensor_dtype(name))
            tensor = torch.from_numpy(array).to("cuda", non_blocking=False)
            if tensor.dtype != want:
                raise BackendError(f"input {name!r} is {array.dtype}, the engine wants {want}")
            inputs[name] = tensor
        return TensorRTLaunch(self, index, inputs)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        launch = self.prepare(feeds)
        launch()
        launch.synchronize()
        return launch.host_outputs()

    def close(self) -> None:
        self.stream.synchronize()
        self._contexts.clear()
        self._engine = None


class TensorRTLaunch:
    """Inputs staged on the device and outputs allocated; calling it only enqueues the engine."""

    def __init__(self, engine: TensorRTEngine, index: int, inputs: dict[str, Any]) -> None:
        import torch

        self._engine = engine
        self._index = index
        self._context = engine._contexts[index]
        self.cuda_stream = engine.stream
        self.inputs = inputs
        for name, tensor in inputs.items():
            if not self._context.set_input_shape(name, tuple(tensor.shape)):
                raise BackendError(f"input {name!r} shape {tuple(tensor.shape)} rejected by profile {index}")
        self.outputs = {}
        for name in engine.output_names:
            shape = tuple(self._context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise BackendError(f"output {name!r} has a data-dependent shape {shape}; not supported")
            dtype = _torch_dtype(engine._trt, engine._engine.get_tensor_dtype(name))
            self.outputs[name] = torch.empty(shape, dtype=dtype, device="cuda")
        self._bind()

    def _bind(self) -> None:
        for name, tensor in [*self.inputs.items(), *self.outputs.items()]:
            if name in self.inputs:
                self._context.set_input_shape(name, tuple(tensor.shape))
            self._context.set_tensor_address(name, tensor.data_ptr())
        self._engine._bound[self._index] = id(self)

    def __call__(self) -> None:
        if self._engine._bound.get(self._index) != id(self):  # another Launch shares this context
            self._bind()
        if not self._context.execute_async_v3(self.cuda_stream.cuda_stream):
            raise BackendError("execute_async_v3 failed; see the TensorRT log above")

    def synchronize(self) -> None:
        self.cuda_stream.synchronize()

    def host_outputs(self) -> dict[str, np.ndarray]:
        import torch

        self.synchronize()
        return {
            name: (t.float() if t.dtype == torch.bfloat16 else t).cpu().numpy() for name, t in self.outputs.items()
        }

    def capture_graph(self) -> CudaGraphLaunch:
        """Capture one enqueue into a CUDA graph; raise :class:`BackendError` saying why it could not."""
        import torch

        stream_capturable = getattr(self._context, "is_stream_capturable", None)
        if stream_capturable is not None and not stream_capturable(self.cuda_stream.cuda_stream):
            raise BackendError("TensorRT says this engine's enqueue is not stream-capturable")
        self()  # warm-up: lazy allocations and (TensorRT-RTX) JIT compilation must not be captured
        self.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=self.cuda_stream):
                if not self._context.execute_async_v3(self.cuda_stream.cuda_stream):
                    raise BackendError("execute_async_v3 failed during CUDA graph capture")
        except RuntimeError as exc:
            raise BackendError(f"CUDA graph capture of the TensorRT enqueue failed: {exc}") from exc
        return CudaGraphLaunch(graph, self)


class CudaGraphLaunch:
    """Replays a captured enqueue; the buffers of the Launch it came from stay bound."""

    def __init__(self, graph: Any, launch: TensorRTLaunch) -> None:
        self._graph = graph
        self._launch = launch  # keeps the captured buffers alive
        self.cuda_stream = launch.cuda_stream

    def __call__(self) -> None:
        with self.cuda_stream:
            self._graph.replay()

    def synchronize(self) -> None:
        self.cuda_stream.synchronize()


def _torch_dtype(trt: Any, dtype: Any) -> Any:
    import torch

    table = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
             "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool, "UINT8": torch.uint8}
    try:
        return table[dtype.name]
    except KeyError:
        raise BackendError(f"I/O tensors of type {dtype.name} are not supported") from None


# -- timing cache ---------------------------------------------------------------------------


class TimingCacheFile:
    """A timing cache shared by every build of one GPU namespace, merged under a file lock.

    Loaded before a build (so tactics timed before are reused), merged with whatever another
    worker saved meanwhile after it, and written atomically (temporary file + ``os.replace``).
    The lock is not held during the build itself.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: Any = None

    def _lock(self) -> Any:
        from filelock import FileLock

        return FileLock(str(self.path) + ".lock")

    def attach(self, config: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock():
            blob = self.path.read_bytes() if self.path.exists() else b""
        cache = config.create_timing_cache(blob)
        if cache is None or not config.set_timing_cache(cache, False):  # unreadable or another device's
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, False)
        self._cache = cache

    def merge_and_save(self, config: Any) -> None:
        with self._lock():
            if self.path.exists():
                on_disk = config.create_timing_cache(self.path.read_bytes())
                if on_disk is not None:
                    self._cache.combine(on_disk, True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".timing-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(self._cache.serialize())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


# -- logs, parser errors, layer information -------------------------------------------------


def _onnx_op_types(path: Path) -> dict[str, str]:
    """Node name -> op type of the parsed model (external weights are not read)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {node.name: node.op_type for node in model.graph.node if node.name}


class _RecordingLogger:
    """A TensorRT logger keeping errors and the builder's engine layer listing; prints nothing else."""

    errors: list[str]
    layer_listings: list[str]

    def __new__(cls, trt: Any) -> Any:
        class Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: list[str] = []
                self.layer_listings: list[str] = []

            def log(self, severity: Any, msg: str) -> None:
                if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR):
                    self.errors.append(msg)
                elif msg.startswith(("Layers:", "Engine Layer Information:")):
                    self.layer_listings.append(msg)

        return Logger()


def _parser_failure(parser: Any, parsed: Path, source: Path, flavor: TensorRTFlavor) -> str:
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node_name = err.node_name() if hasattr(err, "node_name") else ""
        op = err.node_operator() if hasattr(err, "node_operator") else ""
        where = f"node {node_name or '#' + str(err.node())!r} (op {op or '?'})" if err.node() >= 0 else "the model"
        lines.append(f"  {where}: {err.desc()}")
    file = str(source) if parsed == source else f"{source} (as converted: {parsed})"
    return f"{flavor.label} could not parse {file}:\n" + "\n".join(lines or ["  (no parser error recorded)"])
