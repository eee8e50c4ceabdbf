"""Timing the reference (PyTorch / ONNX Runtime fp32) robustly enough to store next to a baseline.

Once a PyTorch reference timed 247.9 ms instead of ~1 ms (a first-call stall inside the timed blocks)
and a 2387.9x ``speedup_vs_reference`` was stored. So: explicit warmup calls before timing (plus the
timing's own warmup and CUDA-graph replay where the launch can be captured), then an outlier guard:
if the block medians of one measurement span more than :data:`JUMP_FACTOR`, measure again; if the
second measurement jumps too, report the reference time as unavailable (NaN, with the block medians
in the case's reason) instead of storing it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from pytest_trtbench.measure import LatencyResult

JUMP_FACTOR = 10.0
WARMUP_CALLS = 3


@dataclass(frozen=True)
class ReferenceTiming:
    median_ms: float
    """NaN when the timing was unstable: never stored, no speedup computed from it."""
    note: str = ""


def block_jump(block_medians_ms: list[float]) -> float:
    """max / min of the block medians (1.0 for fewer than two positive blocks)."""
    values = [m for m in block_medians_ms if m > 0 and math.isfinite(m)]
    if len(values) < 2:
        return 1.0
    return max(values) / min(values)


def _shown(medians: list[float]) -> str:
    return ", ".join(f"{m:.4g}" for m in medians) + " ms"


def time_reference(measure: Callable[[], LatencyResult], warm: Callable[[], None] | None = None) -> ReferenceTiming:
    """Median reference latency from *measure* (one timing of the prepared launch), guarded against jumps."""
    if warm is not None:
        for _ in range(WARMUP_CALLS):
            warm()
    first = measure()
    medians = [b.median_ms for b in first.blocks]
    jump = block_jump(medians)
    if jump <= JUMP_FACTOR:
        return ReferenceTiming(first.median_ms)
    again = measure()
    medians2 = [b.median_ms for b in again.blocks]
    jump2 = block_jump(medians2)
    if jump2 <= JUMP_FACTOR:  # a one-off stall (a page fault storm, a noisy neighbour): the re-measurement stands
        return ReferenceTiming(again.median_ms)
    return ReferenceTiming(math.nan, f"reference timing unstable, not stored: block medians jumped x{jump:.0f} "
                                     f"({_shown(medians)}) and x{jump2:.0f} again ({_shown(medians2)})")
