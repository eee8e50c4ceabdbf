"""Latency measurement: warmup, then several independent timed blocks.

Blocks matter because samples inside one block are correlated; the block medians are what
the regression rule (:mod:`pytest_trtbench.regression`) reasons about. On CPU each iteration is
timed with ``perf_counter`` around a synchronous call; on a GPU with CUDA events on the launch's stream.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from pytest_trtbench.backends.base import Launch
from pytest_trtbench.regression import BlockSummary


@dataclass(frozen=True)
class TimingConfig:
    warmup_s: float = 0.05
    blocks: int = 5
    min_block_iters: int = 5
    min_block_s: float = 0.02
    max_block_iters: int = 100_000


@dataclass
class LatencyResult:
    samples_ms: list[float]
    blocks: list[BlockSummary]
    batch_size: int
    method: str
    notes: list[str] = field(default_factory=list)

    def _quantile(self, q: float) -> float:
        s = sorted(self.samples_ms)
        if not s:
            return math.nan
        pos = q * (len(s) - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    @property
    def median_ms(self) -> float:
        return self._quantile(0.5)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.samples_ms) if self.samples_ms else math.nan

    @property
    def std_ms(self) -> float:
        return statistics.stdev(self.samples_ms) if len(self.samples_ms) > 1 else 0.0

    @property
    def cov_pct(self) -> float:
        mean = self.mean_ms
        return 100.0 * self.std_ms / mean if mean > 0 else math.nan

    @property
    def throughput_qps(self) -> float:
        median = self.median_ms
        return 1000.0 * self.batch_size / median if median > 0 else math.nan

    def summary(self) -> dict[str, Any]:
        """The JSON structure stored in baselines and reports."""
        return {
            "median_ms": self.median_ms,
            "p90_ms": self._quantile(0.9),
            "p99_ms": self._quantile(0.99),
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
            "cov_pct": self.cov_pct,
            "throughput_qps": self.throughput_qps,
            "iterations": len(self.samples_ms),
            "method": self.method,
            "blocks": [b.to_json() for b in self.blocks],
        }


def _block_summary(samples: list[float]) -> BlockSummary:
    s = sorted(samples)
    q = statistics.quantiles(s, n=4, method="inclusive") if len(s) > 1 else [s[0], s[0], s[0]]
    return BlockSummary(median_ms=statistics.median(s), iqr_ms=q[2] - q[0], n=len(s))


def _time_host(launch: Launch, iters_or_seconds: tuple[int, float, int]) -> list[float]:
    min_iters, min_s, max_iters = iters_or_seconds
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < max_iters and (len(samples) < min_iters or time.perf_counter() - start < min_s):
        t0 = time.perf_counter()
        launch()
        launch.synchronize()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def _time_cuda(launch: Launch, iters_or_seconds: tuple[int, float, int]) -> list[float]:
    import torch

    min_iters, min_s, max_iters = iters_or_seconds
    stream = launch.cuda_stream
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < max_iters and (len(samples) < min_iters or time.perf_counter() - start < min_s):
        # record a chunk of iterations back to back, then read the events (no host sync per iteration)
        chunk = max(1, min(min_iters, max_iters - len(samples)))
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(chunk)]
        for begin, end in events:
            begin.record(stream)
            launch()
            end.record(stream)
        end.synchronize()
        samples.extend(begin.elapsed_time(end) for begin, end in events)
    return samples


def measure_latency(launch: Launch, batch_size: int, config: TimingConfig) -> LatencyResult:
    """Warm up for ``config.warmup_s``, then time ``config.blocks`` blocks of at least
    ``min_block_iters`` iterations and ``min_block_s`` seconds each."""
    on_gpu = launch.cuda_stream is not None
    timer = _time_cuda if on_gpu else _time_host
    warm_start = time.perf_counter()
    warm_iters = 0
    while warm_iters < 2 or time.perf_counter() - warm_start < config.warmup_s:
        launch()
        launch.synchronize()
        warm_iters += 1
    samples: list[float] = []
    blocks: list[BlockSummary] = []
    for _ in range(max(1, config.blocks)):
        block = timer(launch, (config.min_block_iters, config.min_block_s, config.max_block_iters))
        samples.extend(block)
        blocks.append(_block_summary(block))
    result = LatencyResult(samples, blocks, batch_size, "cuda-events" if on_gpu else "host-clock")
    if result.cov_pct > 10.0:
        result.notes.append(
            f"latency CoV {result.cov_pct:.1f} % is high: the machine is noisy; raise --trt-blocks / "
            "--trt-min-block-s or lock clocks"
        )
    return result
