"""Unit tests of the case pipeline (pipeline.py) with a FAKE backend, engine, reference and timer.

Everything named ``Fake*`` below is a stand-in written for these tests: no ONNX file is read, nothing is
built, and latencies are scripted numbers, not timings. What is real: the pipeline's stages, the
comparison (compare.py), the latency rule (regression.py), the verdict, the report row, the baseline
entry and the outcome's JSON round trip. The real backends run through the same pipeline in
test_plugin.py / test_tensorrt_suites.py.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pytest

from pytest_trtbench import Input, Suite
from pytest_trtbench import verdict as V
from pytest_trtbench.baseline import load_baselines, update_baselines
from pytest_trtbench.cache import CacheEntry
from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.inputs import make_feeds
from pytest_trtbench.measure import LatencyResult
from pytest_trtbench.merge import REQUIRED_COLUMNS
from pytest_trtbench.model import ModelSource
from pytest_trtbench.outcome import CaseOutcome
from pytest_trtbench.pipeline import run_case
from pytest_trtbench.regression import BlockSummary
from pytest_trtbench.report import COLUMNS, REPORT_COLUMNS, row
from pytest_trtbench.settings import Settings
from pytest_trtbench.suite import Case

CPU = DeviceInfo("cpu", "Fake CPU", "cpu")


def scripted_latency(median_ms: float, blocks: int = 5) -> LatencyResult:
    """A FAKE measurement: *blocks* blocks of 20 samples at *median_ms* (+-1 %), no clock involved."""
    samples = [median_ms * (1 + 0.01 * ((i % 3) - 1)) for i in range(20)]
    return LatencyResult(samples * blocks, [BlockSummary(median_ms, median_ms * 0.01, 20)] * blocks, 2, "host-clock")


class FakeBackend:
    """FAKE backend: only the two questions the pipeline asks before building."""

    name = "fake"

    def __init__(self, unsupported: str | None = None, not_here: str | None = None) -> None:
        self.unsupported, self.not_here = unsupported, not_here

    def unsupported_reason(self, precision: str, device: DeviceInfo) -> str | None:
        return self.unsupported

    def execution_unavailable_reason(self, device: DeviceInfo) -> str | None:
        return self.not_here


class FakeEngine:
    """FAKE engine: output ``y = 2 * x`` (+ *error*)."""

    input_names, output_names = ["x"], ["y"]

    def __init__(self, error: float = 0.0) -> None:
        self.error = error

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": 2 * feeds["x"] + self.error}


@dataclass
class FakeReference:
    """FAKE live reference: the exact ``y = 2 * x``."""

    name: str = "fake-reference"

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": 2 * feeds["x"]}


@dataclass
class FakeResources:
    """FAKE session memo (the Harness's role): scripted engine, reference, baseline and latencies."""

    settings: Settings
    backend_: FakeBackend = field(default_factory=FakeBackend)
    engine: FakeEngine = field(default_factory=FakeEngine)
    metadata: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    latencies: list[float] = field(default_factory=lambda: [1.0])
    static_shapes: dict[str, tuple[int | None, ...]] | None = None
    fail_reference: bool = False
    measured: int = 0

    def backend(self, case: Case) -> FakeBackend:
        return self.backend_

    def model(self, suite: Suite) -> ModelSource:
        return ModelSource(Path("fake.onnx"), ["x"], ["y"], FakeReference(), static_input_shapes=self.static_shapes)  # type: ignore[arg-type]

    def engine_entry(self, case: Case, *, load: bool) -> tuple[CacheEntry, FakeEngine | None]:
        entry = CacheEntry("fakekey", Path("."), {"backend": self.metadata}, "built", 1.5)
        return entry, self.engine if load else None

    def inputs(self, case: Case) -> dict[str, np.ndarray]:
        return make_feeds(case.suite, case.shape_map())

    def reference(self, case: Case) -> dict[str, np.ndarray] | None:
        if self.fail_reference:
            raise RuntimeError("reference exploded")
        return FakeReference().run(self.inputs(case))

    def reference_latency(self, case: Case) -> float:
        return 4.0

    def baseline_file(self, case: Case) -> Path:
        return self.settings.baseline_dir / "cpu" / f"{case.suite.name}.json"

    def baseline_entry(self, case: Case) -> dict[str, Any] | None:
        return self.baseline

    def measure(self, case: Case, engine: Any, feeds: Mapping[str, np.ndarray]) -> LatencyResult:
        median = self.latencies[min(self.measured, len(self.latencies) - 1)]
        self.measured += 1
        return scripted_latency(median)

    def environment(self) -> dict[str, Any]:
        return {"device_name": CPU.device_name, "cpu_model": "Fake CPU model", "versions": {}}


def fake_case(precision: str = "fp32") -> Case:
    suite = Suite(model="m.onnx", inputs=[Input("x", ("batch", 4))], batch_sizes=[2], precisions=[precision],
                  name="test_fake", source_file="suites/test_fake.py")
    return suite.cases(["fake"])[0]


def make_resources(tmp_path: Path, **kw: Any) -> FakeResources:
    settings = Settings(device=CPU, cache_dir=tmp_path / "cache", baseline_dir=tmp_path / "baselines",
                        **kw.pop("settings", {}))
    return FakeResources(settings, **kw)


def recorded_baseline(tmp_path: Path, median_ms: float = 1.0) -> dict[str, Any]:
    """A baseline entry recorded by the pipeline itself (--trt-update-baselines) at *median_ms*."""
    res = make_resources(tmp_path, settings={"update_baselines": True}, latencies=[median_ms])
    entry = run_case(fake_case(), res).baseline_entry
    assert entry is not None
    runs = [[b.to_json() for b in scripted_latency(median_ms).blocks]] * 3
    return {**entry, "latency": {**entry["latency"], "runs": runs}}


# --- the stages ------------------------------------------------------------------------------------


def test_a_matching_case_without_baseline_is_new_and_fills_every_column(tmp_path: Path) -> None:
    outcome = run_case(fake_case(), make_resources(tmp_path))
    assert outcome.status == V.NEW and not outcome.failed and outcome.message == ""
    assert outcome.engine.cache == "built" and outcome.engine.build_s == 1.5
    assert outcome.reference_backend == "fake-reference" and [c.name for c in outcome.comparisons] == ["y"]
    r = row(outcome)
    assert list(r) == REPORT_COLUMNS
    assert r["max_abs_err"] == 0.0 and r["cosine_similarity"] == pytest.approx(1.0)
    assert r["latency_ms_median"] == pytest.approx(1.0) and r["speedup_vs_reference"] == pytest.approx(4.0)
    assert r["throughput_qps"] == pytest.approx(2000.0) and r["timing_method"] == "host-clock"
    assert r["case_id"] == "test_fake[fake-fp32-b2]" and r["gpu"] == "cpu" and r["model"] == "m.onnx"
    assert math.isnan(r["baseline_latency_ms_median"]) and r["engine_key"] == "fakekey"


def test_wrong_outputs_fail_accuracy_with_statistics_and_the_update_command(tmp_path: Path) -> None:
    outcome = run_case(fake_case(), make_resources(tmp_path, engine=FakeEngine(error=0.5)))
    assert outcome.status == V.ACCURACY_FAIL and outcome.failed
    assert row(outcome)["max_abs_err"] == pytest.approx(0.5)
    assert "output y: max abs err 0.5" in outcome.message
    assert "pytest suites/test_fake.py --trt-gpu=cpu --trt-update-baselines -k 'fake-fp32-b2'" in outcome.message


def test_an_engine_without_the_asked_precision_is_an_error_that_keeps_the_engine(tmp_path: Path) -> None:
    res = make_resources(tmp_path, metadata={"engine_precisions": {"fp32": 3}})
    outcome = run_case(fake_case("fp16"), res)
    assert outcome.status == V.ERROR and "runs no compute layer in fp16 (realized: fp32:3)" in outcome.reason
    assert outcome.engine.cache == "built" and row(outcome)["engine_precisions"] == "fp32:3"
    assert res.measured == 0
    fine = run_case(fake_case("fp16"), make_resources(tmp_path, metadata={"engine_precisions": {"fp16": 2}}))
    assert fine.status != V.ERROR


def test_unsupported_and_impossible_shapes_are_skipped_before_building(tmp_path: Path) -> None:
    skipped = run_case(fake_case(), make_resources(tmp_path, backend_=FakeBackend(unsupported="no fp32 here")))
    assert (skipped.status, skipped.reason, skipped.engine.cache) == (V.SKIPPED, "no fp32 here", "none")
    pinned = run_case(fake_case(), make_resources(tmp_path, static_shapes={"x": (1, 4)}))
    assert pinned.status == V.SKIPPED and "fake.onnx fixes input 'x' to 1x4; this case needs 2x4" == pinned.reason


def test_an_engine_that_cannot_run_here_is_built_not_executed(tmp_path: Path) -> None:
    res = make_resources(tmp_path, backend_=FakeBackend(not_here="needs a GPU"))
    outcome = run_case(fake_case(), res)
    assert (outcome.status, outcome.reason, outcome.engine.cache) == (V.BUILT, "needs a GPU", "built")
    assert res.measured == 0 and outcome.latency is None
    build_only = run_case(fake_case(), make_resources(tmp_path, settings={"build_only": True}))
    assert build_only.status == V.BUILT and build_only.reason == "--trt-build-only: built, not executed"


def test_an_exception_inside_a_stage_becomes_an_error_keeping_earlier_stages(tmp_path: Path) -> None:
    outcome = run_case(fake_case(), make_resources(tmp_path, fail_reference=True))
    assert outcome.status == V.ERROR
    assert outcome.reason.startswith("RuntimeError: reference exploded (in test_pipeline.py:")
    assert outcome.engine.cache == "built" and outcome.message.startswith("test_fake[fake-fp32-b2]: error\n  ")


def test_a_slowdown_is_confirmed_by_remeasuring_before_it_fails(tmp_path: Path) -> None:
    baseline = recorded_baseline(tmp_path)
    res = make_resources(tmp_path, baseline=baseline, latencies=[2.0, 2.0, 2.0],
                         settings={"confirm": 2, "latency_gate": "on"})
    outcome = run_case(fake_case(), res)
    assert res.measured == 3  # the first measurement and two confirmations
    assert outcome.status == V.LATENCY_REGRESSION and outcome.latency is not None
    assert len(outcome.latency.blocks) == 15  # every confirmation's blocks joined the decision
    check = outcome.latency_check
    assert check.decision is not None and check.decision.verdict == "latency_regression"
    assert check.change_pct == pytest.approx(100.0) and check.baseline_ms == pytest.approx(1.0)
    assert "latency: median 2.0000 ms vs baseline 1.0000 ms (+100.0 %)" in outcome.message


def test_the_gate_stands_aside_when_switched_off_or_on_another_cpu(tmp_path: Path) -> None:
    baseline = recorded_baseline(tmp_path)
    off = run_case(fake_case(), make_resources(tmp_path, baseline=baseline, latencies=[2.0],
                                               settings={"latency_gate": "off"}))
    assert off.status == V.PASS and "latency gate off" in off.reason
    assert off.latency_check.change_pct == pytest.approx(100.0)  # still reported against the stored median
    moved = {**baseline, "environment": {**baseline["environment"], "cpu_model": "another CPU"}}
    res = make_resources(tmp_path, baseline=moved, latencies=[2.0])
    other = run_case(fake_case(), res)
    assert other.status == V.PASS and "baseline CPU 'another CPU' is not this CPU" in other.reason
    assert res.measured == 1


def test_an_unchanged_case_passes_against_its_recorded_baseline(tmp_path: Path) -> None:
    res = make_resources(tmp_path, baseline=recorded_baseline(tmp_path), latencies=[1.0])
    outcome = run_case(fake_case(), res)
    assert outcome.status == V.PASS and res.measured == 1
    assert outcome.latency_check.verdict == V.PASS and outcome.latency_check.confidence < 0.5


def test_updating_records_an_entry_that_the_baseline_file_keeps(tmp_path: Path) -> None:
    res = make_resources(tmp_path, settings={"update_baselines": True}, latencies=[1.25])
    outcome = run_case(fake_case(), res)
    assert outcome.status == V.PASS and outcome.reason.endswith("baseline updated")
    entry = outcome.baseline_entry
    assert entry is not None
    assert entry["latency"]["median_ms"] == pytest.approx(1.25) and len(entry["latency"]["runs"]) == 1
    assert entry["golden"]["outputs"]["y"]["shape"] == [2, 4]
    assert entry["reference"] == {"backend": "fake-reference", "latency_ms_median": 4.0}
    assert entry["engine"] == {"precisions": "", "build_s": 1.5}
    assert entry["environment"]["cpu_model"] == "Fake CPU model"
    path = res.baseline_file(fake_case())
    update_baselines(path, "test_fake", {outcome.case.param_id: entry})
    assert load_baselines(path)[outcome.case.param_id]["accuracy"]["outputs"]["y"]["max_abs_err"] == 0.0
    res.baseline = load_baselines(path)[outcome.case.param_id]
    again = run_case(fake_case(), res)
    assert again.baseline_entry is not None and len(again.baseline_entry["latency"]["runs"]) == 2


def test_a_failed_accuracy_records_no_baseline(tmp_path: Path) -> None:
    outcome = run_case(fake_case(), make_resources(tmp_path, engine=FakeEngine(error=1.0),
                                                   settings={"update_baselines": True}))
    assert outcome.status == V.ACCURACY_FAIL and outcome.baseline_entry is None


# --- the outcome and its views ----------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda tmp: make_resources(tmp, settings={"update_baselines": True}),
    lambda tmp: make_resources(tmp, baseline=recorded_baseline(tmp), latencies=[2.0]),
    lambda tmp: make_resources(tmp, backend_=FakeBackend(not_here="needs a GPU")),
    lambda tmp: make_resources(tmp, fail_reference=True),
])
def test_the_outcome_survives_json_like_xdist_sends_it(tmp_path: Path, make: Callable[[Path], FakeResources]) -> None:
    outcome = run_case(fake_case(), make(tmp_path))
    text = json.dumps(outcome.to_json(), allow_nan=True)
    back = CaseOutcome.from_json(json.loads(text))
    assert json.dumps(back.to_json(), allow_nan=True) == text
    assert json.dumps(row(back), allow_nan=True) == json.dumps(row(outcome), allow_nan=True)
    assert back.status == outcome.status and back.case == outcome.case


def test_one_column_schema_serves_report_and_merge() -> None:
    names = [c.name for c in COLUMNS]
    assert len(set(names)) == len(names) and names == REPORT_COLUMNS
    assert list(REQUIRED_COLUMNS) == [n for n in names if n in set(REQUIRED_COLUMNS)]
    assert {"case_id", "gpu", "status", "latency_ms_median", "build_s"} <= set(REQUIRED_COLUMNS)


def test_statuses_are_defined_once() -> None:
    from pytest_trtbench import merge

    assert merge.STATUSES == V.VERDICTS and merge.FAILING_STATUSES == V.FAILING
    assert all(V.Verdict(s, "").failed == (s in V.FAILING) for s in V.VERDICTS)


def test_an_outcome_with_nothing_measured_has_an_empty_row(tmp_path: Path) -> None:
    outcome = run_case(fake_case(), make_resources(tmp_path, backend_=FakeBackend(unsupported="no")))
    r = row(replace(outcome, nodeid="x"))
    assert r["engine_cache"] == "none" and r["reference_backend"] == "" and r["timing_method"] == ""
    assert all(math.isnan(r[c.name]) for c in COLUMNS if c.kind == "number" and c.name != "batch_size")


def test_on_cpu_the_gate_is_advisory_by_default_and_never_remeasures(tmp_path: Path) -> None:
    res = make_resources(tmp_path, baseline=recorded_baseline(tmp_path), latencies=[2.0, 2.0])
    outcome = run_case(fake_case(), res)
    assert outcome.status == V.PASS and res.measured == 1
    assert outcome.reason.startswith("latency +100 % (advisory on CPU): slower: ratio 2.0000")
    assert outcome.latency_check.change_pct == pytest.approx(100.0)


def test_on_cpu_a_speedup_is_advisory_too_not_improved(tmp_path: Path) -> None:
    res = make_resources(tmp_path, baseline=recorded_baseline(tmp_path), latencies=[0.5, 0.5])
    outcome = run_case(fake_case(), res)
    assert outcome.status == V.PASS and res.measured == 1
    assert outcome.reason.startswith("latency -50 % (advisory on CPU): faster: ratio 0.5000"), outcome.reason
    assert outcome.latency_check.change_pct == pytest.approx(-50.0)


# --- launch-bound cases on a GPU: advisory until their own machine has a history ---------------------

GPU = DeviceInfo("h200", "Fake H200", "cuda", "9.0")


@dataclass
class FakeGpuResources(FakeResources):
    """FAKE GPU session: scripted plain-enqueue measurements (launch-bound: no CUDA graph, the launch
    waits for the GPU) on a machine called ``m-here``."""

    def measure(self, case: Case, engine: Any, feeds: Mapping[str, np.ndarray]) -> LatencyResult:
        got = super().measure(case, engine, feeds)
        return replace(got, method="cuda-events", host_synchronous=True)

    def environment(self) -> dict[str, Any]:
        return {**super().environment(), "device_name": GPU.device_name, "machine": "m-here"}


def launch_bound_baseline(tmp_path: Path, machines: list[str]) -> dict[str, Any]:
    blocks = [b.to_json() for b in scripted_latency(1.0).blocks]
    entry = recorded_baseline(tmp_path)
    runs = [{"blocks": blocks, "machine": m, "gpu_clock_mhz": 1980.0, "launch_bound": True, "method": "cuda-events"}
            for m in machines]
    return {**entry, "latency": {**entry["latency"], "runs": runs}}


@pytest.mark.parametrize("machines", [["m-other"] * 5, ["m-here"] * 2 + ["m-other"] * 3])
def test_a_launch_bound_slowdown_is_advisory_until_this_machine_has_3_runs(tmp_path: Path, machines: list[str]) -> None:
    settings = Settings(device=GPU, cache_dir=tmp_path / "c", baseline_dir=tmp_path / "b", confirm=2)
    res = FakeGpuResources(settings, baseline=launch_bound_baseline(tmp_path, machines), latencies=[2.0] * 3)
    outcome = run_case(fake_case(), res)
    assert outcome.latency is not None and outcome.latency.launch_bound.startswith("timed by plain enqueues")
    assert outcome.status == V.PASS and res.measured == 1  # reported, not failed, not re-measured
    here = machines.count("m-here")
    assert outcome.reason.startswith(f"latency +100 % (advisory on a launch-bound case with {here} stored run(s) "
                                     "of this machine; it fails from 3 (--trt-update-baselines)): slower: ratio 2.0000")
    assert outcome.latency_check.change_pct == pytest.approx(100.0)


def test_a_launch_bound_slowdown_fails_once_this_machine_has_3_runs(tmp_path: Path) -> None:
    settings = Settings(device=GPU, cache_dir=tmp_path / "c", baseline_dir=tmp_path / "b", confirm=1)
    baseline = launch_bound_baseline(tmp_path, ["m-here"] * 3)
    res = FakeGpuResources(settings, baseline=baseline, latencies=[2.0] * 2)
    outcome = run_case(fake_case(), res)
    assert outcome.status == V.LATENCY_REGRESSION and res.measured == 2  # confirmed, then failed
    assert "(vs 3 run(s) of this machine)" in outcome.reason
    same = run_case(fake_case(), FakeGpuResources(settings, baseline=baseline, latencies=[1.0]))
    assert same.status == V.PASS and "advisory" not in same.reason


# --- timing methods: runs are compared only with runs timed the same way ------------------------------


def test_runs_of_another_timing_method_are_not_compared_and_the_reason_says_how_to_fix_it(tmp_path: Path) -> None:
    settings = Settings(device=GPU, cache_dir=tmp_path / "c", baseline_dir=tmp_path / "b", confirm=0)
    baseline = launch_bound_baseline(tmp_path, ["m-here"] * 3)
    for run in baseline["latency"]["runs"]:
        run["method"] = "cuda-graph-pinned"
    outcome = run_case(fake_case(), FakeGpuResources(settings, baseline=baseline, latencies=[2.0]))
    assert outcome.status == V.PASS
    assert outcome.reason == ("latency not compared: the baseline's runs were timed by cuda-graph-pinned, this run by "
                              "cuda-events (re-record with --trt-update-baselines)")
    baseline["latency"]["runs"][-1]["method"] = "cuda-events"  # one run of this method: compared with it alone
    outcome = run_case(fake_case(), FakeGpuResources(settings, baseline=baseline, latencies=[2.0]))
    assert "(vs 1 run(s) of this machine)" in outcome.reason


def test_graph_timed_runs_stored_without_a_method_were_onnx_runtimes_own_graph() -> None:
    from pytest_trtbench.gate import stored_runs

    blocks = [b.to_json() for b in scripted_latency(1.0).blocks]
    legacy = {"method": "cuda-graph-pinned", "runs": [{"blocks": blocks, "machine": "m"}, blocks]}
    assert [r.method for r in stored_runs(legacy)] == ["ort-cuda-graph-pinned"] * 2
    assert [r.method for r in stored_runs({**legacy, "method": "cuda-events"})] == ["cuda-events"] * 2
    assert [r.method for r in stored_runs({"runs": [blocks]})] == [None]


def test_recording_with_a_new_timing_method_starts_the_history_over(tmp_path: Path) -> None:
    settings = Settings(device=GPU, cache_dir=tmp_path / "c", baseline_dir=tmp_path / "b", update_baselines=True)
    old = launch_bound_baseline(tmp_path, ["m-here"] * 2)
    old["environment"]["device_name"] = GPU.device_name
    entry = run_case(fake_case(), FakeGpuResources(settings, baseline=old, latencies=[1.0])).baseline_entry
    assert entry is not None and [r["method"] for r in entry["latency"]["runs"]] == ["cuda-events"] * 3
    for run in old["latency"]["runs"]:
        run["method"] = "ort-cuda-graph-pinned"
    entry = run_case(fake_case(), FakeGpuResources(settings, baseline=old, latencies=[1.0])).baseline_entry
    assert entry is not None and [r["method"] for r in entry["latency"]["runs"]] == ["cuda-events"]


# --- the JSON report (--trt-report=FILE.json) ------------------------------------------------------------


def test_a_json_report_holds_every_column_the_blocks_and_the_gate_check(tmp_path: Path) -> None:
    from pytest_trtbench.json_report import load_json_report
    from pytest_trtbench.session_outputs import write_report

    res = make_resources(tmp_path, baseline=recorded_baseline(tmp_path), latencies=[2.0],
                         settings={"latency_gate": "on", "confirm": 0})
    slow = replace(run_case(fake_case(), res), nodeid="suites/test_fake.py::test_fake[fake-fp32-b2]")
    untimed = replace(run_case(fake_case(), make_resources(tmp_path, backend_=FakeBackend(unsupported="no"))), nodeid="x")
    rows = [row(slow), row(untimed)]
    path = tmp_path / "out" / "report.json"
    assert write_report(rows, path, [slow, untimed], "cpu") == []
    text = path.read_text()
    assert "NaN" not in text and json.loads(text)["gpu"] == "cpu"  # strict JSON: NaN written as null
    cases = load_json_report(path)
    assert [c["case_id"] for c in cases] == [r["case_id"] for r in rows] and set(REPORT_COLUMNS) <= set(cases[0])
    first = cases[0]
    assert first["status"] == "latency_regression" and first["nodeid"] == slow.nodeid
    assert [BlockSummary.from_json(b) for b in first["latency"]["blocks"]] == list(scripted_latency(2.0).blocks)
    assert first["latency_check"]["verdict"] == "latency_regression" and first["latency_change_pct"] == pytest.approx(100)
    assert cases[1]["latency"] is None and cases[1]["latency_ms_median"] is None
    csv_path = tmp_path / "report.csv"
    assert write_report(rows, csv_path, [slow, untimed], "cpu") == [] and csv_path.read_text().startswith("case_id,")
    with pytest.raises(ValueError, match="report.csv: not a readable JSON report"):
        load_json_report(csv_path)
    (tmp_path / "other.json").write_text('{"cases": []}')
    with pytest.raises(ValueError, match=r"other.json: not a pytest-trtbench JSON report \(written by --trt-report"):
        load_json_report(tmp_path / "other.json")


def test_the_summary_counts_cases_whose_latency_was_not_compared_by_cause() -> None:
    from pytest_trtbench.session_outputs import latency_not_compared_line

    rows = [{"reason": "latency not compared: the baseline's runs were timed by cuda-events, this run by x (...)"},
            {"reason": "note; latency not compared: baseline CPU 'A' is not this CPU 'B'"},
            {"reason": "latency not compared: baseline CPU 'A' is not this CPU 'C'"},
            {"reason": "latency gate off (--trt-latency-gate=off)"}, {"reason": ""}, {}]
    assert latency_not_compared_line(rows) == (
        "latency not compared for 3 case(s): baseline from another CPU 2, baseline timed another way 1 "
        "(re-record with --trt-update-baselines); the reason column says why")
    assert latency_not_compared_line(rows[1:]) == (
        "latency not compared for 2 case(s): baseline from another CPU 2; the reason column says why")
    assert latency_not_compared_line(rows[3:]) == ""


def test_a_profile_that_could_not_be_captured_is_said_on_a_passing_case_too(tmp_path: Path) -> None:
    res = make_resources(tmp_path, baseline=recorded_baseline(tmp_path), latencies=[1.0],
                         settings={"profile_layers": True})
    outcome = run_case(fake_case(), res)
    assert outcome.status == V.PASS
    assert outcome.reason.endswith("layer profile not captured: FakeEngine has no per-layer profiler"), outcome.reason
    updated = run_case(fake_case(), make_resources(tmp_path, settings={"update_baselines": True}, latencies=[1.0]))
    assert updated.reason.endswith("layer profile not captured: FakeEngine has no per-layer profiler; baseline updated")
    assert updated.baseline_entry is not None and "layers" not in updated.baseline_entry
