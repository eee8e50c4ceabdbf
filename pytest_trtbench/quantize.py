"""The int8 recipe: ONNX Runtime static quantization in Q/DQ format.

Q/DQ (QuantizeLinear/DequantizeLinear pairs) is the explicit-quantization form TensorRT consumes,
so the same quantized model serves the ONNX Runtime and the TensorRT backends. Symmetric int8
activations and per-channel symmetric weights, as TensorRT requires.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

if TYPE_CHECKING:
    import numpy as np

# Q/DQ only around the weighted ops, the placement TensorRT's explicit quantization expects; quantizing
# element-wise ops' constants (GELU's sqrt(2), ...) yields constants TensorRT refuses to build.
QUANTIZED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
RECIPE = {
    "format": "QDQ",
    "activations": "int8-symmetric",
    "weights": "int8-per-channel-symmetric",
    "calibration": "minmax",
    "ops": ",".join(QUANTIZED_OPS),
    "bias": "float",
}


class QuantizationError(Exception):
    """Quantization failed; the message names the model and the cause."""


def quantize_qdq(src: Path, dst: Path, calibration: Iterable[Mapping[str, np.ndarray]]) -> None:
    """Write the Q/DQ int8 model of *src* to *dst*, calibrated on *calibration* feeds."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = list(calibration)
    if not feeds:
        raise QuantizationError(f"{src}: int8 needs calibration data, and the suite's calibration gave none")

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it: Iterator[Mapping[str, np.ndarray]] = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            feeds = next(self._it, None)
            return dict(feeds) if feeds else None

        def rewind(self) -> None:
            self._it = iter(feeds)

    prepared = dst.with_name(dst.stem + ".pre.onnx")
    try:
        # the pre-processing ONNX Runtime recommends: symbolic shape inference and graph cleanup
        quant_pre_process(str(src), str(prepared), auto_merge=True)
        quantize_static(
            str(prepared),
            str(dst),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(QUANTIZED_OPS),
            # biases stay float: TensorRT parses only 8-bit (and fp8/int4) DequantizeLinear inputs, not int32
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
        )
    except Exception as exc:  # onnxruntime raises bare Exceptions of many kinds here
        raise QuantizationError(f"{src}: int8 Q/DQ quantization failed: {type(exc).__name__}: {exc}") from exc
    finally:
        prepared.unlink(missing_ok=True)
