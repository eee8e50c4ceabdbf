"""A FAKE CUDA layer base for contract tests on CPU -- NOT CUDA: "device" buffers are host numpy arrays,
copies are array copies, events time nothing. Subclasses add what their fake runtime enforces (stream
capture, synchronization rules): ``fake_trt.FakeCudaLayer`` (TensorRT), ``test_ort_capture.FakeLayer`` (ONNX Runtime)."""
from __future__ import annotations

from typing import Any

import numpy as np

from pytest_trtbench.cuda.layer import MIN_ALLOCATION, CudaLayer, DeviceBuffer, Event, Stream


class HostMemoryCudaLayer(CudaLayer):
    """FAKE: buffers are host arrays whose address is their ``ptr``; nothing runs asynchronously."""

    name = "fake"

    def alloc(self, nbytes: int) -> DeviceBuffer:
        memory = np.zeros(max(int(nbytes), MIN_ALLOCATION), np.uint8)
        return DeviceBuffer(self, int(memory.ctypes.data), int(nbytes), memory)

    def release(self, native: Any) -> None:
        pass

    def copy_to_device(self, buffer: DeviceBuffer, host: np.ndarray, stream: Stream) -> None:
        buffer.native[: host.nbytes] = host.reshape(-1).view(np.uint8)

    def copy_to_host(self, host: np.ndarray, buffer: DeviceBuffer, stream: Stream) -> None:
        host.reshape(-1).view(np.uint8)[:] = buffer.native[: host.nbytes]

    def copy_device(self, dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
        dst.native[:nbytes] = src.native[:nbytes]

    def mem_info(self) -> tuple[int, int]:
        return 1 << 30, 1 << 30

    def stream_synchronize(self, stream: Stream) -> None:
        pass

    def event(self) -> Event:
        return Event(self, None)

    def event_record(self, event: Event, stream: Stream) -> None:
        pass

    def event_synchronize(self, event: Event) -> None:
        pass

    def event_elapsed_ms(self, start: Event, end: Event) -> float:
        return 0.0
