"""Latency measurement: warmup, then several independent timed blocks.

Blocks matter because samples inside one block are correlated; the block medians are what
the regression rule (:mod:`pytest_trtbench.regression`) reasons about. On CPU each iteration is
timed with ``perf_counter`` around a synchronous call (``host-clock``). On a GPU each iteration is
bracketed by CUDA events on the launch's stream (through the launch's CUDA layer,
:mod:`pytest_trtbench.cuda`: torch, cuda-python or pycuda, named in :attr:`LatencyResult.cuda_layer`); by default the launch is first captured into a
CUDA graph and the graph is replayed (``cuda-graph``), as ``trtexec --useCudaGraph`` does, so host
launch overhead does not pose as GPU time. A launch that cannot be captured is timed with plain
enqueues (``cuda-events``) and the reason is kept in :attr:`LatencyResult.notes`.

The host side is measured too: the *enqueue time* is ``perf_counter`` around the launch call
alone (no synchronization). When it approaches the GPU time, throughput is bound by the host,
not the GPU (trtexec's "Throughput may be bound by Enqueue Time" warning).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from pytest_trtbench.backends.base import BackendError, Launch
from pytest_trtbench.cuda.layer import CudaLayerError
from pytest_trtbench.cuda.torch_layer import TorchCaptureGuard
from pytest_trtbench.regression import BlockSummary

if TYPE_CHECKING:
    from pytest_trtbench.cuda.layer import Stream
    from pytest_trtbench.telemetry import TelemetrySummary

#: Above this latency CoV (%) on a GPU, the run notes that clocks were probably not locked.
GPU_COV_WARN_PCT = 2.5
#: Above this latency CoV (%) on CPU, the run notes a noisy machine.
CPU_COV_WARN_PCT = 10.0
#: Host enqueue time at or above this fraction of the GPU time: the run is enqueue-bound.
ENQUEUE_BOUND_FRACTION = 0.9

CUDA_GRAPH, CUDA_EVENTS, HOST_CLOCK = "cuda-graph", "cuda-events", "host-clock"


@dataclass(frozen=True)
class TimingConfig:
    warmup_s: float = 0.05
    blocks: int = 5
    min_block_iters: int = 5
    min_block_s: float = 0.02
    max_block_iters: int = 100_000
    use_cuda_graph: bool = True
    """Replay a CUDA graph of the launch where it can be captured (GPU only)."""
    telemetry: bool = True
    """Read GPU clocks, temperature and energy through NVML around the timed blocks (GPU only)."""
    energy_s: float = 1.0
    """Seconds of back-to-back launches after the timed blocks for the energy per inference (GPU
    with NVML only; 0: none). NVML's energy counter ticks every ~100 ms, too coarse for the blocks."""


@dataclass
class LatencyResult:
    samples_ms: list[float]
    blocks: list[BlockSummary]
    batch_size: int
    method: str
    """``cuda-graph``, ``cuda-graph-pinned`` (a shape-pinned specialization replayed), ``ort-cuda-graph[-pinned]``
    (ONNX Runtime's own graph: every replay waits for the GPU), ``cuda-events`` or ``host-clock``."""
    notes: list[str] = field(default_factory=list)
    enqueue_ms: list[float] = field(default_factory=list)
    """Host time of each timed launch call, without synchronization (GPU only; empty on CPU)."""
    telemetry: TelemetrySummary | None = None
    host_synchronous: bool = False
    """The launch call waits for the GPU itself, so its enqueue time is not separable."""
    cuda_layer: str = ""
    """The CUDA layer whose events timed the blocks (``torch``, ``cuda-python``, ``pycuda``); empty on CPU."""
    peak_gpu_memory_bytes: float = math.nan
    """GPU: the most device memory in use, sampled before the first timed block and after each one."""

    def _quantile(self, q: float) -> float:
        return _quantile(sorted(self.samples_ms), q)

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

    @property
    def enqueue_ms_median(self) -> float:
        return statistics.median(self.enqueue_ms) if self.enqueue_ms else math.nan

    def distribution(self) -> dict[str, Any]:
        """Order statistics of all samples (ms) in the shape pytest-benchmark's ``Stats`` has.

        Small and JSON-able: what :mod:`pytest_trtbench.benchmark_json` needs, without the samples.
        """
        s = sorted(self.samples_ms)
        if not s:
            return {}
        q1, q3 = _quantile(s, 0.25), _quantile(s, 0.75)
        iqr = q3 - q1
        mean, std = self.mean_ms, self.std_ms
        low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
        return {
            "min_ms": s[0], "max_ms": s[-1], "mean_ms": mean, "std_ms": std, "median_ms": _quantile(s, 0.5),
            "q1_ms": q1, "q3_ms": q3, "rounds": len(s), "total_ms": math.fsum(s),
            "iqr_outliers": sum(1 for v in s if v < low or v > high),
            "stddev_outliers": sum(1 for v in s if v < mean - std or v > mean + std),
            "ld15iqr_ms": next(v for v in s if v >= low), "hd15iqr_ms": next(v for v in reversed(s) if v <= high),
        }

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
            "enqueue_ms_median": self.enqueue_ms_median,
            "blocks": [b.to_json() for b in self.blocks],
        }


def _quantile(s: list[float], q: float) -> float:
    if not s:
        return math.nan
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _block_summary(samples: list[float]) -> BlockSummary:
    s = sorted(samples)
    q = statistics.quantiles(s, n=4, method="inclusive") if len(s) > 1 else [s[0], s[0], s[0]]
    return BlockSummary(median_ms=statistics.median(s), iqr_ms=q[2] - q[0], n=len(s))


Call = Callable[[], None]


def _time_host(call: Call, sync: Call, limits: tuple[int, float, int]) -> list[float]:
    min_iters, min_s, max_iters = limits
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < max_iters and (len(samples) < min_iters or time.perf_counter() - start < min_s):
        t0 = time.perf_counter()
        call()
        sync()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def _time_cuda(call: Call, stream: Stream, limits: tuple[int, float, int], enqueue: list[float]) -> list[float]:
    layer = stream.layer
    min_iters, min_s, max_iters = limits
    samples: list[float] = []
    clock = time.perf_counter
    start = clock()
    while len(samples) < max_iters and (len(samples) < min_iters or clock() - start < min_s):
        # record a chunk of iterations back to back, then read the events (no host sync per iteration)
        chunk = max(1, min(min_iters, max_iters - len(samples)))
        events = [(layer.event(), layer.event()) for _ in range(chunk)]
        for begin, end in events:
            begin.record(stream)
            t0 = clock()
            call()
            enqueue.append((clock() - t0) * 1e3)
            end.record(stream)
        end.synchronize()
        samples.extend(begin.elapsed_ms(end) for begin, end in events)
    return samples


def capture_cuda_graph(launch: Launch) -> tuple[Call | None, str]:
    """Ask *launch* for a CUDA-graph replay: ``(replay, "")``, or ``(None, why not)``.

    A launch opts in with ``capture_graph() -> Callable[[], None] | str``: the replay callable, or
    the reason it cannot be captured. A :class:`BackendError` or ``RuntimeError`` raised by it
    (torch's capture errors are ``RuntimeError``\\s) is a reason too, never a failed case.
    """
    capture = getattr(launch, "capture_graph", None)
    if capture is None:
        return None, f"{type(launch).__name__} cannot capture CUDA graphs"
    stream = launch.cuda_stream
    torch_stream = stream is not None and getattr(as_layer_stream(stream).layer, "name", "") == "torch"
    guard = TorchCaptureGuard() if torch_stream else None
    try:
        got = capture()
    except (BackendError, CudaLayerError, RuntimeError) as exc:
        got = f"CUDA graph capture failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    if isinstance(got, str):
        if guard is not None:
            guard.restore()
        return None, got
    if not callable(got):
        return None, f"capture_graph returned {type(got).__name__}, not a callable"
    return got, ""


def as_layer_stream(stream: Any) -> Stream:
    """A launch's ``cuda_stream`` as a CUDA-layer stream. Launches of this package hand one out; a
    ``torch.cuda.Stream`` (the PyTorch reference's, or an older third-party backend's) is wrapped by
    the torch layer."""
    from pytest_trtbench.cuda.layer import Stream

    if isinstance(stream, Stream):
        return stream
    from pytest_trtbench.cuda.select import cuda_layer

    layer = cuda_layer("torch")
    return layer.wrap(stream)  # type: ignore[attr-defined,no-any-return]


def _warm(call: Call, sync: Call, seconds: float, min_iters: int = 2) -> None:
    start = time.perf_counter()
    iters = 0
    while iters < min_iters or time.perf_counter() - start < seconds:
        call()
        sync()
        iters += 1


def measure_latency(launch: Launch, batch_size: int, config: TimingConfig) -> LatencyResult:
    """Warm up for ``config.warmup_s``, then time ``config.blocks`` blocks of at least
    ``min_block_iters`` iterations and ``min_block_s`` seconds each.

    On a GPU the warmed-up launch is captured into a CUDA graph when ``config.use_cuda_graph``
    (falling back to plain enqueues, with the reason in ``notes``), NVML telemetry brackets the
    timed blocks when ``config.telemetry``, and the host enqueue time is recorded alongside.
    """
    on_gpu = launch.cuda_stream is not None
    stream = as_layer_stream(launch.cuda_stream) if on_gpu else None
    _warm(launch, launch.synchronize, config.warmup_s)
    notes: list[str] = []
    call: Call = launch
    method = CUDA_EVENTS if on_gpu else HOST_CLOCK
    if on_gpu and config.use_cuda_graph:
        replay, reason = capture_cuda_graph(launch)
        if replay is not None:
            call, method = replay, str(getattr(replay, "timing_method", CUDA_GRAPH))
            if getattr(replay, "note", ""):  # e.g. why a fallback replay was used
                notes.append(str(replay.note))  # type: ignore[attr-defined]
            _warm(call, launch.synchronize, config.warmup_s / 4, min_iters=3)  # graph upload, caches
        else:
            notes.append(f"CUDA graph not used, timed plain enqueues: {reason}")
    monitor = None
    if on_gpu and config.telemetry:
        from pytest_trtbench.telemetry import open_gpu_monitor

        monitor = open_gpu_monitor()
    start = monitor.snapshot() if monitor is not None else None

    enqueue: list[float] = []
    samples: list[float] = []
    blocks: list[BlockSummary] = []
    limits = (config.min_block_iters, config.min_block_s, config.max_block_iters)
    peak = float(stream.layer.used_bytes()) if stream is not None else math.nan
    for _ in range(max(1, config.blocks)):
        block = _time_cuda(call, stream, limits, enqueue) if stream is not None else _time_host(call, launch.synchronize, limits)
        samples.extend(block)
        blocks.append(_block_summary(block))
        if stream is not None:
            peak = max(peak, float(stream.layer.used_bytes()))

    telemetry = None
    if monitor is not None and start is not None:
        end = monitor.snapshot()  # clocks and temperature as the timed blocks left them
        telemetry = monitor.summarize(start, end, monitor.energy_window(call, launch.synchronize, config.energy_s))
    result = LatencyResult(samples, blocks, batch_size, method, notes, enqueue, telemetry,
                           host_synchronous=_host_synchronous(call, launch),
                           cuda_layer=stream.layer.name if stream is not None else "", peak_gpu_memory_bytes=peak)
    result.notes.extend(_warnings(result))
    return result


def _host_synchronous(call: Call, launch: Launch) -> bool:
    """Whether the timed call waits for the GPU: the graph replay's own say, else the launch's."""
    return bool(getattr(call, "host_synchronous", getattr(launch, "host_synchronous", False)))


def _warnings(result: LatencyResult) -> list[str]:
    """Notes about the measurement's credibility: CoV, enqueue-bound, telemetry."""
    out: list[str] = []
    on_gpu = result.method != HOST_CLOCK
    limit = GPU_COV_WARN_PCT if on_gpu else CPU_COV_WARN_PCT
    cov = result.cov_pct
    if cov > limit:
        advice = ("lock the GPU clocks (sudo nvidia-smi -lgc <MHz>, e.g. the base clock; nvidia-smi -rgc resets), "
                  "keep other work off the GPU, or raise --trt-blocks / --trt-min-block-s") if on_gpu else (
                  "the machine is noisy; raise --trt-blocks / --trt-min-block-s or pin the process to idle cores")
        out.append(f"latency CoV {cov:.1f} % is high (over {limit} %): {advice}")
    gpu_ms, enqueue_ms = result.median_ms, result.enqueue_ms_median
    if on_gpu and not result.host_synchronous and gpu_ms > 0 and enqueue_ms >= ENQUEUE_BOUND_FRACTION * gpu_ms:
        hint = "" if result.method.startswith(CUDA_GRAPH) else "; a CUDA graph (--trt-cuda-graph) may raise throughput"
        out.append(
            f"enqueue-bound: host enqueue time {enqueue_ms:.4f} ms is {100 * enqueue_ms / gpu_ms:.0f} % of the GPU time "
            f"{gpu_ms:.4f} ms; throughput may be bound by enqueue time rather than GPU compute, and the GPU "
            f"may be under-utilized{hint}"
        )
    if result.telemetry is not None:
        out.extend(result.telemetry.notes())
    return out
