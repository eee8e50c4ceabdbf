"""Engine execution: deserialize, one context per profile, bind, enqueue, CUDA graphs.

Device buffers, copies, the stream and CUDA graphs go through the CUDA layer (:mod:`pytest_trtbench.cuda`:
torch, cuda-python or pycuda, ``--trt-cuda``), so a runner without PyTorch runs engines too.

Rules followed here (each checked by the fake runtime in ``tests/fake_trt.py``), from NVIDIA's
``NvInferRuntime.h`` unless said otherwise:

- ``set_optimization_profile_async`` before ``set_input_shape``; every call's ``bool`` result checked.
- Every input and output bound to a non-null address before ``execute_async_v3``; host-location
  tensors (shape tensors) to host memory. Zero-size tensors get a small placeholder buffer.
- A context created with the default allocation strategy (kSTATIC) "pre-allocate[s] a block of device
  memory that is sufficient for all profiles": memory is counted per context at that size.
- Full TensorRT graphs follow trtexec (``samples/common/sampleInference.cpp``): a warm-up enqueue after
  the last shape change, then capture in thread-local mode (``sampleDevice.h``; every CUDA layer's
  ``capture`` uses that mode).
- TensorRT-RTX: contexts get an explicit EAGER kernel specialization strategy (LAZY, the default,
  runs fallback kernels until a background compile finishes), and CUDA graphs use RTX's built-in
  whole-graph capture (``IRuntimeConfig.cuda_graph_strategy``), which NVIDIA's "Working with RTX CUDA
  Graphs" recommends for dynamic shapes. Manual stream capture would need engines built with
  ``REQUIRE_USER_ALLOCATION`` (TensorRT-RTX 1.2 release notes) and is never attempted on RTX.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pytest_trtbench.backends.base import BackendError
from pytest_trtbench.backends.tensorrt.dtypes import bf16_to_float32, is_bf16, numpy_dtype
from pytest_trtbench.backends.tensorrt.flavor import TensorRTFlavor
from pytest_trtbench.backends.tensorrt.logger import RecordingLogger
from pytest_trtbench.cuda.layer import CudaLayer, CudaLayerError, DeviceBuffer

PLACEHOLDER_BYTES = 256
"""Bound for zero-size tensors: TensorRT wants non-null addresses with 256-byte alignment."""

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.layer_profile import LayerProfile


def checked_engine(flavor: TensorRTFlavor, path: Path) -> tuple[bytes, Any, Any]:
    """The engine file's bytes, a runtime and its logger; :class:`BackendError` when the header is bad."""
    trt = flavor.module
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise BackendError(f"cannot read engine {path}: {exc}") from exc
    if not blob:
        raise BackendError(f"engine {path} is empty; it will be rebuilt")
    logger = RecordingLogger(trt)
    runtime = trt.Runtime(logger)
    if hasattr(runtime, "get_engine_validity"):
        header = blob[: runtime.engine_header_size]
        _, diagnostics = runtime.get_engine_validity(header) if len(header) == runtime.engine_header_size else (0, 32)
        problems = [k for k, v in trt.EngineInvalidityDiagnostics.__members__.items() if int(diagnostics) & int(v)]
        if problems:
            raise BackendError(f"engine {path} is not usable ({', '.join(problems).lower()}); it will be rebuilt")
    return blob, runtime, logger


def deserialize(flavor: TensorRTFlavor, path: Path, blob: bytes, runtime: Any, logger: Any, profiles: tuple,
                cuda: CudaLayer) -> TensorRTEngine:
    engine = runtime.deserialize_cuda_engine(blob)
    if engine is None:
        errors = "\n".join(logger.errors[-5:]) or "(no error was logged)"
        raise BackendError(f"{flavor.label} could not deserialize {path}; it will be rebuilt:\n{errors}")
    return TensorRTEngine(flavor, runtime, engine, profiles, cuda)


class Tensor:
    """One bound I/O tensor: its shape and numpy dtype, in a CUDA-layer device buffer or (host-location
    tensors) a host array. A zero-size tensor still has a non-null, aligned address."""

    def __init__(self, shape: tuple[int, ...], dtype: Any, device: DeviceBuffer | None = None,
                 host: np.ndarray | None = None) -> None:
        self.shape, self.dtype, self.device, self.host = tuple(shape), dtype, device, host

    @property
    def address(self) -> int:
        if self.device is not None:
            return self.device.ptr
        assert self.host is not None
        return int(self.host.ctypes.data)


class TensorRTEngine:
    """A deserialized engine with one execution context per optimization profile."""

    def __init__(self, flavor: TensorRTFlavor, runtime: Any, engine: Any, profiles: tuple, cuda: CudaLayer):
        trt = flavor.module
        self._flavor = flavor
        self._trt = trt
        self._runtime = runtime
        self._engine: Any = engine
        self._profiles = profiles
        self.cuda = cuda
        self.stream = cuda.stream()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.host_tensors = {n for n in names if engine.get_tensor_location(n) == trt.TensorLocation.HOST}
        count = max(1, engine.num_optimization_profiles)
        self._contexts = [self._new_context(index, builtin_graphs=False) for index in range(count)]
        self._graph_contexts: dict[int, Any] = {}
        self.stream.synchronize()
        # id(context) -> the Launch whose buffers it has. The Launch itself, not its id: a collected launch's id can be
        # reused by a new one (the rebind would be skipped), and holding it keeps the bound buffers alive.
        self.bound: dict[int, TensorRTLaunch] = {}
        self.layer_types: dict[str, str] = {}  # layer name -> type, from the build (layer profiles' op types)
        self._per_context = int(engine.device_memory_size_v2)  # max over all profiles (kSTATIC)
        self.device_memory: dict[str, Any] = {  # what the contexts hold (read by benchmarks/trt_first_run.py)
            "context_device_memory_bytes": [self._per_context] * count,
            "profile_device_memory_bytes": [int(engine.get_device_memory_size_for_profile_v2(i)) for i in range(count)],
            "device_memory_bytes": self._per_context * count,
        }

    def _new_context(self, index: int, *, builtin_graphs: bool) -> Any:
        trt, engine = self._trt, self._engine
        if self._flavor.runtime_kernel_specialization:
            config = engine.create_runtime_config()
            # EAGER compiles the shape-specialized kernels at the first enqueue of a shape (blocking), so
            # warm-up and timing run them, not fallback kernels (NVIDIA/TensorRT-RTX api_usage.py)
            config.dynamic_shapes_kernel_specialization_strategy = trt.DynamicShapesKernelSpecializationStrategy.EAGER
            if builtin_graphs:
                config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
            context = engine.create_execution_context(config)
        else:
            context = engine.create_execution_context()
        if context is None:
            raise BackendError(f"{self._flavor.label} could not create an execution context (out of device memory?)")
        if index and not context.set_optimization_profile_async(index, self.stream.handle):
            raise BackendError(f"{self._flavor.label} rejected optimization profile {index} for a new context")
        return context

    def context(self, index: int, *, builtin_graphs: bool = False) -> Any:
        """The context of profile *index*; with *builtin_graphs*, a second one that RTX graph-captures."""
        if self._engine is None:
            raise BackendError("this engine was released (closed); load it again")
        if not builtin_graphs:
            return self._contexts[index]
        if index not in self._graph_contexts:
            self._graph_contexts[index] = self._new_context(index, builtin_graphs=True)
            self.stream.synchronize()
            self.device_memory["device_memory_bytes"] += self._per_context
            self.device_memory["context_device_memory_bytes"].append(self._per_context)
        return self._graph_contexts[index]

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

        self.context(0)  # raises if released
        missing = sorted(set(self.input_names) - set(feeds))
        if missing:
            raise BackendError(f"missing inputs {missing}; the engine takes {self.input_names}")
        # np.require keeps 0-d arrays 0-d (np.ascontiguousarray makes them shape (1,))
        arrays = {name: np.require(feeds[name], requirements=["C", "W"]) for name in self.input_names}
        index = self._profile_index({n: a.shape for n, a in arrays.items() if n not in self.host_tensors})
        inputs = {}
        for name, array in arrays.items():
            trt_dtype = self._engine.get_tensor_dtype(name)
            want = numpy_dtype(trt_dtype)
            if array.dtype != want or is_bf16(trt_dtype):
                raise BackendError(f"input {name!r} is {array.dtype}, the engine wants {trt_dtype.name.lower()}")
            if name in self.host_tensors:
                inputs[name] = Tensor(array.shape, want, host=array)
            else:
                inputs[name] = Tensor(array.shape, want, device=self.cuda.upload(array, self.stream))
        return TensorRTLaunch(self, index, inputs)

    def output_buffer(self, name: str, shape: tuple[int, ...]) -> Tensor:
        import numpy as np

        dtype = numpy_dtype(self._engine.get_tensor_dtype(name))
        if name in self.host_tensors:
            return Tensor(shape, dtype, host=np.empty(shape, dtype))
        return Tensor(shape, dtype, device=self.cuda.alloc(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize))

    def layer_profile(self, feeds: Mapping[str, np.ndarray], runs: int) -> LayerProfile:
        """Per-layer times through ``IProfiler`` on a context of its own (``profiler.py``); never a timed context."""
        from pytest_trtbench.backends.tensorrt.profiler import tensorrt_layer_profile

        launch = self.prepare(feeds)
        context = self._new_context(launch._index, builtin_graphs=False)
        try:
            return tensorrt_layer_profile(self._trt, f"{self._flavor.label} IProfiler", launch, context, runs,
                                          self.layer_types)
        finally:
            self.bound.pop(id(context), None)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        launch = self.prepare(feeds)
        launch()
        launch.synchronize()
        return launch.host_outputs()

    def close(self) -> None:
        """Release the contexts and the engine (device memory); later use raises :class:`BackendError`."""
        if self._engine is None:
            return
        self.stream.synchronize()
        self._contexts.clear()
        self._graph_contexts.clear()
        self.bound.clear()
        self._engine = None
        self._runtime = None


class TensorRTLaunch:
    """Inputs staged and outputs allocated; calling it only enqueues the engine."""

    def __init__(self, engine: TensorRTEngine, index: int, inputs: dict[str, Tensor]) -> None:
        self._engine = engine
        self._index = index
        self._context = engine.context(index)
        self.cuda_stream = engine.stream
        self.inputs = inputs
        self._set_shapes(self._context)
        self.outputs: dict[str, Tensor] = {}
        for name in engine.output_names:
            shape = tuple(self._context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise BackendError(f"output {name!r} has a data-dependent shape {shape}; not supported")
            self.outputs[name] = engine.output_buffer(name, shape)
        self._placeholders: dict[str, Any] = {}  # keeps the buffers bound for zero-size tensors alive
        self._bind(self._context)

    def _set_shapes(self, context: Any) -> None:
        for name, tensor in self.inputs.items():
            if not context.set_input_shape(name, tuple(tensor.shape)):
                raise BackendError(f"input {name!r} shape {tuple(tensor.shape)} rejected by profile {self._index}")

    def _address(self, name: str, tensor: Tensor) -> int:
        if tensor.device is not None or (tensor.host is not None and tensor.host.size):
            return tensor.address  # the CUDA layer allocates at least MIN_ALLOCATION bytes, even for zero-size
        if name not in self._placeholders:
            import numpy as np

            self._placeholders[name] = np.zeros(PLACEHOLDER_BYTES, np.uint8)
        return int(self._placeholders[name].ctypes.data)

    def _bind(self, context: Any) -> None:
        self._set_shapes(context)
        for name, tensor in [*self.inputs.items(), *self.outputs.items()]:
            if not context.set_tensor_address(name, self._address(name, tensor)):
                raise BackendError(f"set_tensor_address failed for {name!r} (profile {self._index})")
        self._engine.bound[id(context)] = self

    def enqueue(self, context: Any) -> None:
        """Bind this launch's buffers to *context* if another launch used it last, then enqueue."""
        if self._engine.bound.get(id(context)) is not self:
            self._bind(context)
        if not context.execute_async_v3(self.cuda_stream.handle):
            raise BackendError("execute_async_v3 failed; see the TensorRT log above")

    def __call__(self) -> None:
        self.enqueue(self._context)

    def synchronize(self) -> None:
        self.cuda_stream.synchronize()

    def host_outputs(self) -> dict[str, np.ndarray]:
        self.synchronize()
        engine = self._engine
        out = {}
        for name, t in self.outputs.items():
            values = t.host.copy() if t.host is not None else None
            if values is None:
                assert t.device is not None
                values = engine.cuda.download(t.device, t.shape, t.dtype, self.cuda_stream)
            out[name] = bf16_to_float32(values) if is_bf16(engine._engine.get_tensor_dtype(name)) else values
        return out

    def capture_graph(self) -> Any:
        """A CUDA-graph replay of this launch: RTX's built-in capture or trtexec's stream capture.
        Raises :class:`BackendError` saying why it could not."""
        flavor = self._engine._flavor
        if flavor.builtin_cuda_graphs:
            return self._builtin_graph()
        if flavor.runtime_kernel_specialization:  # TensorRT-RTX without built-in graphs (< 1.2)
            raise BackendError(f"{flavor.label} has no built-in CUDA graphs (tensorrt-rtx >= 1.2 has)")
        return self._stream_capture()

    def _builtin_graph(self) -> BuiltinGraphLaunch:
        context = self._engine.context(self._index, builtin_graphs=True)
        for _ in range(2):  # compile (EAGER) and let RTX capture this shape before timing starts
            self.enqueue(context)
        self.synchronize()
        return BuiltinGraphLaunch(self, context)

    def _stream_capture(self) -> CudaGraphLaunch:
        handle = self.cuda_stream.handle
        stream_capturable = getattr(self._context, "is_stream_capturable", None)
        if stream_capturable is not None and not stream_capturable(handle):
            raise BackendError("TensorRT says this engine's enqueue is not stream-capturable")
        self()  # warm-up after the last shape change: initialization must not be captured (trtexec)
        self.synchronize()
        captured: list[bool] = []
        try:
            graph = self._engine.cuda.capture(self.cuda_stream,
                                              lambda: captured.append(self._context.execute_async_v3(handle)))
        except CudaLayerError as exc:
            raise BackendError(f"CUDA graph capture of the TensorRT enqueue failed: {exc}") from None
        if not all(captured) or not captured:  # trtexec: the engine has operations not permitted under capture
            raise BackendError("execute_async_v3 failed during CUDA graph capture")
        return CudaGraphLaunch(graph, self)


class BuiltinGraphLaunch:
    """TensorRT-RTX: each call enqueues on a context whose runtime config captures and replays a CUDA
    graph per shape inside ``execute_async_v3`` (``CudaGraphStrategy.WHOLE_GRAPH_CAPTURE``)."""

    def __init__(self, launch: TensorRTLaunch, context: Any) -> None:
        self._launch = launch
        self._context = context
        self.cuda_stream = launch.cuda_stream

    def __call__(self) -> None:
        self._launch.enqueue(self._context)

    def synchronize(self) -> None:
        self.cuda_stream.synchronize()


class CudaGraphLaunch:
    """Replays a captured enqueue on the stream it was captured for; the launch's buffers stay bound."""

    def __init__(self, graph: Any, launch: TensorRTLaunch) -> None:
        self._graph = graph
        self._launch = launch  # keeps the captured buffers alive
        self.cuda_stream = launch.cuda_stream

    def __call__(self) -> None:
        self._graph()  # the CUDA layer's graph replays on the stream it was captured on

    def synchronize(self) -> None:
        self.cuda_stream.synchronize()
