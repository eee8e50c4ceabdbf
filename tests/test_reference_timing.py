"""The reference time's outlier guard and the CSV's one reason truncation rule (pure functions)."""
from __future__ import annotations

import math

from pytest_trtbench.measure import LatencyResult
from pytest_trtbench.reference_timing import JUMP_FACTOR, WARMUP_CALLS, block_jump, time_reference
from pytest_trtbench.regression import BlockSummary
from pytest_trtbench.report import REASON_MAX_CHARS, truncate_reason


def result(*block_medians: float) -> LatencyResult:
    """A measured result with the given block medians (each block 3 samples at its median)."""
    samples = [m for m in block_medians for _ in range(3)]
    return LatencyResult(samples, [BlockSummary(m, 0.0, 3) for m in block_medians], 1, "host-clock")


class ScriptedMeasure:
    """FAKE measurement: returns prepared results in order and counts calls (the guard's logic only)."""

    def __init__(self, *results: LatencyResult) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self) -> LatencyResult:
        self.calls += 1
        return self.results.pop(0)


def test_steady_reference_is_measured_once_after_warmup() -> None:
    warm_calls: list[int] = []
    measure = ScriptedMeasure(result(1.0, 1.1, 0.9))
    got = time_reference(measure, lambda: warm_calls.append(1))
    assert (got.median_ms, got.note, measure.calls, len(warm_calls)) == (1.0, "", 1, WARMUP_CALLS)


def test_a_jump_is_remeasured_and_a_repeated_jump_is_never_stored() -> None:
    cleared = ScriptedMeasure(result(1.0, 247.9, 1.0), result(1.0, 1.05, 0.98))
    got = time_reference(cleared)
    assert got.median_ms == 1.0 and cleared.calls == 2 and got.note == ""
    stuck = ScriptedMeasure(result(1.0, 247.9, 1.0), result(0.9, 120.0, 1.1))
    got = time_reference(stuck)
    assert math.isnan(got.median_ms)
    assert got.note.startswith("reference timing unstable, not stored: block medians jumped x248 (1, 247.9, 1 ms)")
    assert "x133 again" in got.note


def test_jump_factor_boundary() -> None:
    assert block_jump([1.0, JUMP_FACTOR]) == JUMP_FACTOR
    assert time_reference(ScriptedMeasure(result(1.0, JUMP_FACTOR))).median_ms > 0  # exactly x10 is tolerated
    assert block_jump([2.0]) == 1.0 and block_jump([0.0, 5.0]) == 1.0


def test_one_truncation_rule_for_reasons() -> None:
    short = "a  short\nreason"
    assert truncate_reason(short) == "a short reason"
    long = "x" * 23205
    cut = truncate_reason(long)
    assert len(cut) == REASON_MAX_CHARS == 500
    assert cut.startswith("xxx") and cut.endswith(" ... [cut: 23205 characters in all, the failure message has them]")
    assert truncate_reason("y" * 500) == "y" * 500
