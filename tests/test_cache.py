"""The engine cache with the real ONNX Runtime backend: keys, hits, corrupt entries, concurrent builds."""
from __future__ import annotations

import multiprocessing
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_trtbench.backends.base import BuildRequest
from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend
from pytest_trtbench.cache import CacheWarning, EngineCache, cache_key, key_fields
from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.profile import InputRange, ShapeProfile

onnx = pytest.importorskip("onnx")
CPU = DeviceInfo(gpu="cpu", device_name="test-cpu", kind="cpu")


def tiny_model(path: Path, scale: float = 2.0) -> Path:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor("s", TensorProto.FLOAT, [1], [scale])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def request(path: Path, precision: str = "fp32", batch_max: int = 8) -> BuildRequest:
    profile = ShapeProfile.from_mapping({"x": InputRange((1, 4), (batch_max, 4), (batch_max, 4))})
    return BuildRequest(onnx_path=path, precision=precision, profiles=(profile,), device=CPU)


def test_second_get_is_a_hit_and_the_engine_runs(tmp_path: Path) -> None:
    import numpy as np

    model = tiny_model(tmp_path / "m.onnx")
    cache, backend = EngineCache(tmp_path / "cache", "cpu"), OnnxRuntimeBackend()
    first, engine = cache.get_or_build(backend, request(model), "tiny")
    second, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(backend, request(model), "tiny")
    assert (first.status, second.status) == ("built", "hit") and first.key == second.key
    assert (first.path / "meta.json").is_file() and first.metadata["build_s"] >= 0
    out = engine.run({"x": np.array([[-1, 0, 1, 2]], np.float32)})
    assert out["z"].tolist() == [[0, 0, 2, 4]]
    assert not [p for p in first.path.parent.iterdir() if p.name.startswith(".tmp")]


@settings(max_examples=25, deadline=None)
@given(precision=st.sampled_from(["fp32", "int8"]), batch=st.integers(1, 64), scale=st.floats(0.5, 4.0))
def test_cache_key_is_stable_and_sensitive(tmp_path_factory, precision: str, batch: int, scale: float) -> None:
    d = tmp_path_factory.mktemp("k")
    backend = OnnxRuntimeBackend()
    model = tiny_model(d / "m.onnx", scale)
    key = cache_key(key_fields(backend, request(model, precision, batch)))
    assert key == cache_key(key_fields(backend, request(model, precision, batch)))
    assert key != cache_key(key_fields(backend, request(model, precision, batch + 1)))
    assert key != cache_key(key_fields(backend, request(model, "int8" if precision == "fp32" else "fp32", batch)))
    other = tiny_model(d / "o.onnx", scale + 1.0)
    assert key != cache_key(key_fields(backend, request(other, precision, batch)))
    gpu = BuildRequest(model, precision, request(model, precision, batch).profiles,
                       DeviceInfo(gpu="a10", device_name="NVIDIA A10", kind="cuda", compute_capability="8.6"))
    assert key != cache_key(key_fields(backend, gpu))


@pytest.mark.parametrize("damage", ["engine", "meta"])
def test_corrupt_entry_is_rebuilt_with_a_warning(tmp_path: Path, damage: str) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    backend = OnnxRuntimeBackend()
    entry, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(backend, request(model), "tiny")
    target = entry.path / ("model.onnx" if damage == "engine" else "meta.json")
    target.write_bytes(b"\x00garbage" * 10)
    with pytest.warns(CacheWarning, match="rebuilding"):
        again, engine = EngineCache(tmp_path / "cache", "cpu").get_or_build(backend, request(model), "tiny")
    assert again.status == "built" and engine.output_names == ["z"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(backend, request(model), "tiny")
    assert third.status == "hit"


def test_rebuild_ignores_the_cache_once_per_session(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    backend = OnnxRuntimeBackend()
    EngineCache(tmp_path / "cache", "cpu").get_or_build(backend, request(model), "tiny")
    cache = EngineCache(tmp_path / "cache", "cpu", rebuild=True)
    assert cache.get_or_build(backend, request(model), "tiny")[0].status == "built"
    assert cache.get_or_build(backend, request(model), "tiny")[0].status == "hit"


def _build_in_process(args: tuple[str, str]) -> str:
    model, root = args
    entry, _ = EngineCache(Path(root), "cpu").get_or_build(OnnxRuntimeBackend(), request(Path(model)), "tiny")
    return entry.status


def test_concurrent_processes_build_an_engine_once(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        statuses = pool.map(_build_in_process, [(str(model), str(tmp_path / "cache"))] * 3)
    assert sorted(statuses) == ["built", "hit", "hit"]


def test_changing_the_int8_recipe_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_trtbench.precision import quantize

    model = tiny_model(tmp_path / "m.onnx")
    backend = OnnxRuntimeBackend()
    before = cache_key(key_fields(backend, request(model, "int8")))
    monkeypatch.setitem(quantize.RECIPE, "ops", "Conv")
    assert cache_key(key_fields(backend, request(model, "int8"))) != before
    assert key_fields(backend, request(model, "fp32"))["recipe"] == {}
