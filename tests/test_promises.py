"""The README's promises, each through the plugin (pytester), each with a check that a deliberate bug breaks.

Latency verdicts here are never decided by this machine's speed: engines are real ONNX Runtime engines
(outputs, accuracy and the cache are real), but time is a FAKE clock that advances by the latency each
test scripts (:class:`ScriptedClock`, :class:`ScriptedLatencyBackend`), so "2 ms then 1 ms" is exactly that.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

# imported here, once: pytester drops modules first imported inside a test, and the FAKE clock and backend
# below must patch the very modules the inner pytest runs use
from pytest_trtbench import device, measure, runner  # noqa: E402
from pytest_trtbench.backends.base import BuildRequest  # noqa: E402
from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from pytest_trtbench.device import DeviceInfo  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SUITE = '''
from torch import nn
from pytest_trtbench import Input, Suite

def mlp():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

test_tiny = Suite(model=mlp, inputs=[Input("x", shape=("batch", 16))], batch_sizes=[4], precisions=["fp32"],
                  output_names=["logits"], classifier_outputs=["logits"])
'''
CASE = "test_tiny[onnxruntime-fp32-b4]"
# the gate on: these promises are about failing (on CPU the gate is advisory by default, tested in test_latency_gate.py)
FAST = ["--trt-gpu=cpu", "--trt-warmup-s=0.01", "--trt-blocks=3", "--trt-min-block-s=0.005", "-p", "no:cacheprovider",
        "--trt-latency-gate=on"]


def readme_csv_columns() -> list[str]:
    """The CSV column contract: the first column of the README's "CSV report" table, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## CSV report", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE)


# --- FAKE timing around real engines ---------------------------------------------------------------

class ScriptedClock:
    """FAKE ``time`` for :mod:`pytest_trtbench.measure`: each reading advances 10 us; a scripted launch
    advances it by its latency. Measured latencies are then exactly what a test scripts."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1e-5
        return self.now


class ScriptedLaunch:
    cuda_stream = None

    def __init__(self, clock: ScriptedClock, latency_ms: float) -> None:
        self.clock, self.latency_s = clock, latency_ms / 1e3

    def __call__(self) -> None:
        self.clock.now += self.latency_s

    def synchronize(self) -> None:
        pass


class ScriptedEngine:
    """A REAL ONNX Runtime engine for outputs; a FAKE launch for timing (the next scripted latency)."""

    def __init__(self, real: Any, backend: ScriptedLatencyBackend) -> None:
        self.real, self.backend = real, backend
        self.input_names, self.output_names = real.input_names, real.output_names

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        return self.real.run(feeds)

    def prepare(self, feeds: Mapping[str, Any]) -> ScriptedLaunch:
        return ScriptedLaunch(self.backend.clock, self.backend.next_latency_ms())

    def close(self) -> None:
        self.real.close()


class ScriptedLatencyBackend:
    """FAKE-timed ONNX Runtime: builds, caches and loads real engines; each measurement (``prepare``) takes
    the next latency of ``schedule_ms`` (the last one repeats) and is counted in ``measurements``."""

    name = "onnxruntime"

    def __init__(self, clock: ScriptedClock) -> None:
        self.real = OnnxRuntimeBackend()
        self.clock = clock
        self.schedule_ms: list[float] = [1.0]
        self.measurements = 0

    def script(self, *latencies_ms: float) -> ScriptedLatencyBackend:
        self.schedule_ms, self.measurements = list(latencies_ms), 0
        return self

    def next_latency_ms(self) -> float:
        self.measurements += 1
        return self.schedule_ms.pop(0) if len(self.schedule_ms) > 1 else self.schedule_ms[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def load(self, entry_dir: Path, metadata: Mapping[str, Any], request: BuildRequest) -> ScriptedEngine:
        return ScriptedEngine(self.real.load(entry_dir, metadata, request), self)


@pytest.fixture
def scripted(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> ScriptedLatencyBackend:
    """Suites in *pytester* run on :class:`ScriptedLatencyBackend` under the :class:`ScriptedClock`."""
    clock = ScriptedClock()
    backend = ScriptedLatencyBackend(clock)
    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    real_get_backend = runner.get_backend
    monkeypatch.setattr(runner, "get_backend", lambda name: backend if name == "onnxruntime" else real_get_backend(name))
    pytester.makepyfile(test_tiny=SUITE)
    return backend


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*FAST, *args)


def row(pytester: pytest.Pytester, name: str = "r.csv") -> dict[str, str]:
    with open(pytester.path / name, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["case_id"] for r in rows] == [CASE]
    return rows[0]


def baseline(pytester: pytest.Pytester) -> Path:
    return pytester.path / "baselines" / "cpu" / "test_tiny.json"


def record(pytester: pytest.Pytester, backend: ScriptedLatencyBackend, latency_ms: float, *args: str) -> None:
    backend.script(latency_ms)
    run(pytester, "--trt-update-baselines", *args).assert_outcomes(passed=1)


# --- verdicts end to end ---------------------------------------------------------------------------

def test_improved_end_to_end_passes_says_so_and_keeps_the_csv_contract(
    pytester: pytest.Pytester, scripted: ScriptedLatencyBackend
) -> None:
    record(pytester, scripted, 2.0)
    scripted.script(1.0)
    result = run(pytester, "--trt-report=r.csv")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["verdicts: improved 1"])
    got = row(pytester)
    assert got["status"] == "improved"
    assert "faster" in got["reason"] and "update the baseline with --trt-update-baselines" in got["reason"]
    assert float(got["latency_change_pct"]) == pytest.approx(-50, abs=1)
    # the CSV header is the README's column table, in order (not the package's own constant)
    with open(pytester.path / "r.csv", newline="") as f:
        assert next(csv.reader(f)) == readme_csv_columns()


def test_confirm_remeasures_a_real_alarm_and_can_clear_it(
    pytester: pytest.Pytester, scripted: ScriptedLatencyBackend
) -> None:
    record(pytester, scripted, 1.0)
    # a real alarm: +50 % in the first measurement, nothing in the re-measurement
    scripted.script(1.5, 1.0)
    result = run(pytester, "--trt-confirm=0", "--trt-report=r.csv")
    result.assert_outcomes(failed=1)
    assert row(pytester)["status"] == "latency_regression" and scripted.measurements == 1
    scripted.script(1.5, 1.0)
    result = run(pytester, "--trt-report=r.csv")  # default --trt-confirm=1
    result.assert_outcomes(passed=1)
    assert scripted.measurements == 2
    assert row(pytester)["status"] == "pass"
    # a slowdown that persists is confirmed, after exactly --trt-confirm re-measurements
    scripted.script(1.5)
    run(pytester, "--trt-confirm=2", "--trt-report=r.csv").assert_outcomes(failed=1)
    assert scripted.measurements == 3 and row(pytester)["status"] == "latency_regression"


def test_cpu_latency_is_compared_only_on_the_cpu_model_that_recorded_it(
    pytester: pytest.Pytester, scripted: ScriptedLatencyBackend
) -> None:
    record(pytester, scripted, 1.0)
    scripted.script(2.0)
    run(pytester).assert_outcomes(failed=1)  # same CPU model: a doubling fails
    data = json.loads(baseline(pytester).read_text())
    data["cases"]["onnxruntime-fp32-b4"]["environment"]["cpu_model"] = "Some Other CPU @ 9.99GHz"
    baseline(pytester).write_text(json.dumps(data))
    scripted.script(2.0)
    run(pytester, "--trt-report=r.csv").assert_outcomes(passed=1)
    got = row(pytester)
    assert got["status"] == "pass"
    assert "latency not compared: baseline CPU 'Some Other CPU @ 9.99GHz' is not this CPU" in got["reason"]


def test_a_baseline_timed_another_way_is_not_compared_and_the_summary_says_so(
    pytester: pytest.Pytester, scripted: ScriptedLatencyBackend
) -> None:
    record(pytester, scripted, 1.0)
    data = json.loads(baseline(pytester).read_text())
    (run_,) = data["cases"]["onnxruntime-fp32-b4"]["latency"]["runs"]
    assert run_["method"] == "host-clock"  # each stored run records how it was timed
    run_["method"] = "cuda-graph-pinned"
    baseline(pytester).write_text(json.dumps(data))
    scripted.script(2.0)  # a doubling: it would fail if compared
    result = run(pytester, "--trt-report=r.csv")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["trtbench: latency not compared for 1 case(s): baseline timed another way 1 "
                                 "(re-record with --trt-update-baselines); the reason column says why"])
    assert "timed by cuda-graph-pinned, this run by host-clock" in row(pytester)["reason"]
    scripted.script(1.0)
    run(pytester, "--trt-update-baselines").assert_outcomes(passed=1)  # re-recorded: the old run is dropped
    runs = json.loads(baseline(pytester).read_text())["cases"]["onnxruntime-fp32-b4"]["latency"]["runs"]
    assert [r["method"] for r in runs] == ["host-clock"]
    scripted.script(2.0)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert "latency not compared" not in result.stdout.str()


def test_latency_tolerance_takes_a_percent_or_a_fraction(pytester: pytest.Pytester, scripted: ScriptedLatencyBackend) -> None:
    record(pytester, scripted, 1.0)
    for tolerance, outcome, status in (("5%", "failed", "latency_regression"), ("20%", "passed", "pass"),
                                       ("0.2", "passed", "pass")):
        scripted.script(1.1)  # +10 %: over 5 %, under 20 %
        run(pytester, f"--trt-latency-tolerance={tolerance}", "--trt-report=r.csv").assert_outcomes(**{outcome: 1})
        got = row(pytester)
        assert got["status"] == status and f"tolerance {5 if tolerance == '5%' else 20} %" in got["reason"], got
    pytester.makeini("[pytest]\ntrt_latency_tolerance = 20%\n")  # the ini key takes the same syntax
    scripted.script(1.1)
    run(pytester, "--trt-report=r.csv").assert_outcomes(passed=1)
    assert "tolerance 20 %" in row(pytester)["reason"]


def test_history_keeps_the_last_k_runs(pytester: pytest.Pytester, scripted: ScriptedLatencyBackend) -> None:
    for latency in (1.0, 1.1, 1.2):
        record(pytester, scripted, latency, "--trt-history=2")
    runs = json.loads(baseline(pytester).read_text())["cases"]["onnxruntime-fp32-b4"]["latency"]["runs"]
    assert len(runs) == 2
    # the oldest (1.0 ms) run was dropped; the 1.1 and 1.2 ms runs stay, oldest first (+ the clock's 0.01 ms tick)
    assert [r["blocks"][0]["median_ms"] for r in runs] == [pytest.approx(1.11), pytest.approx(1.21)]


# --- build-only, device selection --------------------------------------------------------------------

def test_build_only_builds_and_caches_but_executes_nothing(
    pytester: pytest.Pytester, scripted: ScriptedLatencyBackend
) -> None:
    result = run(pytester, "--trt-build-only", "--trt-update-baselines", "--trt-report=r.csv")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["engines: 1 built*", "verdicts: built 1"])
    got = row(pytester)
    assert got["status"] == "built" and got["reason"] == "--trt-build-only: built, not executed"
    assert got["engine_cache"] == "built" and got["latency_ms_median"] == "" and got["max_abs_err"] == ""
    assert scripted.measurements == 0 and not baseline(pytester).exists()
    # the engine it cached is the one a normal run then uses
    run(pytester, "--trt-report=r.csv").assert_outcomes(passed=1)
    again = row(pytester)
    assert (again["engine_cache"], again["engine_key"], again["status"]) == ("hit", got["engine_key"], "new")


FAKE_H200 = DeviceInfo(gpu="h200", device_name="NVIDIA H200", kind="cuda", compute_capability="9.0")
"""A FAKE detected device (injected through :func:`pytest_trtbench.device.detect_device`): a machine with an H200."""


def test_naming_another_gpu_than_the_present_one_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(device, "detect_device", lambda: FAKE_H200)
    pytester.makepyfile(test_tiny=SUITE)
    result = pytester.runpytest("--trt-gpu=a10", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--trt-gpu=a10 but this machine has 'NVIDIA H200' (h200). Baselines of one GPU*"])
    assert "Traceback" not in result.stderr.str()
    # the present GPU's own name, and build-only targeting of another, are accepted
    for args in (["--trt-gpu=h200"], ["--trt-gpu=a10", "--trt-build-only"]):
        collected = pytester.runpytest(*args, "--collect-only", "-q", "-p", "no:cacheprovider")
        assert collected.ret == pytest.ExitCode.OK, collected.stderr.str()
