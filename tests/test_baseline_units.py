"""Baseline files as a user meets them: the entry a refresh records, the history it keeps, the strict JSON
on disk, and the atomic write (issue 18: these survived mutation testing).

Nothing here is faked: the outcome objects are the pipeline's own dataclasses filled with given numbers
(no backend runs; :mod:`tests.test_pipeline` covers the pipeline that fills them), the comparisons come
from the real :func:`pytest_trtbench.compare.compare_output`, files are real files.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_trtbench.baseline import (
    SCHEMA_VERSION,
    BaselineError,
    baseline_path,
    dumps,
    load_baselines,
    lock_path,
    make_entry,
    update_baselines,
    write_atomic,
)
from pytest_trtbench.compare import Tolerance, compare_output
from pytest_trtbench.gate import stored_runs
from pytest_trtbench.outcome import CaseInfo, CaseOutcome, EngineInfo, LatencySummary
from pytest_trtbench.regression import BlockSummary

B1 = BlockSummary(1.0, 0.1, 20)
B2 = BlockSummary(2.0, 0.2, 20)
B3 = BlockSummary(3.0, 0.3, 20)


def outcome(*, blocks: tuple[BlockSummary, ...] = (B3,), device: str = "NVIDIA A10", telemetry: Any = None,
            latency: bool = True, host_synchronous: bool = False, method: str = "cuda-events") -> CaseOutcome:
    case = CaseInfo(case_id="test_m[tensorrt-fp16-b4]", param_id="tensorrt-fp16-b4", suite="test_m", model="m.onnx",
                    backend="tensorrt", precision="fp16", batch_size=4, shapes="x=4x8", gpu="a10", device_name=device)
    lat = LatencySummary(method=method, median_ms=3.0, p90_ms=3.5, p99_ms=4.0, mean_ms=3.1, std_ms=0.2, cov_pct=6.5,
                         throughput_qps=1333.0, iterations=60, enqueue_ms_median=0.05, blocks=blocks,
                         telemetry=telemetry or {}, host_synchronous=host_synchronous)
    x = np.arange(8, dtype=np.float32)
    comparison = compare_output("y", x + 0.5, x, Tolerance(atol=1.0, rtol=0.0))
    return CaseOutcome(case=case, baseline_file="baselines/a10/test_m.json",
                       engine=EngineInfo(cache="built", build_s=12.5, key="k", precisions={"fp32": 2, "fp16": 7}),
                       comparisons=(comparison,), reference_backend="onnxruntime", reference_latency_ms=9.0,
                       latency=lat if latency else None)


ENV = {"device_name": "NVIDIA A10", "machine": "m-1", "driver": "550"}


def old_entry(runs: list[dict[str, Any]], device: str = "NVIDIA A10", golden: Any = None) -> dict[str, Any]:
    return {"latency": {"runs": runs}, "environment": {"device_name": device},
            "golden": {"outputs": golden if golden is not None else {"y": {"mean": 1.0}}}}


def run_json(block: BlockSummary, machine: str | None = "m-0") -> dict[str, Any]:
    return {"blocks": [block.to_json()], "machine": machine, "gpu_clock_mhz": 1500.0, "launch_bound": False}


# --- make_entry: what a refresh records --------------------------------------------------------------

def test_the_recorded_entry_holds_every_section_a_later_run_reads() -> None:
    golden = {"y": {"mean": 3.5, "std": 2.3}}
    entry = make_entry(outcome(telemetry={"gpu_clock_mhz_end": 1410}), golden=golden, old=None, history=5,
                       environment=ENV)
    assert entry == {
        "accuracy": {"outputs": {"y": {
            "max_abs_err": 0.5, "max_rel_err": entry["accuracy"]["outputs"]["y"]["max_rel_err"], "mean_abs_err": 0.5,
            "cosine_similarity": entry["accuracy"]["outputs"]["y"]["cosine_similarity"], "top1_agreement": None,
            "nonfinite": 0, "mismatches": 0, "total": 8, "required_atol": 0.5}}},
        "latency": {"median_ms": 3.0, "p90_ms": 3.5, "p99_ms": 4.0, "mean_ms": 3.1, "std_ms": 0.2, "cov_pct": 6.5,
                    "throughput_qps": 1333.0, "iterations": 60, "method": "cuda-events", "enqueue_ms_median": 0.05,
                    "blocks": [B3.to_json()],
                    "runs": [{"blocks": [B3.to_json()], "machine": "m-1", "gpu_clock_mhz": 1410.0,
                              "launch_bound": False, "method": "cuda-events"}]},
        "golden": {"outputs": golden},
        "reference": {"backend": "onnxruntime", "latency_ms_median": 9.0},
        "engine": {"precisions": "fp16:7,fp32:2", "build_s": 12.5},
        "environment": ENV,
        "shapes": "x=4x8",
    }
    assert entry["accuracy"]["outputs"]["y"]["cosine_similarity"] > 0.99
    assert isinstance(entry["latency"]["runs"][0]["gpu_clock_mhz"], float)
    assert entry["environment"] is not ENV  # a copy: later edits of the run's environment don't leak in


def test_a_case_without_latency_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^test_m\[tensorrt-fp16-b4\]: no latency measured, nothing to record$"):
        make_entry(outcome(latency=False), golden={}, old=None, history=5, environment=ENV)


def test_golden_fingerprints_are_kept_from_the_old_entry_when_no_reference_ran() -> None:
    old = old_entry([], golden={"y": {"mean": 7.0}})
    assert make_entry(outcome(), golden=None, old=old, history=5, environment=ENV)["golden"] == {
        "outputs": {"y": {"mean": 7.0}}}
    assert make_entry(outcome(), golden={"y": {"mean": 1.5}}, old=old, history=5, environment=ENV)["golden"] == {
        "outputs": {"y": {"mean": 1.5}}}
    assert make_entry(outcome(), golden=None, old=None, history=5, environment=ENV)["golden"] == {"outputs": {}}
    assert make_entry(outcome(), golden=None, old={"golden": {}}, history=5, environment=ENV)["golden"] == {
        "outputs": {}}


def test_the_history_grows_on_the_same_gpu_and_keeps_the_last_runs() -> None:
    old = old_entry([run_json(B1, "m-0"), run_json(B2, "m-9")])
    entry = make_entry(outcome(), golden=None, old=old, history=5, environment=ENV)
    runs = stored_runs(entry["latency"])
    assert [r.blocks for r in runs] == [(B1,), (B2,), (B3,)]  # oldest first, the new run last
    assert [r.machine for r in runs] == ["m-0", "m-9", "m-1"]  # other machines' runs of the same GPU stay
    trimmed = make_entry(outcome(), golden=None, old=old, history=2, environment=ENV)
    assert [r.blocks for r in stored_runs(trimmed["latency"])] == [(B2,), (B3,)]


@pytest.mark.parametrize("keep", [1, 0, -3])
def test_a_history_of_one_or_less_keeps_just_this_run(keep: int) -> None:
    old = old_entry([run_json(B1), run_json(B2)])
    entry = make_entry(outcome(), golden=None, old=old, history=keep, environment=ENV)
    assert [r.blocks for r in stored_runs(entry["latency"])] == [(B3,)]


def test_another_gpu_model_starts_the_history_over() -> None:
    old = old_entry([run_json(B1), run_json(B2)], device="NVIDIA L4")
    entry = make_entry(outcome(), golden=None, old=old, history=5, environment=ENV)
    assert [r.blocks for r in stored_runs(entry["latency"])] == [(B3,)]
    no_env = {"latency": {"runs": [run_json(B1)]}}  # an entry without environment: unknown GPU, start over
    assert len(stored_runs(make_entry(outcome(), golden=None, old=no_env, history=5, environment=ENV)["latency"])) == 1


def test_machine_and_clock_are_recorded_only_when_known() -> None:
    entry = make_entry(outcome(telemetry={"gpu_clock_mhz_end": "n/a"}), golden=None, old=None, history=5,
                       environment={"device_name": "NVIDIA A10"})
    assert entry["latency"]["runs"] == [{"blocks": [B3.to_json()], "machine": None, "gpu_clock_mhz": None,
                                         "launch_bound": False, "method": "cuda-events"}]
    entry = make_entry(outcome(telemetry={"gpu_clock_mhz_end": 1395.5}), golden=None, old=None, history=5,
                       environment={"machine": 12345})
    assert entry["latency"]["runs"][0]["machine"] == "12345" and entry["latency"]["runs"][0]["gpu_clock_mhz"] == 1395.5
    entry = make_entry(outcome(), golden=None, old=None, history=5, environment={"machine": ""})
    assert entry["latency"]["runs"][0]["machine"] is None


def test_a_launch_bound_gpu_run_is_flagged_in_the_history() -> None:
    # a GPU run whose enqueue time is as long as its latency is launch-bound (pytest_trtbench.gate)
    bound = outcome(host_synchronous=True)
    assert bound.latency is not None and bound.latency.launch_bound
    entry = make_entry(bound, golden=None, old=None, history=5, environment=ENV)
    assert entry["latency"]["runs"][0]["launch_bound"] is True
    assert make_entry(outcome(method="host-clock"), golden=None, old=None, history=5,
                      environment=ENV)["latency"]["runs"][0]["launch_bound"] is False


@pytest.mark.parametrize("bad", [(), (BlockSummary(math.nan, 0.1, 20),), (BlockSummary(-1.0, 0.1, 20),)])
def test_an_invalid_new_run_is_refused_before_anything_is_recorded(bad: tuple[BlockSummary, ...]) -> None:
    with pytest.raises(ValueError, match="new run"):
        make_entry(outcome(blocks=bad), golden=None, old=None, history=5, environment=ENV)


def test_a_refresh_round_trips_through_the_file(tmp_path: Path) -> None:
    path = baseline_path(tmp_path, "a10", "test_m")
    first = make_entry(outcome(blocks=(B1,)), golden={"y": {"mean": 1.0}}, old=None, history=3, environment=ENV)
    update_baselines(path, "test_m", {"tensorrt-fp16-b4": first})
    for block in (B2, B3, B1):
        old = load_baselines(path)["tensorrt-fp16-b4"]
        entry = make_entry(outcome(blocks=(block,)), golden=None, old=old, history=3, environment=ENV)
        update_baselines(path, "test_m", {"tensorrt-fp16-b4": entry})
    stored = load_baselines(path)["tensorrt-fp16-b4"]
    assert [r.blocks for r in stored_runs(stored["latency"])] == [(B2,), (B3,), (B1,)]
    assert stored["golden"] == {"outputs": {"y": {"mean": 1.0}}}
    assert json.loads(path.read_text())["suite"] == "test_m"


def test_a_data_suites_task_metric_and_layer_profile_are_recorded_for_the_next_run(tmp_path: Path) -> None:
    from dataclasses import replace

    from pytest_trtbench.baseline_check import entry_problem
    from pytest_trtbench.layer_profile import LayerProfile, aggregate
    from pytest_trtbench.layer_report import LayerReport
    from pytest_trtbench.task_metrics import TaskMetric, metric_regressions

    task = TaskMetric("top1", reference=0.97, engine=0.96, samples=600, output="logits")
    runs = [[("conv1", "Conv", 120.0 + i), ("conv2", "Conv", 40.0), ("fc", "Gemm", 2.5)] for i in range(3)]
    profile = aggregate(runs, "onnxruntime profiler (CPUExecutionProvider)", "host").compact(coverage=0.9)
    path = baseline_path(tmp_path, "a10", "test_m")
    entry = make_entry(replace(outcome(), task=task, layers=LayerReport(profile)), golden=None, old=None, history=3,
                       environment=ENV)
    update_baselines(path, "test_m", {"tensorrt-fp16-b4": entry})
    stored = load_baselines(path)["tensorrt-fp16-b4"]
    assert entry_problem(stored) == ""
    # the next run's task-metric gate compares with the stored metric: the same loss passes, a grown one fails
    assert stored["task_metric"] == task.stored()
    assert metric_regressions(task, stored["task_metric"], Tolerance()) == []
    worse = replace(task, engine=0.90)
    assert metric_regressions(worse, stored["task_metric"], Tolerance())[0].startswith("task metric top1: loss")
    # the next run's layer diff reads the stored profile back: the compacted profile, tail included
    assert LayerProfile.from_json(stored["layers"]) == profile and profile.tail_count == 1
    # no metric, or a profile that was not captured: nothing stored under either name
    bare = make_entry(replace(outcome(), layers=LayerReport(note="layer profile not captured: no profiler")),
                      golden=None, old=None, history=3, environment=ENV)
    assert "task_metric" not in bare and "layers" not in bare


# --- strict, reviewable JSON ------------------------------------------------------------------------

def test_dumps_writes_sorted_indented_strict_json_with_a_final_newline() -> None:
    text = dumps({"b": 1, "a": (1, 2.5)})
    assert text == '{\n  "a": [\n    1,\n    2.5\n  ],\n  "b": 1\n}\n'


def test_dumps_cleans_what_strict_json_cannot_hold() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    data = {"f32": np.float32(1.5), "i64": np.int64(3), "nan": math.nan, "inf": -math.inf, "npnan": np.float64("nan"),
            "flag": True, "none": None, "s": "x", "nested": [(1, np.float32(0.25))], 7: "int key", "obj": Opaque()}
    back = json.loads(dumps(data))
    assert back == {"f32": 1.5, "i64": 3.0, "nan": None, "inf": None, "npnan": None, "flag": True, "none": None,
                    "s": "x", "nested": [[1, 0.25]], "7": "int key", "obj": "opaque!"}
    assert back["flag"] is True and type(back["nested"][0][0]) is int


def test_a_nan_constant_in_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    for constant in ("NaN", "Infinity", "-Infinity"):
        path.write_text(f'{{"schema_version": 3, "cases": {{"a": {{"x": {constant}}}}}}}')
        with pytest.raises(BaselineError, match=rf"s\.json: malformed baseline JSON \(non-standard JSON constant "
                                                 rf"{constant}\)\. Fix the file \(git diff / git checkout it\), or "
                                                 r"delete it and re-record with --trt-update-baselines$"):
            load_baselines(path)


@pytest.mark.parametrize("text", ['{"schema_version": 3}', '{"schema_version": 3, "cases": []}', '"cases"'])
def test_a_json_file_that_is_not_a_baseline_is_refused_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(BaselineError, match=r"^.*s\.json: not a pytest-trtbench baseline \(expected an object with "
                                            r"'schema_version' and 'cases'\)$"):
        load_baselines(path)


def test_an_unreadable_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(b'{"schema_version": 3, "cases": {"\xff": 1}}')
    with pytest.raises(BaselineError, match=r"s\.json: cannot read baseline file: .*utf-8"):
        load_baselines(path)
    path.unlink()
    path.mkdir()  # a directory where the file should be
    with pytest.raises(BaselineError, match=r"s\.json: cannot read baseline file: "):
        load_baselines(path)


@pytest.mark.parametrize("version", [3, SCHEMA_VERSION])
def test_a_current_or_schema_3_file_loads_unchanged(tmp_path: Path, version: int) -> None:
    path = tmp_path / "s.json"
    cases = {"a": {"latency": {"runs": [run_json(B1)]}}, "b": {"accuracy": {}}}
    path.write_text(json.dumps({"schema_version": version, "suite": "s", "cases": cases}), encoding="utf-8")
    assert load_baselines(path) == cases


def test_schema_2_runs_become_run_objects_of_an_unknown_machine(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    v3_run = run_json(B2, "m-7")
    path.write_text(json.dumps({"schema_version": 2, "cases": {
        "a": {"latency": {"runs": [[B1.to_json()], v3_run]}}, "b": {"latency": {"median_ms": 1.0}},
        "c": "not an entry", "d": {"latency": {"runs": "junk"}}}}))
    cases = load_baselines(path)
    assert cases["a"]["latency"]["runs"] == [
        {"blocks": [B1.to_json()], "machine": None, "gpu_clock_mhz": None, "launch_bound": False}, v3_run]
    assert cases["b"] == {"latency": {"median_ms": 1.0}} and cases["c"] == "not an entry"
    assert cases["d"] == {"latency": {"runs": "junk"}}


def test_schema_1_migration_keeps_existing_runs_and_odd_entries(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"schema_version": 1, "cases": {
        "a": {"latency": {"runs": [[B2.to_json()]], "blocks": [B1.to_json()]}}, "b": ["odd"],
        "c": {"latency": "odd"}}}))
    cases = load_baselines(path)
    assert [r["blocks"] for r in cases["a"]["latency"]["runs"]] == [[B2.to_json()]]  # runs present: not rebuilt
    assert cases["b"] == ["odd"] and cases["c"] == {"latency": "odd"}


def test_a_schema_1_file_without_cases_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(BaselineError, match="not a pytest-trtbench baseline"):
        load_baselines(path)


# --- atomic writes ----------------------------------------------------------------------------------

def test_write_atomic_creates_the_folder_and_writes_utf8(tmp_path: Path) -> None:
    path = tmp_path / "new" / "gpu" / "s.json"
    write_atomic(path, '{"name": "ü→"}\n')
    assert path.read_bytes() == '{"name": "ü→"}\n'.encode()
    write_atomic(path, "second\n")
    assert path.read_text() == "second\n" and [p.name for p in path.parent.iterdir()] == ["s.json"]


def test_the_temporary_file_is_a_hidden_sibling_never_taken_for_a_baseline(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename is atomic only within one folder; a file left by a crash must not match ``*.json``."""
    seen: list[Path] = []
    real_replace = os.replace

    def spying_replace(src: str, dst: Path) -> None:
        seen.append(Path(src))
        assert Path(src).read_text(encoding="utf-8") == "text"  # complete before the rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spying_replace)
    path = tmp_path / "s.json"
    write_atomic(path, "text")
    (tmp,) = seen
    assert tmp.parent == tmp_path and tmp.name.startswith(".s.json.") and tmp.name.endswith(".tmp")
    assert not tmp.exists() and path.read_text() == "text"


def test_a_failed_rename_leaves_neither_temp_file_nor_new_content(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json"
    path.write_text("old")

    def failing_replace(src: str, dst: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_update_creates_the_gpu_folder_and_keeps_other_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = baseline_path(Path("baselines"), "l4", "test_m")
    update_baselines(path, "test_m", {"a": {"x": 1}})
    update_baselines(path, "test_m", {"b": {"x": 2}})
    data = json.loads(path.read_text())
    assert data == {"schema_version": SCHEMA_VERSION, "suite": "test_m", "cases": {"a": {"x": 1}, "b": {"x": 2}}}
    # baselines are committed like code: nothing else appears in the project (the lock is in the temp dir)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == [str(tmp_path / "baselines"), str(tmp_path / "baselines/l4"),
                                                            str(tmp_path / "baselines/l4/test_m.json")]


def test_the_lock_lives_outside_the_baseline_folder_one_per_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a10" / "s.json", tmp_path / "a10" / "t.json"
    assert lock_path(a) == lock_path(tmp_path / "a10" / ".." / "a10" / "s.json")  # keyed by the resolved path
    assert lock_path(a) != lock_path(b) and lock_path(a).parent.is_dir()
    assert tmp_path not in lock_path(a).parents and lock_path(a).name.startswith("baseline-")
