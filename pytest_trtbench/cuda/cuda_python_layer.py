"""The CUDA layer on cuda-python (``cuda-bindings``: ``cuda.bindings.runtime``, NVIDIA's maintained bindings).

Every runtime call returns ``(cudaError_t, *values)``; :func:`_check` turns an error into a one-line
:class:`CudaLayerError` naming the call. The runtime uses the device's primary context, the one ONNX
Runtime and TensorRT use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from pytest_trtbench.cuda.layer import (
    MIN_ALLOCATION,
    CudaLayer,
    CudaLayerError,
    DeviceBuffer,
    Event,
    Graph,
    Stream,
    host_pointer,
)

if TYPE_CHECKING:
    import numpy as np


def runtime() -> Any:
    from cuda.bindings import runtime as cudart  # type: ignore[import-not-found,import-untyped,unused-ignore]

    return cudart


def error_text(cudart: Any, err: Any) -> str:
    name = getattr(err, "name", str(err))
    got = cudart.cudaGetErrorString(err)
    text = got[1] if isinstance(got, tuple) and len(got) > 1 else got
    text = text.decode() if isinstance(text, bytes) else str(text)
    return f"{name} ({text})"


def _check(cudart: Any, call: str, result: Any) -> Any:
    """The values of a runtime call's result tuple; :class:`CudaLayerError` when its error is not success."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        raise CudaLayerError(f"cuda-python: {call} failed: {error_text(cudart, err)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def device_count() -> int:
    """CUDA devices visible to the runtime; :class:`CudaLayerError` (e.g. no driver) when it can't tell."""
    cudart = runtime()
    return int(_check(cudart, "cudaGetDeviceCount", cudart.cudaGetDeviceCount()))


def device_properties(index: int = 0) -> tuple[str, str]:
    """(device name, compute capability) of device *index*."""
    cudart = runtime()
    props = _check(cudart, "cudaGetDeviceProperties", cudart.cudaGetDeviceProperties(index))
    name = props.name
    name = name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)
    return name, f"{props.major}.{props.minor}"


class CudaPythonLayer(CudaLayer):
    name = "cuda-python"

    def __init__(self) -> None:
        self.rt = runtime()
        _check(self.rt, "cudaSetDevice", self.rt.cudaSetDevice(0))

    def _call(self, name: str, *args: Any) -> Any:
        return _check(self.rt, name, getattr(self.rt, name)(*args))

    def alloc(self, nbytes: int) -> DeviceBuffer:
        size = max(int(nbytes), MIN_ALLOCATION)
        ptr = self._call("cudaMalloc", size)
        return DeviceBuffer(self, int(ptr), int(nbytes), ptr)

    def release(self, native: Any) -> None:
        self._call("cudaFree", native)

    def copy_to_device(self, buffer: DeviceBuffer, host: np.ndarray, stream: Stream) -> None:
        if host.nbytes:
            kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
            self._call("cudaMemcpyAsync", buffer.ptr, host_pointer(host), host.nbytes, kind, stream.native)
        self.stream_synchronize(stream)

    def copy_to_host(self, host: np.ndarray, buffer: DeviceBuffer, stream: Stream) -> None:
        if host.nbytes:
            kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
            self._call("cudaMemcpyAsync", host_pointer(host), buffer.ptr, host.nbytes, kind, stream.native)
        self.stream_synchronize(stream)

    def copy_device(self, dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        self._call("cudaMemcpyAsync", dst.ptr, src.ptr, nbytes, kind, stream.native)

    def mem_info(self) -> tuple[int, int]:
        free, total = self._call("cudaMemGetInfo")
        return int(free), int(total)

    def stream(self) -> Stream:
        native = self._call("cudaStreamCreateWithFlags", self.rt.cudaStreamNonBlocking)
        return Stream(self, int(native), native)

    def stream_synchronize(self, stream: Stream) -> None:
        self._call("cudaStreamSynchronize", stream.native)

    def event(self) -> Event:
        return Event(self, self._call("cudaEventCreate"))

    def event_record(self, event: Event, stream: Stream) -> None:
        self._call("cudaEventRecord", event.native, stream.native)

    def event_synchronize(self, event: Event) -> None:
        self._call("cudaEventSynchronize", event.native)

    def event_elapsed_ms(self, start: Event, end: Event) -> float:
        return float(self._call("cudaEventElapsedTime", start.native, end.native))

    def capture(self, stream: Stream, work: Callable[[], Any]) -> Graph:
        rt = self.rt
        self._call("cudaStreamBeginCapture", stream.native, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal)
        try:
            work()
        finally:  # always end the capture, or the stream stays unusable
            err, graph = rt.cudaStreamEndCapture(stream.native)
        if err != rt.cudaError_t.cudaSuccess or graph is None or int(graph) == 0:
            raise CudaLayerError(f"cuda-python: stream capture failed: {error_text(rt, err)}")
        executable = self._call("cudaGraphInstantiate", graph, 0)
        native = stream.native

        def replay() -> None:
            self._call("cudaGraphLaunch", executable, native)

        return Graph(replay, keep=_GraphHandles(rt, graph, executable))


class _GraphHandles:
    """Destroys a graph and its executable when the :class:`Graph` holding them is collected."""

    def __init__(self, rt: Any, graph: Any, executable: Any) -> None:
        self.rt, self.graph, self.executable = rt, graph, executable

    def __del__(self) -> None:
        try:
            self.rt.cudaGraphExecDestroy(self.executable)
            self.rt.cudaGraphDestroy(self.graph)
        except Exception:  # interpreter shutdown
            pass
