"""The CUDA layer on PyTorch (``torch.cuda``): where torch is installed anyway (the live reference needs it).

Device buffers are ``uint8`` CUDA tensors (torch's caching allocator), streams ``torch.cuda.Stream``,
events ``torch.cuda.Event(enable_timing=True)``, graphs ``torch.cuda.CUDAGraph`` captured in thread-local
mode (trtexec's choice) on the caller's stream.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable

from pytest_trtbench.cuda.layer import MIN_ALLOCATION, CudaLayer, CudaLayerError, DeviceBuffer, Event, Graph, Stream

if TYPE_CHECKING:
    import numpy as np


class TorchLayer(CudaLayer):
    name = "torch"

    def __init__(self) -> None:
        import torch

        self.torch = torch
        torch.cuda.init()

    def wrap(self, native: Any) -> Stream:
        """An existing ``torch.cuda.Stream`` as a layer stream (a launch that made its own)."""
        return Stream(self, int(native.cuda_stream), native)

    def alloc(self, nbytes: int) -> DeviceBuffer:
        tensor = self.torch.empty(max(int(nbytes), MIN_ALLOCATION), dtype=self.torch.uint8, device="cuda")
        return DeviceBuffer(self, int(tensor.data_ptr()), int(nbytes), tensor)

    def release(self, native: Any) -> None:
        del native  # the caching allocator takes the tensor's memory back

    def _bytes(self, host: np.ndarray) -> Any:
        return self.torch.from_numpy(host.reshape(-1).view("uint8"))

    def copy_to_device(self, buffer: DeviceBuffer, host: np.ndarray, stream: Stream) -> None:
        if host.nbytes:
            with self.torch.cuda.stream(stream.native):
                buffer.native[: host.nbytes].copy_(self._bytes(host))
        stream.synchronize()

    def copy_to_host(self, host: np.ndarray, buffer: DeviceBuffer, stream: Stream) -> None:
        if host.nbytes:
            with self.torch.cuda.stream(stream.native):
                self._bytes(host).copy_(buffer.native[: host.nbytes])
        stream.synchronize()

    def copy_device(self, dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
        with self.torch.cuda.stream(stream.native):
            dst.native[:nbytes].copy_(src.native[:nbytes], non_blocking=True)

    def mem_info(self) -> tuple[int, int]:
        free, total = self.torch.cuda.mem_get_info()
        return int(free), int(total)

    def stream(self) -> Stream:
        return self.wrap(self.torch.cuda.Stream())

    def stream_synchronize(self, stream: Stream) -> None:
        stream.native.synchronize()

    def event(self) -> Event:
        return Event(self, self.torch.cuda.Event(enable_timing=True))

    def event_record(self, event: Event, stream: Stream) -> None:
        event.native.record(stream.native)

    def event_synchronize(self, event: Event) -> None:
        event.native.synchronize()

    def event_elapsed_ms(self, start: Event, end: Event) -> float:
        return float(start.native.elapsed_time(end.native))

    def capture(self, stream: Stream, work: Callable[[], Any]) -> Graph:
        torch = self.torch
        guard = TorchCaptureGuard()
        graph = torch.cuda.CUDAGraph()
        try:
            with warnings.catch_warnings():
                # torch warns (not raises) when the graph captured nothing: the work ran outside the capture
                warnings.filterwarnings("error", message=".*CUDA Graph is empty", category=UserWarning)
                with torch.cuda.graph(graph, stream=stream.native, capture_error_mode="thread_local"):
                    work()
        except (RuntimeError, UserWarning) as exc:
            guard.restore()  # a failed capture leaves the current stream and the RNG state behind
            raise CudaLayerError(f"torch: CUDA graph capture failed: {str(exc).splitlines()[0][:300]}") from None
        native = stream.native

        def replay() -> None:
            # torch.cuda.stream(s), not `with s:` (streams are context managers only from torch 2.7)
            with torch.cuda.stream(native):
                graph.replay()

        return Graph(replay, keep=graph)


class TorchCaptureGuard:
    """Undoes what a failed ``torch.cuda.graph`` capture leaves behind in the process.

    When capture fails (a host sync inside the captured code), ``torch.cuda.graph.__exit__`` raises
    from ``capture_end`` before it restores the current stream, and the CUDA RNG generator stays
    marked as capturing: every later CUDA random op then fails with "Offset increment outside
    graph capture encountered unexpectedly" (seen with torch 2.11). Create before capturing;
    :meth:`restore` after a failure puts the stream and a clone of the generator state back.
    """

    def __init__(self) -> None:
        import torch

        torch.cuda.init()
        self.stream = torch.cuda.current_stream()
        generators = torch.cuda.default_generators
        index = torch.cuda.current_device()
        self.generator = generators[index] if index < len(generators) else None
        self.saved = self.generator.clone_state() if self.generator is not None else None

    def restore(self) -> None:
        import torch

        if torch.cuda.current_stream() != self.stream:
            torch.cuda.set_stream(self.stream)
        if self.generator is not None and self.saved is not None:
            self.generator.graphsafe_set_state(self.saved)
