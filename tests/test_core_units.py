"""Unit tests of the plain-Python core: profiles, suites, device names, comparison, baselines, timing."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_trtbench import Input, Suite, Tolerance
from pytest_trtbench.baseline import BaselineError, dumps, load_baselines, update_baselines, write_atomic
from pytest_trtbench.compare import accuracy_regressions, compare_output
from pytest_trtbench.device import GpuSelectionError, resolve_device, short_gpu_name
from pytest_trtbench.inputs import fingerprint, make_feeds, sample_at
from pytest_trtbench.measure import TimingConfig, measure_latency
from pytest_trtbench.profile import InputRange, ShapeProfile
from pytest_trtbench.suite import SuiteError
from pytest_trtbench.verdict import decide_verdict

# --- profiles and case expansion ------------------------------------------------------------------

@settings(deadline=None)  # no Hypothesis deadline: a CPU timing never decides a test (2-vCPU VMs swing 2x)
@given(
    batches=st.lists(st.integers(1, 64), min_size=1, max_size=4, unique=True),
    seqs=st.lists(st.integers(1, 512), min_size=1, max_size=4, unique=True),
)
def test_every_case_lies_inside_its_profile(batches: list[int], seqs: list[int]) -> None:
    suite = Suite(model="m.onnx", inputs=[Input("ids", ("batch", "seq"), "int64", (0, 10))],
                  batch_sizes=batches, dims={"seq": seqs}, precisions=["fp32", "int8"], name="s")
    cases = suite.cases()
    assert len(cases) == 2 * len(batches) * len(seqs)
    for case in cases:
        assert case.profile.contains(case.shape_map())
        r = case.profile["ids"]
        assert r.min == (min(batches), min(seqs)) and r.max == (max(batches), max(seqs))
    assert len({c.profile for c in cases}) == 1  # one engine per precision, not per case


def test_explicit_profiles_split_cases_and_reject_uncovered_shapes() -> None:
    base = dict(model="m.onnx", inputs=[Input("x", ("batch", 8))], batch_sizes=[1, 2, 16], name="s")
    suite = Suite(**base, profiles=[{"x": ((1, 8), (2, 8), (4, 8))}, {"x": ((8, 8), (16, 8), (32, 8))}])
    profiles = {c.batch_size: c.profile for c in suite.cases()}
    assert profiles[1] == profiles[2] != profiles[16]
    narrow = Suite(**base, profiles=[{"x": ((1, 8), (2, 8), (4, 8))}])
    with pytest.raises(SuiteError, match="lie in none of its profiles"):
        narrow.cases()


def test_case_ids_are_readable() -> None:
    suite = Suite(model="m.onnx", inputs=[Input("ids", ("batch", "seq"), "int64", (0, 5))], batch_sizes=[8],
                  dims={"seq": [128]}, precisions=["fp32"], name="test_bert")
    assert [c.case_id for c in suite.cases(["onnxruntime"])] == ["test_bert[onnxruntime-fp32-b8-seq128]"]


def test_bad_suite_declarations_are_refused_with_the_fix() -> None:
    with pytest.raises(SuiteError, match="unknown precision 'fp64'"):
        Suite(model="m.onnx", inputs=[Input("x", (1,))], precisions=["fp64"]).validate()
    with pytest.raises(SuiteError, match="uses dim 'seq' but the suite gives no values"):
        Suite(model="m.onnx", inputs=[Input("x", ("batch", "seq"))], name="s").cases()
    with pytest.raises(ValueError, match="min <= opt <= max"):
        InputRange((4,), (2,), (8,))


def test_profile_covering_rejects_mixed_ranks() -> None:
    with pytest.raises(ValueError, match="different ranks"):
        ShapeProfile.covering([{"x": (1, 2)}, {"x": (1, 2, 3)}])


# --- device names ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "short"),
    [("NVIDIA A10", "a10"), ("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA A100-SXM4-40GB", "a100"),
     ("NVIDIA GeForce RTX 4090", "rtx4090"), ("NVIDIA RTX A6000", "a6000"), ("Tesla T4", "t4"),
     ("NVIDIA L4", "l4"), ("NVIDIA H200", "h200")],
)
def test_short_gpu_name(name: str, short: str) -> None:
    assert short_gpu_name(name) == short


def test_naming_an_absent_gpu_is_refused_unless_build_only() -> None:
    with pytest.raises(GpuSelectionError, match="--trt-gpu=a10 but this machine has no CUDA device"):
        resolve_device("a10")
    target = resolve_device("a10", build_only=True)
    assert target.target_only and target.compute_capability == "8.6" and not target.has_cuda
    assert resolve_device("cpu").gpu == "cpu"


# --- inputs ----------------------------------------------------------------------------------------

def test_inputs_are_deterministic_and_respect_dtype_and_range() -> None:
    suite = Suite(model="m.onnx", inputs=[Input("ids", ("batch", 7), "int64", (3, 9)), Input("x", (2, 5))], name="s")
    a = make_feeds(suite, {"ids": (4, 7), "x": (2, 5)})
    b = make_feeds(suite, {"ids": (4, 7), "x": (2, 5)})
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["ids"].dtype == np.int64 and a["ids"].min() >= 3 and a["ids"].max() < 9
    assert a["x"].dtype == np.float32 and np.abs(a["x"]).max() <= 1.0
    calib = make_feeds(suite, {"ids": (4, 7), "x": (2, 5)}, stream="calibration")
    assert not np.array_equal(a["x"], calib["x"])


def test_fingerprint_samples_the_array() -> None:
    arr = np.arange(1000, dtype=np.float32).reshape(10, 100)
    fp = fingerprint(arr, samples=16)
    assert fp["shape"] == [10, 100] and len(fp["indices"]) == 16
    assert np.array_equal(sample_at(arr, fp["indices"]), np.asarray(fp["values"]))
    assert fp["max"] == 999.0 and math.isclose(fp["mean"], 499.5)


# --- comparison ------------------------------------------------------------------------------------

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@settings(deadline=None)
@given(st.lists(finite, min_size=1, max_size=50), st.lists(finite, min_size=1, max_size=50))
def test_error_metrics_are_symmetric(xs: list[float], ys: list[float]) -> None:
    n = min(len(xs), len(ys))
    a, b = np.asarray(xs[:n], np.float32), np.asarray(ys[:n], np.float32)
    ab, ba = compare_output("y", a, b, Tolerance()), compare_output("y", b, a, Tolerance())
    assert ab.max_abs_err == ba.max_abs_err and ab.mean_abs_err == ba.mean_abs_err
    assert math.isclose(ab.cosine_similarity, ba.cosine_similarity, rel_tol=1e-12, abs_tol=1e-12)


@settings(deadline=None)
@given(st.lists(finite, min_size=1, max_size=50))
def test_identical_outputs_pass_and_nan_never_passes(xs: list[float]) -> None:
    a = np.asarray(xs, np.float32)
    assert compare_output("y", a, a.copy(), Tolerance()).passed
    bad = a.copy()
    bad[len(bad) // 2] = np.nan
    loose = Tolerance(atol=None, rtol=0, min_cosine=None)
    result = compare_output("y", bad, a, loose)
    assert not result.passed and result.nonfinite == 1 and "NaN or Inf" in result.failures[0]


def test_tolerance_failure_reports_the_tolerance_that_would_pass() -> None:
    ref = np.linspace(-1, 1, 100, dtype=np.float32)
    out = ref + 0.01
    result = compare_output("y", out, ref, Tolerance(atol=1e-4, rtol=0.0))
    assert not result.passed and result.mismatches == 100
    assert math.isclose(result.required_atol, 0.01, rel_tol=1e-3)
    assert compare_output("y", out, ref, Tolerance(atol=result.required_atol * 1.01, rtol=0.0)).passed


def test_top1_agreement_criterion() -> None:
    ref = np.eye(4, dtype=np.float32)
    out = ref.copy()
    out[0] = [0, 1, 0, 0]  # one of four rows now predicts another class
    result = compare_output("logits", out, ref, Tolerance(atol=None, min_top1=0.99), classifier=True)
    assert result.top1_agreement == 0.75 and not result.passed
    assert "top-1 agreement 75.00 % < 99.00 %" in result.failures[0]


def test_shape_mismatch_fails() -> None:
    result = compare_output("y", np.zeros((2, 3)), np.zeros((3, 2)), Tolerance())
    assert not result.passed and "shape" in result.failures[0]


def test_accuracy_regression_slack() -> None:
    tol = lambda name: Tolerance(atol=1e-2)  # noqa: E731
    base = {"y": {"max_abs_err": 1e-3, "mean_abs_err": 1e-4, "cosine_similarity": 0.9999}}
    same = {"y": {"max_abs_err": 1.2e-3, "mean_abs_err": 1e-4, "cosine_similarity": 0.9999}}
    worse = {"y": {"max_abs_err": 5e-3, "mean_abs_err": 1e-4, "cosine_similarity": 0.999}}
    assert accuracy_regressions(same, base, tol) == []
    messages = accuracy_regressions(worse, base, tol)
    assert any("max_abs_err" in m for m in messages) and any("cosine" in m for m in messages)


# --- verdicts --------------------------------------------------------------------------------------

def test_verdict_precedence() -> None:
    kw = dict(latency_reason="", has_baseline=True)
    assert decide_verdict(accuracy_failures=["x"], accuracy_regressions=["y"], latency_verdict="latency_regression", **kw).status == "accuracy_fail"
    assert decide_verdict(accuracy_failures=[], accuracy_regressions=["y"], latency_verdict="latency_regression", **kw).status == "accuracy_regression"
    assert decide_verdict(accuracy_failures=[], accuracy_regressions=[], latency_verdict="latency_regression", **kw).status == "latency_regression"
    assert decide_verdict(accuracy_failures=[], accuracy_regressions=[], latency_verdict="improved", **kw).status == "improved"
    new = dict(accuracy_failures=[], accuracy_regressions=[], latency_verdict=None, latency_reason="", has_baseline=False)
    assert decide_verdict(**new).status == "new"
    assert decide_verdict(**new, strict=True).status == "error"


# --- baselines -------------------------------------------------------------------------------------

def test_baseline_round_trip_touches_only_given_cases(tmp_path) -> None:
    path = tmp_path / "cpu" / "s.json"
    update_baselines(path, "s", {"a": {"x": 1.0}, "b": {"x": 2.0}})
    update_baselines(path, "s", {"b": {"x": 3.0, "nan": math.nan}})
    cases = load_baselines(path)
    assert cases == {"a": {"x": 1.0}, "b": {"x": 3.0, "nan": None}}
    text = path.read_text()
    assert text == dumps(json.loads(text)) and text.index('"a"') < text.index('"b"')  # sorted, stable
    assert [p.name for p in path.parent.iterdir()] == ["s.json"]  # no temp files left


def test_malformed_baseline_names_the_file_and_the_fix(tmp_path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"schema_version": 2, "cases": {"a": ')
    with pytest.raises(BaselineError, match=r"s\.json: malformed baseline JSON .* --trt-update-baselines"):
        load_baselines(path)
    path.write_text('{"schema_version": 99, "cases": {}}')
    with pytest.raises(BaselineError, match="schema_version 99"):
        load_baselines(path)
    path.write_text("[1, 2]")
    with pytest.raises(BaselineError, match="not a pytest-trtbench baseline"):
        load_baselines(path)


def test_schema_v1_is_migrated_on_load(tmp_path) -> None:
    path = tmp_path / "s.json"
    block = {"median_ms": 1.0, "iqr_ms": 0.1, "n": 10}
    path.write_text(json.dumps({"schema_version": 1, "cases": {"a": {"latency": {"median_ms": 1.0, "blocks": [block]}}}}))
    assert load_baselines(path)["a"]["latency"]["runs"] == [
        {"blocks": [block], "machine": None, "gpu_clock_mhz": None, "launch_bound": False}]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path) -> None:
    path = tmp_path / "s.json"
    path.write_text("old")

    with pytest.raises(TypeError):
        write_atomic(path, object())  # type: ignore[arg-type]
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["s.json"]


# --- timing ----------------------------------------------------------------------------------------

class SleepLaunch:
    """A real host-side workload (sleep) standing in for an engine, to test the timing loop itself."""

    cuda_stream = None

    def __init__(self, seconds: float) -> None:
        self.seconds, self.calls = seconds, 0

    def __call__(self) -> None:
        self.calls += 1
        time.sleep(self.seconds)

    def synchronize(self) -> None:
        pass


def test_measure_latency_times_blocks_of_real_work() -> None:
    launch = SleepLaunch(0.002)
    result = measure_latency(launch, 4, TimingConfig(warmup_s=0.005, blocks=3, min_block_iters=4, min_block_s=0.01))
    assert len(result.blocks) == 3 and all(b.n >= 4 for b in result.blocks)
    assert len(result.samples_ms) == sum(b.n for b in result.blocks) < launch.calls
    # milliseconds (a 2 ms sleep: not 0.002, not 2000); the upper bound is loose because a loaded machine
    # wakes sleepers late, and a CPU timing must not decide this test
    assert 2.0 <= result.median_ms < 500.0
    summary = result.summary()
    assert summary["p90_ms"] >= summary["median_ms"] and summary["p99_ms"] >= summary["p90_ms"]
    assert math.isclose(summary["throughput_qps"], 4000.0 / summary["median_ms"])
    assert summary["method"] == "host-clock"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 100.0), min_size=2, max_size=40), st.randoms())
def test_latency_statistics_are_invariant_to_sample_order(samples: list[float], rnd) -> None:
    from pytest_trtbench.measure import LatencyResult

    shuffled = samples[:]
    rnd.shuffle(shuffled)
    a, b = LatencyResult(samples, [], 1, "x").summary(), LatencyResult(shuffled, [], 1, "x").summary()
    for key in ("median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "cov_pct"):
        assert math.isclose(a[key], b[key], rel_tol=1e-9, abs_tol=1e-12)
