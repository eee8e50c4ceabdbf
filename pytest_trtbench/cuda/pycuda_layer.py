"""The CUDA layer on pycuda (``pycuda.driver``), for runners that have it.

pycuda works on a context of its own making unless told otherwise; ONNX Runtime and TensorRT use the
device's *primary* context (the runtime API's), so this layer retains the primary context and makes it
current, as ``pycuda.autoprimaryctx`` does. pycuda (2026.1) has no stream-capture API, so graphs are
captured through the driver library pycuda itself loads (``libcuda``: ``cuStreamBeginCapture_v2``,
``cuStreamEndCapture``, ``cuGraphInstantiateWithFlags``, ``cuGraphLaunch``) with ctypes.
"""
from __future__ import annotations

import atexit
import ctypes
from typing import TYPE_CHECKING, Any, Callable

from pytest_trtbench.cuda.layer import MIN_ALLOCATION, CudaLayer, CudaLayerError, DeviceBuffer, Event, Graph, Stream

if TYPE_CHECKING:
    import numpy as np

CU_STREAM_NON_BLOCKING = 1
CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1


def driver() -> Any:
    import pycuda.driver as drv  # type: ignore[import-not-found,import-untyped,unused-ignore]

    return drv


def device_count() -> int:
    drv = driver()
    try:
        drv.init()
        return int(drv.Device.count())
    except drv.Error as exc:
        raise CudaLayerError(f"pycuda: {str(exc).splitlines()[0]}") from None


class PycudaLayer(CudaLayer):
    name = "pycuda"

    def __init__(self) -> None:
        drv = driver()
        self.drv = drv
        try:
            drv.init()
            self.context = drv.Device(0).retain_primary_context()
            self.context.push()
        except drv.Error as exc:
            raise CudaLayerError(f"pycuda: {str(exc).splitlines()[0]}") from None
        atexit.register(self._pop)  # pycuda aborts the process at exit if a pushed context is left
        self.libcuda = _libcuda()

    def _pop(self) -> None:
        try:
            self.context.pop()
        except self.drv.Error:
            pass

    def alloc(self, nbytes: int) -> DeviceBuffer:
        allocation = self.drv.mem_alloc(max(int(nbytes), MIN_ALLOCATION))
        return DeviceBuffer(self, int(allocation), int(nbytes), allocation)

    def release(self, native: Any) -> None:
        native.free()

    def copy_to_device(self, buffer: DeviceBuffer, host: np.ndarray, stream: Stream) -> None:
        if host.nbytes:
            self.drv.memcpy_htod_async(buffer.ptr, host, stream.native)
        stream.synchronize()

    def copy_to_host(self, host: np.ndarray, buffer: DeviceBuffer, stream: Stream) -> None:
        if host.nbytes:
            self.drv.memcpy_dtoh_async(host, buffer.ptr, stream.native)
        stream.synchronize()

    def copy_device(self, dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
        self.drv.memcpy_dtod_async(dst.ptr, src.ptr, nbytes, stream.native)

    def mem_info(self) -> tuple[int, int]:
        free, total = self.drv.mem_get_info()
        return int(free), int(total)

    def stream(self) -> Stream:
        native = self.drv.Stream(flags=CU_STREAM_NON_BLOCKING)
        return Stream(self, int(native.handle), native)

    def stream_synchronize(self, stream: Stream) -> None:
        stream.native.synchronize()

    def event(self) -> Event:
        return Event(self, self.drv.Event())

    def event_record(self, event: Event, stream: Stream) -> None:
        event.native.record(stream.native)

    def event_synchronize(self, event: Event) -> None:
        event.native.synchronize()

    def event_elapsed_ms(self, start: Event, end: Event) -> float:
        return float(end.native.time_since(start.native))

    def capture(self, stream: Stream, work: Callable[[], Any]) -> Graph:
        cu = self.libcuda
        handle = ctypes.c_void_p(stream.handle)
        _cu_check(cu, "cuStreamBeginCapture_v2", cu.cuStreamBeginCapture_v2(handle, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL))
        graph = ctypes.c_void_p()
        try:
            work()
        except self.drv.Error as exc:
            raise CudaLayerError(f"pycuda: a call failed during stream capture: {str(exc).splitlines()[0]}") from None
        finally:  # always end the capture, or the stream stays unusable
            ended = cu.cuStreamEndCapture(handle, ctypes.byref(graph))
        _cu_check(cu, "cuStreamEndCapture", ended)
        if not graph.value:
            raise CudaLayerError("pycuda: stream capture failed: the driver returned no graph (capture invalidated)")
        executable = ctypes.c_void_p()
        _cu_check(cu, "cuGraphInstantiateWithFlags", cu.cuGraphInstantiateWithFlags(ctypes.byref(executable), graph,
                                                                                    ctypes.c_ulonglong(0)))

        def replay() -> None:
            _cu_check(cu, "cuGraphLaunch", cu.cuGraphLaunch(executable, handle))

        return Graph(replay, keep=_DriverGraph(cu, graph, executable))


def _libcuda() -> Any:
    try:
        return ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        raise CudaLayerError(f"pycuda: cannot load the CUDA driver library libcuda.so.1 for graph capture: {exc}") from None


def _cu_check(cu: Any, call: str, result: int) -> None:
    if result != 0:
        text = ctypes.c_char_p()
        cu.cuGetErrorString(result, ctypes.byref(text))
        raise CudaLayerError(f"pycuda: {call} failed: CUresult {result} ({(text.value or b'?').decode()})")


class _DriverGraph:
    def __init__(self, cu: Any, graph: ctypes.c_void_p, executable: ctypes.c_void_p) -> None:
        self.cu, self.graph, self.executable = cu, graph, executable

    def __del__(self) -> None:
        try:
            self.cu.cuGraphExecDestroy(self.executable)
            self.cu.cuGraphDestroy(self.graph)
        except Exception:  # interpreter shutdown
            pass
