"""GPU timing on a real CUDA device: CUDA-graph replay, enqueue time, NVML telemetry. Skipped without CUDA."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from pytest_trtbench.measure import TimingConfig, measure_latency  # noqa: E402
from pytest_trtbench.model import TorchLaunch  # noqa: E402

FAST = TimingConfig(warmup_s=0.05, blocks=3, min_block_iters=5, min_block_s=0.02, energy_s=0.5)


def _mlp_launch(width: int = 1024, depth: int = 8) -> TorchLaunch:
    layers = [m for _ in range(depth) for m in (torch.nn.Linear(width, width), torch.nn.GELU())]
    module = torch.nn.Sequential(*layers).cuda().eval()
    return TorchLaunch(module, (torch.randn(64, width, device="cuda"),), torch.device("cuda"))


def test_torch_launch_is_timed_by_cuda_graph_replay() -> None:
    result = measure_latency(_mlp_launch(), 64, FAST)
    assert result.method == "cuda-graph", result.notes
    assert result.median_ms > 0 and len(result.blocks) == 3
    # a graph replay is one launch: its enqueue time is far below the GPU time of 16 kernels
    assert result.enqueue_ms_median < result.median_ms
    assert not any(n.startswith("CUDA graph not used") for n in result.notes)


def test_graph_replay_computes_what_eager_computes() -> None:
    launch = _mlp_launch()
    with torch.no_grad():
        eager = launch.module(*launch.args).clone()
    replay = launch.capture_graph()
    assert callable(replay)
    replay()
    torch.cuda.synchronize()
    assert torch.allclose(launch._graph_outputs, eager, rtol=1e-4, atol=1e-4)


def test_without_graphs_the_method_is_cuda_events() -> None:
    result = measure_latency(_mlp_launch(), 64, TimingConfig(**{**FAST.__dict__, "use_cuda_graph": False}))
    assert result.method == "cuda-events" and result.median_ms > 0


def test_a_module_that_syncs_the_host_falls_back_with_a_reason() -> None:
    class Syncs(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * float(x.sum().item())  # .item() is illegal during capture

    launch = TorchLaunch(Syncs().cuda(), (torch.randn(16, device="cuda"),), torch.device("cuda"))
    result = measure_latency(launch, 16, FAST)
    assert result.method == "cuda-events"
    assert any(n.startswith("CUDA graph not used") and "capture failed" in n for n in result.notes), result.notes
    # the failed capture left neither its capture stream current nor the CUDA RNG marked as capturing
    assert torch.cuda.current_stream() == launch.cuda_stream
    assert torch.randn(4, device="cuda").shape == (4,)


def test_telemetry_and_energy_are_recorded_where_nvml_is() -> None:
    pytest.importorskip("pynvml")
    result = measure_latency(_mlp_launch(4096, 16), 64, FAST)
    t = result.telemetry
    assert t is not None, "NVML is importable but no telemetry was recorded"
    assert t.start.sm_clock_mhz and t.end.sm_clock_mhz and t.end.temperature_c is not None
    assert t.energy_j_per_inference is not None and t.energy_j_per_inference > 0
    assert 20 < (t.mean_power_w or math.nan) < 2000


def test_a_gpu_measurement_fills_the_report_row_and_the_benchmark_entry() -> None:
    from pytest_trtbench import verdict
    from pytest_trtbench.benchmark_json import benchmark_entry
    from pytest_trtbench.outcome import CaseInfo, CaseOutcome, LatencySummary
    from pytest_trtbench.report import row as report_row

    result = measure_latency(_mlp_launch(), 64, FAST)
    info = CaseInfo("test_mlp[torch-fp32-b64]", "torch-fp32-b64", "test_mlp", "mlp", "torch", "fp32", 64, "x=64x4096",
                    "h100", "NVIDIA H100")
    outcome = CaseOutcome(info, "", verdict.Verdict(verdict.NEW, ""), latency=LatencySummary.of(result))
    row = report_row(outcome)
    assert row["timing_method"] == "cuda-graph" and 0 < row["enqueue_ms_median"] < row["latency_ms_median"]
    if result.telemetry is not None:  # NVML present
        assert row["gpu_clock_mhz_start"] > 0 and row["gpu_clock_mhz_end"] > 0 and row["gpu_temp_c_end"] > 0
        assert row["energy_j_per_inference"] > 0 and row["mean_power_w"] > 0
    entry = benchmark_entry(outcome)
    assert entry is not None and math.isclose(entry["stats"]["median"], result.median_ms / 1000)
    assert entry["extra_info"]["timing_method"] == "cuda-graph"
