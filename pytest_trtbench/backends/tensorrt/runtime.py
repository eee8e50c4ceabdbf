"""Engine execution: deserialize, one context per profile, bind, enqueue, CUDA graphs.

Device buffers, the stream and CUDA graphs go through torch (``torch.cuda`` tensors): the PyTorch
reference path already needs torch, so this adds no dependency (no cuda-python, no pycuda).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pytest_trtbench.backends.base import BackendError
from pytest_trtbench.backends.tensorrt.dtypes import torch_dtype
from pytest_trtbench.backends.tensorrt.flavor import TensorRTFlavor
from pytest_trtbench.backends.tensorrt.logger import RecordingLogger

if TYPE_CHECKING:
    import numpy as np


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


def deserialize(flavor: TensorRTFlavor, path: Path, blob: bytes, runtime: Any, logger: Any, profiles: tuple) -> TensorRTEngine:
    engine = runtime.deserialize_cuda_engine(blob)
    if engine is None:
        errors = "\n".join(logger.errors[-5:]) or "(no error was logged)"
        raise BackendError(f"{flavor.label} could not deserialize {path}; it will be rebuilt:\n{errors}")
    return TensorRTEngine(flavor, runtime, engine, profiles)


class TensorRTEngine:
    """A deserialized engine with one execution context per optimization profile."""

    def __init__(self, flavor: TensorRTFlavor, runtime: Any, engine: Any, profiles: tuple):
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
        for index in range(max(1, engine.num_optimization_profiles)):
            context = engine.create_execution_context()
            if index:
                context.set_optimization_profile_async(index, self.stream.cuda_stream)
            self._contexts.append(context)
        self.stream.synchronize()
        self._bound: dict[int, int] = {}  # context index -> id of the Launch whose buffers are bound

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
            want = torch_dtype(self._engine.get_tensor_dtype(name))
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
            dtype = torch_dtype(engine._engine.get_tensor_dtype(name))
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
