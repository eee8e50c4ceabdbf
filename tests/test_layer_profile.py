"""Per-layer profiles (issue 15): capture with ONNX Runtime's real profiler on CPU, aggregation, compact
storage in baselines (schema 4, migration, validation), matching across renamed layers, the diff text, and
the plugin end to end on a suite with knobs (an added block; one wider layer).

No assertion here depends on a CPU timing's size except where the slowdown is made enormous (a layer 64x
wider, on purpose): the added-block checks are structural (which layers are new)."""
from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fast_history import make_history_fast

from pytest_trtbench.baseline import SCHEMA_VERSION, BaselineError, load_baselines, update_baselines
from pytest_trtbench.baseline_check import entry_problem
from pytest_trtbench.layer_diff import NEW, RENAMED, TAIL, VANISHED, csv_cell, diff_profiles, reading, text_lines
from pytest_trtbench.layer_profile import LayerProfile, LayerProfileError, aggregate, capture, ort_run_layers
from pytest_trtbench.layer_report import LayerReport, markdown_section, stored_profile_problem

# --- aggregation and compact storage ---------------------------------------------------------------


def run(*layers: tuple[str, str, float]) -> list[tuple[str, str, float]]:
    return list(layers)


def test_aggregate_takes_per_layer_medians_positions_and_op_counts() -> None:
    runs = [run(("a", "MatMul", 10.0), ("b", "Add", 1.0), ("c", "MatMul", 30.0)),
            run(("a", "MatMul", 12.0), ("b", "Add", 9.0), ("c", "MatMul", 20.0)),
            run(("a", "MatMul", 11.0), ("b", "Add", 2.0), ("c", "MatMul", 25.0))]
    p = aggregate(runs, "src", "host")
    assert [(x.name, x.op, x.position, x.us) for x in p.layers] == [
        ("a", "MatMul", 0, 11.0), ("b", "Add", 0, 2.0), ("c", "MatMul", 1, 25.0)]
    assert p.total_us == 38.0 and p.runs == 3 and dict(p.op_counts) == {"MatMul": 2, "Add": 1}
    assert p.share(p.layers[2]) == pytest.approx(25 / 38)


def test_a_layer_reported_twice_in_a_run_counts_once_with_the_sum() -> None:
    p = aggregate([run(("loop", "Gemm", 3.0), ("loop", "Gemm", 4.0))], "src", "host")
    assert len(p.layers) == 1 and p.layers[0].us == 7.0


@pytest.mark.parametrize("bad", [float("nan"), -1.0, float("inf")])
def test_non_finite_or_negative_times_are_refused(bad: float) -> None:
    with pytest.raises(LayerProfileError, match="reported"):
        aggregate([run(("a", "Add", bad))], "src", "host")
    with pytest.raises(LayerProfileError, match="no layer times"):
        aggregate([[]], "src", "host")


def profile(times: dict[str, tuple[str, float]], source: str = "onnxruntime profiler (CPUExecutionProvider)") -> LayerProfile:
    return aggregate([[(name, op, us) for name, (op, us) in times.items()]], source, "host")


def test_compact_keeps_the_slowest_layers_covering_95_percent_and_a_tail() -> None:
    times = {"big": ("MatMul", 900.0), "mid": ("MatMul", 60.0), **{f"s{i}": ("Add", 1.0) for i in range(40)}}
    full = profile(times)
    small = full.compact()
    assert [x.name for x in small.layers] == ["big", "mid"]  # 960 / 1000 >= 95 %
    assert (small.tail_count, small.tail_us, small.tail_max_us) == (40, 40.0, 1.0)
    assert small.total_us == full.total_us and dict(small.op_counts) == {"MatMul": 2, "Add": 40}
    assert full.compact(max_layers=1).layers[0].name == "big" and full.compact(max_layers=1).tail_count == 41
    assert LayerProfile.from_json(json.loads(json.dumps(small.to_json()))) == small


# --- capture: ONNX Runtime's real profiler on CPU ------------------------------------------------


@pytest.fixture(scope="module")
def mlp_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 4))
    path = tmp_path_factory.mktemp("mlp") / "mlp.onnx"
    with warnings.catch_warnings():  # the legacy exporter warns that it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 16),), str(path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b"}}, dynamo=False)
    return path


def cpu_engine(path: Path) -> Any:
    from pytest_trtbench.backends.onnxruntime import OnnxRuntimeEngine
    from pytest_trtbench.device import DeviceInfo

    return OnnxRuntimeEngine(path, DeviceInfo(gpu="cpu", device_name="cpu", kind="cpu"))


def node_names(path: Path) -> set[str]:
    import onnx

    return {n.name for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "child-process"])
def test_onnxruntime_profiler_gives_every_executed_node_with_its_op(mlp_file: Path, isolated: bool) -> None:
    from pytest_trtbench.backends.ort_profile import ort_layer_profile

    feeds = {"x": np.ones((8, 16), np.float32)}
    p = ort_layer_profile(mlp_file, ["CPUExecutionProvider"], feeds, 3, isolated=isolated)
    assert p.runs == 3 and p.clock == "host" and p.source == "onnxruntime profiler (CPUExecutionProvider)"
    names = {x.name.removeprefix("fused ") for x in p.layers}
    assert names <= node_names(mlp_file) and len(names) >= 3  # real graph nodes (Gemm fused with Relu)
    ops = {x.op for x in p.layers}
    assert ops <= {"Gemm", "FusedGemm", "Relu", "Tanh"} and "FusedGemm" in ops  # Relu / Tanh fused into Gemm
    assert p.total_us == pytest.approx(sum(x.us for x in p.layers)) and p.total_us >= 0


def test_a_provider_that_did_not_load_is_refused_not_mislabelled(mlp_file: Path, tmp_path: Path) -> None:
    """Without the CUDA provider ORT falls back to the CPU; those CPU times must never pass for CUDA ones."""
    from pytest_trtbench.backends.ort_profile import profile_runs

    with warnings.catch_warnings():  # ORT warns that the provider is not available, then falls back
        warnings.simplefilter("ignore")
        with pytest.raises(LayerProfileError, match="runs on CPUExecutionProvider, not CUDAExecutionProvider"):
            profile_runs(mlp_file, [("CUDAExecutionProvider", {}), "CPUExecutionProvider"],
                         {"x": np.ones((2, 16), np.float32)}, 1, tmp_path)


def test_capture_goes_through_the_engine_and_leaves_its_timed_session_alone(mlp_file: Path) -> None:
    engine = cpu_engine(mlp_file)
    timed = engine.session
    p = capture(engine, {"x": np.ones((4, 16), np.float32)}, runs=2)
    assert p.runs == 2 and engine.session is timed
    assert timed.get_session_options().enable_profiling is False
    with pytest.raises(LayerProfileError, match="has no per-layer profiler"):
        capture(object(), {}, 2)


def test_ort_trace_events_are_split_by_model_run() -> None:
    events = [{"cat": "Session", "name": "model_run", "ts": 100, "dur": 50},
              {"cat": "Node", "name": "a_fence_before", "ts": 101, "dur": 1, "args": {"op_name": "Add"}},
              {"cat": "Node", "name": "a_kernel_time", "ts": 102, "dur": 7, "args": {"op_name": "Add"}},
              {"cat": "Session", "name": "model_run", "ts": 200, "dur": 50},
              {"cat": "Node", "name": "a_kernel_time", "ts": 210, "dur": 9, "args": {"op_name": "Add"}},
              {"cat": "Node", "name": "stray_kernel_time", "ts": 500, "dur": 9, "args": {}}]
    assert ort_run_layers(events) == [[("a", "Add", 7.0)], [("a", "Add", 9.0)]]
    with pytest.raises(LayerProfileError):
        ort_run_layers("not a trace")


# --- matching and the diff ------------------------------------------------------------------------

BASE = {"/b0/fc1/MatMul": ("MatMul", 100.0), "/b0/Gelu": ("Gelu", 20.0), "/b0/fc2/MatMul": ("MatMul", 100.0),
        "/b1/fc1/MatMul": ("MatMul", 100.0), "/b1/Gelu": ("Gelu", 20.0), "/b1/fc2/MatMul": ("MatMul", 100.0)}


def test_an_added_block_shows_as_new_layers_and_dominates_the_reading() -> None:
    now = {**BASE, "/b2/fc1/MatMul": ("MatMul", 100.0), "/b2/Gelu": ("Gelu", 20.0), "/b2/fc2/MatMul": ("MatMul", 100.0)}
    diff = diff_profiles(profile(BASE).compact(), profile(now))
    assert {d.name for d in diff.of_kind(NEW)} == {"/b2/fc1/MatMul", "/b2/Gelu", "/b2/fc2/MatMul"}
    assert diff.total_delta_us == pytest.approx(220.0) and not diff.of_kind(VANISHED) and diff.uncertain == 0
    assert reading(diff) == "+0.220 ms of +0.220 ms is in 3 new layers (2 MatMul, 1 Gelu)"
    assert sum(d.delta_us for d in diff.deltas) == pytest.approx(diff.total_delta_us)
    text = "\n".join(text_lines(diff))
    assert "new layers: 3 (+0.220 ms): /b2/fc1/MatMul (MatMul)" in text
    assert csv_cell(diff).startswith("+0.100ms /b2/fc1/MatMul [MatMul new]")


def test_new_layers_adding_more_than_the_net_change_are_read_as_such() -> None:
    now = {**BASE, "/b0/fc1/MatMul": ("MatMul", 50.0), "/b2/fc1/MatMul": ("MatMul", 100.0)}
    diff = diff_profiles(profile(BASE).compact(), profile(now))
    assert reading(diff) == ("1 new layer (1 MatMul): +0.100 ms; the other layers changed by -0.050 ms "
                             "(net +0.050 ms)")


def test_one_slower_layer_is_named_with_its_ratio() -> None:
    now = {**BASE, "/b1/fc1/MatMul": ("MatMul", 400.0)}
    diff = diff_profiles(profile(BASE).compact(), profile(now))
    assert diff.contributors(1)[0].name == "/b1/fc1/MatMul"
    assert reading(diff) == "+0.300 ms of +0.300 ms is in /b1/fc1/MatMul (MatMul), 100.0 -> 400.0 µs (x4.0)"


def test_a_slowdown_shared_by_two_layers_names_both() -> None:
    now = {**BASE, "/b1/fc1/MatMul": ("MatMul", 350.0), "/b1/fc2/MatMul": ("MatMul", 340.0),
           "/b0/fc1/MatMul": ("MatMul", 200.0)}
    diff = diff_profiles(profile(BASE).compact(), profile(now))
    assert reading(diff) == ("+0.490 ms of +0.590 ms is in 2 layers: /b1/fc1/MatMul (MatMul) and "
                             "/b1/fc2/MatMul (MatMul)")


def test_renamed_layers_match_by_op_type_and_position_and_are_flagged_uncertain() -> None:
    renamed = {f"layer_{i}": value for i, value in enumerate(BASE.values())}
    renamed["layer_3"] = ("MatMul", 250.0)  # the 3rd MatMul, /b1/fc1/MatMul before the rebuild, got slower
    diff = diff_profiles(profile(BASE).compact(), profile(renamed))
    assert diff.uncertain == 5 and not diff.of_kind(NEW) and not diff.of_kind(VANISHED)
    top = diff.contributors(1)[0]
    assert (top.kind, top.name, top.base_name, top.delta_us) == (RENAMED, "layer_3", "/b1/fc1/MatMul", 150.0)
    assert "matched by op type and position: uncertain" in reading(diff)
    assert any(line.startswith("matching uncertain: 5 layer(s)") for line in text_lines(diff))
    assert "~renamed" in csv_cell(diff)


def test_fused_prefix_is_the_same_node_and_a_broken_fusion_shows_new_and_vanished_layers() -> None:
    base = {"fused /fc/Gemm": ("FusedGemm", 50.0), "/head/Gemm": ("Gemm", 50.0)}
    same = diff_profiles(profile(base).compact(), profile({"/fc/Gemm": ("FusedGemm", 50.0), "/head/Gemm": ("Gemm", 50.0)}))
    assert same.uncertain == 0 and not same.of_kind(NEW) and not same.of_kind(VANISHED)
    broken = {"/fc/MatMul": ("MatMul", 40.0), "/fc/Add": ("Add", 15.0), "/fc/Relu": ("Relu", 15.0), "/head/Gemm": ("Gemm", 50.0)}
    diff = diff_profiles(profile(base).compact(), profile(broken))
    assert {d.name for d in diff.of_kind(NEW)} == {"/fc/MatMul", "/fc/Add", "/fc/Relu"}
    assert [d.name for d in diff.of_kind(VANISHED)] == ["fused /fc/Gemm"]


def test_layers_from_the_baselines_tail_are_not_called_new() -> None:
    base = {"big": ("MatMul", 1000.0), **{f"small{i}": ("Add", 1.0) for i in range(30)}}
    now = {**base, "small3": ("Add", 2.0)}  # a tail layer got a bit slower: same op counts, not new
    diff = diff_profiles(profile(base).compact(), profile(now))
    assert not diff.of_kind(NEW)
    tail = diff.of_kind(TAIL)
    assert len(tail) == 1 and tail[0].count == 30 and tail[0].delta_us == pytest.approx(1.0)


def test_no_slowdown_inside_the_layers_says_so_and_different_clocks_are_noted() -> None:
    diff = diff_profiles(profile(BASE).compact(), profile(BASE, source="tensorrt IProfiler"))
    assert reading(diff).startswith("the layers add up to +0.000 ms: the slowdown is not inside the layers")
    assert any("measured differently" in note for note in diff.notes)


def test_layer_report_round_trips_and_renders_the_failure_block() -> None:
    now = {**BASE, "/b2/fc1/MatMul": ("MatMul", 100.0)}
    report = LayerReport(profile(now).compact(), diff_profiles(profile(BASE).compact(), profile(now)))
    assert LayerReport.from_json(json.loads(json.dumps(report.to_json()))) == report
    lines = report.failure_lines()
    assert lines[0].startswith("  layers (onnxruntime profiler (CPUExecutionProvider), host clock, median of 1 runs): "
                               "total 0.440 ms -> 0.540 ms (+0.100 ms)")
    assert lines[1] == "    reading: +0.100 ms of +0.100 ms is in 1 new layer (1 MatMul)"


# --- baselines: schema 4, migration, validation -------------------------------------------------


def entry(layers: Any = None) -> dict[str, Any]:
    e: dict[str, Any] = {"accuracy": {"outputs": {}}, "latency": {"median_ms": 1.0, "runs": []},
                         "golden": {"outputs": {}}, "environment": {"device_name": "cpu"}}
    if layers is not None:
        e["layers"] = layers
    return e


def test_schema_3_files_load_as_schema_4_and_updates_write_the_profile(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 4
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"schema_version": 3, "suite": "s", "cases": {"a": entry()}}))
    assert load_baselines(path)["a"] == entry()
    stored = profile(BASE).compact().to_json()
    update_baselines(path, "s", {"b": entry(stored)})
    data = json.loads(path.read_text())
    assert data["schema_version"] == 4 and data["cases"]["a"] == entry()
    assert LayerProfile.from_json(data["cases"]["b"]["layers"]) == profile(BASE).compact()
    assert entry_problem(data["cases"]["b"]) == ""


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda p: "fast", "'layers' must be an object"),
    (lambda p: {**p, "runs": 0}, "layers.runs is 0"),
    (lambda p: {**p, "total_us": None}, "layers.total_us is None"),
    (lambda p: {**p, "layers": [["a", "MatMul", -1, 3.0]]}, "layers.layers[0]"),
    (lambda p: {**p, "layers": [["a", "MatMul", 0, float("nan")]]}, "layers.layers[0]"),
    (lambda p: {**p, "ops": {"MatMul": "two"}}, "layers.ops"),
])
def test_a_damaged_stored_profile_is_refused_naming_the_field(tmp_path: Path, mutate: Any, message: str) -> None:
    from pytest_trtbench.baseline_check import usable_entry

    bad = entry(mutate(profile(BASE).compact().to_json()))
    assert message in stored_profile_problem(bad)
    with pytest.raises(BaselineError, match=f"f.json: case 'a': .*{message[:12]}"):
        usable_entry({"a": bad}, "a", tmp_path / "f.json", gpu="cpu", device_name="cpu", updating=False)
    assert usable_entry({"a": bad}, "a", tmp_path / "f.json", gpu="cpu", device_name="cpu", updating=True) is None


# --- the plugin end to end: a suite with knobs ---------------------------------------------------

KNOB_SUITE = '''
import torch
from torch import nn
from pytest_trtbench import Input, Suite

EXTRA_BLOCKS = {extra}   # knob: blocks appended (same case ids)
WIDE = {wide}            # knob: the second block's hidden width x WIDE


class Block(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.fc2 = nn.Linear(hidden, 64)

    def forward(self, x):
        return x + self.fc2(torch.tanh(self.fc1(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        widths = [64, 64 * WIDE] + [64] * EXTRA_BLOCKS
        self.blocks = nn.Sequential(*(Block(w) for w in widths))
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.blocks(x))


test_knob = Suite(model=Net, inputs=[Input("x", shape=("batch", 64))], batch_sizes=[64], precisions=["fp32"],
                  output_names=["y"])
'''
FAST = ["--trt-gpu=cpu", "--trt-warmup-s=0.01", "--trt-blocks=5", "--trt-min-block-s=0.005", "-p", "no:cacheprovider"]


def write_knob(pytester: pytest.Pytester, extra: int = 0, wide: int = 1) -> None:
    pytester.makepyfile(test_knob=KNOB_SUITE.format(extra=extra, wide=wide))


def faster_baseline(pytester: pytest.Pytester) -> dict[str, Any]:
    """Replace the recorded latency by a clean 0.1 µs history (``fast_history.make_history_fast``; the tests
    that gate against it time their runs with the FAKE steady clock). The layer profile stays the real one
    recorded from the model before the knob changed."""
    return make_history_fast(pytester.path / "baselines" / "cpu" / "test_knob.json")


def knob_row(pytester: pytest.Pytester) -> dict[str, str]:
    with open(pytester.path / "r.csv", newline="") as f:
        return next(csv.DictReader(f))


def test_update_baselines_stores_a_compact_profile(pytester: pytest.Pytester) -> None:
    write_knob(pytester)
    pytester.runpytest(*FAST, "--trt-update-baselines").assert_outcomes(passed=1)
    data = faster_baseline(pytester)
    stored = LayerProfile.from_json(data["cases"]["onnxruntime-fp32-b64"]["layers"])
    assert data["schema_version"] == 4 and stored.runs == 5
    assert any(layer.name.endswith("/blocks/blocks.0/fc1/Gemm") for layer in stored.layers)
    assert stored.op_counts.get("FusedGemm") == 2 and stored.op_counts.get("Add") == 2  # fc1 + tanh fused


def test_an_added_block_is_named_as_the_new_layers_in_the_failure_text(pytester: pytest.Pytester, steady_clock: object) -> None:
    write_knob(pytester)
    pytester.runpytest(*FAST, "--trt-update-baselines").assert_outcomes(passed=1)
    faster_baseline(pytester)
    write_knob(pytester, extra=1)
    result = pytester.runpytest(*FAST, "--trt-latency-gate=on", "--trt-report=r.csv")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*test_knob[[]onnxruntime-fp32-b64[]]: latency_regression*",
        "*latency: median * ms vs baseline * ms*",
        "*layers (onnxruntime profiler (CPUExecutionProvider), host clock, median of 5 runs): total * ms -> * ms*",
        "*new layers: 3 (*): */blocks/blocks.2/*",
        "*baseline: *test_knob.json*",
    ])
    out = result.stdout.str()
    new_line = next(line for line in out.splitlines() if "new layers:" in line)
    assert "/blocks/blocks.2/" in new_line and "/blocks/blocks.0/" not in new_line and "/blocks/blocks.1/" not in new_line
    assert "vanished layers" not in out and "matching uncertain" not in out
    cell = knob_row(pytester)["top_layer_deltas"]
    assert "/blocks/blocks.2/" in cell and " new]" in cell


def test_one_much_wider_layer_is_named_as_the_top_contributor(pytester: pytest.Pytester) -> None:
    """With --trt-profile-layers every case with a stored profile gets the diff, so this check does not wait
    for the (CPU-timed) gate: the latency gate is off, the layer deltas are structural enough (64x the work)."""
    write_knob(pytester)
    pytester.runpytest(*FAST, "--trt-update-baselines").assert_outcomes(passed=1)
    write_knob(pytester, wide=64)  # block 1: 64 -> 4096 -> 64, 64x the work of any other layer
    result = pytester.runpytest(*FAST, "--trt-latency-gate=off", "--trt-profile-layers", "--trt-report=r.csv")
    result.assert_outcomes(passed=1)
    cell = knob_row(pytester)["top_layer_deltas"]
    first, second = cell.split("; ")[:2]
    assert "/blocks/blocks.1/" in first and "/blocks/blocks.1/" in second, cell
    assert " new]" not in cell, cell


def test_profiling_is_off_by_default_and_on_with_the_option_or_ini(pytester: pytest.Pytester) -> None:
    write_knob(pytester)
    pytester.runpytest(*FAST, "--trt-report=r.csv").assert_outcomes(passed=1)
    assert knob_row(pytester)["top_layer_deltas"] == ""
    pytester.makeini("[pytest]\ntrt_profile_layers = true\n")
    result = pytester.runpytest(*FAST, "--trt-report=r.csv", "--trt-update-baselines")
    result.assert_outcomes(passed=1)
    assert "layers" in json.loads((pytester.path / "baselines" / "cpu" / "test_knob.json").read_text())["cases"][
        "onnxruntime-fp32-b64"]


def test_a_regression_without_a_stored_profile_says_how_to_get_one(pytester: pytest.Pytester, steady_clock: object) -> None:
    write_knob(pytester)
    pytester.runpytest(*FAST, "--trt-update-baselines").assert_outcomes(passed=1)
    data = faster_baseline(pytester)
    path = pytester.path / "baselines" / "cpu" / "test_knob.json"
    for e in data["cases"].values():
        del e["layers"]
    data["schema_version"] = 3  # an old file: migrated on load
    path.write_text(json.dumps(data))
    result = pytester.runpytest(*FAST, "--trt-latency-gate=on")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the baseline has no layer profile to compare with; profiles are stored by "
                                 "--trt-update-baselines*"])


def test_the_step_summary_gets_the_layer_block(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                 steady_clock: object) -> None:
    write_knob(pytester)
    pytester.runpytest(*FAST, "--trt-update-baselines").assert_outcomes(passed=1)
    faster_baseline(pytester)
    write_knob(pytester, extra=1)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.runpytest(*FAST, "--trt-latency-gate=on").assert_outcomes(failed=1)
    text = summary.read_text()
    assert "#### Layer deltas (slower cases)" in text and "**test_knob[onnxruntime-fp32-b64]** (latency_regression)" in text
    assert "/blocks/blocks.2/" in text
    assert markdown_section([]) == ""
