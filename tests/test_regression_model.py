"""The latency rule's noise model against its documented formulas (issue 18: the variance-term arithmetic
of ``decide_latency`` survived mutation testing because the example tests only look at verdicts).

``documented_model`` below re-derives ``d``, its standard error and degrees of freedom from the formulas in
``regression.py``'s docstrings (Yuen's 20 % trimmed mean, pooled winsorized block variance floored by the
blocks' IQRs, the run variance shrunk toward its prior, ``Var(d)``), written independently with ``statistics``.
Every test then goes through the public :func:`decide_latency` only, so they hold across refactors of its
internals: the confidence it reports (``P(delta > L)`` under the t model, full float precision) pins ``se``
and ``df``, the ratio pins ``d``, and the reason's numbers must be the ones the model gives.
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from typing import Sequence

import pytest

from pytest_trtbench.regression import (
    MIN_RUNS_FOR_ALLOWANCE,
    PRIOR_BETWEEN_RUN_CV,
    PRIOR_DF,
    BlockSummary,
    decide_latency,
    student_t_cdf,
    student_t_ppf,
    update_history,
)

Run = Sequence[BlockSummary]


@dataclass
class Model:
    d: float
    se: float
    df: float


def trimmed(logs: list[float]) -> tuple[float, float, float]:
    """(20 % trimmed mean, winsorized sum of squares, effective block count) -- Yuen, as documented."""
    x = sorted(logs)
    n = len(x)
    g = (n - 1) // 4  # blocks trimmed each side: none below 5 blocks, 1 for 5..8, 2 for 9..12
    kept = x[g:n - g]
    winsorized = [kept[0]] * g + kept + [kept[-1]] * g
    ss = sum((w - statistics.fmean(winsorized)) ** 2 for w in winsorized)
    h = len(kept)
    return statistics.fmean(kept), ss, (h * (h - 1) / (n - 1) if n > 1 else 1.0)


def documented_model(history: Sequence[Run], current: Run, *, prior_cv: float = PRIOR_BETWEEN_RUN_CV,
                     prior_df: float = PRIOR_DF, machine_var: float = 0.0) -> Model:
    logs = [[math.log(b.median_ms) for b in r] for r in (current, *history)]
    runs = [trimmed(r) for r in logs]
    (cur_loc, _, cur_e), hist = runs[0], runs[1:]
    k = len(hist)
    blocks = [b for r in (current, *history) for b in r]
    # s_blk^2: pooled winsorized within-run variance, floored by (1.2533 * IQR/1.349 / median)^2 / n
    df_w = sum(len(r) - 1 for r in logs)
    pooled = sum(ss for _, ss, _ in runs) / df_w if df_w else 0.0
    floor = statistics.fmean((math.sqrt(math.pi / 2) * b.iqr_ms / 1.3489795003921634 / b.median_ms) ** 2 / b.n
                             for b in blocks)
    s_blk2 = max(pooled, floor)
    # s_run^2: history spread less what block noise explains, shrunk toward the prior, never below the data
    mean_inv_e = statistics.fmean(1 / e for _, _, e in hist)
    s2_data = max(0.0, statistics.variance([loc for loc, _, _ in hist]) - s_blk2 * mean_inv_e) if k >= 2 else 0.0
    within = statistics.median_high([b.iqr_ms / b.median_ms / 1.349 for b in blocks])
    prior = max(prior_cv ** 2, (0.5 ** 2) * s_blk2, (0.35 * within) ** 2)
    df = prior_df + k - 1
    s_run2 = max((prior_df * prior + (k - 1) * s2_data) / df, s2_data)
    d = cur_loc - statistics.fmean(loc for loc, _, _ in hist)
    var_d = s_run2 * (1 + 1 / k) + s_blk2 * (1 / cur_e + mean_inv_e / k) + machine_var
    return Model(d, math.sqrt(var_d), df)


def blocks(center: float, pattern: Sequence[float], iqr_frac: float = 0.01, n: int = 100) -> list[BlockSummary]:
    return [BlockSummary(center * p, center * p * iqr_frac, n) for p in pattern]


def varied(center: float, first_iqr: float) -> list[BlockSummary]:
    """Five quiet blocks whose iterations scatter by first_iqr, +1 %, +2 %, ... of the median."""
    return [BlockSummary(center * p, center * p * (first_iqr + 0.01 * i), 20) for i, p in enumerate(QUIET)]


FIVE = (0.98, 0.995, 1.0, 1.004, 1.02)
NINE = (0.90, 0.97, 0.99, 0.995, 1.0, 1.003, 1.01, 1.03, 1.25)  # 2 trimmed each side
THREE = (0.99, 1.0, 1.012)  # no trimming below 5 blocks
QUIET = (0.9995, 1.0, 1.0005, 1.0, 1.0002)

SCENARIOS = {
    # one stored run: the prior alone (0.65 %) sets the run variance
    "k1-prior-cv": ([blocks(10.0, QUIET, 0.001)], blocks(10.5, QUIET, 0.001)),
    # noisy blocks: half the block sigma beats the 0.65 % prior
    "k1-block-prior": ([blocks(10.0, FIVE, 0.002)], blocks(10.6, FIVE, 0.002)),
    # scattered iterations (launch-bound): 0.35 x the within-block sigma is the prior, the IQR floor the block term
    "k2-within-prior": ([blocks(1.0, QUIET, 0.12, 20), blocks(1.01, QUIET, 0.12, 20)], blocks(1.08, QUIET, 0.1, 20)),
    # history runs far apart: the data's spread beats the shrunk prior (the max branch)
    "k4-data-spread": ([blocks(c, FIVE) for c in (10.0, 10.8, 9.4, 10.3)], blocks(10.9, FIVE)),
    # modest spread: shrinkage between prior and data
    "k5-shrunk": ([blocks(c, FIVE) for c in (10.0, 10.06, 9.97, 10.02, 9.99)], blocks(10.45, FIVE)),
    # nine blocks (two trimmed each side, winsorized), uneven block counts and iteration counts
    "k3-nine-blocks": ([blocks(10.0, NINE, 0.01, 50), blocks(10.1, THREE, 0.01, 400), blocks(9.9, FIVE)],
                       blocks(10.5, NINE, 0.01, 80)),
    # single-block runs: no within-run degrees of freedom, the IQR floor is all there is
    "k3-one-block": ([blocks(10.0, (1.0,), 0.02), blocks(10.05, (1.0,), 0.03), blocks(9.97, (1.0,), 0.02)],
                     blocks(10.5, (1.0,), 0.02)),
    # scattered iterations, a different spread in every block: the within-block sigma is their median
    "k2-within-varied": ([varied(1.0, 0.05), varied(1.01, 0.11)], varied(1.08, 0.17)),
    # three wide blocks (nothing trimmed): half the block sigma is the prior
    "k1-wide-blocks": ([blocks(10.0, (0.96, 1.0, 1.04), 0.001)], blocks(10.9, (0.96, 1.0, 1.04), 0.001)),
    # two-block runs: the trimmed mean's effective block count is 2
    "k2-two-blocks": ([blocks(10.0, (0.99, 1.01)), blocks(10.05, (0.995, 1.005))], blocks(10.6, (0.99, 1.01))),
    # faster: the mirror image
    "k3-faster": ([blocks(c, FIVE) for c in (10.0, 10.02, 9.98)], blocks(9.5, FIVE)),
}


def expected_confidence(m: Model, tolerance: float) -> float:
    lim = math.log1p(tolerance)
    return 1.0 - student_t_cdf((lim - m.d) / m.se, m.df)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_noise_model_is_the_documented_one(name: str) -> None:
    history, current = SCENARIOS[name]
    m = documented_model(history, current)
    got = decide_latency(history, current)
    assert got.ratio == pytest.approx(math.exp(m.d), rel=1e-12)
    assert got.confidence == pytest.approx(expected_confidence(m, 0.05), rel=1e-9, abs=1e-12)
    if m.d > 0:  # (a speed-up's confidence of a slowdown is ~0: it pins nothing, the se shown still does)
        assert 1e-6 < got.confidence < 1 - 1e-6, "saturated confidence would not pin se"
    se_shown = re.search(r"se (\d+\.\d\d) %", got.reason)
    assert se_shown is not None and float(se_shown.group(1)) == pytest.approx(m.se * 100, abs=0.0051)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("tolerance", [0.02, 0.05, 0.1])
def test_the_verdict_follows_the_documented_bars(name: str, tolerance: float) -> None:
    history, current = SCENARIOS[name]
    m = documented_model(history, current)
    lim = math.log1p(tolerance)
    t_a, t_b = student_t_ppf(0.99, m.df), student_t_ppf(0.98, m.df)
    allowance = t_b * m.se if len(history) >= MIN_RUNS_FOR_ALLOWANCE else 0.0
    bar = max(t_a * m.se, lim - allowance)
    ratio = math.exp(m.d)
    if m.d > 0 and m.d >= bar:
        expected = "latency_regression"
    elif m.d < 0 and -m.d >= bar:
        expected = "improved"
    elif ratio >= 1 + 0.6 * tolerance:
        expected = "warn"
    else:
        expected = "pass"
    got = decide_latency(history, current, tolerance)
    assert got.verdict == expected
    assert got.needs_confirmation == (expected == "latency_regression")
    assert got.confidence == pytest.approx(expected_confidence(m, tolerance), rel=1e-9, abs=1e-12)


def test_the_scenarios_cover_every_verdict() -> None:
    seen = {decide_latency(h, c, tol).verdict for h, c in SCENARIOS.values() for tol in (0.02, 0.05, 0.1)}
    assert seen == {"latency_regression", "improved", "warn", "pass"}


@pytest.mark.parametrize("machine_var", [1e-5, 4e-4])
def test_machine_variance_adds_to_var_d(machine_var: float) -> None:
    history, current = SCENARIOS["k5-shrunk"]
    m = documented_model(history, current, machine_var=machine_var)
    got = decide_latency(history, current, machine_var=machine_var)
    assert got.confidence == pytest.approx(expected_confidence(m, 0.05), rel=1e-9)


@pytest.mark.parametrize(("prior_cv", "prior_df"), [(0.02, 24.0), (0.0, 24.0), (0.0065, 2.0), (0.0065, 100.0)])
def test_the_prior_parameters_enter_as_documented(prior_cv: float, prior_df: float) -> None:
    for name in ("k1-prior-cv", "k5-shrunk", "k4-data-spread"):
        history, current = SCENARIOS[name]
        m = documented_model(history, current, prior_cv=prior_cv, prior_df=prior_df)
        got = decide_latency(history, current, prior_between_cv=prior_cv, prior_df=prior_df)
        assert got.confidence == pytest.approx(expected_confidence(m, 0.05), rel=1e-9, abs=1e-12), name


def test_the_reason_reports_the_models_numbers() -> None:
    history, current = SCENARIOS["k5-shrunk"]
    m = documented_model(history, current)
    got = decide_latency(history, current)
    assert got.verdict == "latency_regression"
    lim = math.log1p(0.05)
    t_a, t_b = student_t_ppf(0.99, m.df), student_t_ppf(0.98, m.df)
    bar = max(t_a * m.se, lim - t_b * m.se)
    ratio = math.exp(m.d)
    confidence = expected_confidence(m, 0.05)
    assert got.reason == (
        f"slower: ratio {ratio:.4f} ({(ratio - 1) * 100:+.2f} %) vs 5 baseline run(s), se {m.se * 100:.2f} %, "
        f"tolerance 5 %, confidence over tolerance {confidence:.0%}; credible at alpha=0.01 "
        f"(needs >= {math.expm1(bar) * 100:+.2f} %).")
    warn = decide_latency(history, current, 0.07)
    assert warn.verdict == "warn" and warn.reason.startswith("slower, within 0.6 x tolerance of failing: ratio ")
    mdd = math.expm1((t_a + t_b) * m.se) * 100
    assert warn.reason.endswith(f"; smallest reliably caught slowdown {mdd:.1f} %.")
    faster = decide_latency(*SCENARIOS["k3-faster"])
    assert faster.verdict == "improved" and faster.reason.startswith("faster: ratio 0.9")
    assert faster.reason.endswith("; credible at alpha=0.01; consider updating the baseline.")
    quiet = decide_latency(history, blocks(10.01, FIVE))
    assert quiet.verdict == "pass" and quiet.reason.startswith("no credible change: ratio 1.00")


def test_over_the_tolerance_without_credibility_is_a_warning_that_says_so() -> None:
    history, current = [blocks(10.0, FIVE, 0.3, 5)], blocks(10.7, FIVE, 0.3, 5)
    got = decide_latency(history, current)
    assert got.verdict == "warn" and got.ratio > 1.05
    assert got.reason.startswith("slower, above the tolerance but not credible at this noise: ")


def test_confidence_is_a_step_when_there_is_no_noise_at_all() -> None:
    flat = [BlockSummary(10.0, 0.0, 10)] * 3
    # no noise anywhere and a zero prior: se is 0, the confidence is 0 or 1
    assert decide_latency([flat] * 2, [BlockSummary(10.6, 0.0, 10)] * 3, prior_between_cv=0.0).confidence == 1.0
    assert decide_latency([flat] * 2, [BlockSummary(10.4, 0.0, 10)] * 3, prior_between_cv=0.0).confidence == 0.0
    exactly = decide_latency([flat] * 2, [BlockSummary(10.0 * 1.05, 0.0, 10)] * 3, prior_between_cv=0.0)
    assert exactly.confidence in (0.0, 1.0)


# --- parameter checks: the boundaries ---------------------------------------------------------------

OK_HISTORY, OK_CURRENT = SCENARIOS["k1-prior-cv"]


@pytest.mark.parametrize("kwargs", [
    {"tolerance": 0.999}, {"tolerance": 1e-6}, {"warn_fraction": 1.0}, {"warn_fraction": 1e-6}, {"alpha": 0.499},
    {"alpha": 1e-6}, {"beta": 0.499}, {"prior_between_cv": 0.0}, {"prior_df": 0.5}, {"machine_var": 0.0},
])
def test_parameters_at_the_edge_of_their_range_are_accepted(kwargs: dict[str, float]) -> None:
    assert decide_latency(OK_HISTORY, OK_CURRENT, **kwargs).verdict in ("improved", "pass", "warn",
                                                                        "latency_regression")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tolerance": 1.0}, "tolerance must be a fraction in (0, 1), got 1.0"),
    ({"tolerance": 0.0}, "tolerance must be a fraction in (0, 1), got 0.0"),
    ({"tolerance": math.nan}, "tolerance must be a fraction in (0, 1), got nan"),
    ({"warn_fraction": 0.0}, "warn_fraction must be in (0, 1], got 0.0"),
    ({"warn_fraction": 1.01}, "warn_fraction must be in (0, 1], got 1.01"),
    ({"warn_fraction": math.inf}, "warn_fraction must be in (0, 1], got inf"),
    ({"alpha": 0.5}, "alpha must be in (0, 0.5), got 0.5"),
    ({"alpha": 0.0}, "alpha must be in (0, 0.5), got 0.0"),
    ({"beta": 0.5}, "beta must be in (0, 0.5), got 0.5"),
    ({"beta": math.nan}, "beta must be in (0, 0.5), got nan"),
    ({"prior_between_cv": -1e-9}, "prior_between_cv must be finite and >= 0, got -1e-09"),
    ({"prior_between_cv": math.inf}, "prior_between_cv must be finite and >= 0, got inf"),
    ({"prior_df": 0.0}, "prior_df must be finite and > 0, got 0.0"),
    ({"prior_df": math.inf}, "prior_df must be finite and > 0, got inf"),
    ({"machine_var": -1e-9}, "machine_var must be finite and >= 0, got -1e-09"),
    ({"machine_var": math.nan}, "machine_var must be finite and >= 0, got nan"),
])
def test_a_parameter_out_of_range_is_named_with_its_range(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        decide_latency(OK_HISTORY, OK_CURRENT, **kwargs)


@pytest.mark.parametrize(("block", "message"), [
    (BlockSummary(0.0, 0.1, 10), "current run block 1 has median_ms=0.0; need a finite time > 0"),
    (BlockSummary(math.inf, 0.1, 10), "current run block 1 has median_ms=inf; need a finite time > 0"),
    (BlockSummary(1.0, -0.1, 10), "current run block 1 has iqr_ms=-0.1; need a finite value >= 0"),
    (BlockSummary(1.0, math.nan, 10), "current run block 1 has iqr_ms=nan; need a finite value >= 0"),
    (BlockSummary(1.0, 0.1, 0), "current run block 1 has n=0; need at least one iteration"),
    ((1.0, 0.1, 10), "current run block 1 is tuple, not BlockSummary"),
])
def test_a_bad_block_is_named_by_run_and_index(block: BlockSummary, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        decide_latency(OK_HISTORY, [BlockSummary(1.0, 0.0, 1), block])
    with pytest.raises(ValueError, match=f"^{re.escape(message.replace('current run', 'baseline run 1'))}$"):
        decide_latency([OK_CURRENT, [BlockSummary(1.0, 0.0, 1), block]], OK_CURRENT)


def test_a_zero_iqr_and_one_iteration_are_valid_blocks() -> None:
    assert decide_latency([[BlockSummary(1.0, 0.0, 1)]], [BlockSummary(1.0, 0.0, 1)]).verdict == "pass"


def test_no_baseline_reports_nan_ratio_and_zero_confidence() -> None:
    got = decide_latency([], OK_CURRENT)
    assert got.verdict == "no_baseline" and math.isnan(got.ratio) and got.confidence == 0.0
    assert got.reason == "no baseline stored for this case yet; nothing to compare" and got.needs_confirmation is False
    with pytest.raises(ValueError, match="^current run has no measurement blocks$"):
        decide_latency([], [])


def test_update_history_refuses_keep_below_one_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^keep must be >= 1, got 0$"):
        update_history([], OK_CURRENT, 0)
    assert update_history([OK_CURRENT], OK_CURRENT, 1) == [list(OK_CURRENT)]


# --- the bars are inclusive, as documented (d >= bar, ratio >= 1 + warn_fraction * tolerance) ---------

def exact_tolerance(d: float) -> float:
    """The tolerance whose ``log1p`` is exactly *d* (found by stepping through neighbouring floats)."""
    tol = math.expm1(d)
    for _ in range(10_000):
        lim = math.log1p(tol)
        if lim == d:
            return tol
        tol = math.nextafter(tol, math.inf if lim < d else -math.inf)
    raise AssertionError(f"no float tolerance with log1p == {d!r}")


def one_block(ms: float, iqr: float = 0.0) -> list[BlockSummary]:
    return [BlockSummary(ms, iqr, 10)]


HIST_10 = [one_block(10.0)]


@pytest.mark.parametrize("current_ms", [10.5, 10.45, 10.7])
def test_a_slowdown_of_exactly_the_tolerance_fails(current_ms: float) -> None:
    d = math.log(current_ms) - math.log(10.0)  # what the rule computes for single-block runs
    tol = exact_tolerance(d)
    got = decide_latency(HIST_10, one_block(current_ms), tol)  # quiet: the bar is the tolerance itself
    assert got.verdict == "latency_regression" and got.needs_confirmation


@pytest.mark.parametrize("current_ms", [9.5, 9.7])
def test_a_speedup_of_exactly_the_tolerance_is_improved(current_ms: float) -> None:
    d = math.log(current_ms) - math.log(10.0)
    got = decide_latency(HIST_10, one_block(current_ms), exact_tolerance(-d))
    assert got.verdict == "improved"


def test_exactly_at_the_tolerance_but_not_credible_says_above_the_tolerance() -> None:
    d = math.log(10.5) - math.log(10.0)
    got = decide_latency(HIST_10, one_block(10.5), exact_tolerance(d), prior_between_cv=0.03)
    assert got.verdict == "warn"
    assert got.reason.startswith("slower, above the tolerance but not credible at this noise: ")


def test_exactly_at_the_tolerance_with_no_noise_has_confidence_zero() -> None:
    """``confidence`` is P(delta > L): with se = 0 it is 1 only for a slowdown strictly beyond the tolerance."""
    d = math.log(10.5) - math.log(10.0)
    got = decide_latency(HIST_10, one_block(10.5), exact_tolerance(d), prior_between_cv=0.0)
    assert got.verdict == "latency_regression" and got.confidence == 0.0


def test_a_ratio_of_exactly_the_warn_threshold_warns() -> None:
    ratio = math.exp(math.log(10.3) - math.log(10.0))
    fraction = 0.6
    for _ in range(10_000):  # the warn_fraction for which 1 + fraction * 0.05 is exactly the ratio
        if 1.0 + fraction * 0.05 == ratio:
            break
        fraction = math.nextafter(fraction, math.inf if 1.0 + fraction * 0.05 < ratio else -math.inf)
    assert 1.0 + fraction * 0.05 == ratio
    assert decide_latency(HIST_10, one_block(10.3), 0.05, warn_fraction=fraction).verdict == "warn"
    assert decide_latency(HIST_10, one_block(10.3), 0.05, warn_fraction=math.nextafter(fraction, 1)).verdict == "pass"


# --- Student's t against an arbitrary-precision reference --------------------------------------------

T_GRID = [-1e3, -50.0, -3.0, -0.1, 0.0, 0.01, 0.3, 1.0, 2.5, 10.0, 1e3]
DF_GRID = [0.5, 1.0, 2.0, 2.5, 5.0, 24.0, 25.0, 31.0, 100.0, 1000.0, 1e5]


@pytest.mark.parametrize("df", DF_GRID)
def test_student_t_cdf_matches_mpmath(df: float) -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for t in T_GRID:
        x = mpmath.mpf(df) / (mpmath.mpf(df) + mpmath.mpf(t) ** 2)
        tail = mpmath.betainc(mpmath.mpf(df) / 2, mpmath.mpf(1) / 2, 0, x, regularized=True) / 2
        expected = float(1 - tail if t > 0 else tail)
        assert student_t_cdf(t, df) == pytest.approx(expected, abs=1e-9, rel=1e-9), (t, df)


def test_student_t_cdf_at_the_infinities() -> None:
    import statistics as st

    for df in (1.0, 24.0, 1e5):
        assert student_t_cdf(math.inf, df) == 1.0 and student_t_cdf(-math.inf, df) == 0.0
        assert student_t_cdf(0.0, df) == 0.5
    for t in (-2.0, 0.3, 1.7):
        assert student_t_cdf(t, math.inf) == st.NormalDist().cdf(t)
