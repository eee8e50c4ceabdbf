"""What an ONNX file says about itself, applied to a suite at collection.

An ONNX-file suite may leave ``inputs`` out: :func:`complete_onnx_suite` reads the names, dtypes and
dims from the file. A fixed dim stays fixed; a ``dim_param`` becomes a named dim (the one on axis 0,
whatever the file calls it, is ``batch`` and takes the suite's ``batch_sizes``; every other named dim
needs values in ``dims=``); a dim with neither, or with a size of -1 or 0 (older exporters' "unknown"), is
named ``<input>_dim<axis>``. Float inputs draw from
[-1, 1], integer inputs from {0, 1} (``range=(0, 2)``: safe for ids, masks and indices), bools half
true. ``output_names`` and ``classifier_outputs`` are checked against the file's outputs, and outputs
whose shape squeezes to ``[N, C]`` (``[N, C]``, ``[N, C, 1, 1]``, ...) get top-1 agreement by default.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_trtbench.suite_types import Dim, Input, SuiteError

if TYPE_CHECKING:
    from pytest_trtbench.suite import Suite

BATCH = "batch"
INT_RANGE = (0.0, 2.0)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int | str | None, ...]
    """Fixed size, ``dim_param`` name, or ``None`` (unknown)."""
    dtype: str


@dataclass(frozen=True)
class OnnxSignature:
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]


def read_signature(path: Path) -> OnnxSignature:
    """The graph's real inputs (initializers listed as inputs left out) and outputs."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError, OSError, ...
        raise SuiteError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    if not model.graph.node and not model.graph.input:  # protobuf parses an empty or foreign file as an empty model
        raise SuiteError(f"{path}: not a readable ONNX model (no graph: the file is empty or not ONNX)")
    initializers = {i.name for i in model.graph.initializer}
    inputs = tuple(_info(v) for v in model.graph.input if v.name not in initializers)
    return OnnxSignature(inputs, tuple(_info(v) for v in model.graph.output))


def _info(value: Any) -> TensorInfo:
    from onnx import helper

    tensor = value.type.tensor_type
    dims: list[int | str | None] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value"):  # older exporters write -1 (or 0) for an unknown size
            dims.append(d.dim_value if d.dim_value > 0 else None)
        else:
            dims.append(d.dim_param or None)
    try:
        dtype = str(helper.tensor_dtype_to_np_dtype(tensor.elem_type)) if tensor.elem_type else "float32"
    except (KeyError, ValueError):
        dtype = f"onnx-type-{tensor.elem_type}"
    return TensorInfo(value.name, tuple(dims), dtype)


def inputs_from_signature(signature: OnnxSignature) -> list[Input]:
    batch_names = {t.dims[0] for t in signature.inputs if t.dims and isinstance(t.dims[0], str)}
    out = []
    for t in signature.inputs:
        shape: list[Dim] = []
        for axis, d in enumerate(t.dims):
            if isinstance(d, int):
                shape.append(d)
            elif axis == 0 or d in batch_names:
                shape.append(BATCH)
            else:
                shape.append(d if d is not None else f"{t.name}_dim{axis}")
        integer = t.dtype.startswith(("int", "uint"))
        out.append(Input(t.name, tuple(shape), dtype=t.dtype, range=INT_RANGE if integer else (-1.0, 1.0)))
    return out


def squeezes_to_classes(dims: tuple[int | str | None, ...]) -> bool:
    """``[N, C]`` or ``[N, C, 1, ..., 1]`` with a fixed ``C >= 2``."""
    return len(dims) >= 2 and isinstance(dims[1], int) and dims[1] >= 2 and all(d == 1 for d in dims[2:])


def complete_onnx_suite(suite: Suite) -> None:
    """Fill a file-based suite's inputs and default classifier outputs from its file; check its names."""
    path = suite.onnx_path()
    if not path.is_file():
        raise SuiteError(f"ONNX file {path} does not exist; fix the suite's model= path (relative paths are "
                         "relative to the suite file)")
    signature = read_signature(path)
    real = signature.output_names
    for field, names in (("output_names", suite.output_names or ()), ("classifier_outputs", suite.classifier_outputs)):
        unknown = [n for n in names if n not in real]
        if unknown:
            raise SuiteError(f"{field} names {unknown}, which {path.name} does not output; its outputs are {real}")
    declared = [i.name for i in suite.inputs]
    if not declared:
        suite.inputs = inputs_from_signature(signature)
        undefined = sorted({d for i in suite.inputs for d in i.shape if isinstance(d, str) and d != BATCH} - set(suite.dims))
        if undefined:
            raise SuiteError(f"{path.name} has dynamic dims {undefined}; give their values, e.g. "
                             f"dims={{{', '.join(f'{d!r}: [16]' for d in undefined)}}}")
    elif sorted(declared) != sorted(t.name for t in signature.inputs):
        raise SuiteError(f"declares inputs {declared} but {path.name} has inputs {[t.name for t in signature.inputs]}; "
                         "make the Input names match the model, or leave inputs out to take them from the file")
    if not suite.classifier_outputs:
        wanted = set(suite.output_names or real)
        suite.classifier_outputs = [o.name for o in signature.outputs if o.name in wanted and squeezes_to_classes(o.dims)]
