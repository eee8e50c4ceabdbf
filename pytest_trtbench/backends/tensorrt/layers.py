"""Engine layer information: the builder's per-layer listing or the inspector's JSON, reduced to a
compact list and a count of compute layers per realized precision (``engine_precisions``).

A layer's precision is the narrowest float or quantized type among its inputs and weights (else its
outputs). Layers that only move data (shuffles, reformats, constants, casts, ...) and layers built
only from data-movement ONNX nodes are not compute layers.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from pytest_trtbench.backends.tensorrt.flavor import TensorRTFlavor

_NON_COMPUTE_TYPES = {
    "constant", "shuffle", "reformat", "noop", "no_op", "shape", "shape_call", "cast", "identity", "slice",
    "concatenation", "gather", "signal", "wait", "copy", "myelin_shape",
}
"""Layer types that move or reinterpret data; they are listed but not counted in engine_precisions."""

_DTYPE_WORDS = [  # order matters: "BFloat16" contains "Float"
    ("bf16", ("bfloat16", "bf16")), ("fp16", ("half", "fp16", "float16")), ("fp8", ("fp8", "e4m3", "e5m2")),
    ("fp4", ("fp4", "e2m1")), ("int8", ("int8",)), ("int4", ("int4",)), ("fp32", ("float", "fp32")),
]
_PRECISION_ORDER = ["fp4", "int4", "fp8", "int8", "fp16", "bf16", "fp32"]  # narrowest first


def _dtype_word(text: str) -> str | None:
    text = text.lower()
    for label, words in _DTYPE_WORDS:
        if any(w in text for w in words):
            return label
    return None  # integer index/shape types and bool do not define a compute precision


def layer_precision(layer: Mapping[str, Any]) -> str | None:
    """The precision a layer computes in: the narrowest float/quantized type among its inputs
    and constants (an int8 GEMM has int8 inputs and may write fp16), else among its outputs."""
    for key in ("inputs", "outputs"):
        found = {d for d in layer.get(key, []) if d in _PRECISION_ORDER}
        if found:
            return min(found, key=_PRECISION_ORDER.index)
    return None


_DATA_MOVEMENT_ONNX_OPS = {
    "Cast", "CastLike", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Concat", "Split",
    "Slice", "Gather", "Expand", "Shape", "Size", "Constant", "ConstantOfShape", "QuantizeLinear", "DequantizeLinear",
}


def is_compute_layer(layer: Mapping[str, Any], onnx_op_types: Mapping[str, str]) -> bool:
    """A layer computes unless its type moves data, or every ONNX node it came from only moves or
    converts data (TensorRT-RTX fuses our boundary Casts into kernels of type ``kgen``)."""
    if layer["type"].lower() in _NON_COMPUTE_TYPES or layer.get("precision") is None:
        return False
    ops = [onnx_op_types.get(node) for node in layer.get("onnx", [])]
    return not ops or any(op is None or op not in _DATA_MOVEMENT_ONNX_OPS for op in ops)


def count_engine_precisions(layers: list[dict], onnx_op_types: Mapping[str, str] | None = None) -> dict[str, int]:
    """Compute layers per realized precision, e.g. ``{"fp16": 12, "fp32": 2}``."""
    counts: dict[str, int] = {}
    for layer in layers:
        if not is_compute_layer(layer, onnx_op_types or {}):
            continue
        counts[layer["precision"]] = counts.get(layer["precision"], 0) + 1
    return dict(sorted(counts.items()))


def _compact(name: str, kind: str, inputs: list[str], outputs: list[str], onnx_nodes: list[str]) -> dict:
    layer: dict[str, Any] = {
        "name": name,
        "type": kind,
        "inputs": [d for d in map(_dtype_word, inputs) if d],
        "outputs": [d for d in map(_dtype_word, outputs) if d],
        "onnx": onnx_nodes,
    }
    layer["precision"] = layer_precision(layer)
    return layer


def _layer_from_json(layer: Mapping[str, Any] | str) -> dict:
    """One layer of the inspector's JSON (``Format/Datatype`` in TensorRT 10, ``Datatype`` elsewhere)."""
    if isinstance(layer, str):  # verbosity below DETAILED gives names only
        return _compact(layer, "unknown", [], [], [])

    def dtypes(tensors: Any) -> list[str]:
        return [str(t.get("Datatype") or t.get("Format/Datatype") or "") for t in tensors or []]

    weights = layer.get("Weights")
    constant = [str(weights.get("Type", ""))] if isinstance(weights, Mapping) else []
    metadata = str(layer.get("Metadata", ""))
    return _compact(
        str(layer.get("Name", "")),
        str(layer.get("LayerType", "unknown")),
        dtypes(layer.get("Inputs")) + dtypes(layer.get("Constants")) + constant,
        dtypes(layer.get("Outputs")),
        re.findall(r"\[ONNX Layer: ([^\]]+)\]", metadata),
    )


_LISTING_LINE = re.compile(r"^Name: (?P<name>.*?), LayerType: (?P<type>[^,]+), (?P<rest>.*)$")


def parse_layer_listing(message: str) -> list[dict]:
    """Parse the builder's one-line-per-layer listing (``Name: ..., LayerType: ..., Inputs: [...],
    Constants: [...], Outputs: [...], TacticName: ..., Metadata: ...``) into compact layers."""
    layers = []
    for line in message.splitlines():
        match = _LISTING_LINE.match(line.strip())
        if not match:
            continue
        rest = match["rest"]
        outputs_at = rest.find("Outputs: [")
        tail_at = rest.find("TacticName:")
        ins = rest[:outputs_at] if outputs_at >= 0 else ""
        outs = rest[outputs_at:tail_at] if outputs_at >= 0 else ""
        layers.append(
            _compact(
                match["name"],
                match["type"].strip(),
                re.findall(r"Datatype: (\w+)", ins),
                re.findall(r"Datatype: (\w+)", outs),
                re.findall(r"\[ONNX Layer: ([^\]]+)\]", rest),
            )
        )
    return layers


def onnx_op_types(path: Path) -> dict[str, str]:
    """Node name -> op type of the parsed model (external weights are not read)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {node.name: node.op_type for node in model.graph.node if node.name}


def engine_layers(flavor: TensorRTFlavor, serialized: Any, logger: Any, *, can_execute: bool) -> tuple[list[dict], str]:
    """Engine layers and where they came from: the engine inspector where the engine can be loaded
    here, else (or when the inspector fails or reports no precisions) the layer listing the builder
    logs with detailed profiling verbosity. The source says why the inspector was not used."""
    note = ""
    if can_execute:
        layers, note = inspect_engine(flavor, serialized, logger)
        if any(layer["precision"] for layer in layers):
            return layers, "inspector"
        note = note or "the inspector reported no layer precisions"
    suffix = f" (inspector not used: {note})" if note else ""
    for message in logger.layer_listings:
        return parse_layer_listing(message), "builder_log" + suffix
    return [], "unavailable" + suffix


def inspect_engine(flavor: TensorRTFlavor, serialized: Any, logger: Any) -> tuple[list[dict], str]:
    """Layers from the engine inspector's JSON, or ``([], why not)``. Never raises: the inspector is a
    better source of layer precisions, not a requirement of the build."""
    trt = flavor.module
    try:
        engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
        if engine is None:
            return [], "the engine could not be deserialized here"
        inspector = engine.create_engine_inspector()
        if inspector is None:
            return [], "no engine inspector"
        info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
        raw = info.get("Layers") if isinstance(info, Mapping) else None
        if not isinstance(raw, list):
            return [], "the inspector's JSON has no 'Layers' list"
        return [_layer_from_json(layer) for layer in raw], ""
    except Exception as exc:  # any surprise from a path no CI machine can run must not fail the build
        return [], f"{type(exc).__name__}: {str(exc)[:200]}"
