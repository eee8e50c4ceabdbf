"""Verdicts: what a case's accuracy and latency results mean for the test, as one pure function."""
from __future__ import annotations

from dataclasses import dataclass

PASS, NEW, IMPROVED, BUILT, SKIPPED = "pass", "new", "improved", "built", "skipped"
ACCURACY_FAIL, ACCURACY_REGRESSION, LATENCY_REGRESSION, ERROR = (
    "accuracy_fail", "accuracy_regression", "latency_regression", "error",
)
VERDICTS = (PASS, NEW, IMPROVED, ACCURACY_FAIL, ACCURACY_REGRESSION, LATENCY_REGRESSION, ERROR, SKIPPED, BUILT)
FAILING = frozenset({ACCURACY_FAIL, ACCURACY_REGRESSION, LATENCY_REGRESSION, ERROR})


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str

    @property
    def failed(self) -> bool:
        return self.status in FAILING


def decide_verdict(
    *,
    accuracy_failures: list[str],
    accuracy_regressions: list[str],
    latency_verdict: str | None,
    latency_reason: str,
    has_baseline: bool,
    strict: bool = False,
    notes: list[str] | None = None,
) -> Verdict:
    """Combine the checks. Precedence: accuracy_fail > accuracy_regression > latency_regression >
    new > improved > pass. ``latency_verdict`` is the regression rule's verdict, or ``None`` when
    the latency gate did not run (the reason says why)."""
    notes = list(notes or [])
    if accuracy_failures:
        return Verdict(ACCURACY_FAIL, "; ".join(accuracy_failures))
    if accuracy_regressions:
        return Verdict(ACCURACY_REGRESSION, "; ".join(accuracy_regressions))
    if latency_verdict == LATENCY_REGRESSION:
        return Verdict(LATENCY_REGRESSION, latency_reason)
    if not has_baseline:
        reason = "no baseline yet: record one with --trt-update-baselines"
        if strict:
            return Verdict(ERROR, reason + " (--trt-strict fails new cases)")
        return Verdict(NEW, reason)
    if latency_reason:
        notes.append(latency_reason)
    if latency_verdict == IMPROVED:
        return Verdict(IMPROVED, "; ".join(notes + ["update the baseline with --trt-update-baselines"]))
    return Verdict(PASS, "; ".join(notes))
