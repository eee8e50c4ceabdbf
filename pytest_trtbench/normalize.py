"""Normalizing a user's ONNX file into a private copy every backend and precision recipe can take.

Real ONNX files come in many vintages (IR 3 and opset 7 onwards). Before any backend or precision
recipe sees a file-based model, :func:`normalize_model` writes a private copy (the user's file is
never modified) that:

- lists no initializer among the graph inputs (pre-IR-4 exporters listed every weight as an input;
  ONNX Runtime then treats the weights as overridable inputs and cannot constant-fold them);
- has the opset a recipe needs (``int8`` Q/DQ with per-channel ``axis`` needs opset 13; the fp16/bf16
  conversion reads opset-13 schemas), upgraded with ``onnx.version_converter``;
- has its stale ``value_info`` dropped and shapes re-inferred (old files carry fp32 ``value_info`` that
  contradicts the fp16-converted graph: "Inferred elem type differs from existing elem type");
- holds its weights inline when they fit in one protobuf (external data read in), so the engine cache
  key, a hash of the model file, covers the weights too.

A model that needs none of this is used as is (same path, same cache keys). What was changed is
returned as notes, shown in the CSV report's ``model_normalized`` column. Errors are
:class:`NormalizeError` naming the file and, where ONNX says, the node and op.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_IR_VERSION = 3
MIN_OPSET = 7
RECIPE_OPSET = {"int8": 13, "fp8": 19, "fp16": 13, "bf16": 13}
"""The default-domain opset a precision recipe needs (Q/DQ ``axis`` is opset 13, fp8 Q/DQ opset 19)."""
MIN_IR_FOR_UNLISTED_INITIALIZERS = 4
INLINE_LIMIT_BYTES = 1_800_000_000  # protobuf's 2 GiB cap, with room for the graph itself
NORMALIZE_VERSION = "normalize-v1"


class NormalizeError(ValueError):
    """The file cannot be normalized; the message names the file, and the node and op where known."""


@dataclass(frozen=True)
class NormalizedModel:
    path: Path
    """The model to build from: *source* itself when nothing needed changing, else the private copy."""
    source: Path
    notes: tuple[str, ...] = ()
    """What was changed, e.g. ``"opset 9 -> 13 (int8 Q/DQ needs 13)"``; empty when *path* is *source*."""

    @property
    def summary(self) -> str:
        return "; ".join(self.notes)


def default_opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def required_opset(precision: str) -> int:
    return RECIPE_OPSET.get(precision, MIN_OPSET)


def normalize_model(source: Path, work_dir: Path, precision: str = "fp32") -> NormalizedModel:
    """The model *precision*'s recipe should start from: *source*, or a normalized copy in *work_dir*."""
    import onnx

    model, external = _load(source)
    stale_value_info = len(model.graph.value_info) > 0
    ir, opset = model.ir_version, default_opset(model)
    if ir < MIN_IR_VERSION or opset < MIN_OPSET:
        raise NormalizeError(
            f"{source}: IR version {ir}, opset {opset} is older than pytest-trtbench reads "
            f"(IR >= {MIN_IR_VERSION}, opset >= {MIN_OPSET}); re-export the model with a newer exporter"
        )
    notes: list[str] = []
    dropped = _drop_initializer_inputs(model)
    if dropped:
        notes.append(f"dropped {dropped} initializer(s) from the graph inputs")
    if external:
        notes.append("external data read in")
    target = required_opset(precision)
    if opset < target:
        model = _convert_opset(model, source, opset, target, precision)
        notes.append(f"opset {opset} -> {target} ({precision} recipe needs {target})")
    if (dropped or notes) and model.ir_version < MIN_IR_FOR_UNLISTED_INITIALIZERS:
        notes.append(f"IR version {model.ir_version} -> {MIN_IR_FOR_UNLISTED_INITIALIZERS}")
        model.ir_version = MIN_IR_FOR_UNLISTED_INITIALIZERS
    if not notes:
        return NormalizedModel(source, source)
    del model.graph.value_info[:]
    if stale_value_info:
        notes.append("value_info dropped, shapes re-inferred")
    model = _infer_shapes(model, source)
    _check(model, source)
    if model.ByteSize() > INLINE_LIMIT_BYTES:
        raise NormalizeError(f"{source}: {model.ByteSize() / 2**30:.1f} GiB of weights need external data after "
                             "normalization; re-export it at opset >= 13 with weights outside graph inputs")
    out = work_dir / f"{source.stem}.{_digest(source)}.{precision}.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)
    return NormalizedModel(out, source, tuple(notes))


def _load(source: Path) -> tuple[Any, bool]:
    """The model with its external data read in, and whether it had any."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    try:
        model = onnx.load(str(source), load_external_data=False)
        external = any(uses_external_data(init) for init in model.graph.initializer)
        if external:
            load_external_data_for_model(model, str(source.parent))
    except Exception as exc:  # DecodeError, OSError (a missing .data file), ...
        raise NormalizeError(f"{source}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    return model, external


def _drop_initializer_inputs(model: Any) -> int:
    initializers = {init.name for init in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in initializers]
    dropped = len(model.graph.input) - len(keep)
    if dropped:
        del model.graph.input[:]
        model.graph.input.extend(keep)
    return dropped


def _convert_opset(model: Any, source: Path, opset: int, target: int, precision: str) -> Any:
    from onnx import version_converter

    if model.ir_version < MIN_IR_FOR_UNLISTED_INITIALIZERS:
        model.ir_version = MIN_IR_FOR_UNLISTED_INITIALIZERS  # the converter requires initializers to be inputs below IR 4
    try:
        return version_converter.convert_version(model, target)
    except Exception as exc:  # ConvertError, RuntimeError (a missing adapter)
        raise NormalizeError(
            f"{source}: {precision} needs opset >= {target}, and onnx.version_converter cannot upgrade this opset-"
            f"{opset} model: {_onnx_message(exc)}; re-export the model at opset >= {target}"
        ) from None


def _infer_shapes(model: Any, source: Path) -> Any:
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:  # InferenceError, ...
        raise NormalizeError(f"{source}: shape inference failed: {_onnx_message(exc)}") from None


def _check(model: Any, source: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # ValidationError
        raise NormalizeError(f"{source}: not a valid ONNX model after normalization: {_onnx_message(exc)}") from None


def _onnx_message(exc: BaseException) -> str:
    """ONNX's own message, one line, without the C++ source path prefix ONNX puts in front."""
    text = " ".join(str(exc).split())
    return re.sub(r"^(\[[A-Za-z]+\] )?/\S+:\d+: \S+: ", "", text) or type(exc).__name__


def _digest(source: Path) -> str:
    return hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:8]
