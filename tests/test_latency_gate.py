"""The latency gate around the rule: tolerance parsing, modes (CPU advisory), machine-aware history,
launch-bound cases, schema migration. Pure functions here; the plugin end to end at the bottom."""
from __future__ import annotations

import csv
import json
import math
import re

import pytest
from fast_history import make_history_fast

from pytest_trtbench.baseline import load_baselines
from pytest_trtbench.device import DeviceInfo, cpu_model
from pytest_trtbench.gate import (
    ADVISORY,
    LAUNCH_BOUND_MACHINE_CV,
    OFF,
    ON,
    PRIOR_BETWEEN_MACHINE_CV,
    StoredRun,
    decide_machine_aware,
    effective_mode,
    launch_bound_reason,
    launch_bound_unarmed,
    machine_variance,
    parse_tolerance,
    stored_runs,
)
from pytest_trtbench.machine import hash_identity, identity_fields, machine_identity
from pytest_trtbench.regression import BlockSummary, decide_latency

PATTERN = (0.996, 0.998, 1.0, 1.002, 1.004)


def blocks(center: float, iqr_frac: float = 0.004) -> tuple[BlockSummary, ...]:
    return tuple(BlockSummary(center * p, center * p * iqr_frac, 200) for p in PATTERN)


# --- tolerance parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("0.05", 0.05), (" 5 % ", 0.05), ("12.5%", 0.125),
                                         ("0.5", 0.5), ("99%", 0.99), ("1e-3", 0.001)])
def test_percent_and_fraction_mean_the_same(text: str, value: float) -> None:
    assert math.isclose(parse_tolerance(text), value)


@pytest.mark.parametrize(("text", "why"), [
    ("1", "ambiguous"), ("5", "ambiguous"), ("150%", "under 100%"), ("100%", "under 100%"), ("0", "> 0"),
    ("-5%", "> 0"), ("nan", "finite"), ("inf", "finite"), ("-inf%", "finite"), ("five", "expected a fraction"),
    ("%", "expected a fraction"),
])
def test_bad_tolerances_are_refused_with_the_fix(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_tolerance(text)


def test_a_bare_one_says_how_to_write_one_percent() -> None:
    with pytest.raises(ValueError, match=r"write 1% for 1 percent, or 0.01 as a fraction"):
        parse_tolerance("1")


# --- modes ---------------------------------------------------------------------------------------


def test_auto_is_on_for_gpus_and_advisory_on_cpu() -> None:
    assert effective_mode("auto", "cuda") == ON and effective_mode("auto", "cpu") == ADVISORY
    assert effective_mode("on", "cpu") == ON and effective_mode("off", "cuda") == OFF
    with pytest.raises(ValueError, match="one of on, off, auto"):
        effective_mode("maybe", "cpu")


# --- launch-bound --------------------------------------------------------------------------------


def test_launch_bound_cases_are_recognized() -> None:
    assert "under 50 us" in launch_bound_reason(0.031, math.nan, True, on_gpu=True)
    assert "enqueue" in launch_bound_reason(0.2, 0.25, False, on_gpu=True)
    assert launch_bound_reason(0.2, 0.25, False, on_gpu=True, graph_replay=True).startswith("host enqueue")
    assert launch_bound_reason(0.2, 0.05, False, on_gpu=True, graph_replay=True) == ""  # queued graph replays
    # ONNX Runtime's own graph: each replay waits for the GPU, the host's wake-up is in every iteration
    assert "waits for the GPU" in launch_bound_reason(3.0, math.nan, True, on_gpu=True)
    assert "plain enqueues" in launch_bound_reason(3.0, math.nan, True, on_gpu=True, graph_replay=False)
    assert launch_bound_reason(0.2, 0.05, False, on_gpu=True) == ""
    assert launch_bound_reason(0.01, math.nan, False, on_gpu=False) == ""  # CPU: host time is the time
    assert launch_bound_reason(math.nan, math.nan, False, on_gpu=True) == ""


def test_launch_bound_cases_get_a_wider_prior_than_long_kernels() -> None:
    history = [StoredRun(blocks(0.040), "m1")]
    plain, _ = decide_machine_aware(history, blocks(0.040 * 1.07), "m1", 0.05)
    bound, _ = decide_machine_aware(history, blocks(0.040 * 1.07), "m1", 0.05, launch_bound=True)
    assert plain.verdict == "latency_regression" and bound.verdict != "latency_regression"
    big, _ = decide_machine_aware(history, blocks(0.040 * 1.5), "m1", 0.05, launch_bound=True)
    assert big.verdict == "latency_regression"


# --- machine-aware history -----------------------------------------------------------------------


def test_a_known_machine_is_compared_with_its_own_runs_only() -> None:
    history = [StoredRun(blocks(10.0), "a"), StoredRun(blocks(10.02), "a"), StoredRun(blocks(11.0), "b"),
               StoredRun(blocks(11.03), "b")]
    on_a, note_a = decide_machine_aware(history, blocks(10.01), "a", 0.05)
    on_b, note_b = decide_machine_aware(history, blocks(11.01), "b", 0.05)
    assert on_a.verdict == on_b.verdict == "pass" and "2 run(s) of this machine" in note_a
    assert math.isclose(on_a.ratio, 10.01 / 10.01, rel_tol=2e-3) and math.isclose(on_b.ratio, 1.0, rel_tol=2e-3)
    slow_a, _ = decide_machine_aware(history, blocks(10.0 * 1.08), "a", 0.05)
    assert slow_a.verdict == "latency_regression"


def test_a_new_machine_gets_the_between_machine_prior() -> None:
    # the false alarm: a case timed by plain enqueues (launch-bound), one stored run from
    # another host, this host +6 %, blocks quiet
    history = [StoredRun(blocks(0.24), "other")]
    plain = decide_latency([history[0].blocks], blocks(0.24 * 1.06), 0.05)
    aware, note = decide_machine_aware(history, blocks(0.24 * 1.06), "new", 0.05, launch_bound=True)
    assert plain.verdict == "latency_regression" and aware.verdict != "latency_regression"
    assert "first run on this machine" in note and f"{100 * LAUNCH_BOUND_MACHINE_CV:.1f} %" in note
    caught, _ = decide_machine_aware(history, blocks(0.24 * 1.6), "new", 0.05, launch_bound=True)
    assert caught.verdict == "latency_regression"
    # a graph-timed case: the machine prior widens the uncertainty, it does not remove the gate
    long_history = [StoredRun(blocks(5.0), "other")]
    same, _ = decide_machine_aware(long_history, blocks(5.0 * 1.045), "other", 0.05)
    new, note = decide_machine_aware(long_history, blocks(5.0 * 1.045), "new", 0.05)
    se = [float(re.search(r"se ([0-9.]+) %", d.reason).group(1)) for d in (same, new)]  # type: ignore[union-attr]
    assert se[1] > se[0] and f"{100 * PRIOR_BETWEEN_MACHINE_CV:.1f} %" in note
    assert decide_machine_aware(long_history, blocks(5.0 * 1.08), "new", 0.05)[0].verdict == "latency_regression"


def test_migrated_runs_of_unknown_machine_count_as_another_machine() -> None:
    history = [StoredRun(blocks(1.0), None)]
    _, note = decide_machine_aware(history, blocks(1.0), "m", 0.05)
    assert "first run on this machine" in note


def test_machine_variance_follows_the_data_and_never_drops_below_it() -> None:
    one, g1 = machine_variance([StoredRun(blocks(1.0), "a"), StoredRun(blocks(1.01), "a")])
    assert g1 == 1 and math.isclose(one, PRIOR_BETWEEN_MACHINE_CV**2)
    spread = [StoredRun(blocks(c), m) for m, c in [("a", 1.0), ("a", 1.001), ("b", 1.2), ("b", 1.201),
                                                   ("c", 0.8), ("c", 0.801)]]
    var, g = machine_variance(spread)
    assert g == 3 and math.sqrt(var) > 0.15  # machine means ~20 % apart
    same, _ = machine_variance([StoredRun(blocks(1.0), m) for m in "abcdefgh"])
    assert same < PRIOR_BETWEEN_MACHINE_CV**2  # eight machines that agree pull the prior down


def test_stored_runs_read_schema_2_and_3_and_round_trip() -> None:
    b = [x.to_json() for x in blocks(2.0)]
    runs = stored_runs({"runs": [b, {"blocks": b, "machine": "ab", "gpu_clock_mhz": 1980, "launch_bound": True}, []]})
    assert runs[0] == StoredRun(blocks(2.0)) and runs[1].machine == "ab" and runs[1].gpu_clock_mhz == 1980.0
    assert len(runs) == 2 and StoredRun.from_json(runs[1].to_json()) == runs[1]
    with pytest.raises(ValueError, match="neither a list of blocks"):
        StoredRun.from_json({"machine": "x"})


def test_schema_2_baselines_migrate_to_machine_aware_runs(tmp_path) -> None:
    block = {"median_ms": 1.0, "iqr_ms": 0.1, "n": 10}
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"schema_version": 2, "cases": {"a": {"latency": {"runs": [[block], [block]]}}}}))
    runs = load_baselines(path)["a"]["latency"]["runs"]
    assert runs == [{"blocks": [block], "machine": None, "gpu_clock_mhz": None, "launch_bound": False}] * 2


def test_machine_identity_is_a_hash_with_nothing_in_clear() -> None:
    device = DeviceInfo("cpu", cpu_model(), "cpu")
    ident = machine_identity(device)
    assert len(ident) == 16 and int(ident, 16) >= 0 and ident == machine_identity(device)
    fields = identity_fields(device)
    assert all(v not in ident for v in fields.values() if len(v) > 3)
    other = dict(fields, gpu_uuid="GPU-1")
    assert hash_identity(other) != hash_identity(dict(fields, gpu_uuid="GPU-2")) != ident


# --- the plugin end to end -----------------------------------------------------------------------

SUITE = '''
from torch import nn
from pytest_trtbench import Input, Suite

test_tiny = Suite(
    model=lambda: nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)),
    inputs=[Input("x", shape=("batch", 16))],
    batch_sizes=[1, 4],
    precisions=["fp32"],
    output_names=["logits"],
)
'''
FAST = ["--trt-gpu=cpu", "--trt-warmup-s=0.01", "--trt-blocks=3", "--trt-min-block-s=0.005", "-p", "no:cacheprovider"]


@pytest.fixture
def slowed(pytester: pytest.Pytester, steady_clock: object) -> pytest.Pytester:
    """Recorded baselines whose latency is replaced by a clean 0.1 us history (every block 1e-4 ms, IQR
    1e-5 ms), the runs timed by the FAKE steady clock (conftest.py: every iteration 0.01 ms): every case is a
    credible 100x "slowdown" whatever the load on this machine. Real timings were not enough: a 10x margin
    flaked, and even this clean history against a real run measured under load (a block with a few stalled
    iterations: an IQR many times its median) was once "not credible", so a case passed with the gate on."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytester.makepyfile(test_tiny=SUITE)
    pytester.runpytest(*FAST, "--trt-update-baselines").assert_outcomes(passed=2)
    make_history_fast(pytester.path / "baselines" / "cpu" / "test_tiny.json")
    return pytester


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cpu_latency_is_advisory_by_default(slowed: pytest.Pytester) -> None:
    result = slowed.runpytest(*FAST, "--trt-report=r.csv")
    result.assert_outcomes(passed=2)
    for row in _rows(slowed.path / "r.csv"):
        assert row["status"] == "pass" and float(row["latency_change_pct"]) > 100
        assert re.search(r"latency \+\d+ % \(advisory on CPU\): slower: ratio", row["reason"]), row["reason"]
    slowed.runpytest(*FAST, "--trt-latency-gate=on").assert_outcomes(failed=2)


def test_the_ini_key_turns_the_gate_on(slowed: pytest.Pytester) -> None:
    slowed.makeini("[pytest]\ntrt_latency_gate = on\n")
    slowed.runpytest(*FAST).assert_outcomes(failed=2)
    slowed.runpytest(*FAST, "--trt-no-latency-gate").assert_outcomes(passed=2)


def test_schema_2_baselines_gate_and_refresh_into_schema_3(slowed: pytest.Pytester) -> None:
    path = slowed.path / "baselines" / "cpu" / "test_tiny.json"
    data = json.loads(path.read_text())
    data["schema_version"] = 2
    for entry in data["cases"].values():
        entry["latency"]["runs"] = [stored["blocks"] for stored in entry["latency"]["runs"]]
    path.write_text(json.dumps(data))
    result = slowed.runpytest(*FAST, "--trt-latency-gate=on", "--trt-report=r.csv")
    result.assert_outcomes(failed=2)
    assert all("first run on this machine" in r["reason"] for r in _rows(slowed.path / "r.csv"))
    slowed.runpytest(*FAST, "--trt-update-baselines").assert_outcomes(passed=2)
    after = json.loads(path.read_text())
    assert after["schema_version"] == 4
    for entry in after["cases"].values():
        old, new = entry["latency"]["runs"]
        assert old["machine"] is None and len(new["machine"]) == 16


@pytest.mark.parametrize(("args", "message"), [
    (["--trt-latency-tolerance=150%"], "ERROR: --trt-latency-tolerance: *under 100%*"),
    (["--trt-latency-tolerance=1"], "--trt-latency-tolerance*'1' is ambiguous*write 1% *"),
    (["--trt-latency-tolerance=nan"], "--trt-latency-tolerance*finite*"),
    (["--trt-latency-gate=maybe"], "ERROR: --trt-latency-gate: expected on, off or auto; got 'maybe'"),
])
def test_bad_gate_options_are_usage_errors_naming_the_option(pytester: pytest.Pytester, args: list[str],
                                                             message: str) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])


def test_a_bad_ini_tolerance_is_a_usage_error_too(pytester: pytest.Pytester) -> None:
    pytest.importorskip("torch")
    pytester.makepyfile(test_tiny=SUITE)
    pytester.makeini("[pytest]\ntrt_latency_tolerance = 0\n")
    result = pytester.runpytest(*FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini trt_latency_tolerance: a tolerance must be > 0*"])


def test_launch_bound_cases_are_armed_by_runs_of_this_machine_only() -> None:
    b = (BlockSummary(0.2, 0.002, 50),)
    history = [StoredRun(b, "m1"), StoredRun(b, "m1"), StoredRun(b, "m2"), StoredRun(b, None)]
    assert launch_bound_unarmed(history, "m1", launch_bound=False) == ""  # graph-timed kernels: always armed
    assert "with 2 stored run(s) of this machine; it fails from 3" in launch_bound_unarmed(history, "m1", True)
    assert "with 0 stored run(s)" in launch_bound_unarmed(history, "m3", True)
    assert launch_bound_unarmed([*history, StoredRun(b, "m1")], "m1", True) == ""
