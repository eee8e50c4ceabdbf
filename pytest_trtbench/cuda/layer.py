"""The CUDA layer's one interface: device buffers, copies, streams, events, graph capture, memory info.

Three implementations sit behind it (:mod:`.torch_layer`, :mod:`.cuda_python_layer`, :mod:`.pycuda_layer`);
:mod:`.select` picks one (``--trt-cuda``). Backends and the timing code use only what is here, so a GPU
runner without PyTorch can build, run and time engines through cuda-python or pycuda.

Handles are plain ints where libraries exchange them (a stream's ``cudaStream_t`` for ONNX Runtime's
``user_compute_stream`` and TensorRT's ``execute_async_v3``; a buffer's device address for IOBinding and
``set_tensor_address``); each object keeps its library's own handle alive in ``native``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import numpy as np


class CudaLayerError(Exception):
    """The CUDA layer asked for can't be used here, or a CUDA call failed; the message says why and the fix."""


class Stream:
    """A CUDA stream of one layer: ``handle`` is its ``cudaStream_t`` as an int."""

    def __init__(self, layer: CudaLayer, handle: int, native: Any) -> None:
        self.layer = layer
        self.handle = int(handle)
        self.native = native

    def synchronize(self) -> None:
        self.layer.stream_synchronize(self)


class Event:
    """A timing event: ``record`` on a stream, ``elapsed_ms`` to a later one."""

    def __init__(self, layer: CudaLayer, native: Any) -> None:
        self.layer = layer
        self.native = native

    def record(self, stream: Stream) -> None:
        self.layer.event_record(self, stream)

    def synchronize(self) -> None:
        self.layer.event_synchronize(self)

    def elapsed_ms(self, end: Event) -> float:
        return self.layer.event_elapsed_ms(self, end)


class DeviceBuffer:
    """*nbytes* of device memory at ``ptr``; freed when the buffer is collected (or by :meth:`free`)."""

    def __init__(self, layer: CudaLayer, ptr: int, nbytes: int, native: Any) -> None:
        self.layer = layer
        self.ptr = int(ptr)
        self.nbytes = nbytes
        self.native = native

    def free(self) -> None:
        if self.native is not None:
            native, self.native = self.native, None
            self.layer.release(native)

    def __del__(self) -> None:
        try:
            self.free()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass


class Graph:
    """A captured CUDA graph; calling it replays it on the stream it was captured on."""

    timing_method = "cuda-graph"

    def __init__(self, replay: Callable[[], None], keep: Any = None) -> None:
        self._replay = replay
        self._keep = keep  # what the captured work reads and writes: kept alive with the graph

    def __call__(self) -> None:
        self._replay()


MIN_ALLOCATION = 256
"""Bytes allocated for a zero-size tensor: bound addresses must be non-null (and 256-byte aligned for TensorRT)."""


class CudaLayer(ABC):
    """One CUDA library behind the interface. ``name`` is what ``--trt-cuda`` and the report call it."""

    name: str = ""

    # --- memory --------------------------------------------------------------------------------

    @abstractmethod
    def alloc(self, nbytes: int) -> DeviceBuffer:
        """At least ``max(nbytes, MIN_ALLOCATION)`` bytes of device memory."""

    @abstractmethod
    def release(self, native: Any) -> None:
        """Free what :meth:`alloc` put in a buffer's ``native``."""

    @abstractmethod
    def copy_to_device(self, buffer: DeviceBuffer, host: np.ndarray, stream: Stream) -> None:
        """Copy the C-contiguous *host* array into *buffer* on *stream* and wait for it."""

    @abstractmethod
    def copy_to_host(self, host: np.ndarray, buffer: DeviceBuffer, stream: Stream) -> None:
        """Fill the C-contiguous, writable *host* array from *buffer* on *stream* and wait for it."""

    @abstractmethod
    def copy_device(self, dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
        """Enqueue a device-to-device copy on *stream* (asynchronous: it can be captured into a graph)."""

    @abstractmethod
    def mem_info(self) -> tuple[int, int]:
        """``(free, total)`` bytes of device memory (``cudaMemGetInfo``): every process's use, not only ours."""

    # --- streams, events, graphs ---------------------------------------------------------------

    @abstractmethod
    def stream(self) -> Stream:
        """A new non-blocking stream."""

    @abstractmethod
    def stream_synchronize(self, stream: Stream) -> None: ...

    @abstractmethod
    def event(self) -> Event:
        """A new event with timing enabled."""

    @abstractmethod
    def event_record(self, event: Event, stream: Stream) -> None: ...

    @abstractmethod
    def event_synchronize(self, event: Event) -> None: ...

    @abstractmethod
    def event_elapsed_ms(self, start: Event, end: Event) -> float: ...

    @abstractmethod
    def capture(self, stream: Stream, work: Callable[[], Any]) -> Graph:
        """Capture what *work* enqueues on *stream* (thread-local capture mode) into a graph; raises
        :class:`CudaLayerError` with the reason when the capture fails (the stream is usable afterwards)."""

    # --- conveniences on top -------------------------------------------------------------------

    def upload(self, host: np.ndarray, stream: Stream) -> DeviceBuffer:
        """A new device buffer holding a copy of *host*."""
        import numpy as np

        array = np.ascontiguousarray(host) if host.ndim else np.require(host, requirements=["C"])
        buffer = self.alloc(array.nbytes)
        self.copy_to_device(buffer, array, stream)
        return buffer

    def download(self, buffer: DeviceBuffer, shape: tuple[int, ...], dtype: Any, stream: Stream) -> np.ndarray:
        """A host array of *shape* and *dtype* read from *buffer*."""
        import numpy as np

        host = np.empty(shape, dtype=dtype)
        if host.nbytes:
            self.copy_to_host(host, buffer, stream)
        return host

    def used_bytes(self) -> int:
        """Device memory in use (``total - free``)."""
        free, total = self.mem_info()
        return total - free


def host_pointer(array: np.ndarray) -> int:
    """The address of a C-contiguous host array's data (what ``cudaMemcpy`` reads or writes)."""
    if not array.flags["C_CONTIGUOUS"]:
        raise CudaLayerError("internal: host copies need C-contiguous arrays")
    return int(array.ctypes.data)
