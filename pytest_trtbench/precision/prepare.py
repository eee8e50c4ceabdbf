"""The model a backend compiles for a precision: the one call every backend makes at the start of ``build``.

- ``int8``: an explicitly quantized (Q/DQ) copy, calibrated on the request's calibration feeds
  (:mod:`.quantize`); the Q/DQ form serves ONNX Runtime and TensorRT alike.
- ``fp16`` / ``bf16``: a copy whose float compute is in that type (:mod:`.convert`), when the backend
  takes the precision from the model's types (``convert_floats=True``). A backend that reaches
  fp16 through a builder flag (TensorRT 10) passes ``False`` and compiles the fp32 model.
- anything else: the fp32 source, unchanged.

Copies are written into the backend's build directory, so they land in the cache entry next to the
engine. Every failure is a :class:`BackendError` naming the source model and the cause.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_trtbench.backends.base import BackendError, BuildRequest
from pytest_trtbench.precision import FLOAT_CONVERSIONS, recipe


@dataclass(frozen=True)
class PreparedModel:
    """The ONNX file to compile and what preparing it wrote."""

    path: Path
    """The file to compile: the request's source, or a quantized / converted copy in the build directory."""
    files: list[str] = field(default_factory=list)
    """Names of the files written into the build directory (to list in :class:`BuildOutput`)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """For the cache sidecar: ``recipe`` (precision and recipe, as in the cache key) and, after a
    float conversion, ``conversion`` (what :func:`convert_float_precision` converted and kept)."""


def prepare_model(request: BuildRequest, out_dir: Path, *, convert_floats: bool = True) -> PreparedModel:
    """The model to compile for ``request.precision``, written into *out_dir* when it is a copy."""
    precision = request.precision
    method = str(request.options.get("calibration_method", "minmax"))
    metadata: dict[str, Any] = {"recipe": {"precision": precision, **recipe(precision, method)}}
    if precision == "int8":
        dst = out_dir / "model.int8.onnx"
        _quantize(request, dst)
        return PreparedModel(dst, [dst.name], metadata)
    if precision in FLOAT_CONVERSIONS and convert_floats:
        dst = out_dir / f"model.{precision}.onnx"
        metadata["conversion"] = _convert(request, dst)
        return PreparedModel(dst, [dst.name], metadata)
    return PreparedModel(request.onnx_path, [], metadata)


def _quantize(request: BuildRequest, dst: Path) -> None:
    from pytest_trtbench.precision.quantize import QuantizationError, quantize_qdq

    if request.calibration is None:
        raise BackendError(
            f"{request.onnx_path}: int8 needs calibration data: give the case calibration inputs "
            "(BuildRequest.calibration); int8 engines are built from an explicitly quantized (Q/DQ) model"
        )
    try:
        quantize_qdq(request.onnx_path, dst, request.calibration(),
                     str(request.options.get("calibration_method", "minmax")))
    except QuantizationError as exc:
        raise BackendError(str(exc)) from None


def _convert(request: BuildRequest, dst: Path) -> dict[str, Any]:
    from pytest_trtbench.precision.convert import convert_float_precision

    precision: Literal["fp16", "bf16"] = "fp16" if request.precision == "fp16" else "bf16"
    try:
        return convert_float_precision(
            request.onnx_path, dst, precision, keep_fp32_ops=tuple(request.options.get("fp32_ops", ()))
        )
    except Exception as exc:  # onnx raises many types; the user needs the file and the cause
        raise BackendError(f"could not convert {request.onnx_path} to {precision}: {type(exc).__name__}: {exc}") from None


__all__ = ["PreparedModel", "prepare_model"]
