"""Contract tests: our real TensorRT runtime code driven through a FAKE TensorRT runtime (tests/fake_trt.py).

No machine here can execute a TensorRT engine. These tests run the real ``TensorRTEngine`` /
``TensorRTLaunch`` / CUDA-graph code against a fake engine that carries real metadata (tensor names,
dtypes, shapes, profiles from TensorRT-RTX parses and CPU builds) and enforces the documented rules.
They prove the calls are made in a legal order with checked results -- not that TensorRT computes
anything. Each ``test_audit_N_*`` covers item N of issue 17 and fails on the code before the fix.
"""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pytest_trtbench.backends.base import BackendError, BuildRequest
from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.profile import InputRange, ShapeProfile

fake_trt = pytest.importorskip("fake_trt")  # skips without tensorrt-rtx

from fake_trt import EngineSpec, FakeEngine, FakeRuntime, fake_module, spec_from_rtx_build  # noqa: E402
from test_tensorrt_backend import write_mlp  # noqa: E402

from pytest_trtbench.backends.tensorrt import build, layers, runtime  # noqa: E402
from pytest_trtbench.backends.tensorrt.backend import TensorRTBackend  # noqa: E402
from pytest_trtbench.backends.tensorrt.flavor import TensorRTFlavor, detect_flavor  # noqa: E402

H100 = DeviceInfo(gpu="h100", device_name="NVIDIA H100", kind="cuda", compute_capability="9.0")
A10 = DeviceInfo(gpu="a10", device_name="NVIDIA A10", kind="cuda", compute_capability="8.6")
BATCH = {"x": ((1, 16), (4, 16), (8, 16))}
TWO_PROFILES = [{"x": ((1, 16), (4, 16), (8, 16))}, {"x": ((9, 16), (16, 16), (32, 16))}]


def shape_profiles(ranges: list[dict]) -> tuple[ShapeProfile, ...]:
    return tuple(
        ShapeProfile.from_mapping({n: InputRange(*map(tuple, r)) for n, r in p.items()}) for p in ranges
    )


def save(path: Path, nodes: list, inputs: list, outputs: list) -> Path:
    model = helper.make_model(helper.make_graph(nodes, path.stem, inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    f = TensorProto.FLOAT
    return {
        "mlp": write_mlp(d / "mlp.onnx"),
        "scalar": save(d / "scalar.onnx", [helper.make_node("Mul", ["x", "s"], ["y"], name="mul")],
                       [helper.make_tensor_value_info("x", f, ["b", 16]), helper.make_tensor_value_info("s", f, [])],
                       [helper.make_tensor_value_info("y", f, ["b", 16])]),
        "reshape": save(d / "reshape.onnx", [helper.make_node("Reshape", ["x", "shape"], ["y"], name="r")],
                        [helper.make_tensor_value_info("x", f, ["b", 16]),
                         helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                        [helper.make_tensor_value_info("y", f, ["b", 16])]),
    }


@pytest.fixture(scope="module")
def specs(models: dict[str, Path]) -> dict[str, EngineSpec]:
    """Real metadata: every engine but ``reshape`` is really built by TensorRT-RTX on this CPU
    (a shape-tensor input needs profile *values*, which our builder refuses; see the build test)."""
    return {
        "mlp": spec_from_rtx_build(models["mlp"], [BATCH]),
        "mlp2": spec_from_rtx_build(models["mlp"], TWO_PROFILES),
        "mlp0": spec_from_rtx_build(models["mlp"], [{"x": ((0, 16), (4, 16), (8, 16))}]),
        "scalar": spec_from_rtx_build(models["scalar"], [BATCH]),
        "reshape": spec_from_rtx_build(models["reshape"], [BATCH], build=False),
    }


@pytest.fixture
def rt() -> FakeRuntime:
    return FakeRuntime()


def rtx_flavor() -> TensorRTFlavor:
    flavor = detect_flavor("tensorrt_rtx")
    assert flavor is not None
    return flavor


def full_flavor(version: str = "10.8.0") -> TensorRTFlavor:
    return TensorRTFlavor.of(fake_module("tensorrt", version))


def load(rt: FakeRuntime, spec: EngineSpec, kind: str = "rtx", ranges: list[dict] | None = None) -> Any:
    flavor = rtx_flavor() if kind == "rtx" else full_flavor()
    fake = FakeEngine(rt, spec, kind)
    engine = runtime.TensorRTEngine(flavor, None, fake, shape_profiles(ranges or spec.profiles), rt.cuda)
    return engine, fake


def feeds(batch: int = 4, **extra: np.ndarray) -> dict[str, np.ndarray]:
    return {"x": np.ones((batch, 16), np.float32), **extra}


# -- the documented rules, on the ordinary path ------------------------------------------------


@pytest.mark.parametrize("kind", ["rtx", "trt10"])
def test_prepare_and_run_follow_the_rules_on_both_profiles(rt: FakeRuntime, specs: dict, kind: str) -> None:
    engine, fake = load(rt, specs["mlp2"], kind)
    for batch in (4, 20, 1, 32):
        launch = engine.prepare(feeds(batch))
        launch()
        assert tuple(launch.outputs["y"].shape) == (batch, 8)
    assert rt.violations == []
    assert [c.profile for c in fake.contexts[:2]] == [0, 1]
    assert sum(c.enqueues for c in fake.contexts) == 4


def test_two_launches_sharing_a_context_rebind_before_enqueue(rt: FakeRuntime, specs: dict) -> None:
    engine, fake = load(rt, specs["mlp"], "trt10")
    small, large = engine.prepare(feeds(2)), engine.prepare(feeds(8))
    small()
    large()
    small()
    assert fake.contexts[0].shapes["x"] == (2, 16)
    assert fake.contexts[0].addresses["x"] == small.inputs["x"].address
    assert rt.violations == []


def test_capture_after_another_launch_changed_shapes_warms_up_first(rt: FakeRuntime, specs: dict) -> None:
    engine, _ = load(rt, specs["mlp"], "trt10")
    first = engine.prepare(feeds(2))
    first()
    engine.prepare(feeds(8))()  # changes the shared context's shapes
    replay = first.capture_graph()
    replay()
    assert rt.violations == []
    assert rt.manual_captures == 1


# -- audit items -------------------------------------------------------------------------------


def test_audit_1_rtx_graphs_use_builtin_capture_and_eager_kernels(rt: FakeRuntime, specs: dict) -> None:
    engine, fake = load(rt, specs["mlp"], "rtx")
    launch = engine.prepare(feeds(4))
    launch()
    replay = launch.capture_graph()
    assert callable(replay)
    replay()
    replay.synchronize()
    assert rt.violations == []
    assert rt.manual_captures == 0  # no stream capture of an engine built without REQUIRE_USER_ALLOCATION
    assert sum(c.builtin_graph_launches for c in fake.contexts) >= 1
    assert set().union(*(c.strategies_run for c in fake.contexts)) == {"EAGER"}


def test_audit_2_inspector_failures_fall_back_to_the_builder_log(rt: FakeRuntime) -> None:
    listing = "Layers:\nName: mm1, LayerType: gemm, Inputs: [ { Name: x, Datatype: Half } ], Outputs: [ { Name: h, " \
              "Datatype: Half } ], TacticName: t, Metadata: [ONNX Layer: mm1]"
    logger = types.SimpleNamespace(layer_listings=[listing], errors=[])
    good = {"Layers": [{"Name": "mm1", "LayerType": "gemm", "Inputs": [{"Format/Datatype": "Half"}],
                        "Outputs": [{"Format/Datatype": "Half"}], "Metadata": "[ONNX Layer: mm1]"}]}

    def flavor_with(inspector: Any) -> TensorRTFlavor:
        module = fake_module()
        engine = types.SimpleNamespace(create_engine_inspector=lambda: inspector)
        module.Runtime = lambda logger: types.SimpleNamespace(  # type: ignore[attr-defined]
            deserialize_cuda_engine=lambda blob: engine)
        return TensorRTFlavor.of(module)

    def info(text: str) -> Any:
        return types.SimpleNamespace(get_engine_information=lambda fmt: text)

    def broken(fmt: Any) -> str:
        raise RuntimeError("inspector exploded")

    got, source = layers.engine_layers(flavor_with(info(json.dumps(good))), b"", logger, can_execute=True)
    assert source == "inspector" and got[0]["precision"] == "fp16"
    for bad in (info("{not json"), types.SimpleNamespace(get_engine_information=broken), None, info('["x"]')):
        got, source = layers.engine_layers(flavor_with(bad), b"", logger, can_execute=True)
        assert source.startswith("builder_log") and "inspector" in source
        assert got[0]["precision"] == "fp16"


def test_audit_3_graph_replay_works_with_a_stream_that_is_no_context_manager(rt: FakeRuntime, specs: dict) -> None:
    """torch 2.4-2.6 streams have no ``__enter__`` (pytorch PR #140138 added it in 2.7); the torch CUDA layer
    replays under ``torch.cuda.stream(s)``, and a replay on the fake layer runs on the captured stream."""
    engine, _ = load(rt, specs["mlp"], "trt10")
    launch = engine.prepare(feeds(4))
    launch()
    replay = launch.capture_graph()
    replay()
    replay()
    assert rt.violations == []


def test_audit_4_tensorrt_10_0_is_refused_with_the_version_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    for version, refused in (("10.0.1", True), ("10.1.0", False), ("10.16.0", False)):
        monkeypatch.setitem(sys.modules, "tensorrt", fake_module("tensorrt", version))
        detect_flavor.cache_clear()
        try:
            reason = TensorRTBackend("tensorrt").unsupported_reason("fp32", H100)
        finally:
            detect_flavor.cache_clear()
        assert (reason is not None and "10.1" in reason) == refused, (version, reason)


def test_audit_4_hardware_compat_level_missing_from_this_version_is_a_clear_error(tmp_path: Path) -> None:
    flavor = TensorRTFlavor.of(fake_module("tensorrt", "10.3.0", hardware_levels=("NONE", "AMPERE_PLUS")))
    request = BuildRequest(onnx_path=tmp_path / "m.onnx", precision="fp32", profiles=(), device=H100,
                           options={"hardware_compat": "same_compute_capability"})
    config = types.SimpleNamespace(set_flag=lambda f: None, clear_flag=lambda f: None,
                                   add_optimization_profile=lambda p: None)
    network = types.SimpleNamespace(num_inputs=0)
    with pytest.raises(BackendError, match=r"same_compute_capability.*ampere_plus"):
        build.configure(flavor, None, network, config, request, "builder_flags")


def test_audit_5_capture_is_thread_local(rt: FakeRuntime, specs: dict) -> None:
    engine, _ = load(rt, specs["mlp"], "trt10")
    launch = engine.prepare(feeds(4))
    launch()
    launch.capture_graph()
    assert not [v for v in rt.violations if "mode" in v]


def test_audit_6_fp8_is_refused_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", fake_module("tensorrt", "10.8.0"))
    detect_flavor.cache_clear()
    try:
        reason = TensorRTBackend("tensorrt").unsupported_reason("fp8", H100)
    finally:
        detect_flavor.cache_clear()
    assert reason is not None and "fp8" in reason and "Q/DQ" in reason


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_audit_7_tensorrt_10_half_precision_is_strongly_typed(tmp_path: Path, precision: str) -> None:
    request = BuildRequest(onnx_path=tmp_path / "m.onnx", precision=precision, profiles=(), device=H100)
    assert build.precision_mode(full_flavor(), request) == "strongly_typed"
    assert build.precision_mode(full_flavor(), BuildRequest(
        onnx_path=tmp_path / "m.onnx", precision="int8", profiles=(), device=H100)) == "builder_flags"


def test_audit_8_zero_size_tensors_bind_non_null_addresses(rt: FakeRuntime, specs: dict) -> None:
    engine, _ = load(rt, specs["mlp0"], "trt10")
    launch = engine.prepare(feeds(0))
    launch()
    assert tuple(launch.outputs["y"].shape) == (0, 8)
    assert rt.violations == []


def test_audit_8_host_shape_tensor_inputs_bind_host_memory(rt: FakeRuntime, specs: dict) -> None:
    engine, fake = load(rt, specs["reshape"], "trt10")
    launch = engine.prepare(feeds(4, shape=np.array([-1, 16], np.int64)))
    launch()
    assert rt.violations == []
    assert fake.contexts[0].addresses["shape"] not in rt.device_ptrs


def test_audit_8_zero_d_inputs_keep_their_shape(rt: FakeRuntime, specs: dict) -> None:
    engine, fake = load(rt, specs["scalar"], "trt10")
    launch = engine.prepare(feeds(4, s=np.array(2.0, np.float32)))
    launch()
    assert fake.contexts[0].shapes["s"] == ()
    assert rt.violations == []


@pytest.mark.parametrize("tensor", ["x", "y"])
def test_audit_8_failed_set_tensor_address_is_an_error(rt: FakeRuntime, specs: dict, tensor: str) -> None:
    engine, _ = load(rt, specs["mlp"], "trt10")
    rt.fail["set_tensor_address"] = tensor
    with pytest.raises(BackendError, match=rf"set_tensor_address.*'{tensor}'"):
        engine.prepare(feeds(4))


def test_audit_8_failed_profile_selection_is_an_error(rt: FakeRuntime, specs: dict) -> None:
    rt.fail["set_optimization_profile_async"] = "*"
    with pytest.raises(BackendError, match="optimization profile 1"):
        load(rt, specs["mlp2"], "trt10")


def test_audit_8_shape_tensor_inputs_are_refused_at_build_with_a_reason(tmp_path: Path, models: dict) -> None:
    cpu = DeviceInfo(gpu="cpu", device_name="test-cpu", kind="cpu")
    request = BuildRequest(onnx_path=models["reshape"], precision="fp32", profiles=shape_profiles([BATCH]),
                           device=cpu)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BackendError, match=r"'shape' of .* is a shape tensor"):
        TensorRTBackend("tensorrt_rtx").build(request, out, tmp_path / "cache")


def test_audit_9_memory_counts_every_context_at_the_all_profile_size(rt: FakeRuntime, specs: dict) -> None:
    engine, fake = load(rt, specs["mlp2"], "trt10")
    per_context = max(specs["mlp2"].profile_memory)  # kSTATIC: "sufficient for all profiles"
    assert engine.device_memory["device_memory_bytes"] == 2 * per_context
    assert engine.device_memory["context_device_memory_bytes"] == [per_context, per_context]


def test_audit_9_engines_a_suite_no_longer_needs_are_released(rt: FakeRuntime, specs: dict) -> None:
    from pytest_trtbench.engine_memo import LoadedEngines

    memo = LoadedEngines(max_loaded=2)
    engines = [load(rt, specs["mlp"], "trt10")[0] for _ in range(3)]
    for i, engine in enumerate(engines):
        memo[("suite", i, True)] = ("entry", engine)
    memo[("suite", 9, False)] = ("entry", None)  # verify-only entries hold no engine
    assert ("suite", 0, True) not in memo and ("suite", 1, True) in memo and ("suite", 9, False) in memo
    with pytest.raises(BackendError, match="released"):
        engines[0].prepare(feeds(4))
    engines[1].prepare(feeds(4))()
    memo.close()
    with pytest.raises(BackendError, match="released"):
        engines[2].prepare(feeds(4))


def test_the_runtime_goes_through_the_cuda_layer_it_is_given(rt: FakeRuntime, specs: dict) -> None:
    """Buffers, the stream handle given to TensorRT, host copies of outputs and graphs: all the layer's."""
    engine, fake = load(rt, specs["mlp"], "trt10")
    launch = engine.prepare(feeds(4))
    assert launch.cuda_stream is engine.stream and engine.stream.layer is rt.cuda
    assert launch.inputs["x"].address in rt.device_ptrs and launch.outputs["y"].address in rt.device_ptrs
    launch()
    out = launch.host_outputs()
    assert out["y"].shape == (4, 8) and out["y"].dtype == np.float32
    replay = launch.capture_graph()
    replay()
    assert rt.violations == [] and rt.manual_captures == 1 and fake.contexts[0].graph_replays == 1


def test_bf16_outputs_come_back_as_float32() -> None:
    from pytest_trtbench.backends.tensorrt.dtypes import bf16_to_float32

    words = np.array([0x3F80, 0xC000, 0x0000, 0x7FC0], np.uint16)  # 1.0, -2.0, 0.0, NaN in bfloat16
    got = bf16_to_float32(words)
    assert got.dtype == np.float32 and got[:3].tolist() == [1.0, -2.0, 0.0] and np.isnan(got[3])
