"""The latency rule at the edges of float arithmetic: for any finite inputs inside the documented parameter
ranges, :func:`pytest_trtbench.regression.decide_latency` returns a verdict (never an OverflowError from
``math.exp`` / ``math.expm1``: 200 000 random inputs once found 18, e.g. ``prior_df=0.01``)."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_trtbench.regression import VERDICTS, BlockSummary, LatencyDecision, decide_latency

positive = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False, allow_nan=False)
non_negative = st.floats(min_value=0.0, allow_infinity=False, allow_nan=False)
block = st.builds(BlockSummary, median_ms=positive, iqr_ms=non_negative, n=st.integers(1, 10**9))
run = st.lists(block, min_size=1, max_size=6)
open_fraction = st.floats(0.0, 1.0, exclude_min=True, exclude_max=True)
open_half = st.floats(0.0, 0.5, exclude_min=True, exclude_max=True)


def well_formed(d: LatencyDecision) -> None:
    assert d.verdict in VERDICTS, d
    assert d.ratio >= 0, d  # not NaN; inf or 0 past float range (exp of a log ratio over 709)
    assert 0.0 <= d.confidence <= 1.0, d
    assert d.needs_confirmation == (d.verdict == "latency_regression"), d
    assert d.reason.endswith(".") and "\n" not in d.reason, d


@settings(max_examples=400, deadline=None)
@given(history=st.lists(run, min_size=1, max_size=4), current=run, tolerance=open_fraction,
       warn_fraction=st.floats(0.0, 1.0, exclude_min=True), alpha=open_half, beta=open_half,
       prior_between_cv=non_negative, prior_df=positive, machine_var=non_negative)
def test_any_finite_inputs_in_range_get_a_verdict(history: list[list[BlockSummary]], current: list[BlockSummary],
                                                  tolerance: float, warn_fraction: float, alpha: float, beta: float,
                                                  prior_between_cv: float, prior_df: float, machine_var: float) -> None:
    well_formed(decide_latency(history, current, tolerance, warn_fraction=warn_fraction, alpha=alpha, beta=beta,
                               prior_between_cv=prior_between_cv, prior_df=prior_df, machine_var=machine_var))


def quiet(median_ms: float) -> list[BlockSummary]:
    return [BlockSummary(median_ms * f, median_ms * 0.01, 10) for f in (0.99, 1.0, 1.01)]


def test_a_tiny_prior_df_gives_a_verdict_not_an_overflow() -> None:
    """``prior_df=0.01``: the t quantiles are astronomically wide, so nothing is credible."""
    for prior_df in (0.01, 1e-3, 1e-9):
        d = decide_latency([quiet(1.0)], quiet(1.1), prior_df=prior_df)
        well_formed(d)
        assert d.verdict == "warn" and "smallest reliably caught slowdown" in d.reason, d


def test_a_slowdown_beyond_float_range_is_a_regression_with_an_infinite_ratio() -> None:
    d = decide_latency([quiet(1e-300)], quiet(1e300))
    well_formed(d)
    assert d.verdict == "latency_regression" and d.ratio == math.inf and d.confidence == 1.0
    faster = decide_latency([quiet(1e300)], quiet(1e-300))
    well_formed(faster)
    assert faster.verdict == "improved" and 0 <= faster.ratio < 1e-300
