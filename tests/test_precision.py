"""The precision package: one list of precisions, one preparation step that every backend calls,
and engine cache keys that did not move when the recipes moved into ``pytest_trtbench/precision/``."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pytest_trtbench import precision
from pytest_trtbench.backends.base import BackendError, BuildRequest
from pytest_trtbench.backends.onnxruntime import ENGINE_FILE as ORT_ENGINE_FILE
from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend
from pytest_trtbench.cache import cache_key, key_fields
from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.precision.prepare import prepare_model
from pytest_trtbench.profile import InputRange, ShapeProfile
from pytest_trtbench.suite import Input, Suite, SuiteError

onnx = pytest.importorskip("onnx")
FIXED_CNN = Path(__file__).resolve().parent.parent / "suites" / "models" / "fixed_cnn.onnx"
CPU = DeviceInfo(gpu="cpu", device_name="cpu", kind="cpu")
BATCH = ShapeProfile.from_mapping({"x": InputRange((1, 16), (4, 16), (8, 16))})
HAS_TRT_RTX = importlib.util.find_spec("tensorrt_rtx") is not None


class KeyOnlyBackend:
    """Fake, labelled as such: a backend whose library identity is a constant, so that a cache key
    depends only on what pytest-trtbench itself puts in (model, precision, recipe, profile, device)."""

    name = "fake"

    def cache_identity(self, request: BuildRequest) -> dict[str, str]:
        return {"fake": "1"}


# Keys computed by the code before the recipes moved into precision/ (commit e5bbeec, cache.py's own
# precision_recipe). An engine cached then must be found now. If a change alters keys on purpose,
# bump CACHE_LAYOUT_VERSION or the recipe version, update these values and say so in the commit.
KEYS_BEFORE_THE_MOVE = {
    "fp32": "7916cfc07a6b8e170b9330c53199f1d7",
    "tf32": "f85436fb558681decc62ef95c229410a",
    "fp16": "3b46ec1c6d5d67e771f14c8499847ef3",
    "bf16": "5fda64aabb90ca379926d12372e99826",
    "int8": "f3562de4b9ec12dc4888d19a42ea06a0",
    "fp8": "1c738454f19a9e30f500405731e7d799",
}


def test_cache_keys_of_an_unchanged_model_and_recipe_are_the_keys_from_before_the_move() -> None:
    profile = ShapeProfile.from_mapping({"image": InputRange((1, 3, 32, 32), (1, 3, 32, 32), (1, 3, 32, 32))})
    keys = {}
    for name in precision.PRECISIONS:
        calibration = (lambda: [{"image": np.full((1, 3, 32, 32), 0.5, np.float32)}]) if name in precision.CALIBRATED else None
        request = BuildRequest(FIXED_CNN, name, (profile,), CPU, calibration, {})
        keys[name] = cache_key(key_fields(KeyOnlyBackend(), request))
    assert keys == KEYS_BEFORE_THE_MOVE


def test_recipes_are_the_documented_values() -> None:
    assert precision.recipe("fp32") == precision.recipe("tf32") == {}
    assert precision.recipe("fp16") == precision.recipe("bf16") == {"conversion": "convert-v2"}
    assert precision.recipe("int8") == precision.recipe("fp8") == {
        "format": "QDQ", "activations": "int8-symmetric", "weights": "int8-per-channel-symmetric",
        "calibration": "minmax", "ops": "Conv,ConvTranspose,MatMul,Gemm", "nodes": "with-weights", "bias": "float",
    }


def test_suites_validate_against_the_one_list_of_precisions() -> None:
    for name in precision.PRECISIONS:
        Suite(model="m.onnx", inputs=[Input("x", (1,))], precisions=[name])
    with pytest.raises(SuiteError, match="unknown precision 'int4'; choose from fp32, tf32, fp16, bf16, int8, fp8"):
        Suite(model="m.onnx", inputs=[Input("x", (1,))], precisions=["int4"]).validate()  # at collection, per suite
    assert set(precision.REDUCED_PRECISIONS) | {"fp32", "tf32"} == set(precision.PRECISIONS)


def write_mlp(path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"), helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2")],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 8])],
        [numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "w1"),
         numpy_helper.from_array(rng.standard_normal((32, 8)).astype(np.float32), "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _calibration() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((4, 16)).astype(np.float32)} for _ in range(4)]


def test_prepare_writes_the_copy_each_precision_needs(tmp_path: Path) -> None:
    mlp = write_mlp(tmp_path / "mlp.onnx")
    fp32 = prepare_model(BuildRequest(mlp, "fp32", (BATCH,), CPU), tmp_path)
    assert (fp32.path, fp32.files, fp32.metadata) == (mlp, [], {"recipe": {"precision": "fp32"}})
    flagged = prepare_model(BuildRequest(mlp, "fp16", (BATCH,), CPU), tmp_path, convert_floats=False)
    assert flagged.path == mlp and flagged.files == []
    half = prepare_model(BuildRequest(mlp, "fp16", (BATCH,), CPU), tmp_path)
    assert half.path == tmp_path / "model.fp16.onnx" and half.files == ["model.fp16.onnx"]
    assert half.metadata["conversion"]["converted"] >= 3
    types = {init.data_type for init in onnx.load(str(half.path)).graph.initializer}
    assert types == {onnx.TensorProto.FLOAT16}
    int8 = prepare_model(BuildRequest(mlp, "int8", (BATCH,), CPU, _calibration), tmp_path)
    ops = [n.op_type for n in onnx.load(str(int8.path)).graph.node]
    assert ops.count("QuantizeLinear") >= 2 and int8.metadata["recipe"] == {"precision": "int8", **precision.recipe("int8")}


def _backends() -> list[object]:
    found: list[object] = [OnnxRuntimeBackend()]
    if HAS_TRT_RTX:
        from pytest_trtbench.backends.tensorrt import TensorRTBackend

        found.append(TensorRTBackend("tensorrt_rtx"))
    return found


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b.name)  # type: ignore[attr-defined]
def test_every_backend_wraps_preparation_errors_the_same_way(tmp_path: Path, backend: object) -> None:
    """Both backends go through prepare_model: the same one-line BackendError naming the file, for a
    file that can't be converted (ONNX Runtime used to let onnx's DecodeError escape) and for int8
    without calibration."""
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    (tmp_path / "a").mkdir()
    with pytest.raises(BackendError, match=rf"could not convert {broken} to fp16: DecodeError"):
        backend.build(BuildRequest(broken, "fp16", (BATCH,), CPU), tmp_path / "a", tmp_path)  # type: ignore[attr-defined]
    mlp = write_mlp(tmp_path / "mlp.onnx")
    with pytest.raises(BackendError, match=rf"{mlp}: int8 needs calibration data"):
        backend.build(BuildRequest(mlp, "int8", (BATCH,), CPU), tmp_path / "a", tmp_path)  # type: ignore[attr-defined]


@pytest.mark.skipif(not HAS_TRT_RTX, reason="needs tensorrt-rtx (real builds on CPU)")
def test_both_backends_build_int8_from_the_same_qdq_model(tmp_path: Path) -> None:
    from pytest_trtbench.backends.tensorrt import TensorRTBackend

    mlp = write_mlp(tmp_path / "mlp.onnx")
    request = BuildRequest(mlp, "int8", (BATCH,), CPU, _calibration)
    written = {}
    for backend in (OnnxRuntimeBackend(), TensorRTBackend("tensorrt_rtx")):
        out = tmp_path / backend.name
        out.mkdir()
        result = backend.build(request, out, tmp_path)
        # ONNX Runtime's engine file is the Q/DQ model itself (moved to model.onnx, optimized at load)
        qdq = "model.int8.onnx" if backend.name == "tensorrt" else ORT_ENGINE_FILE
        assert qdq in result.files
        assert result.metadata["recipe"] == {"precision": "int8", **precision.recipe("int8")}
        written[backend.name] = (out / qdq).read_bytes()
    assert written["onnxruntime"] == written["tensorrt"]


def test_int8_quantizes_weighted_nodes_that_have_no_name(tmp_path: Path) -> None:
    """Node names are optional in ONNX (hand-made graphs, some converters leave them empty); the quantizer
    picks nodes by name, so an unnamed MatMul was 'no Conv/MatMul/Gemm with weights to quantize'."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from pytest_trtbench.precision.quantize import quantize_qdq

    weight = numpy_helper.from_array(np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Relu", ["mm"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [weight])
    src, dst = tmp_path / "unnamed.onnx", tmp_path / "unnamed.int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(src))
    feeds = [{"x": np.random.default_rng(i).uniform(-1, 1, size=(4, 6)).astype(np.float32)} for i in range(4)]
    quantize_qdq(src, dst, feeds, "minmax")
    ops = [node.op_type for node in onnx.load(str(dst)).graph.node]
    assert ops.count("DequantizeLinear") >= 2 and "MatMul" in ops  # the weight and the activation are Q/DQ
