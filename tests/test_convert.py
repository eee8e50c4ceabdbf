"""fp32 -> fp16 conversion: graph outputs that the graph itself consumes (BERT's pooler reads
last_hidden_state) and constants beyond fp16's range (attention masks use float32's minimum)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from pytest_trtbench.precision.convert import convert_float_precision  # noqa: E402


def model_with_consumed_output(path: Path) -> Path:
    w = numpy_helper.from_array(np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4), "w")
    mask = numpy_helper.from_array(np.array([np.finfo(np.float32).min], np.float32), "mask_min")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["hidden"], name="proj"),
            helper.make_node("Relu", ["hidden"], ["r"], name="relu"),
            helper.make_node("Max", ["r", "mask_min"], ["clamped"], name="max_with_mask_min"),
            helper.make_node("ReduceSum", ["clamped"], ["pooled"], name="pool", keepdims=0),
        ],
        "consumed_output",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [])],
        [w, mask],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def run(path: Path, x: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})


def test_graph_output_consumed_inside_the_graph(tmp_path: Path) -> None:
    src = model_with_consumed_output(tmp_path / "m.onnx")
    dst = tmp_path / "m.fp16.onnx"
    summary = convert_float_precision(src, dst, "fp16")
    assert summary["converted"] >= 3
    converted = onnx.load(str(dst))
    onnx.checker.check_model(converted, full_check=True)
    assert [o.type.tensor_type.elem_type for o in converted.graph.output] == [TensorProto.FLOAT] * 2
    x = np.random.default_rng(0).uniform(-1, 1, (3, 4)).astype(np.float32)
    for got, want in zip(run(dst, x), run(src, x)):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, atol=5e-3, rtol=5e-3)
