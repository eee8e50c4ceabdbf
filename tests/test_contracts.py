"""Contracts a user relies on, as fast unit tests (part of the mutation-testing selection in setup.cfg):
cache keys per precision on both backends, the device seam, option parsing, the README's CSV columns and
H200 skip reason, a latency alarm that confirmation clears, the cache's build log."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_trtbench.backends.base import BuildRequest
from pytest_trtbench.cache import BUILD_LOG, EngineCache, cache_key, key_fields
from pytest_trtbench.device import DeviceInfo, GpuSelectionError, resolve_device
from pytest_trtbench.profile import InputRange, ShapeProfile
from pytest_trtbench.regression import BlockSummary, decide_latency

REPO = Path(__file__).resolve().parents[1]
CPU = DeviceInfo(gpu="cpu", device_name="test-cpu", kind="cpu")
A10 = DeviceInfo(gpu="a10", device_name="NVIDIA A10", kind="cuda", compute_capability="8.6")
A10_TARGET = DeviceInfo(gpu="a10", device_name="a10", kind="cuda", compute_capability="8.6", target_only=True)
H200 = DeviceInfo(gpu="h200", device_name="NVIDIA H200", kind="cuda", compute_capability="9.0")
"""FAKE detected devices, injected into :func:`resolve_device` (no GPU here)."""


def tiny_model(path: Path, scale: float = 2.0) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor("s", TensorProto.FLOAT, [1], [scale])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def backend(name: str):  # type: ignore[no-untyped-def]
    if name == "tensorrt":
        pytest.importorskip("tensorrt_rtx", reason="needs tensorrt-rtx")
        from pytest_trtbench.backends.tensorrt import TensorRTBackend

        return TensorRTBackend()
    pytest.importorskip("onnxruntime")
    from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend()


def request(model: Path, precision: str, device: DeviceInfo = CPU, batch: int = 8, **options: object) -> BuildRequest:
    profile = ShapeProfile.from_mapping({"x": InputRange((1, 4), (batch, 4), (batch, 4))})
    return BuildRequest(onnx_path=model, precision=precision, profiles=(profile,), device=device, options=options)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("m") / "m.onnx")


# --- cache keys ----------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(pair=st.sampled_from([("fp16", "bf16"), ("fp32", "tf32"), ("fp32", "fp16"), ("fp16", "int8")]),
       backend_name=st.sampled_from(["onnxruntime", "tensorrt"]),
       device=st.sampled_from([CPU, A10, A10_TARGET]), batch=st.integers(1, 64))
def test_requests_that_differ_only_by_precision_never_share_an_engine(
    model: Path, pair: tuple[str, str], backend_name: str, device: DeviceInfo, batch: int
) -> None:
    be = backend(backend_name)
    a, b = (key_fields(be, request(model, p, device, batch)) for p in pair)
    assert cache_key(a) != cache_key(b), (backend_name, pair)
    # ... and the same request always gets the same key
    assert cache_key(a) == cache_key(key_fields(be, request(model, pair[0], device, batch)))


def test_fp16_and_bf16_differ_in_the_key_only_by_precision(model: Path) -> None:
    """The precision field alone tells these apart: same recipe, same backend identity."""
    for name in ("onnxruntime", "tensorrt"):
        be = backend(name)
        for pair in (("fp16", "bf16"), ("fp32", "tf32")):
            a, b = (key_fields(be, request(model, p)) for p in pair)
            differing = {k for k in a if a[k] != b[k]}
            assert "precision" in differing, (name, pair, differing)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_key_field_changes_the_key(model: Path, data: st.DataObject) -> None:
    fields = key_fields(backend("onnxruntime"), request(model, "fp32"))
    name = data.draw(st.sampled_from(sorted(fields)), label="field")
    changed = dict(fields)
    changed[name] = data.draw(st.one_of(st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=2))
                              .filter(lambda v: v != fields[name]), label="value")
    assert cache_key(changed) != cache_key(fields)
    assert cache_key(dict(reversed(list(fields.items())))) == cache_key(fields)  # order of fields is not identity
    assert re.fullmatch(r"[0-9a-f]{32}", cache_key(fields))


def test_key_fields_name_everything_an_engine_depends_on(model: Path) -> None:
    fields = key_fields(backend("onnxruntime"), request(model, "int8", A10, 16, workspace_mib=64))
    assert fields["precision"] == "int8" and fields["backend"] == "onnxruntime"
    assert fields["recipe"] and fields["layout"] >= 1 and len(fields["model_sha256"]) == 64
    assert fields["device"] == {"device_name": "NVIDIA A10", "compute_capability": "8.6"}
    assert fields["profiles"] == [request(model, "int8", A10, 16).profiles[0].as_dict()]
    assert fields["options"] == {"workspace_mib": 64}
    assert key_fields(backend("onnxruntime"), request(model, "fp16"))["recipe"]["conversion"]


def test_the_cache_logs_each_build_once_and_no_hit(tmp_path: Path) -> None:
    m = tiny_model(tmp_path / "m.onnx")
    be = backend("onnxruntime")
    cache = EngineCache(tmp_path / "cache", "cpu")
    first, _ = cache.get_or_build(be, request(m, "fp32"), "tiny fp32")
    cache.get_or_build(be, request(m, "fp32"), "tiny fp32")
    EngineCache(tmp_path / "cache", "cpu").get_or_build(be, request(m, "fp32", batch=4), "tiny fp32 b4")
    log = EngineCache(tmp_path / "cache", "cpu").build_log()
    assert [(r["key"], r["label"], r["backend"]) for r in log][0] == (first.key, "tiny fp32", "onnxruntime")
    assert len(log) == 2 and len({r["key"] for r in log}) == 2
    assert all(r["build_s"] >= 0 and r["pid"] > 0 for r in log)
    assert (tmp_path / "cache" / "cpu" / BUILD_LOG).is_file()
    assert EngineCache(tmp_path / "other", "cpu").build_log() == []


# --- the device seam: a machine with ANOTHER GPU --------------------------------------------------

def test_naming_a_gpu_other_than_the_present_one_is_refused() -> None:
    with pytest.raises(GpuSelectionError, match=r"--trt-gpu=a10 but this machine has 'NVIDIA H200' \(h200\)\. "
                                                r"Baselines of one GPU are never compared on another"):
        resolve_device("a10", present=H200)
    with pytest.raises(GpuSelectionError, match="this machine has no CUDA device"):
        resolve_device("a10", present=None)


def test_the_present_gpu_is_used_by_name_or_auto() -> None:
    for requested in ("h200", " H200 ", "auto"):
        got = resolve_device(requested, present=H200)
        assert (got.gpu, got.device_name, got.kind, got.compute_capability, got.target_only) == (
            "h200", "NVIDIA H200", "cuda", "9.0", False)
        assert got.has_cuda
    assert resolve_device("auto", present=None).gpu == "cpu"
    assert resolve_device("cpu", present=H200).kind == "cpu"


def test_build_only_targets_an_absent_gpu_even_with_another_present() -> None:
    got = resolve_device("a10", build_only=True, present=H200)
    assert (got.gpu, got.target_only, got.compute_capability, got.has_cuda) == ("a10", True, "8.6", False)


# --- option parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("0.05", 0.05), ("12.5%", 0.125), ("0.2", 0.2)])
def test_latency_tolerance_parses_percent_and_fraction(text: str, value: float) -> None:
    from pytest_trtbench.options import _tolerance as _fraction

    assert _fraction(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0%", "-5%", "five", "", "%"])
def test_bad_latency_tolerance_is_a_usage_error(text: str) -> None:
    from pytest_trtbench.options import LATENCY_TOLERANCE, _naming, _tolerance

    with pytest.raises(pytest.UsageError, match="^--trt-latency-tolerance: ") as exc:  # as the option's type= does
        _naming(LATENCY_TOLERANCE, _tolerance)(text)
    assert str(exc.value).count("--trt-latency-tolerance") == 1  # named once


# --- the README's contracts ---------------------------------------------------------------------------

def readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def test_report_columns_are_the_readme_table() -> None:
    from pytest_trtbench.report import REPORT_COLUMNS

    section = readme().split("## CSV report", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE)
    assert "top1_agreement" in documented and len(documented) == len(set(documented))
    assert REPORT_COLUMNS == documented


def test_readme_gives_the_h200_report_s_reason_for_skipped_tensorrt_cases() -> None:
    with open(REPO / "docs" / "results" / "h200_report.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["backend"] == "tensorrt"]
    reasons = {r["reason"] for r in rows}
    assert rows and {r["status"] for r in rows} == {"skipped"} and len(reasons) == 1
    from pytest_trtbench.backends.tensorrt import NOT_INSTALLED

    assert reasons == {NOT_INSTALLED}  # the code's text today for a machine without TensorRT
    section = readme().split("## Results on a GPU", 1)[1].split("\n## ", 1)[0]
    assert f"`{NOT_INSTALLED}`" in section


# --- latency: confirmation starting from a real alarm ------------------------------------------------

PATTERN = (0.985, 0.992, 0.997, 1.0, 1.003, 1.008, 1.015)


def blocks(center: float, pattern: tuple[float, ...] = PATTERN) -> list[BlockSummary]:
    return [BlockSummary(center * p, center * p * 0.02, 200) for p in pattern]


def test_confirmation_blocks_clear_a_real_outlier_alarm() -> None:
    history = [blocks(10.0), blocks(10.05), blocks(9.95), blocks(10.02), blocks(9.98)]
    bursty = blocks(10.0, (1.0, 1.0, 1.15, 1.18, 1.2))  # three of five blocks hit by a co-tenant
    first = decide_latency(history, bursty)
    assert (first.verdict, first.needs_confirmation) == ("latency_regression", True)
    second = decide_latency(history, bursty + blocks(10.0))
    assert second.verdict == "pass" and second.ratio < first.ratio
    still = decide_latency(history, bursty + blocks(11.5))  # a slowdown that persists stays a regression
    assert still.verdict == "latency_regression"


def test_tensorrt_rtx_on_an_h200_builds_but_reports_built_not_skipped() -> None:
    """What the README says would happen to the H200 run's TensorRT cases with TensorRT-RTX installed."""
    be = backend("tensorrt")
    if be.flavor is None or be.flavor.module_name != "tensorrt_rtx":
        pytest.skip("needs TensorRT-RTX as the importable TensorRT")
    assert be.unsupported_reason("fp16", H200) is None
    reason = be.execution_unavailable_reason(H200)
    assert reason is not None and "does not run engines on compute capability 9.0 (h200): built, not executed" in reason
