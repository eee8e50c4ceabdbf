"""ONNX files of old vintages: the private normalized copy, what the ONNX Runtime engine is, and
the int8 model both backends get (real onnx, ONNX Runtime and TensorRT-RTX builds)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import corpus_models as C  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from pytest_trtbench.backends.base import BackendError, BuildRequest  # noqa: E402
from pytest_trtbench.backends.onnxruntime import ENGINE_FILE, OnnxRuntimeBackend, OnnxRuntimeEngine  # noqa: E402
from pytest_trtbench.device import DeviceInfo  # noqa: E402
from pytest_trtbench.normalize import NormalizeError, default_opset, normalize_model  # noqa: E402
from pytest_trtbench.onnx_suite import inputs_from_signature, read_signature, squeezes_to_classes  # noqa: E402
from pytest_trtbench.profile import InputRange, ShapeProfile  # noqa: E402

CPU = DeviceInfo(gpu="cpu", device_name="cpu", kind="cpu")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def corpus(tmp_path: Path) -> dict[str, Path]:
    return C.write_onnx_files(tmp_path / "models")


def test_ir3_file_with_weights_as_inputs_is_normalized_privately(corpus: dict[str, Path], tmp_path: Path) -> None:
    src = corpus["squeezenet_ir3"]
    before = _sha(src)
    fp32 = normalize_model(src, tmp_path / "norm", "fp32")
    int8 = normalize_model(src, tmp_path / "norm", "int8")
    assert _sha(src) == before  # the user's file is never touched
    assert fp32.path != src and fp32.path.parent == tmp_path / "norm"
    assert fp32.notes == ("dropped 10 initializer(s) from the graph inputs", "IR version 3 -> 4")
    assert "opset 7 -> 13 (int8 recipe needs 13)" in int8.notes
    model = onnx.load(str(int8.path))
    assert [i.name for i in model.graph.input] == ["data_0"] and default_opset(model) == 13
    onnx.checker.check_model(model, full_check=True)


def test_a_current_file_is_used_as_is(corpus: dict[str, Path], tmp_path: Path) -> None:
    src = corpus["float16_input_mlp"]  # IR 8, opset 15, nothing listed twice
    got = normalize_model(src, tmp_path / "norm", "int8")
    assert got.path == src and got.notes == () and not (tmp_path / "norm").exists()


def test_external_data_is_read_in_so_the_cache_key_covers_the_weights(corpus: dict[str, Path], tmp_path: Path) -> None:
    src = corpus["external_data_mlp"]
    got = normalize_model(src, tmp_path / "norm", "fp32")
    assert got.notes == ("external data read in",)
    assert got.path.stat().st_size > 16 * 512 * 4 > 10 * src.stat().st_size  # the weights are inside the copy
    assert not list((tmp_path / "norm").glob("*.data"))


def test_too_old_or_broken_files_are_refused_naming_file_node_and_op(tmp_path: Path) -> None:
    old = C.mlp_opset9_gemm()
    old.opset_import[0].version = 6
    path = tmp_path / "old.onnx"
    onnx.save(old, str(path))
    with pytest.raises(NormalizeError, match=r"old.onnx: IR version 4, opset 6 is older than .* \(IR >= 3, opset >= 7\)"):
        normalize_model(path, tmp_path / "norm")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")], "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]), helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 5], [0.0] * 20)],
    )
    bad = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=4), str(bad))
    with pytest.raises(NormalizeError) as info:
        normalize_model(bad, tmp_path / "norm", "int8")
    message = str(info.value)
    assert str(bad) in message and "MatMul" in message and "proj" in message


def request(path: Path, precision: str = "fp32", **profile: tuple[tuple[int, ...], ...]) -> BuildRequest:
    ranges = {name: InputRange(*shapes) for name, shapes in profile.items()}
    return BuildRequest(onnx_path=path, precision=precision, profiles=(ShapeProfile.from_mapping(ranges),), device=CPU)


def test_ort_engine_of_an_ir3_file_runs_and_stays_small(corpus: dict[str, Path], tmp_path: Path) -> None:
    """The bug: ORT's saved optimized model required the weights as inputs ("Required inputs ... are
    missing") and could be ~60 000x the source. The engine now is the (normalized) model itself."""
    import numpy as np

    src = corpus["squeezenet_ir3"]
    norm = normalize_model(src, tmp_path / "norm", "fp32").path
    out = tmp_path / "entry"
    out.mkdir()
    OnnxRuntimeBackend().build(request(norm, data_0=((1, 3, 32, 32),) * 3), out, tmp_path)
    assert (out / ENGINE_FILE).stat().st_size <= norm.stat().st_size
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype("float32")
    got = OnnxRuntimeEngine(out / ENGINE_FILE, CPU).run({"data_0": x})["softmaxout_1"]
    plain = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"data_0": x})[0]
    np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-6)


def test_ort_build_refuses_a_model_with_undeclared_inputs(tmp_path: Path) -> None:
    """A model ONNX Runtime cannot load is refused at build time, naming the file (never cached)."""
    src = tmp_path / "undeclared.onnx"
    model = C.mlp_opset9_gemm()
    del model.graph.initializer[:]  # the weights are now genuinely required inputs ...
    model.graph.input.pop()  # ... and fc2_b is used but declared nowhere
    onnx.save(model, str(src))
    out = tmp_path / "entry"
    out.mkdir()
    with pytest.raises(BackendError, match=r"onnxruntime could not load .*undeclared.onnx"):
        OnnxRuntimeBackend().build(request(src, x=((1, 16),) * 3), out, tmp_path)


def test_both_backends_accept_the_same_int8_model_of_an_opset9_file(corpus: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed")
    import numpy as np

    from pytest_trtbench.backends.tensorrt import TensorRTBackend

    norm = normalize_model(corpus["mlp_opset9_gemm"], tmp_path / "norm", "int8").path
    rng = np.random.default_rng(0)
    calib = [{"x": rng.uniform(-1, 1, (4, 16)).astype("float32")} for _ in range(4)]
    base = request(norm, "int8", x=((1, 16), (4, 16), (4, 16)))
    req = BuildRequest(onnx_path=base.onnx_path, precision="int8", profiles=base.profiles, device=CPU,
                       calibration=lambda: iter(calib))
    (tmp_path / "ort").mkdir()
    OnnxRuntimeBackend().build(req, tmp_path / "ort", tmp_path)
    qdq = onnx.load(str(tmp_path / "ort" / ENGINE_FILE))
    assert any(n.op_type == "DequantizeLinear" for n in qdq.graph.node)
    (tmp_path / "trt").mkdir()
    built = TensorRTBackend().build(req, tmp_path / "trt", tmp_path)
    assert built.metadata["engine_precisions"].get("int8", 0) > 0


def test_signature_gives_inputs_named_dims_and_classifier_outputs(corpus: dict[str, Path]) -> None:
    sig = read_signature(corpus["int64_embedding_bag"])
    (ids,) = inputs_from_signature(sig)
    assert (ids.name, ids.shape, ids.dtype, ids.range) == ("ids", ("batch", "seq"), "int64", (0.0, 2.0))
    (x,) = inputs_from_signature(read_signature(corpus["mlp_opset9_gemm"]))  # dim_param "N" on axis 0 -> batch
    assert x.shape == ("batch", 16) and x.dtype == "float32"
    (img,) = inputs_from_signature(read_signature(corpus["squeezenet_ir3"]))  # weights listed as inputs left out
    assert img.shape == (1, 3, 32, 32)
    (half,) = inputs_from_signature(read_signature(corpus["float16_input_mlp"]))
    assert half.dtype == "float16"
    assert squeezes_to_classes((1, 10, 1, 1)) and squeezes_to_classes(("N", 5))
    assert not squeezes_to_classes(("N", 5, 7)) and not squeezes_to_classes(("N", 1)) and not squeezes_to_classes(("N", "C"))
