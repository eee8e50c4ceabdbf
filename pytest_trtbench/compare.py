"""Comparing an engine's outputs with a reference: metrics, tolerances, pass/fail per output.

NaN or Inf in the engine's output never passes. The rule per output is allclose-style
(``|a - r| <= atol + rtol * |r|`` for every element) plus optional cosine and top-1 floors,
so a precision's tolerance can be stated the way users think about it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """What an output must satisfy. ``None`` switches a criterion off."""

    atol: float | None = 1e-4
    rtol: float = 1e-3
    min_cosine: float | None = None
    min_top1: float | None = None
    """Relative-accuracy criterion for classifier outputs, e.g. ``0.99`` = top-1 agreement >= 99 %."""
    max_relative_metric_loss: float | None = None
    """Task metric on ``Suite(data=...)``: the engine's may fall below the reference's by this fraction of it
    (``0.01``: 1 %; :mod:`pytest_trtbench.task_metrics`). With neither metric bound set a data suite gets 1 %."""
    max_metric_loss: float | None = None
    """Task metric, absolute form: the engine's may fall below the reference's by this much (``0.005``)."""

    @staticmethod
    def default_for(precision: str) -> Tolerance:
        """fp32 tight, fp16/bf16 looser, int8/fp8 loosest."""
        if precision in ("fp32",):
            return Tolerance(atol=1e-4, rtol=1e-3, min_cosine=0.99999)
        if precision in ("tf32", "fp16"):
            return Tolerance(atol=1e-2, rtol=1e-2, min_cosine=0.999)
        if precision == "bf16":
            return Tolerance(atol=5e-2, rtol=5e-2, min_cosine=0.995)
        return Tolerance(atol=None, rtol=0.0, min_cosine=0.98, min_top1=None)

    def problems(self) -> list[str]:
        """What is wrong with the values (empty when valid): NaN or negative tolerances would let
        anything pass, floors outside [0, 1] can never be met or always are."""
        out = []
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if value is None and name == "atol":
                continue
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                out.append(f"{name}={value!r} must be a finite number >= 0")
        for name in ("min_cosine", "min_top1"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not 0.0 <= value <= 1.0):
                out.append(f"{name}={value!r} must be in [0, 1] (or None to switch it off)")
        for name in ("max_relative_metric_loss", "max_metric_loss"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not math.isfinite(value) or value < 0):
                out.append(f"{name}={value!r} must be a finite number >= 0 (or None), e.g. 0.01")
        return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class OutputComparison:
    """Metrics for one output and whether it passed."""

    name: str
    max_abs_err: float
    max_rel_err: float
    mean_abs_err: float
    cosine_similarity: float
    top1_agreement: float | None
    nonfinite: int
    mismatches: int
    total: int
    required_atol: float
    """The smallest atol (at the given rtol) that would have passed: Polygraphy's hint."""
    passed: bool
    failures: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("name", "passed", "failures"):
            out.pop(key)
        return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    na = float(np.linalg.norm(a))
    nb = float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def compare_output(
    name: str, actual: np.ndarray, expected: np.ndarray, tol: Tolerance, *, classifier: bool = False
) -> OutputComparison:
    """Compare one output. Shapes must match; NaN/Inf in *actual* (or in the reference) always fails.

    User data can hold anything: numpy's overflow / invalid-value warnings are silenced here (the
    non-finite counts report them), so ``-W error`` never turns a NaN output into a crash."""
    import numpy as np

    with np.errstate(all="ignore"):
        return _compare(name, actual, expected, tol, classifier)


def _compare(name: str, actual: np.ndarray, expected: np.ndarray, tol: Tolerance, classifier: bool) -> OutputComparison:
    import numpy as np

    failures: list[str] = []
    if tuple(actual.shape) != tuple(expected.shape):
        return OutputComparison(
            name, math.inf, math.inf, math.inf, 0.0, None, 0, actual.size, actual.size, math.inf, False,
            [f"shape {tuple(actual.shape)} != reference shape {tuple(expected.shape)}"],
        )
    a = np.asarray(actual, dtype=np.float64).ravel()
    r = np.asarray(expected, dtype=np.float64).ravel()
    nonfinite = int(a.size - np.count_nonzero(np.isfinite(a)))
    finite_ref = np.isfinite(r)
    if nonfinite:
        failures.append(f"{nonfinite} of {a.size} elements are NaN or Inf")
    ref_nonfinite = int(r.size - np.count_nonzero(finite_ref))
    if ref_nonfinite:
        failures.append(f"the reference has {ref_nonfinite} of {r.size} elements NaN or Inf: nothing to compare with")
    diff = np.abs(a - r)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    absr = np.abs(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(absr > 0, diff / absr, np.where(diff > 0, np.inf, 0.0))
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    mean_abs = float(diff.mean()) if diff.size else 0.0
    cosine = _cosine(np.where(np.isfinite(a), a, 0.0), np.where(finite_ref, r, 0.0)) if not nonfinite else 0.0
    required = float(np.max(diff - tol.rtol * absr)) if diff.size else 0.0
    required = max(required, 0.0)
    mismatches = 0
    if tol.atol is not None:
        bad = diff > tol.atol + tol.rtol * absr
        mismatches = int(np.count_nonzero(bad))
        if mismatches:
            failures.append(
                f"{mismatches} / {a.size} ({100.0 * mismatches / max(a.size, 1):.2f} %) elements exceed "
                f"atol={tol.atol:g} + rtol={tol.rtol:g}*|ref| (max abs err {max_abs:.3g}; "
                f"atol >= {required:.3g} would pass)"
            )
    if tol.min_cosine is not None and not cosine >= tol.min_cosine:
        failures.append(f"cosine similarity {cosine:.6f} < {tol.min_cosine}")
    top1 = None
    scores, ref_scores = _class_scores(actual), _class_scores(expected)
    if classifier and scores.ndim >= 2 and scores.shape[-1] >= 2 and not nonfinite:
        top1 = float(np.mean(np.argmax(scores, axis=-1) == np.argmax(ref_scores, axis=-1)))
        if tol.min_top1 is not None and not top1 >= tol.min_top1:
            failures.append(f"top-1 agreement {100 * top1:.2f} % < {100 * tol.min_top1:.2f} %")
    return OutputComparison(
        name=name, max_abs_err=max_abs, max_rel_err=max_rel, mean_abs_err=mean_abs,
        cosine_similarity=cosine, top1_agreement=top1, nonfinite=nonfinite, mismatches=mismatches,
        total=int(a.size), required_atol=required, passed=not failures, failures=failures,
    )


def _class_scores(array: np.ndarray) -> np.ndarray:
    """Classifier scores with trailing singleton axes dropped: ``[N, C, 1, 1]`` -> ``[N, C]``."""
    if array.ndim > 2 and all(d == 1 for d in array.shape[2:]):
        return array.reshape(array.shape[0], array.shape[1])
    return array


def compare_outputs(
    actual: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    tolerance_for: Any,
    classifier_outputs: tuple[str, ...] | list[str] = (),
) -> list[OutputComparison]:
    """Compare every reference output; *tolerance_for(name)* gives each output's tolerance."""
    out = []
    for name in expected:
        if name not in actual:
            out.append(
                OutputComparison(name, math.inf, math.inf, math.inf, 0.0, None, 0, 0, 0, math.inf, False,
                                 [f"engine produced no output {name!r} (it has {sorted(actual)})"])
            )
            continue
        out.append(compare_output(name, actual[name], expected[name], tolerance_for(name),
                                  classifier=name in classifier_outputs))
    return out


def accuracy_regressions(
    current: Mapping[str, Mapping[str, Any]],
    baseline: Mapping[str, Mapping[str, Any]],
    tolerance_for: Any,
    slack: float = 0.5,
) -> list[str]:
    """Errors that grew beyond the slack vs the baseline, though maybe still inside tolerance.

    The slack: an error metric may grow by ``slack`` (50 %) of its baseline value plus a floor of
    10 % of the output's atol (so fp32 rounding noise of 1e-7 -> 2e-7 is not a regression);
    ``1 - cosine`` likewise with a floor of 1e-6. Returns one message per regressed metric.
    """
    messages = []
    for name, metrics in current.items():
        base = baseline.get(name)
        if not base:
            continue
        tol = tolerance_for(name)
        floor = 0.1 * tol.atol if tol.atol is not None else 1e-3
        for key in ("max_abs_err", "mean_abs_err"):
            b, c = base.get(key), metrics.get(key)
            if b is None or c is None:
                continue
            limit = b * (1 + slack) + floor
            if not c <= limit:
                messages.append(f"{name}.{key} {c:.3g} > baseline {b:.3g} (+{slack:.0%} + {floor:.2g} slack)")
        b, c = base.get("cosine_similarity"), metrics.get("cosine_similarity")
        if b is not None and c is not None:
            limit = (1 - b) * (1 + slack) + 1e-6
            if not (1 - c) <= limit:
                messages.append(f"{name}.cosine_similarity {c:.6f} fell below baseline {b:.6f}")
    return messages
