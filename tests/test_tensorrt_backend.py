"""The TensorRT backend, with real engines built by TensorRT-RTX on a CPU-only machine.

TensorRT-RTX builds without a GPU; nothing here executes an engine.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pytest_trtbench.backends.base import BackendError, BuildRequest
from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.precision.convert import convert_float_precision
from pytest_trtbench.profile import InputRange, ShapeProfile

pytest.importorskip("tensorrt_rtx", reason="needs tensorrt-rtx (pip install tensorrt-rtx)")

from pytest_trtbench.backends.tensorrt import ENGINE_FILE, TensorRTBackend, TimingCacheFile  # noqa: E402
from pytest_trtbench.backends.tensorrt.layers import parse_layer_listing  # noqa: E402

CPU = DeviceInfo(gpu="cpu", device_name="test-cpu", kind="cpu")
BATCH = ShapeProfile.from_mapping({"x": InputRange((1, 16), (4, 16), (8, 16))})


def write_mlp(path: Path, *, bad_node: str | None = None) -> Path:
    """x[b,16] -> MatMul -> Add -> Relu -> MatMul -> Softmax -> y[b,8], dynamic batch."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32) * 0.3, "w1"),
        numpy_helper.from_array(rng.standard_normal(32).astype(np.float32) * 0.1, "b1"),
        numpy_helper.from_array(rng.standard_normal((32, 8)).astype(np.float32) * 0.3, "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"], name="mm1"),
        helper.make_node("Add", ["h1", "b1"], ["h2"], name="add1"),
        helper.make_node("Relu", ["h2"], ["h3"], name="relu1"),
        helper.make_node("MatMul", ["h3", "w2"], ["h4"], name="mm2"),
        helper.make_node("Softmax", ["h4"], ["y"], name="softmax", axis=-1),
    ]
    if bad_node == "unknown_op":
        nodes[2] = helper.make_node("FrobnicateRelu", ["h2"], ["h3"], name="relu1")
    elif bad_node == "wrong_inputs":
        nodes[3] = helper.make_node("MatMul", ["h3"], ["h4"], name="mm2")
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def request(onnx_path: Path, precision: str, **options: object) -> BuildRequest:
    return BuildRequest(onnx_path=onnx_path, precision=precision, profiles=(BATCH,), device=CPU, options=options)


def build(tmp_path: Path, req: BuildRequest, name: str) -> tuple[object, Path, float]:
    out = tmp_path / name
    out.mkdir()
    start = time.perf_counter()
    result = TensorRTBackend().build(req, out, tmp_path / "cache")
    return result, out, time.perf_counter() - start


@pytest.fixture
def mlp(tmp_path: Path) -> Path:
    return write_mlp(tmp_path / "mlp.onnx")


def test_fp32_engine_is_written_and_all_fp32(tmp_path: Path, mlp: Path) -> None:
    result, out, _ = build(tmp_path, request(mlp, "fp32"), "fp32")  # build time: a benchmark's job, not a test's
    assert (out / ENGINE_FILE).stat().st_size > 1000
    assert result.files == [ENGINE_FILE]
    md = result.metadata
    assert md["engine_bytes"] == (out / ENGINE_FILE).stat().st_size
    assert md["flavor"] == "tensorrt_rtx" and md["version"]
    assert md["engine_precisions"].get("fp32", 0) >= 1
    assert set(md["engine_precisions"]) == {"fp32"}, md["engine_precisions"]
    assert {"mm1", "mm2", "softmax"} <= {n for layer in md["layers"] for n in layer["onnx"]}


def test_fp16_engine_realizes_fp16_layers(tmp_path: Path, mlp: Path) -> None:
    result, out, _ = build(tmp_path, request(mlp, "fp16"), "fp16")
    md = result.metadata
    assert (out / ENGINE_FILE).stat().st_size > 1000
    assert md["precision_mode"] == "strongly_typed"
    assert md["engine_precisions"].get("fp16", 0) >= 2, md["engine_precisions"]
    assert md["conversion"]["converted"] >= 5
    assert (out / "model.fp16.onnx").exists() and "model.fp16.onnx" in result.files


def test_fp32_ops_stay_fp32_in_the_engine(tmp_path: Path, mlp: Path) -> None:
    result, _, _ = build(tmp_path, request(mlp, "fp16", fp32_ops=["MatMul", "Softmax"]), "mixed")
    assert result.metadata["conversion"]["kept_nodes"] == ["mm1", "mm2", "softmax"]
    assert result.metadata["engine_precisions"].get("fp32", 0) >= 1, result.metadata["engine_precisions"]


@pytest.mark.parametrize(("bad", "op"), [("unknown_op", "FrobnicateRelu"), ("wrong_inputs", "MatMul")])
def test_parser_error_names_node_op_and_file(tmp_path: Path, bad: str, op: str) -> None:
    broken = write_mlp(tmp_path / f"{bad}.onnx", bad_node=bad)
    node = "relu1" if bad == "unknown_op" else "mm2"
    with pytest.raises(BackendError) as excinfo:
        build(tmp_path, request(broken, "fp32"), bad)
    message = str(excinfo.value)
    assert f"'{node}'" in message and f"op {op}" in message and str(broken) in message


def test_corrupt_or_missing_engine_fails_load_with_backend_error(tmp_path: Path, mlp: Path) -> None:
    result, out, _ = build(tmp_path, request(mlp, "fp32"), "fp32")
    backend = TensorRTBackend()
    engine = out / ENGINE_FILE
    blob = bytearray(engine.read_bytes())
    blob[:32] = bytes(32)
    engine.write_bytes(bytes(blob))
    with pytest.raises(BackendError, match="malformed_engine"):
        backend.load(out, result.metadata, request(mlp, "fp32"))
    with pytest.raises(BackendError, match="malformed_engine"):
        backend.verify(out, result.metadata)  # the check build-only runs use, without CUDA
    engine.write_bytes(b"")
    with pytest.raises(BackendError, match="is empty"):
        backend.load(out, result.metadata, request(mlp, "fp32"))
    engine.unlink()
    with pytest.raises(BackendError, match="cannot read engine"):
        backend.load(out, result.metadata, request(mlp, "fp32"))


def test_dynamic_input_missing_from_profile_is_refused(tmp_path: Path, mlp: Path) -> None:
    other = ShapeProfile.from_mapping({"z": InputRange((1,), (1,), (1,))})
    req = BuildRequest(onnx_path=mlp, precision="fp32", profiles=(other,), device=CPU)
    with pytest.raises(BackendError, match=r"names \['z'\]"):
        build(tmp_path, req, "noprofile")


def test_reasons_for_cpu_h100_and_targets() -> None:
    backend = TensorRTBackend()
    assert backend.execution_unavailable_reason(CPU) == "no CUDA device: built, not executed"
    h100 = DeviceInfo(gpu="h100", device_name="NVIDIA H100 80GB HBM3", kind="cuda", compute_capability="9.0")
    assert "compute capability 9.0" in (backend.execution_unavailable_reason(h100) or "")
    h100_target = DeviceInfo(gpu="h100", device_name="h100", kind="cuda", compute_capability="9.0", target_only=True)
    assert "cannot build for compute capability 9.0" in (backend.unsupported_reason("fp16", h100_target) or "")
    assert backend.unsupported_reason("fp16", CPU) is None
    assert "unknown precision" in (backend.unsupported_reason("fp64", CPU) or "")


def test_build_for_absent_gpu_targets_its_compute_capability(tmp_path: Path, mlp: Path) -> None:
    a10 = DeviceInfo(gpu="a10", device_name="a10", kind="cuda", compute_capability="8.6", target_only=True)
    req = BuildRequest(onnx_path=mlp, precision="fp32", profiles=(BATCH,), device=a10)
    result, out, _ = build(tmp_path, req, "a10")
    assert (out / ENGINE_FILE).stat().st_size > 1000
    assert TensorRTBackend().cache_identity(req)["compute_capability"] == "8.6"


def test_cache_identity_is_sensitive_to_options(mlp: Path) -> None:
    backend = TensorRTBackend()
    base = backend.cache_identity(request(mlp, "fp16"))
    assert base == backend.cache_identity(request(mlp, "fp16"))
    assert base != backend.cache_identity(request(mlp, "fp16", opt_level=5))
    assert base["flavor"] == "tensorrt_rtx"


def test_timing_cache_is_not_used_by_tensorrt_rtx(tmp_path: Path, mlp: Path) -> None:
    result, _, _ = build(tmp_path, request(mlp, "fp32"), "fp32")
    assert result.metadata["timing_cache"].startswith("not supported by tensorrt_rtx")
    assert not (tmp_path / "cache" / "timing.cache").exists()


class FakeTimingCache:
    def __init__(self, entries: set[bytes]) -> None:
        self.entries = set(entries)

    def combine(self, other: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.entries |= other.entries
        return True

    def serialize(self) -> bytes:
        return b"\n".join(sorted(self.entries))


class FakeConfig:
    """The two IBuilderConfig calls TimingCacheFile makes (TensorRT 10/11 have a real cache)."""

    def __init__(self, tactic: bytes) -> None:
        self.tactic = tactic
        self.loaded: set[bytes] = set()

    def create_timing_cache(self, blob: bytes) -> FakeTimingCache:
        return FakeTimingCache({line for line in bytes(blob).split(b"\n") if line})

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.loaded = set(cache.entries)
        cache.entries.add(self.tactic)  # what this build times
        return True


def test_timing_cache_file_is_created_reused_and_merged(tmp_path: Path) -> None:
    path = tmp_path / "gpu" / "timing.cache"
    first, second, third = FakeConfig(b"a"), FakeConfig(b"b"), FakeConfig(b"c")
    cache1 = TimingCacheFile(path)
    cache1.attach(first)
    cache2 = TimingCacheFile(path)
    cache2.attach(second)  # concurrent build: starts before the first saved
    cache1.merge_and_save(first)
    assert path.read_bytes() == b"a"
    cache2.merge_and_save(second)
    assert path.read_bytes() == b"a\nb"  # merged, not overwritten
    TimingCacheFile(path).attach(third)
    assert third.loaded == {b"a", b"b"}  # reused by the next build
    assert not list(path.parent.glob(".timing-*"))


def test_layer_listing_parser_reads_types_and_onnx_nodes() -> None:
    listing = (
        "Layers:\nName: k1, LayerType: gemm, Inputs: [ { Name: x, Datatype: Int8, Format: (Linear) } ], "
        "Constants: [ { Name: w, Datatype: Int8, Format: (Linear) } ], Outputs: [ { Name: y, Datatype: Half, "
        "Format: (Linear) } ], TacticName: t, StreamId: 0, Metadata: [ONNX Layer: conv1]\x1f[ONNX Layer: relu1]\n"
        "Name: r, LayerType: reformat, Inputs: [ { Name: y, Datatype: Half } ], Outputs: [ { Name: z, "
        "Datatype: Float } ], TacticName: , StreamId: 0, Metadata: "
    )
    layers = parse_layer_listing(listing)
    assert [(la["name"], la["precision"], la["onnx"]) for la in layers] == [
        ("k1", "int8", ["conv1", "relu1"]),
        ("r", "fp16", []),
    ]


def test_int8_without_calibration_is_refused(tmp_path: Path, mlp: Path) -> None:
    with pytest.raises(BackendError, match="int8 needs calibration data"):
        build(tmp_path, request(mlp, "int8"), "int8")


def test_int8_builds_from_qdq_model(tmp_path: Path, mlp: Path) -> None:
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((4, 16)).astype(np.float32)} for _ in range(4)]
    req = BuildRequest(onnx_path=mlp, precision="int8", profiles=(BATCH,), device=CPU, calibration=lambda: iter(feeds))
    result, out, _ = build(tmp_path, req, "int8")
    assert (out / "model.int8.onnx").exists()
    assert result.metadata["engine_precisions"].get("int8", 0) >= 1, result.metadata["engine_precisions"]


# -- convert_float_precision -------------------------------------------------------------------


def test_fp16_conversion_keeps_io_fp32_and_matches_onnxruntime(tmp_path: Path, mlp: Path) -> None:
    import onnxruntime as ort

    dst = tmp_path / "mlp16.onnx"
    summary = convert_float_precision(mlp, dst, "fp16")
    assert summary["converted"] == 5 and summary["kept"] == 0
    model = onnx.load(str(dst))
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert {i.data_type for i in model.graph.initializer} == {TensorProto.FLOAT16}
    x = np.random.default_rng(2).standard_normal((5, 16)).astype(np.float32)
    ref = ort.InferenceSession(str(mlp), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=2e-3, rtol=1e-2)
    assert not np.array_equal(got, ref)  # it really computed in fp16


def test_conversion_keeps_named_nodes_op_types_and_large_initializers(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    big = numpy_helper.from_array(np.full(4, 1e6, np.float32), "big")
    nodes = [
        helper.make_node("Mul", ["x", "big"], ["m"], name="scale_up"),  # 1e6 is out of fp16 range
        helper.make_node("Sigmoid", ["m"], ["s"], name="sig"),
        helper.make_node("Tanh", ["s"], ["t"], name="keep_me"),
        helper.make_node("Exp", ["t"], ["y"], name="exp"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [big])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src, dst = tmp_path / "g.onnx", tmp_path / "g16.onnx"
    onnx.save(model, str(src))
    summary = convert_float_precision(src, dst, "fp16", keep_fp32_ops=["keep_me", "Exp"])
    assert summary["kept_nodes"] == ["scale_up", "keep_me", "exp"]
    assert summary["converted"] == 1
    converted = onnx.load(str(dst))
    assert next(i for i in converted.graph.initializer if i.name == "big").data_type == TensorProto.FLOAT
    import onnxruntime as ort

    feed = {"x": np.linspace(-1e-5, 1e-5, 8, dtype=np.float32).reshape(2, 4)}
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    got = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    np.testing.assert_allclose(got, ref, rtol=2e-3)


def test_bf16_conversion_passes_the_onnx_checker(tmp_path: Path, mlp: Path) -> None:
    # ONNX Runtime's CPU provider has no bf16 MatMul/Add kernels, so the model is checked, not run
    dst = tmp_path / "mlp_bf16.onnx"
    summary = convert_float_precision(mlp, dst, "bf16")
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    assert summary["converted"] == 5
    assert {i.data_type for i in model.graph.initializer} == {TensorProto.BFLOAT16}
