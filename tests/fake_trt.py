"""FAKE TensorRT execution runtime and a FAKE CUDA layer -- for contract tests only. NOT TensorRT.

Nothing here executes a model or produces a number that ends up in a report. It stands in for the
parts of TensorRT (engine, execution context, runtime config) and of the CUDA layer (stream, device
buffers, CUDA graph capture; ``pytest_trtbench.cuda``'s interface) that cannot run on a machine without a GPU, and it **enforces the
documented rules** our runtime code must follow, so that ``pytest_trtbench.backends.tensorrt.runtime``
(the real code, unmodified) can be driven end to end on CPU:

- shapes only after the profile is set; shapes inside the active profile (``setInputShape`` returns
  false otherwise; ``setOptimizationProfileAsync`` must come first -- NvInferRuntime.h);
- every I/O tensor bound to a non-null address before ``enqueueV3`` ("each input must have a non-null
  address and each output must have a non-null address" -- NvInferRuntime.h ``setTensorAddress``);
  host-location tensors bound to host memory, device tensors to device memory (same doc comment);
- return values: ``set_tensor_address``, ``set_input_shape``, ``set_optimization_profile_async`` and
  ``execute_async_v3`` report failure by returning ``False``; the fake can be told to fail any of them;
- no stream capture before a warm-up enqueue after a shape/profile change (trtexec,
  ``samples/common/sampleInference.cpp``: "Avoid capturing initialization calls by executing the
  enqueue function at least once before starting CUDA graph capture");
- capture in thread-local mode (trtexec's ``cudaStreamCaptureModeThreadLocal``,
  ``samples/common/sampleDevice.h``);
- replay on the stream the graph was captured for (our contract: timings are taken on that stream);
- TensorRT-RTX: manual stream capture needs an engine built with ``REQUIRE_USER_ALLOCATION``
  (TensorRT-RTX 1.2 release notes); the built-in capture is enabled per context through
  ``IRuntimeConfig.cuda_graph_strategy`` (NVIDIA/TensorRT-RTX ``samples/apiUsage/python/api_usage.py``);
  with the default LAZY kernel specialization fallback kernels run until compilation completes
  (``DynamicShapesKernelSpecializationStrategy`` docs), so the fake records which strategy ran.

Engine metadata (tensor names, modes, dtypes, shapes, profiles) is taken from real TensorRT-RTX
parses/builds on CPU (:func:`spec_from_rtx_build`); the device-memory sizes are invented (labelled).
"""
from __future__ import annotations

import enum
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import onnx
import pytest
from fake_cuda import HostMemoryCudaLayer

from pytest_trtbench.cuda.layer import DeviceBuffer, Graph, Stream

trt = pytest.importorskip("tensorrt_rtx", reason="the fake uses TensorRT-RTX's enums and real CPU builds")


@dataclass(frozen=True)
class IOTensor:
    name: str
    mode: str  # "INPUT" / "OUTPUT"
    dtype: str  # trt.DataType member name
    shape: tuple[int, ...]  # -1 for dynamic dims
    dim_names: tuple[str | int | None, ...]  # ONNX dim_param (or fixed dim_value) per axis, for output shapes
    location: str = "DEVICE"  # "HOST" for shape tensors


@dataclass
class EngineSpec:
    """What a real build says about an engine (plus invented, labelled memory sizes)."""

    tensors: list[IOTensor]
    profiles: list[dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]]
    profile_memory: list[int] = field(default_factory=list)  # INVENTED sizes, bytes per profile
    user_allocation: bool = False  # built with BuilderFlag.REQUIRE_USER_ALLOCATION


def spec_from_rtx_build(onnx_path: Path, profiles: list[dict], *, build: bool = True) -> EngineSpec:
    """Parse *onnx_path* with the real TensorRT-RTX parser (and build it on CPU with *profiles*)."""
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(onnx_path)), [parser.get_error(i).desc() for i in range(parser.num_errors)]
    model = onnx.load(str(onnx_path), load_external_data=False)
    dims = {
        v.name: tuple(d.dim_param or (d.dim_value if d.HasField("dim_value") else None)
                      for d in v.type.tensor_type.shape.dim)
        for v in [*model.graph.input, *model.graph.output]
    }
    tensors = []
    for mode, count, get in (("INPUT", network.num_inputs, network.get_input),
                             ("OUTPUT", network.num_outputs, network.get_output)):
        for i in range(count):
            t = get(i)
            location = "HOST" if mode == "INPUT" and t.is_shape_tensor else "DEVICE"
            tensors.append(IOTensor(t.name, mode, t.dtype.name, tuple(t.shape), dims.get(t.name, ()), location))
    if build:
        config = builder.create_builder_config()
        for ranges in profiles:
            profile = builder.create_optimization_profile()
            for name, (lo, opt, hi) in ranges.items():
                profile.set_shape(name, lo, opt, hi)
            config.add_optimization_profile(profile)
        assert builder.build_serialized_network(network, config) is not None, "the real build failed"
    memory = [1 << (20 + i) for i in range(max(1, len(profiles)))]  # INVENTED: 1 MiB, 2 MiB, ...
    return EngineSpec(tensors, profiles, memory)


# -- fake CUDA layer ---------------------------------------------------------------------------


class FakeGraph:
    def __init__(self, rt: FakeRuntime, stream: int) -> None:
        self.rt = rt
        self.stream = stream
        self.enqueues: list[FakeContext] = []
        self.replays = 0

    def replay(self, stream: int) -> None:
        if not self.enqueues:
            self.rt.violation("replay of a graph that captured nothing")
        elif stream != self.stream:
            self.rt.violation(f"graph captured on stream {self.stream:#x} replayed on {stream:#x}")
        self.replays += 1
        for context in self.enqueues:
            context.graph_replays += 1


class FakeCudaLayer(HostMemoryCudaLayer):
    """A FAKE CUDA layer (pytest_trtbench.cuda's interface): "device" buffers are host arrays whose
    addresses the fake runtime remembers as device memory; captures record the fake contexts' enqueues."""

    _next_stream = 0x1000

    def __init__(self, rt: FakeRuntime) -> None:
        self.rt = rt

    def alloc(self, nbytes: int) -> DeviceBuffer:
        buffer = super().alloc(nbytes)
        self.rt.device_ptrs.add(buffer.ptr)
        return buffer

    def stream(self) -> Stream:
        FakeCudaLayer._next_stream += 0x10
        return Stream(self, FakeCudaLayer._next_stream, None)

    def capture(self, stream: Stream, work: Callable[[], Any]) -> Graph:
        rt = self.rt
        rt.manual_captures += 1
        graph = FakeGraph(rt, stream.handle)
        rt.capturing = (stream.handle, graph, "thread_local")  # the mode every real layer captures in
        try:
            work()
        finally:
            rt.capturing = None
        return Graph(lambda: graph.replay(stream.handle), keep=graph)


class FakeRuntime:
    """Shared state of one fake process: device memory, capture, violations."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.device_ptrs: set[int] = set()
        self.capturing: tuple[int, FakeGraph, str] | None = None
        self.manual_captures = 0
        self.fail: dict[str, str] = {}  # method name -> tensor name (or "*") whose call returns False
        self.cuda = FakeCudaLayer(self)

    def violation(self, message: str) -> None:
        self.violations.append(message)


# -- fake TensorRT engine / context ------------------------------------------------------------


class FakeRuntimeConfig:
    """``IRuntimeConfig`` (TensorRT-RTX): defaults as documented -- LAZY, no CUDA graphs."""

    def __init__(self) -> None:
        self.dynamic_shapes_kernel_specialization_strategy = trt.DynamicShapesKernelSpecializationStrategy.LAZY
        self.cuda_graph_strategy = trt.CudaGraphStrategy.DISABLED
        self.allocation = trt.ExecutionContextAllocationStrategy.STATIC

    def set_execution_context_allocation_strategy(self, strategy: Any) -> None:
        self.allocation = strategy


class FakeEngine:
    """``ICudaEngine`` with real metadata. *kind*: ``rtx`` (TensorRT-RTX), ``trt10`` (TensorRT >= 10.1)
    or ``trt10.0`` (TensorRT 10.0: no ``*_v2`` memory queries)."""

    def __init__(self, rt: FakeRuntime, spec: EngineSpec, kind: str = "rtx") -> None:
        self.rt, self.spec, self.kind = rt, spec, kind
        self._tensors = {t.name: t for t in spec.tensors}
        self.contexts: list[FakeContext] = []
        if kind == "trt10.0":
            self.get_device_memory_size_for_profile_v2 = None  # type: ignore[assignment]

    @property
    def num_io_tensors(self) -> int:
        return len(self.spec.tensors)

    @property
    def num_optimization_profiles(self) -> int:
        return len(self.spec.profiles)

    def get_tensor_name(self, index: int) -> str:
        return self.spec.tensors[index].name

    def get_tensor_mode(self, name: str) -> Any:
        return trt.TensorIOMode.__members__[self._tensors[name].mode]

    def get_tensor_dtype(self, name: str) -> Any:
        return trt.DataType.__members__[self._tensors[name].dtype]

    def get_tensor_location(self, name: str) -> Any:
        return trt.TensorLocation.__members__[self._tensors[name].location]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self._tensors[name].shape

    @property
    def device_memory_size_v2(self) -> int:
        if self.kind == "trt10.0":
            raise AttributeError("device_memory_size_v2 (TensorRT >= 10.1)")
        return max(self.spec.profile_memory)  # documented: the maximum over all profiles

    @property
    def device_memory_size(self) -> int:
        return max(self.spec.profile_memory)

    def get_device_memory_size_for_profile_v2(self, index: int) -> int:  # absent on 10.0 (see __init__)
        return self.spec.profile_memory[index]

    def create_runtime_config(self) -> FakeRuntimeConfig:
        if self.kind != "rtx":
            raise AttributeError("create_runtime_config: the fake models it for TensorRT-RTX only")
        return FakeRuntimeConfig()

    def create_execution_context(self, arg: Any = None) -> FakeContext:
        config = arg if isinstance(arg, FakeRuntimeConfig) else None
        if self.kind == "rtx" and config is None:
            config = FakeRuntimeConfig()  # what create_execution_context() without a config uses
        context = FakeContext(self, config)
        self.contexts.append(context)
        return context


class FakeContext:
    """``IExecutionContext``. Returns ``False`` where TensorRT does; records rule violations."""

    def __init__(self, engine: FakeEngine, config: FakeRuntimeConfig | None) -> None:
        self.engine, self.rt, self.config = engine, engine.rt, config
        self.profile = 0  # "The newly created execution context will be assigned optimization profile 0."
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.needs_warmup = True  # resource updates happen on the first enqueue after a change
        self.enqueues = 0
        self.captured_enqueues = 0
        self.graph_replays = 0
        self.builtin_graph_launches = 0
        self.strategies_run: set[str] = set()

    def _failing(self, method: str, name: str = "*") -> bool:
        return self.rt.fail.get(method) in (name, "*")

    def set_optimization_profile_async(self, index: int, stream: int) -> bool:
        if self._failing("set_optimization_profile_async") or not 0 <= index < self.engine.num_optimization_profiles:
            return False
        self.profile, self.shapes, self.needs_warmup = index, {}, True
        return True

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        tensor = self.engine._tensors.get(name)
        if tensor is None or tensor.mode != "INPUT" or self._failing("set_input_shape", name):
            return False
        shape = tuple(shape)
        if len(shape) != len(tensor.shape):
            return False
        ranges = self.engine.spec.profiles[self.profile].get(name) if self.engine.spec.profiles else None
        if ranges is not None:
            lo, _, hi = ranges
            if not all(a <= d <= b for a, d, b in zip(lo, shape, hi)):
                return False
        elif any(want not in (-1, got) for want, got in zip(tensor.shape, shape)):
            return False
        if self.shapes.get(name) != shape:
            self.needs_warmup = True
        self.shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        tensor = self.engine._tensors[name]
        if tensor.mode == "INPUT":
            return self.shapes.get(name, tensor.shape)
        known: dict[str | int | None, int] = {}
        for t in self.engine.spec.tensors:
            if t.mode == "INPUT" and t.name in self.shapes:
                known.update({d: v for d, v in zip(t.dim_names, self.shapes[t.name]) if isinstance(d, str)})
        return tuple(
            d if d >= 0 else dim if isinstance(dim, int) else known.get(dim, -1)
            for d, dim in zip(tensor.shape, tensor.dim_names)
        )

    def set_tensor_address(self, name: str, address: int) -> bool:
        if name not in self.engine._tensors or self._failing("set_tensor_address", name):
            return False
        self.addresses[name] = int(address)
        return True

    def is_stream_capturable(self, stream: int) -> bool:
        # TensorRT-RTX 1.2 release notes: stream capture needs REQUIRE_USER_ALLOCATION
        return self.engine.kind != "rtx" or self.engine.spec.user_allocation

    def _enqueue_problems(self) -> list[str]:
        problems = []
        for t in self.engine.spec.tensors:
            address = self.addresses.get(t.name, 0)
            if t.mode == "INPUT" and t.name not in self.shapes and -1 in t.shape:
                problems.append(f"input {t.name!r} has no shape")
            if address == 0:
                problems.append(f"{t.mode.lower()} {t.name!r} has a null address")
            elif (address in self.rt.device_ptrs) != (t.location == "DEVICE"):
                problems.append(f"{t.location.lower()} tensor {t.name!r} bound to "
                                f"{'device' if address in self.rt.device_ptrs else 'host'} memory")
        return problems

    def execute_async_v3(self, stream: int) -> bool:
        if self._failing("execute_async_v3"):
            return False
        problems = self._enqueue_problems()
        if problems:
            self.rt.violation("enqueue refused: " + "; ".join(problems))
            return False
        capture = self.rt.capturing
        if capture is not None and capture[0] == stream:
            return self._captured_enqueue(capture[1])
        if capture is not None and capture[2] == "global":
            self.rt.violation("enqueue on another stream during a global-mode capture invalidates it")
        self.needs_warmup = False
        self.enqueues += 1
        if self.config is not None:
            self.strategies_run.add(self.config.dynamic_shapes_kernel_specialization_strategy.name)
            if self.config.cuda_graph_strategy == trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE:
                self.builtin_graph_launches += 1
        return True

    def _captured_enqueue(self, graph: FakeGraph) -> bool:
        if self.engine.kind == "rtx" and not self.engine.spec.user_allocation:
            self.rt.violation("stream capture of a TensorRT-RTX engine built without REQUIRE_USER_ALLOCATION")
            return False
        if self.needs_warmup:
            self.rt.violation("capture before a warm-up enqueue after a shape/profile change")
            return False
        if self.config is not None and self.config.dynamic_shapes_kernel_specialization_strategy.name == "LAZY":
            self.rt.violation("capture with LAZY kernel specialization freezes fallback kernels")
        self.captured_enqueues += 1
        graph.enqueues.append(self)
        return True


def fake_module(name: str = "tensorrt", version: str = "10.8.0", *, hardware_levels: tuple[str, ...] = (
        "NONE", "AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY")) -> types.ModuleType:
    """A FAKE full-TensorRT module object: enough surface for ``TensorRTFlavor.of`` and the runtime,
    with TensorRT-RTX's enums for tensor modes, locations and data types."""
    module = types.ModuleType(name)
    module.__version__ = version  # type: ignore[attr-defined]
    module.BuilderFlag = enum.Enum("BuilderFlag", ["FP16", "BF16", "INT8", "FP8", "TF32"])  # type: ignore[attr-defined]
    module.ProfilingVerbosity = trt.ProfilingVerbosity  # type: ignore[attr-defined]
    module.DataType = trt.DataType  # type: ignore[attr-defined]
    module.TensorIOMode = trt.TensorIOMode  # type: ignore[attr-defined]
    module.TensorLocation = trt.TensorLocation  # type: ignore[attr-defined]
    module.LayerInformationFormat = trt.LayerInformationFormat  # type: ignore[attr-defined]
    module.HardwareCompatibilityLevel = enum.Enum(  # type: ignore[attr-defined]
        "HardwareCompatibilityLevel", list(hardware_levels))
    module.IBuilderConfig = type("IBuilderConfig", (), {})  # type: ignore[attr-defined]
    engine_attrs = {"create_execution_context": None, "device_memory_size": None}
    if version >= "10.1":
        engine_attrs.update(device_memory_size_v2=None, get_device_memory_size_for_profile_v2=None)
    module.ICudaEngine = type("ICudaEngine", (), engine_attrs)  # type: ignore[attr-defined]
    return module
