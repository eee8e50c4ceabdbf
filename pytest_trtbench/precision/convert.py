"""Rewrite an fp32 ONNX model to fp16 or bf16, for strongly typed builders.

TensorRT 11 and TensorRT-RTX take every tensor's type from the network: there is no FP16 builder
flag, so a reduced-precision engine needs a reduced-precision model. This module writes one.

Which rules, and why. NVIDIA ModelOpt's AutoCast (``modelopt.onnx.autocast``) is the reference:
it keeps graph I/O types (``keep_io_types``), keeps excluded node names / op types in fp32, keeps
nodes fed by initializers outside the low-precision range (``init_max``, 65504 for fp16) in fp32,
and, given calibration data, keeps nodes whose activations exceed ``data_max`` or that reduce over
very long axes. onnxconverter-common's ``float16`` instead keeps a fixed block list of ops that
lack ONNX Runtime fp16 kernels, and is unmaintained against recent ``onnx`` releases. We follow
AutoCast's data-free rules (I/O kept fp32 with casts at the boundary, exclusions, initializer
range) and write the rewrite ourselves with ``onnx``, so it needs neither package. The data-driven
rules need a reference run on real inputs and are left to the caller (``keep_fp32_ops``). By
default we also keep in fp32 the few ops whose float inputs are really indices, boxes or
scales (``Range``, ``NonMaxSuppression``, ``RoiAlign``, ``Resize``, ``Upsample``, random
generators), Q/DQ nodes (their scale types are fixed by opset), and control flow (subgraphs are
not rewritten). TensorRT already accumulates fp16 reductions, softmax and normalizations in fp32,
so those are converted.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

DEFAULT_KEEP_FP32_OPS = (
    "Range", "NonMaxSuppression", "RoiAlign", "Resize", "Upsample",
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
    "QuantizeLinear", "DequantizeLinear", "If", "Loop", "Scan",
)
"""Op types kept in fp32 by default (see the module docstring)."""

_FP16_MAX = 65504.0


#: Bump when the conversion rules change: the engine cache key includes it.
RECIPE_VERSION = "convert-v2"  # v2: consumed graph outputs, fp16 constant clipping, untyped tensors kept fp32

def convert_float_precision(
    src: Path,
    dst: Path,
    precision: Literal["fp16", "bf16"],
    keep_fp32_ops: Sequence[str] = (),
) -> dict[str, Any]:
    """Write *src* (fp32) to *dst* with float compute in *precision*.

    Graph inputs and outputs stay fp32; Cast nodes convert at the boundary and around every node
    kept in fp32. *keep_fp32_ops* names op types or node names to keep. Returns a summary:
    ``{"precision", "converted", "kept", "kept_nodes", "casts_inserted"}``.

    The steps: read the model and every tensor's type; choose the nodes that go low; decide where
    each fp32 tensor lives afterwards; cast the initializers that live low; rewrite the node list with
    Casts where a tensor crosses between precisions; check and save.
    """
    import onnx

    if precision not in ("fp16", "bf16"):
        raise ValueError(f"precision must be 'fp16' or 'bf16', got {precision!r}")
    model = onnx.load(str(src))
    graph = _TypedGraph.of(model, precision)
    node_is_low, kept_nodes = _choose_low_nodes(graph, set(DEFAULT_KEEP_FP32_OPS) | set(keep_fp32_ops))
    home_low = _tensor_homes(graph, node_is_low)
    _lower_initializers(graph, home_low)
    casts = _rewrite_nodes(graph, node_is_low, home_low)
    del model.graph.value_info[:]  # stale types; consumers re-infer
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.save(model, str(dst))
    return {
        "precision": precision,
        "converted": sum(node_is_low),
        "kept": len(kept_nodes),
        "kept_nodes": kept_nodes,
        "casts_inserted": casts,
    }


@dataclass
class _TypedGraph:
    """The graph being rewritten, with every tensor's element type (from shape inference and initializers)."""

    graph: Any
    precision: Literal["fp16", "bf16"]
    low: int
    """The ONNX element type of *precision*."""
    opset: int
    types: dict[str, int]
    initializers: dict[str, Any]

    @classmethod
    def of(cls, model: Any, precision: Literal["fp16", "bf16"]) -> _TypedGraph:
        import onnx
        from onnx import TensorProto

        inferred = onnx.shape_inference.infer_shapes(model)
        types: dict[str, int] = {}
        for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
            if vi.type.HasField("tensor_type"):
                types[vi.name] = vi.type.tensor_type.elem_type
        initializers = {init.name: init for init in model.graph.initializer}
        for name, init in initializers.items():
            types[name] = init.data_type
        low = TensorProto.FLOAT16 if precision == "fp16" else TensorProto.BFLOAT16
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        return cls(model.graph, precision, low, opset, types, initializers)

    def is_float(self, name: str) -> bool:
        from onnx import TensorProto

        return bool(name) and self.types.get(name) == TensorProto.FLOAT

    @property
    def low_str(self) -> str:
        return "tensor(float16)" if self.precision == "fp16" else "tensor(bfloat16)"


def _choose_low_nodes(g: _TypedGraph, keep: set[str]) -> tuple[list[bool], list[str]]:
    """Per node, whether it computes in the low precision; and the names of the float nodes kept fp32
    (kept: listed in *keep* by op type or name, fed by an fp16-out-of-range initializer, touching a
    tensor of unknown type, or an op whose schema does not take the low type)."""
    from onnx import TensorProto, numpy_helper

    node_is_low: list[bool] = []
    kept_nodes: list[str] = []
    for node in g.graph.node:
        touches_float = any(g.is_float(t) for t in [*node.input, *node.output])
        if node.op_type == "Constant":
            touches_float = g.is_float(node.output[0])
        if not touches_float:
            node_is_low.append(False)
            continue
        out_of_range = g.precision == "fp16" and any(
            name in g.initializers
            and g.initializers[name].data_type == TensorProto.FLOAT
            and _abs_max(numpy_helper.to_array(g.initializers[name])) > _FP16_MAX
            for name in node.input
        )
        # a tensor whose type shape inference could not find may be float: converting the node would
        # leave it without a Cast (measured on BERT-base's pooler Gemm), so such nodes stay fp32
        untyped = any(name and name not in g.types for name in [*node.input, *node.output])
        kept = (
            untyped
            or node.op_type in keep
            or (node.name and node.name in keep)
            or out_of_range
            or not _schema_allows(node, g.low_str, g.opset, g.is_float)
        )
        node_is_low.append(not kept)
        if kept:
            kept_nodes.append(node.name or node.op_type)
    return node_is_low, kept_nodes


def _tensor_homes(g: _TypedGraph, node_is_low: list[bool]) -> dict[str, bool]:
    """Where each tensor lives after the rewrite (True = low precision): a node's outputs where the
    node computes; an initializer low only if every consumer is low and it is not a graph output."""
    home_low: dict[str, bool] = {}
    consumers_low: dict[str, list[bool]] = {}
    for node, is_low in zip(g.graph.node, node_is_low):
        for name in node.input:
            consumers_low.setdefault(name, []).append(is_low)
    graph_outputs = {o.name for o in g.graph.output}
    for name in g.initializers:
        uses = consumers_low.get(name, [])
        home_low[name] = bool(uses) and all(uses) and name not in graph_outputs
    for node, is_low in zip(g.graph.node, node_is_low):
        for name in node.output:
            home_low[name] = is_low
    return home_low


def _lower_initializers(g: _TypedGraph, home_low: dict[str, bool]) -> None:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    for name, init in g.initializers.items():
        if init.data_type == TensorProto.FLOAT and home_low[name]:
            init.CopyFrom(_cast_initializer(init, g.low, np, numpy_helper, helper))


def _rewrite_nodes(g: _TypedGraph, node_is_low: list[bool], home_low: dict[str, bool]) -> int:
    """Replace the graph's nodes: low nodes retyped, a Cast wherever a float tensor is read in the other
    precision than it lives in (one per tensor and direction). Returns the number of Casts inserted."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    new_nodes: list[Any] = []
    cast_cache: dict[tuple[str, int], str] = {}

    def cast_to(name: str, to: int) -> str:
        key = (name, to)
        if key not in cast_cache:
            out = f"{name}__to_{'fp32' if to == TensorProto.FLOAT else g.precision}"
            new_nodes.append(helper.make_node("Cast", [name], [out], to=to, name=f"{out}__cast"))
            cast_cache[key] = out
        return cast_cache[key]

    # a low-precision node that produces a graph output writes NAME__fp16 and a Cast right after it
    # restores NAME in fp32; later consumers inside the graph (BERT's pooler reads last_hidden_state)
    # read whichever of the two matches their own precision
    graph_outputs = {o.name for o in g.graph.output}
    renamed_outputs: dict[str, str] = {}
    output_casts = 0
    for node, is_low in zip(g.graph.node, node_is_low):
        for i, name in enumerate(node.input):
            if name in renamed_outputs:
                node.input[i] = renamed_outputs[name] if is_low else name
            elif g.is_float(name) and home_low.get(name, False) != is_low:
                node.input[i] = cast_to(name, g.low if is_low else TensorProto.FLOAT)
        lowered_here = []
        if is_low:
            _retype_attributes(node, g.low, np, numpy_helper, helper)
            for i, name in enumerate(node.output):
                if name in graph_outputs and g.is_float(name):
                    node.output[i] = renamed_outputs.setdefault(name, f"{name}__{g.precision}")
                    lowered_here.append(name)
        new_nodes.append(node)
        for original in lowered_here:
            new_nodes.append(helper.make_node(
                "Cast", [renamed_outputs[original]], [original], to=TensorProto.FLOAT, name=f"{original}__cast"
            ))
            output_casts += 1
    del g.graph.node[:]
    g.graph.node.extend(new_nodes)
    return len(cast_cache) + output_casts


def _schema_allows(node: Any, low_str: str, opset: int, is_float: Any) -> bool:
    """True if the op's schema at *opset* accepts *low_str* wherever the node has an fp32 tensor.

    Custom-domain ops (no schema here) are kept in fp32: we cannot know what they accept.
    """
    import onnx.defs

    if node.domain not in ("", "ai.onnx"):
        return False
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
    except onnx.defs.SchemaError:
        return False
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}

    def slot_ok(formals: Any, actual: Any) -> bool:
        for i, name in enumerate(actual):
            if not is_float(name) or not formals:
                continue
            formal = formals[min(i, len(formals) - 1)]  # variadic last formal repeats
            types = allowed.get(formal.type_str, {formal.type_str})
            if low_str not in types:
                return False
        return True

    output_ok = slot_ok(schema.outputs, node.output)
    if node.op_type in ("Constant", "ConstantOfShape"):
        return output_ok
    return output_ok and slot_ok(schema.inputs, node.input)


def _abs_max(array: Any) -> float:
    return float(abs(array).max()) if array.size else 0.0


def _cast_initializer(init: Any, low: int, np: Any, numpy_helper: Any, helper: Any) -> Any:
    from onnx import TensorProto

    values = numpy_helper.to_array(init)
    if low == TensorProto.FLOAT16:
        # clip to fp16's range first: attention masks use float32's min (-3.4e38) as "minus infinity",
        # and a plain cast would overflow to -inf (onnxconverter-common and ModelOpt clip the same way)
        finite = np.finfo(np.float16).max
        return numpy_helper.from_array(np.clip(values, -finite, finite).astype(np.float16), init.name)
    import ml_dtypes

    return numpy_helper.from_array(values.astype(ml_dtypes.bfloat16), init.name)


def _retype_attributes(node: Any, low: int, np: Any, numpy_helper: Any, helper: Any) -> None:
    """Make attributes that fix an fp32 output type (Cast ``to``, Constant values) produce *low*."""
    from onnx import AttributeProto, TensorProto

    if node.op_type == "ConstantOfShape" and not node.attribute:
        node.attribute.append(helper.make_attribute("value", helper.make_tensor("value", low, [1], [0.0])))
        return
    if node.op_type == "Constant":
        for attr in list(node.attribute):
            if attr.name in ("value_float", "value_floats"):
                values = np.array(attr.f if attr.name == "value_float" else list(attr.floats), np.float32)
                tensor = numpy_helper.from_array(values, "value")
                node.attribute.remove(attr)
                node.attribute.append(helper.make_attribute("value", tensor))
    for attr in node.attribute:
        if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
            attr.i = low
        elif attr.type == AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
            attr.t.CopyFrom(_cast_initializer(attr.t, low, np, numpy_helper, helper))
        elif node.op_type in ("EyeLike",) and attr.name == "dtype" and attr.i == TensorProto.FLOAT:
            attr.i = low
