"""Latency regression verdicts: is the current run credibly slower than its baseline history?

Pure Python (``math`` only); no numpy, pandas or backend imports, so the plugin can import it
for free and the rule can be unit-tested and simulated on its own.

Data model.  A *run* is one pytest session measuring one case: several independent measurement
*blocks* of ``n`` iterations each, each summarized as a :class:`BlockSummary`.  Iterations inside a
block are correlated (shared GPU, clocks, co-tenants), so the iteration count says little about
precision; the noise that matters is between blocks and between runs.  The baseline keeps the last
``K`` runs of a case (:func:`update_history`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from pytest_trtbench.student_t import student_t_cdf, student_t_ppf

__all__ = [
    "BlockSummary",
    "LatencyDecision",
    "VERDICTS",
    "decide_latency",
    "student_t_cdf",
    "student_t_ppf",
    "update_history",
]

#: Verdicts from best to worst; ``decide_latency`` is monotone along this order.
VERDICTS = ("improved", "pass", "warn", "latency_regression")

#: Prior between-run spread of a run's latency, relative (sigma of the log).  See ``decide_latency``.
PRIOR_BETWEEN_RUN_CV = 0.0065
#: ... or this fraction of the observed block-to-block sigma, whichever is larger.
PRIOR_BETWEEN_TO_BLOCK = 0.5
#: Weight of that prior, in pseudo degrees of freedom (history runs count one each, minus one).
PRIOR_DF = 24.0
#: ... or this fraction of the within-block iteration spread (IQR / 1.349, relative): launch-bound
#: microsecond cases whose iterations scatter by several percent also shift by several percent
#: between processes (measured on an H200: +3 % to +7 % re-run shifts at 7-11 % iteration CoV).
PRIOR_BETWEEN_TO_WITHIN = 0.35
#: Below this many history runs the between-run spread is unmeasured: a regression must then reach
#: the tolerance itself (no "tolerance minus t * se" allowance).
MIN_RUNS_FOR_ALLOWANCE = 3

# median of n iid normal draws has sd ~= sqrt(pi/2) * sigma / sqrt(n); sigma ~= IQR / 1.349
_MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2) / 1.3489795003921634


@dataclass(frozen=True)
class BlockSummary:
    """One measurement block: median and IQR of its ``n`` per-iteration latencies, in ms."""

    median_ms: float
    iqr_ms: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "iqr_ms": self.iqr_ms, "n": self.n}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BlockSummary:
        try:
            return cls(float(data["median_ms"]), float(data["iqr_ms"]), int(data["n"]))
        except KeyError as exc:
            raise ValueError(f"block summary {dict(data)!r} lacks key {exc.args[0]!r}") from None


@dataclass(frozen=True)
class LatencyDecision:
    """The verdict on one case, with the numbers behind it."""

    verdict: str  # "pass" | "improved" | "warn" | "latency_regression" | "no_baseline"
    ratio: float  # current / baseline, on block medians (geometric means); nan without baseline
    confidence: float  # 0..1: confidence that the slowdown exceeds the tolerance
    reason: str  # one human sentence with the numbers
    needs_confirmation: bool  # would-be regression: re-measure once, append, decide again


# ---------------------------------------------------------------------------------------------
# Validation


def _checked_run(blocks: Sequence[BlockSummary], what: str) -> list[float]:
    """Log block medians of one run, or ValueError naming what is wrong (never a silent pass)."""
    if len(blocks) == 0:
        raise ValueError(f"{what} has no measurement blocks")
    logs = []
    for i, b in enumerate(blocks):
        if not isinstance(b, BlockSummary):
            raise ValueError(f"{what} block {i} is {type(b).__name__}, not BlockSummary")
        if not (math.isfinite(b.median_ms) and b.median_ms > 0):
            raise ValueError(f"{what} block {i} has median_ms={b.median_ms!r}; need a finite time > 0")
        if not (math.isfinite(b.iqr_ms) and b.iqr_ms >= 0):
            raise ValueError(f"{what} block {i} has iqr_ms={b.iqr_ms!r}; need a finite value >= 0")
        if b.n < 1:
            raise ValueError(f"{what} block {i} has n={b.n!r}; need at least one iteration")
        logs.append(math.log(b.median_ms))
    return logs


def _mean(xs: Sequence[float]) -> float:
    # sorted: float sums then do not depend on the order blocks/runs arrive in
    return math.fsum(sorted(xs)) / len(xs)


# Float-range guards: for any finite inputs in range the rule returns a verdict, never an OverflowError
# (``x ** 2``, ``math.fsum``, ``math.exp`` and ``math.expm1`` raise where ``x * x`` gives inf).
_EXP_MAX = 709.0  # math.exp overflows just above 709.78
_ALMOST_ONE = math.nextafter(1.0, 0.0)


def _square(x: float) -> float:
    return x * x


def _sum_non_negative(xs: Sequence[float]) -> float:
    """``math.fsum`` of sorted non-negative terms; inf when the sum leaves float range."""
    try:
        return math.fsum(sorted(xs))
    except OverflowError:
        return math.inf


def _exp(x: float) -> float:
    return math.inf if x > _EXP_MAX else math.exp(x)


def _expm1(x: float) -> float:
    return math.inf if x > _EXP_MAX else math.expm1(x)


def _times_se(t: float, se: float) -> float:
    """``t * se``, 0 for a noiseless comparison even where ``t`` is infinite (a tiny ``prior_df``)."""
    return 0.0 if se == 0 else t * se


def _upper_t(tail: float, df: float) -> float:
    """The t quantile with *tail* above it; a tail below float resolution next to 1 is clamped there."""
    return student_t_ppf(min(1.0 - tail, _ALMOST_ONE), df)



@dataclass(frozen=True)
class _TrimmedRun:
    location: float  # 20 % trimmed mean of the log block medians
    winsorized_ss: float  # sum of squares about the winsorized mean
    effective_blocks: float  # Var(location) = winsorized variance / effective_blocks


def _trimmed(logs: Sequence[float]) -> _TrimmedRun:
    """Yuen's 20 % trimmed mean: drops (n-1)//4 blocks each side, so one block hit by a
    co-tenant burst in 5..8 cannot drag the run; no trimming below 5 blocks."""
    x = sorted(logs)
    n = len(x)
    g = (n - 1) // 4
    h = n - 2 * g
    location = math.fsum(x[g : n - g]) / h
    wins = [x[g]] * g + x[g : n - g] + [x[n - g - 1]] * g
    wm = math.fsum(wins) / n
    ss = math.fsum(sorted((w - wm) ** 2 for w in wins))
    effective = h * (h - 1) / (n - 1) if n > 1 else 1.0
    return _TrimmedRun(location, ss, effective)


# ---------------------------------------------------------------------------------------------
# The rule


def decide_latency(
    baseline_runs: Sequence[Sequence[BlockSummary]],
    current: Sequence[BlockSummary],
    tolerance: float = 0.05,
    *,
    warn_fraction: float = 0.6,
    alpha: float = 0.01,
    beta: float = 0.02,
    prior_between_cv: float = PRIOR_BETWEEN_RUN_CV,
    prior_df: float = PRIOR_DF,
    machine_var: float = 0.0,
) -> LatencyDecision:
    """Compare the current run of one case with its baseline history; one verdict.

    Three named steps: :func:`_check_parameters` (bad parameters and bad blocks raise);
    :func:`_noise_model` (the log-scale model: the estimated log slowdown ``d``, its standard
    error and degrees of freedom); :func:`_decide` (the two-bar rule, ``warn``, ``confidence``).
    Their docstrings state the model and the decision.  The defaults (alpha, beta, prior) were
    tuned with ``benchmarks/regression_detection.py`` for <= 1 % false alarms and >= 95 %
    detection of +5 % at block CoV 1 %.  ``no_baseline`` when ``baseline_runs`` is empty.

    **Confirmation protocol.**  On ``needs_confirmation`` the harness measures the same case
    again in the same session and calls once more with ``current + confirmation_blocks``
    (appended: same run, same run offset, so no between-run variance is credited); that second
    verdict is final and its ``needs_confirmation`` is ignored.  It removes alarms from block
    outliers, not from a slow node.

    **Machines.**  ``machine_var`` (default 0) is the variance of the log latency between
    machines, added to ``Var(d)`` when the current run comes from a machine the history has not
    seen (:func:`pytest_trtbench.gate.decide_machine_aware` estimates it).

    Raises ValueError for empty runs, NaN/inf/non-positive times, or bad parameters.  Finite inputs in
    range always get a verdict: where the arithmetic leaves float range (a tiny ``prior_df``, times 1e600
    apart) the ratio or the bars become inf (a slowdown past float range fails; nothing is credible at an
    infinite se), never an OverflowError.
    """
    _check_parameters(tolerance, warn_fraction, alpha, beta, prior_between_cv, prior_df, machine_var)
    cur_logs = _checked_run(current, "current run")
    hist_logs = [_checked_run(run, f"baseline run {i}") for i, run in enumerate(baseline_runs)]
    if not hist_logs:
        return LatencyDecision(
            "no_baseline", math.nan, 0.0, "no baseline stored for this case yet; nothing to compare", False
        )
    runs = _Runs(current, baseline_runs, cur_logs, hist_logs)
    noise = _noise_model(runs, prior_between_cv, prior_df, machine_var)
    return _decide(noise, len(hist_logs), tolerance, warn_fraction, alpha, beta)


def _check_parameters(
    tolerance: float,
    warn_fraction: float,
    alpha: float,
    beta: float,
    prior_between_cv: float,
    prior_df: float,
    machine_var: float,
) -> None:
    """ValueError naming the first parameter of :func:`decide_latency` out of its range."""
    if not (math.isfinite(tolerance) and 0 < tolerance < 1):
        raise ValueError(f"tolerance must be a fraction in (0, 1), got {tolerance!r}")
    if not (math.isfinite(warn_fraction) and 0 < warn_fraction <= 1):
        raise ValueError(f"warn_fraction must be in (0, 1], got {warn_fraction!r}")
    for name, p in (("alpha", alpha), ("beta", beta)):
        if not (math.isfinite(p) and 0 < p < 0.5):
            raise ValueError(f"{name} must be in (0, 0.5), got {p!r}")
    if not (math.isfinite(prior_between_cv) and prior_between_cv >= 0):
        raise ValueError(f"prior_between_cv must be finite and >= 0, got {prior_between_cv!r}")
    if not (math.isfinite(prior_df) and prior_df > 0):
        raise ValueError(f"prior_df must be finite and > 0, got {prior_df!r}")
    if not (math.isfinite(machine_var) and machine_var >= 0):
        raise ValueError(f"machine_var must be finite and >= 0, got {machine_var!r}")


@dataclass(frozen=True)
class _Runs:
    """The runs compared: their blocks and their checked log block medians."""

    current: Sequence[BlockSummary]
    history: Sequence[Sequence[BlockSummary]]
    cur_logs: list[float]
    hist_logs: list[list[float]]

    def all_blocks(self) -> list[BlockSummary]:
        return [b for run in (self.current, *self.history) for b in run]


@dataclass(frozen=True)
class _Noise:
    """What the noise model makes of one comparison."""

    d: float  # log(current / history level): the estimated log slowdown
    se: float  # its standard error
    df: float  # degrees of freedom of the t reference distribution


def _noise_model(runs: _Runs, prior_between_cv: float, prior_df: float, machine_var: float) -> _Noise:
    """The log slowdown ``d``, its standard error and degrees of freedom.

    **Model.**  On the log scale (so the rule is scale-free: multiplying every time by c changes
    nothing), the median of block b in run r is ``x_rb = mu + delta*[r is current] + u_r + e_rb``
    with a run offset ``u_r ~ N(0, s_run^2)`` (clocks, node, co-tenants: what changes between CI
    jobs) and block noise ``e_rb ~ N(0, s_blk^2)``.  Each run is reduced to the 20 % trimmed mean
    of its log block medians (Yuen; one block hit by a co-tenant burst cannot drag a run of 5..8
    blocks); ``d = location(current) - mean of history locations`` estimates ``delta`` and
    ``ratio = exp(d)``.  All reductions sort first, so the result does not depend on block or run
    order.

    **Variance** (``E_r`` = effective block count of run r's trimmed mean)::

        Var(d) = s_run^2 (1 + 1/K) + s_blk^2 (1/E_cur + mean_r(1/E_r) / K) + machine_var

    ``s_blk^2`` is :func:`_block_variance`, ``s_run^2`` is :func:`_run_variance`.  ``d / se`` is
    read against Student t with ``prior_df + K - 1`` degrees of freedom (``s_run`` dominates the
    uncertainty).  This is bencher's t prediction interval over history, with a between-block term
    and a prior so that K = 1 is usable.
    """
    k = len(runs.hist_logs)
    cur = _trimmed(runs.cur_logs)
    hist = [_trimmed(r) for r in runs.hist_logs]
    var_blk = _block_variance(runs, [cur, *hist])
    inv_b_hist = _mean([1.0 / t.effective_blocks for t in hist])
    var_run = _run_variance(runs, hist, var_blk, prior_between_cv, prior_df)
    d = cur.location - _mean([t.location for t in hist])
    var_d = var_run * (1.0 + 1.0 / k) + var_blk * (1.0 / cur.effective_blocks + inv_b_hist / k) + machine_var
    return _Noise(d, math.sqrt(var_d), prior_df + (k - 1))


def _block_variance(runs: _Runs, trimmed: Sequence[_TrimmedRun]) -> float:
    """``s_blk^2``: the pooled winsorized within-run variance of log block medians (current run
    included), floored by what the blocks' own IQRs imply for independent iterations
    (``(1.2533 * IQR/1.349 / median)^2 / n``; correlation only makes it larger)."""
    df_w = sum(len(r) - 1 for r in [runs.cur_logs, *runs.hist_logs])
    ss = math.fsum(sorted(t.winsorized_ss for t in trimmed))
    var_blk = ss / df_w if df_w else 0.0
    floor_terms = [_square(_MEDIAN_SE_FACTOR * b.iqr_ms / b.median_ms) / b.n for b in runs.all_blocks()]
    return max(var_blk, _sum_non_negative(floor_terms) / len(floor_terms))


def _run_variance(
    runs: _Runs, hist: Sequence[_TrimmedRun], var_blk: float, prior_between_cv: float, prior_df: float
) -> float:
    """``s_run^2``: the moment estimate from the spread of the K history run locations, shrunk toward
    a prior (scaled-inverse-chi^2: ``prior_df`` pseudo-runs)::

        prior  = max(prior_between_cv^2, (0.5 * s_blk)^2, (0.35 * median within-block sigma)^2)
        s_run^2 = max((prior_df * prior + (K-1) * s2_data) / (prior_df + K - 1), s2_data)
        s2_data = max(0, var(run locations) - s_blk^2 mean(1/E_r))

    With one baseline run nothing is known about between-run variance, so the prior alone
    applies: a run-to-run sigma of 0.65 % (GPU kernels on a quiet shared node), or half the
    observed block sigma if larger (a machine whose blocks are noisy has noisy runs), or a share
    of the iteration spread (launch-bound cases), worth 24 runs.  Stored history then pulls it
    toward the data, and it never falls below what the stored runs themselves show.
    """
    k = len(hist)
    hist_means = [t.location for t in hist]
    inv_b_hist = _mean([1.0 / t.effective_blocks for t in hist])
    if k >= 2:
        m = _mean(hist_means)
        s2_means = math.fsum(sorted((x - m) ** 2 for x in hist_means)) / (k - 1)
        s2_run_data = max(0.0, s2_means - var_blk * inv_b_hist)
    else:
        s2_run_data = 0.0
    df = prior_df + (k - 1)
    within = sorted(b.iqr_ms / b.median_ms / 1.349 for b in runs.all_blocks())
    within_sigma = within[len(within) // 2]
    prior_var_run = max(
        _square(prior_between_cv), PRIOR_BETWEEN_TO_BLOCK**2 * var_blk, _square(PRIOR_BETWEEN_TO_WITHIN * within_sigma)
    )
    # shrunk toward the prior, but never below the spread the stored runs themselves show: "the noise
    # the measurements show" (a 2-vCPU CI machine was seen alternating 0.20 / 0.41 ms between runs)
    return max((prior_df * prior_var_run + (k - 1) * s2_run_data) / df, s2_run_data)


def _decide(
    noise: _Noise, k: int, tolerance: float, warn_fraction: float, alpha: float, beta: float
) -> LatencyDecision:
    """The verdict from ``d`` and its ``se`` (``L = log(1 + tolerance)``, ``t_a``/``t_b`` = t
    quantiles at 1-alpha / 1-beta):

    * ``latency_regression`` iff ``d >= t_a * se`` (credibly slower than *no change*: false alarms
      at most ``alpha`` per comparison if the model holds) **and** ``d >= L - t_b * se`` (a slowdown
      of ``tolerance`` is not ruled out).  The second bar makes a slowdown of exactly
      ``tolerance`` fail with probability ``1 - beta`` when the first bar is below it
      (``se <= L / (t_a + t_b)``; ~1.0 % at the defaults), while well-measured small changes
      (+1 % with se 0.2 %) do not fail.  A tolerance gate cannot both catch 95 % of
      ``+tolerance`` slowdowns and fail only when the *estimate* exceeds the tolerance; this rule
      chooses the former, so some slowdowns a little under the tolerance also fail.  Below
      ``MIN_RUNS_FOR_ALLOWANCE`` history runs the second bar is ``d >= L`` itself.
      ``needs_confirmation`` is True.
    * ``improved``: the mirror image (credibly faster, and faster by ``tolerance`` not ruled out).
    * ``warn``: not a regression but ``ratio >= 1 + warn_fraction * tolerance`` (just under the
      tolerance, or over it without statistical credibility).
    * ``pass`` otherwise.

    ``confidence`` is ``P(delta > L)`` under the t model, i.e. confidence that the slowdown exceeds
    the tolerance (0.5 when the estimate sits on it).
    """
    d, se, df = noise.d, noise.se, noise.df
    ratio = _exp(d)
    lim = math.log1p(tolerance)
    t_a = _upper_t(alpha, df)
    t_b = _upper_t(beta, df)
    if se > 0:
        confidence = 1.0 - student_t_cdf((lim - d) / se, df)
    else:
        confidence = 1.0 if d > lim else 0.0
    allowance = _times_se(t_b, se) if k >= MIN_RUNS_FOR_ALLOWANCE else 0.0
    fail_bar = max(_times_se(t_a, se), lim - allowance)
    stats = (
        f"ratio {ratio:.4f} ({(ratio - 1) * 100:+.2f} %) vs {k} baseline run(s), "
        f"se {se * 100:.2f} %, tolerance {tolerance * 100:g} %, "
        f"confidence over tolerance {confidence:.0%}"
    )
    mdd = _expm1(_times_se(t_a + t_b, se)) * 100  # smallest slowdown caught with 1 - beta
    if d > 0 and d >= fail_bar:
        reason = f"slower: {stats}; credible at alpha={alpha:g} (needs >= {_expm1(fail_bar) * 100:+.2f} %)."
        return LatencyDecision("latency_regression", ratio, confidence, reason, True)
    if d < 0 and -d >= fail_bar:
        reason = f"faster: {stats}; credible at alpha={alpha:g}; consider updating the baseline."
        return LatencyDecision("improved", ratio, confidence, reason, False)
    if ratio >= 1.0 + warn_fraction * tolerance:
        why = (
            "above the tolerance but not credible at this noise"
            if d >= lim
            else f"within {warn_fraction:g} x tolerance of failing"
        )
        reason = f"slower, {why}: {stats}; smallest reliably caught slowdown {mdd:.1f} %."
        return LatencyDecision("warn", ratio, confidence, reason, False)
    return LatencyDecision("pass", ratio, confidence, f"no credible change: {stats}.", False)


def update_history(
    history: Sequence[Sequence[BlockSummary]], new_run: Sequence[BlockSummary], keep: int
) -> list[list[BlockSummary]]:
    """History with ``new_run`` appended, oldest first, trimmed to the last ``keep`` runs."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep!r}")
    _checked_run(new_run, "new run")
    runs = [list(run) for run in history] + [list(new_run)]
    return runs[-keep:]
