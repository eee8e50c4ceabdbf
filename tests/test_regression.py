"""Unit and property tests of the latency regression rule (pytest_trtbench.regression)."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_trtbench.regression import (
    VERDICTS,
    BlockSummary,
    decide_latency,
    student_t_cdf,
    student_t_ppf,
    update_history,
)

# block-to-block pattern with ~1 % spread, symmetric around 1
PATTERN = (0.985, 0.992, 0.997, 1.0, 1.003, 1.008, 1.015)


def run(center: float, pattern: tuple[float, ...] = PATTERN, iqr_frac: float = 0.02) -> list[BlockSummary]:
    return [BlockSummary(center * p, center * p * iqr_frac, 200) for p in pattern]


def scaled(blocks: list[BlockSummary], c: float) -> list[BlockSummary]:
    return [BlockSummary(b.median_ms * c, b.iqr_ms * c, b.n) for b in blocks]


HISTORY = [run(10.0), run(10.05), run(9.95), run(10.02), run(9.98)]

# --- strategies -------------------------------------------------------------------------------

block = st.builds(
    BlockSummary,
    median_ms=st.floats(0.5, 2.0),
    iqr_ms=st.floats(0.0, 0.1),
    n=st.integers(1, 500),
)
runs_ = st.lists(st.lists(block, min_size=1, max_size=8), min_size=1, max_size=5)
current_ = st.lists(block, min_size=1, max_size=8)


def _same(a, b) -> bool:
    return (
        a.verdict == b.verdict
        and math.isclose(a.ratio, b.ratio, rel_tol=1e-12)
        and math.isclose(a.confidence, b.confidence, rel_tol=1e-9, abs_tol=1e-12)
    )


# --- examples ---------------------------------------------------------------------------------


def test_no_change_passes() -> None:
    d = decide_latency(HISTORY, run(10.0))
    assert d.verdict == "pass"
    assert not d.needs_confirmation
    assert d.ratio == pytest.approx(1.0, abs=2e-3)


def test_clear_regression_is_detected_and_asks_for_confirmation() -> None:
    d = decide_latency(HISTORY, run(11.0))
    assert d.verdict == "latency_regression"
    assert d.needs_confirmation
    assert d.ratio == pytest.approx(1.10, rel=3e-3)
    assert d.confidence > 0.95
    assert "+10.0" in d.reason and "tolerance 5 %" in d.reason


def test_clear_improvement() -> None:
    d = decide_latency(HISTORY, run(9.0))
    assert d.verdict == "improved"
    assert not d.needs_confirmation


def test_warn_band_just_under_tolerance() -> None:
    # +3.5 %: over 0.6 x 5 %, under the bar of a well-measured history
    q = 0.002  # iterations scatter by ~0.15 %: a quiet, well-measured case
    quiet = [run(10.0, (0.999, 1.0, 1.001, 1.0, 1.0), q)] + [run(10.0, (0.999, 1.0, 1.001, 1.0005, 0.9995), q)] * 4
    d = decide_latency(quiet, run(10.35, (0.999, 1.0, 1.001, 1.0, 1.0), q), prior_between_cv=0.002)
    assert d.verdict == "warn"


def test_noisy_big_slowdown_is_not_credible_with_one_baseline_run() -> None:
    wild = (0.8, 0.9, 1.0, 1.1, 1.25)
    d = decide_latency([run(10.0, wild)], run(10.6, wild))
    assert d.verdict == "warn"
    assert "not credible" in d.reason


def test_no_baseline() -> None:
    d = decide_latency([], run(10.0))
    assert d.verdict == "no_baseline"
    assert math.isnan(d.ratio)


def test_confirmation_blocks_appended_can_clear_an_outlier_driven_alarm() -> None:
    # two of five current blocks hit by a burst; the appended confirmation blocks are clean
    history = [run(10.0)] * 3
    bursty = run(10.0, (1.0, 1.0, 1.0, 1.18, 1.2))
    first = decide_latency(history, bursty)
    second = decide_latency(history, bursty + run(10.0))
    assert VERDICTS.index(second.verdict) < VERDICTS.index("latency_regression")
    assert VERDICTS.index(first.verdict) >= VERDICTS.index(second.verdict)


@pytest.mark.parametrize(
    ("baseline", "current", "match"),
    [
        ([run(10.0)], [], "current run has no measurement blocks"),
        ([[]], run(10.0), "baseline run 0 has no measurement blocks"),
        ([run(10.0)], [BlockSummary(math.nan, 0.1, 10)], "median_ms=nan"),
        ([run(10.0)], [BlockSummary(math.inf, 0.1, 10)], "median_ms=inf"),
        ([[BlockSummary(-1.0, 0.1, 10)]], run(10.0), "baseline run 0 block 0 has median_ms=-1.0"),
        ([run(10.0)], [BlockSummary(1.0, math.nan, 10)], "iqr_ms=nan"),
        ([run(10.0)], [BlockSummary(1.0, 0.1, 0)], "n=0"),
        ([run(10.0)], [(1.0, 0.1, 10)], "not BlockSummary"),
    ],
)
def test_bad_inputs_raise_clear_value_errors(baseline, current, match) -> None:
    with pytest.raises(ValueError, match=re.escape(match)):
        decide_latency(baseline, current)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"tolerance": math.nan}, "tolerance"),
        ({"tolerance": 0.0}, "tolerance"),
        ({"alpha": 0.0}, "alpha"),
        ({"beta": math.inf}, "beta"),
        ({"warn_fraction": 2.0}, "warn_fraction"),
    ],
)
def test_bad_parameters_raise(kwargs, name) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be"):
        decide_latency(HISTORY, run(10.0), **kwargs)


def test_block_summary_json_round_trip() -> None:
    b = BlockSummary(1.25, 0.03, 100)
    assert BlockSummary.from_json(b.to_json()) == b
    with pytest.raises(ValueError, match="lacks key 'n'"):
        BlockSummary.from_json({"median_ms": 1.0, "iqr_ms": 0.1})


def test_update_history_keeps_last_k_oldest_first() -> None:
    runs = [run(float(i)) for i in range(1, 7)]
    h: list[list[BlockSummary]] = []
    for r in runs:
        h = update_history(h, r, keep=3)
    assert h == [runs[3], runs[4], runs[5]]
    assert update_history([], runs[0], keep=1) == [runs[0]]
    with pytest.raises(ValueError, match="keep"):
        update_history(h, runs[0], keep=0)
    with pytest.raises(ValueError, match="new run has no measurement blocks"):
        update_history(h, [], keep=3)


# --- Student t ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [(0.975, 1, 12.7062047), (0.99, 4, 3.7469474), (0.95, 10, 1.8124611), (0.995, 30, 2.7499957), (0.9, 2, 1.8856181)],
)
def test_student_t_ppf_matches_tables(p, df, expected) -> None:
    assert student_t_ppf(p, df) == pytest.approx(expected, abs=1e-6)
    assert student_t_cdf(expected, df) == pytest.approx(p, abs=1e-7)
    assert student_t_ppf(1 - p, df) == pytest.approx(-expected, abs=1e-6)


def test_student_t_large_df_is_normal() -> None:
    assert student_t_ppf(0.99, 1e9) == pytest.approx(2.3263479, abs=1e-5)
    assert student_t_ppf(0.99, math.inf) == pytest.approx(2.3263479, abs=1e-6)


# --- properties -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(runs_, current_, st.randoms(use_true_random=False))
def test_invariant_to_block_and_run_order(history, current, rnd) -> None:
    expected = decide_latency(history, current)
    shuffled_hist = [rnd.sample(r, len(r)) for r in history]
    rnd.shuffle(shuffled_hist)
    got = decide_latency(shuffled_hist, rnd.sample(current, len(current)))
    assert _same(expected, got)


@settings(max_examples=60, deadline=None)
@given(runs_, current_, st.floats(1e-3, 1e3))
def test_scale_free(history, current, c) -> None:
    a = decide_latency(history, current)
    b = decide_latency([scaled(r, c) for r in history], scaled(current, c))
    assert a.verdict == b.verdict
    assert a.ratio == pytest.approx(b.ratio, rel=1e-9)
    assert a.confidence == pytest.approx(b.confidence, abs=1e-7)


@settings(max_examples=60, deadline=None)
@given(runs_, current_, st.floats(0.5, 2.0), st.floats(0.5, 2.0))
def test_monotone_in_the_slowdown(history, current, m1, m2) -> None:
    lo, hi = sorted((m1, m2))
    a = decide_latency(history, scaled(current, lo))
    b = decide_latency(history, scaled(current, hi))
    assert VERDICTS.index(a.verdict) <= VERDICTS.index(b.verdict)
    assert a.confidence <= b.confidence + 1e-12
    assert a.ratio <= b.ratio * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(runs_, current_)
def test_decision_is_well_formed(history, current) -> None:
    d = decide_latency(history, current)
    assert d.verdict in VERDICTS
    assert 0.0 <= d.confidence <= 1.0
    assert math.isfinite(d.ratio) and d.ratio > 0
    assert d.needs_confirmation == (d.verdict == "latency_regression")
    assert d.reason.endswith(".")


def test_one_baseline_run_needs_the_slowdown_to_reach_the_tolerance() -> None:
    # between-run spread is unmeasured with one stored run: +4 % never fails, however quiet the blocks
    quiet = (0.999, 1.0, 1.001, 1.0, 1.0)
    assert decide_latency([run(10.0, quiet, 0.001)], run(10.4, quiet, 0.001)).verdict != "latency_regression"
    assert decide_latency([run(10.0, quiet, 0.001)], run(10.7, quiet, 0.001)).verdict == "latency_regression"


def test_scattered_iterations_widen_the_noise_estimate() -> None:
    # the H200 re-run case: +7 % between processes on a launch-bound case whose iterations scatter ~10 %
    blocks = (0.99, 1.0, 1.01, 1.0, 1.005)
    history = [run(10.0, blocks, 0.10)] * 3
    assert decide_latency(history, run(10.7, blocks, 0.10)).verdict != "latency_regression"
    quiet_history = [run(10.0, blocks, 0.002)] * 3
    assert decide_latency(quiet_history, run(10.7, blocks, 0.002)).verdict == "latency_regression"


def test_history_spread_is_respected_however_strong_the_prior() -> None:
    # seen on a 2-vCPU CI machine: consecutive runs alternating 0.20 / 0.41 ms
    bimodal = [run(0.20), run(0.41)]
    assert decide_latency(bimodal, run(0.41)).verdict != "latency_regression"
    assert decide_latency([run(0.20), run(0.205)], run(0.41)).verdict == "latency_regression"


def test_the_tolerance_allowance_starts_at_three_history_runs() -> None:
    # the decide step: below MIN_RUNS_FOR_ALLOWANCE stored runs a regression must reach the tolerance
    # itself; from then on a well-measured slowdown a little under it fails too (d >= L - t_b * se)
    quiet = (0.999, 1.0, 1.001, 1.0, 1.0)
    two, three = [run(10.0, quiet, 0.001)] * 2, [run(10.0, quiet, 0.001)] * (2 + 1)
    assert decide_latency(two, run(10.45, quiet, 0.001)).verdict == "warn"
    d = decide_latency(three, run(10.45, quiet, 0.001))
    assert d.verdict == "latency_regression" and d.needs_confirmation
    assert re.search(r"needs >= \+3\.\d\d %", d.reason)
    assert decide_latency(three, run(10.3, quiet, 0.001)).verdict == "pass"


def test_machine_variance_widens_the_error_not_the_estimate() -> None:
    # the noise-model step: machine_var adds to Var(d); d (the ratio) does not move
    quiet = (0.999, 1.0, 1.001, 1.0, 1.0)
    history, current = [run(10.0, quiet, 0.001)] * 3, run(10.8, quiet, 0.001)
    same_machine = decide_latency(history, current)
    new_machine = decide_latency(history, current, machine_var=0.01)
    assert same_machine.ratio == new_machine.ratio == pytest.approx(1.08)
    assert same_machine.verdict == "latency_regression" and new_machine.verdict == "warn"
    assert new_machine.confidence < same_machine.confidence
    se = [
        float(m.group(1)) for m in (re.search(r"se (\d+\.\d+) %", x.reason) for x in (same_machine, new_machine)) if m
    ]
    assert se[1] == pytest.approx(math.sqrt((se[0] / 100) ** 2 + 0.01) * 100, abs=0.01)


def test_warn_reason_names_the_smallest_reliably_caught_slowdown() -> None:
    quiet = (0.999, 1.0, 1.001, 1.0, 1.0)
    d = decide_latency([run(10.0, quiet, 0.001)] * 2, run(10.45, quiet, 0.001))
    m = re.search(r"se (\d+\.\d+) %.*smallest reliably caught slowdown (\d+\.\d) %\.$", d.reason)
    assert m is not None
    se = float(m.group(1)) / 100
    t_a, t_b = student_t_ppf(0.99, 24.0 + 1), student_t_ppf(0.98, 24.0 + 1)
    assert float(m.group(2)) == pytest.approx(math.expm1((t_a + t_b) * se) * 100, abs=0.06)
