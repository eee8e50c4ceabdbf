"""A TensorRT logger that records instead of printing (errors, the builder's layer listing)."""
from __future__ import annotations

from typing import Any


class RecordingLogger:
    """A TensorRT logger keeping errors and the builder's engine layer listing; prints nothing else.

    ``RecordingLogger(trt)`` returns an instance of a ``trt.ILogger`` subclass made for that module
    (``tensorrt`` and ``tensorrt_rtx`` each have their own ``ILogger``).
    """

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
