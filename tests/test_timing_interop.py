"""CPU-side tests of the GPU timing work: CUDA-graph fallback reasons, NVML telemetry (faked and absent),
the new report columns, pytest-benchmark JSON interop, and the GPU benchmark scripts' --smoke runs."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from pytest_trtbench import telemetry
from pytest_trtbench.backends.base import BackendError
from pytest_trtbench.measure import TimingConfig, capture_cuda_graph, measure_latency
from pytest_trtbench.report import REPORT_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
FAST = TimingConfig(warmup_s=0.001, blocks=2, min_block_iters=3, min_block_s=0.001)


class CpuLaunch:
    cuda_stream = None

    def __call__(self) -> None:
        pass

    def synchronize(self) -> None:
        pass


class RaisingCapture(CpuLaunch):
    def capture_graph(self) -> Any:
        raise BackendError("TensorRT says this engine's enqueue is not stream-capturable")


class ReasonCapture(CpuLaunch):
    def capture_graph(self) -> Any:
        return "dynamic shapes: no graph"


class ReplayCapture(CpuLaunch):
    def capture_graph(self) -> Any:
        return lambda: None


# --- CUDA-graph fallback -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("launch", "expected"),
    [
        (CpuLaunch(), "CpuLaunch cannot capture CUDA graphs"),
        (RaisingCapture(), "CUDA graph capture failed: BackendError: TensorRT says this engine's enqueue is not"),
        (ReasonCapture(), "dynamic shapes: no graph"),
    ],
)
def test_a_launch_that_cannot_be_captured_gives_a_reason(launch: Any, expected: str) -> None:
    replay, reason = capture_cuda_graph(launch)
    assert replay is None and reason.startswith(expected)


def test_a_capturable_launch_gives_its_replay() -> None:
    replay, reason = capture_cuda_graph(ReplayCapture())
    assert callable(replay) and reason == ""


def test_cpu_torch_and_onnxruntime_launches_say_why_they_have_no_graph() -> None:
    torch = pytest.importorskip("torch")
    np = pytest.importorskip("numpy")
    from pytest_trtbench.model import TorchLaunch

    launch = TorchLaunch(torch.nn.Linear(4, 2), (torch.zeros(1, 4),), torch.device("cpu"))
    replay, reason = capture_cuda_graph(launch)
    assert replay is None and "CPU launch" in reason

    pytest.importorskip("onnxruntime")
    from pytest_trtbench.backends.onnxruntime import OnnxRuntimeLaunch

    class Session:
        def io_binding(self) -> Any:
            return types.SimpleNamespace(bind_cpu_input=lambda *a: None, bind_output=lambda *a: None)

        def get_providers(self) -> list[str]:
            return ["CPUExecutionProvider"]

    cpu = types.SimpleNamespace(kind="cpu")
    ort_launch = OnnxRuntimeLaunch(Session(), {"x": np.zeros(2, np.float32)}, ["y"], cpu)  # type: ignore[arg-type]
    assert ort_launch.host_synchronous
    assert capture_cuda_graph(ort_launch) == (None, "a CPU launch: CUDA graphs need the CUDA provider")


def test_cpu_measurement_is_host_clock_with_no_graph_note_and_no_enqueue_time() -> None:
    result = measure_latency(ReplayCapture(), 1, FAST)
    assert result.method == "host-clock"
    assert not any("CUDA graph" in n for n in result.notes)  # no capture is attempted on CPU
    assert result.enqueue_ms == [] and math.isnan(result.enqueue_ms_median) and result.telemetry is None


# --- telemetry ---------------------------------------------------------------------------------


@pytest.fixture
def fresh_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_initialized", [])


def test_telemetry_is_none_without_pynvml(monkeypatch: pytest.MonkeyPatch, fresh_nvml: None) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    assert telemetry.open_gpu_monitor() is None


class FakeNvmlError(Exception):
    pass


def fake_pynvml(*, init_fails: bool = False, sm: list[float], temp: float = 60.0, energy_step_mj: float = 0.0,
                no_energy: bool = False) -> types.ModuleType:
    """A pynvml stand-in: the SM clock walks through *sm*, the energy counter ticks on every read."""
    nv = types.ModuleType("pynvml")
    state = {"sm": list(sm), "energy": 1_000_000.0}
    nv.NVMLError = FakeNvmlError  # type: ignore[attr-defined]
    nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM, nv.NVML_TEMPERATURE_GPU = 1, 2, 0  # type: ignore[attr-defined]
    nv.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1  # type: ignore[attr-defined]

    def init() -> None:
        if init_fails:
            raise FakeNvmlError("Driver Not Loaded")

    def clock(handle: Any, kind: int) -> float:
        return (state["sm"].pop(0) if len(state["sm"]) > 1 else state["sm"][0]) if kind == 1 else 2619.0

    def energy(handle: Any) -> float:
        if no_energy:
            raise FakeNvmlError("Not Supported")
        state["energy"] += energy_step_mj
        return state["energy"]

    def threshold(handle: Any, kind: int) -> float:
        raise FakeNvmlError("Not Supported")

    nv.nvmlInit = init  # type: ignore[attr-defined]
    nv.nvmlDeviceGetHandleByIndex = lambda i: f"gpu{i}"  # type: ignore[attr-defined]
    nv.nvmlDeviceGetHandleByUUID = lambda u: "gpu-uuid"  # type: ignore[attr-defined]
    nv.nvmlDeviceGetClockInfo = clock  # type: ignore[attr-defined]
    nv.nvmlDeviceGetTemperature = lambda h, k: temp  # type: ignore[attr-defined]
    nv.nvmlDeviceGetTemperatureThreshold = threshold  # type: ignore[attr-defined]
    nv.nvmlDeviceGetPowerUsage = lambda h: 350_000  # type: ignore[attr-defined]
    nv.nvmlDeviceGetTotalEnergyConsumption = energy  # type: ignore[attr-defined]
    return nv


def test_telemetry_is_none_when_the_driver_is_missing(monkeypatch: pytest.MonkeyPatch, fresh_nvml: None) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_fails=True, sm=[1980.0]))
    assert telemetry.open_gpu_monitor() is None


def test_telemetry_reads_clocks_energy_and_warns_of_drift_and_heat(monkeypatch: pytest.MonkeyPatch,
                                                                  fresh_nvml: None) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(sm=[1980.0, 1600.0], temp=91.0, energy_step_mj=50.0))
    monitor = telemetry.open_gpu_monitor(0)
    assert monitor is not None
    start, end = monitor.snapshot(), monitor.snapshot()
    launches: list[int] = []
    energy = monitor.energy_window(lambda: launches.append(1), lambda: None, seconds=0.01)
    assert energy is not None and energy.launches > 0 and energy.joules > 0
    summary = monitor.summarize(start, end, energy)
    assert (summary.start.sm_clock_mhz, summary.end.sm_clock_mhz) == (1980.0, 1600.0)
    assert math.isclose(summary.energy_j_per_inference or 0, energy.joules / energy.launches)
    assert math.isclose(summary.mean_power_w or 0, energy.joules / energy.seconds)
    notes = summary.notes()
    assert any("SM clock moved 1980 -> 1600 MHz (-19.2 %)" in n and "nvidia-smi -lgc" in n for n in notes), notes
    assert any("91 C" in n for n in notes), notes
    assert summary.to_json()["gpu_temp_c_end"] == 91.0


def test_telemetry_without_an_energy_counter_leaves_energy_empty(monkeypatch: pytest.MonkeyPatch,
                                                                 fresh_nvml: None) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(sm=[1980.0], no_energy=True))
    monitor = telemetry.open_gpu_monitor(0)
    assert monitor is not None
    snap = monitor.snapshot()
    assert snap.energy_mj is None and snap.sm_clock_mhz == 1980.0
    assert monitor.energy_window(lambda: None, lambda: None, seconds=0.01) is None
    summary = monitor.summarize(snap, snap, None)
    assert summary.energy_j_per_inference is None and summary.mean_power_w is None and summary.notes() == []


def test_a_frozen_energy_counter_gives_no_energy(monkeypatch: pytest.MonkeyPatch, fresh_nvml: None) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(sm=[1980.0], energy_step_mj=0.0))
    monitor = telemetry.open_gpu_monitor(0)
    assert monitor is not None
    assert monitor.energy_window(lambda: None, lambda: None, seconds=0.01, tick_timeout_s=0.02) is None


@pytest.mark.parametrize(("visible", "cuda_index", "expected"), [("", 1, 1), ("2,3", 1, 3), ("GPU-abc", 0, 0)])
def test_nvml_index_follows_cuda_visible_devices(visible: str, cuda_index: int, expected: int) -> None:
    assert telemetry.nvml_index(cuda_index, visible) == expected


# --- report columns and the pytest-benchmark JSON ------------------------------------------------

SUITE = '''
from torch import nn
from pytest_trtbench import Input, Suite

def mlp():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

test_tiny = Suite(model=mlp, inputs=[Input("x", shape=("batch", 16))], batch_sizes=[1, 4], precisions=["fp32"],
                  output_names=["logits"])
'''
FAST_ARGS = ["--trt-gpu=cpu", "--trt-warmup-s=0.01", "--trt-blocks=3", "--trt-min-block-s=0.005", "-p", "no:cacheprovider"]
NEW_COLUMNS = ["enqueue_ms_median", "energy_j_per_inference", "mean_power_w", "gpu_clock_mhz_start",
               "gpu_clock_mhz_end", "gpu_temp_c_end"]


def test_the_report_has_the_new_columns(pytester: pytest.Pytester) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    assert set(NEW_COLUMNS) <= set(REPORT_COLUMNS)
    pytester.makepyfile(test_tiny=SUITE)
    pytester.runpytest(*FAST_ARGS, "--trt-report=r.csv", "--trt-no-cuda-graph").assert_outcomes(passed=2)
    with open(pytester.path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row in rows:
        assert set(NEW_COLUMNS) <= set(row)
        assert row["timing_method"] == "host-clock"
        assert all(row[c] == "" for c in NEW_COLUMNS)  # CPU: no enqueue time, no GPU telemetry


def test_cuda_graph_option_reaches_the_timing_config(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('''
import pytest
from pytest_trtbench.plugin import plugin_key

def pytest_collection_finish(session):
    print("use_cuda_graph=%s" % session.config.stash[plugin_key].settings().timing.use_cuda_graph)
''')
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    pytester.runpytest("-s", "--trt-gpu=cpu", "-p", "no:cacheprovider").stdout.fnmatch_lines(["use_cuda_graph=True"])
    pytester.runpytest("-s", "--trt-gpu=cpu", "-p", "no:cacheprovider", "--trt-no-cuda-graph").stdout.fnmatch_lines(
        ["use_cuda_graph=False"])
    pytester.makeini("[pytest]\ntrt_cuda_graph = false\n")
    pytester.runpytest("-s", "--trt-gpu=cpu", "-p", "no:cacheprovider").stdout.fnmatch_lines(["use_cuda_graph=False"])
    pytester.runpytest("-s", "--trt-gpu=cpu", "-p", "no:cacheprovider", "--trt-cuda-graph").stdout.fnmatch_lines(
        ["use_cuda_graph=True"])


def test_benchmark_json_holds_our_cases_and_pytest_benchmark_compare_reads_it(pytester: pytest.Pytester) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("pytest_benchmark")
    pytester.makepyfile(test_tiny=SUITE)
    # a session of trtbench cases only: pytest-benchmark alone would write no file at all
    result = pytester.runpytest_subprocess(*FAST_ARGS, "--benchmark-json=out.json", "-W", "error")
    result.assert_outcomes(passed=2)
    data = json.loads((pytester.path / "out.json").read_text())
    entries = {b["name"]: b for b in data["benchmarks"]}
    assert sorted(entries) == ["test_tiny[onnxruntime-fp32-b1]", "test_tiny[onnxruntime-fp32-b4]"]
    entry = entries["test_tiny[onnxruntime-fp32-b4]"]
    assert entry["fullname"] == "test_tiny.py::test_tiny[onnxruntime-fp32-b4]" and entry["group"] == "test_tiny"
    assert entry["params"]["batch_size"] == 4 and entry["extra_info"]["timing_method"] == "host-clock"
    assert len(entry["extra_info"]["block_medians_ms"]) == 3
    stats = entry["stats"]
    assert 0 < stats["min"] <= stats["q1"] <= stats["median"] <= stats["q3"] <= stats["max"] < 1.0  # seconds
    assert math.isclose(stats["iqr"], stats["q3"] - stats["q1"]) and stats["rounds"] >= 9 and stats["iterations"] == 1
    assert math.isclose(stats["ops"], stats["rounds"] / stats["total"])
    assert "machine_info" in data and "commit_info" in data

    compare = subprocess.run(
        [sys.executable, "-c", "import sys; from pytest_benchmark.cli import main; sys.exit(main())",  # the console script
         "compare", str(pytester.path / "out.json"), "--columns=min,median,max"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert compare.returncode == 0, compare.stderr
    assert "test_tiny[onnxruntime-fp32-b1]" in compare.stdout and "test_tiny[onnxruntime-fp32-b4]" in compare.stdout


def test_benchmark_json_keeps_the_users_own_benchmarks(pytester: pytest.Pytester) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("pytest_benchmark")
    pytester.makepyfile(test_tiny=SUITE, test_own="def test_own(benchmark):\n    benchmark(sum, [1, 2, 3])\n")
    result = pytester.runpytest_subprocess(*FAST_ARGS, "--benchmark-json=out.json")
    result.assert_outcomes(passed=3)
    names = sorted(b["name"] for b in json.loads((pytester.path / "out.json").read_text())["benchmarks"])
    assert names == ["test_own", "test_tiny[onnxruntime-fp32-b1]", "test_tiny[onnxruntime-fp32-b4]"]


# --- the GPU benchmark scripts run (degraded) on CPU ----------------------------------------------


@pytest.mark.parametrize("script", ["gpu_fidelity.py", "record_gpu_blocks.py"])
def test_gpu_benchmark_script_smoke_runs_on_cpu(script: str, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text())
    if script == "gpu_fidelity.py":
        assert data["device"] == "cpu" and {r["target"] for r in data["rows"]} == {"torch", "onnxruntime"}
        assert all(r["harness_ms"] > 0 and r["raw_ms"] > 0 for r in data["rows"])
    else:
        assert data["device"] == "cpu" and len(data["cases"]) == 2
        assert all(len(runs) == 2 and all(len(run) == 5 for run in runs) for runs in data["cases"].values())


ENVIRONMENT_ONLY = """
import sys
{block}
sys.path.insert(0, sys.argv[1])
import trt_first_run
trt_first_run.environment()
"""


@pytest.mark.parametrize("torch_present", [True, False])
def test_trt_first_run_names_torch_only_where_the_run_can_import_it(torch_present: bool) -> None:
    """benchmarks/trt_first_run.py's environment section: torch's version where torch is there, and on a
    torch-free runner (the CUDA layer then is cuda-python or pycuda) a plain "not importable", not a crash."""
    if torch_present:
        torch = pytest.importorskip("torch")
    block = "" if torch_present else "sys.modules['torch'] = None  # a runner without torch"
    proc = subprocess.run([sys.executable, "-c", ENVIRONMENT_ONLY.format(block=block), str(ROOT / "benchmarks")],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    torch_lines = [line for line in lines if "torch" in line and not line.startswith("- CUDA layer:")]
    if torch_present:
        assert torch_lines == [f"- torch {torch.__version__}, CUDA {torch.version.cuda}, "
                               f"available: {torch.cuda.is_available()}"]
    else:
        assert torch_lines == ["- torch: not importable here (import of torch halted; None in sys.modules); "
                               "this run uses no torch"]
    assert any(line.startswith("- CUDA layer: ") for line in lines) and lines[0] == "## Environment"
