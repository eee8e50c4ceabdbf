"""Task metrics on a suite's evaluation data, and the criterion that gates them (pure functions).

Built-in metrics (higher is better): ``top1`` / ``top5`` (classification: scores ``[N, C]`` or ``[N, C, 1, 1]``,
labels ``[N]`` class ids or ``[N, C]`` one-hot / scores) and ``mean_iou`` (segmentation: scores ``[N, C, ...]``
with the class on axis 1, labels ``[N, ...]`` class ids; ids outside ``0..C-1``, e.g. 255, are ignored; the IoU
of each class present in the labels or the predictions, over the whole evaluation set, averaged). Any
``metric=callable(outputs, labels) -> float`` works the same way (higher must be better).

The criterion is Intel Neural Compressor's: the engine's metric may fall below the reference's by at most
``Tolerance.max_relative_metric_loss`` (relative: ``(reference - engine) / |reference|``) and/or
``Tolerance.max_metric_loss`` (absolute); a suite with data that sets neither gets a 1 % relative budget.
A NaN metric never passes. The baseline stores the values; a later run whose loss grew beyond the slack
(:func:`metric_regressions`) is an ``accuracy_regression``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pytest_trtbench.suite_types import SuiteError

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.compare import Tolerance

METRICS = ("top1", "top5", "mean_iou")
DEFAULT_RELATIVE_LOSS = 0.01
"""The budget of a data suite whose tolerance sets no metric criterion (INC's default ``relative`` 1 %)."""
SLACK_OF_LOSS, SLACK_OF_BUDGET = 0.5, 0.25
"""An accuracy regression: the loss vs the reference grew by more than 50 % of the stored loss, plus 25 % of
the budget, plus one evaluation sample's worth (``1 / samples``)."""

EPS = 1e-12
"""Rounding room in the criterion: ``0.9 - 0.85`` is ``0.05000000000000004``, which a budget of 0.05 allows."""

MetricFn = Callable[[Any, Any], float]


def _scores(outputs: np.ndarray) -> np.ndarray:
    import numpy as np

    scores = np.asarray(outputs, dtype=np.float64)
    if scores.ndim > 2 and all(d == 1 for d in scores.shape[2:]):
        scores = scores.reshape(scores.shape[0], scores.shape[1])
    if scores.ndim != 2:
        raise ValueError(f"top-k needs class scores [N, C], got shape {list(scores.shape)}")
    return scores


def _whole_numbers(labels: Any) -> np.ndarray:
    """*labels* as an array of whole numbers; class names, NaN or fractions match no prediction, so a metric
    on them is 0 for the reference and the engine alike and would pass any engine: refused."""
    import numpy as np

    ids = np.asarray(labels)
    if ids.dtype.kind not in "biuf":
        raise ValueError(f"labels must be class ids (whole numbers), got {ids.dtype} values such as "
                         f"{ids.reshape(-1)[:1].tolist()}; map class names to ids")
    if ids.dtype.kind == "f" and not np.all(np.isfinite(ids) & (ids == np.round(ids))):
        bad = ids[~(np.isfinite(ids) & (ids == np.round(ids)))].reshape(-1)[0]
        raise ValueError(f"labels must be whole numbers (class ids), got {bad}")
    return ids


def _class_ids(labels: np.ndarray, n: int, classes: int) -> np.ndarray:
    import numpy as np

    ids = np.asarray(labels)
    if ids.ndim == 2 and ids.shape[1] > 1:
        ids = ids.argmax(axis=1)  # one-hot or soft labels
    ids = _whole_numbers(ids).reshape(-1)
    if len(ids) != n:
        raise ValueError(f"{len(ids)} labels for {n} outputs")
    outside = ids[(ids < 0) | (ids >= classes)]
    if len(outside):
        raise ValueError(f"label {outside[0]:g} is outside the output's classes 0..{classes - 1} "
                         "(1-based ids? class ids start at 0)")
    return ids


def top_k(outputs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of samples whose label is among the *k* highest scores."""
    import numpy as np

    scores = _scores(outputs)
    if scores.shape[1] < k:
        raise ValueError(f"top{k} needs at least {k} classes, the output has {scores.shape[1]}")
    ids = _class_ids(labels, scores.shape[0], scores.shape[1])
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(best == ids[:, None], axis=1)))


def top1(outputs: np.ndarray, labels: np.ndarray) -> float:
    return top_k(outputs, labels, 1)


def top5(outputs: np.ndarray, labels: np.ndarray) -> float:
    return top_k(outputs, labels, 5)


def mean_iou(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes of intersection / union, counted over the whole set (labels outside 0..C-1 ignored)."""
    import numpy as np

    scores = np.asarray(outputs)
    if scores.ndim < 3:
        raise ValueError(f"mean_iou needs scores [N, C, ...] (class on axis 1), got shape {list(scores.shape)}")
    classes = scores.shape[1]
    predicted = scores.argmax(axis=1).reshape(-1)
    truth = _whole_numbers(labels).reshape(-1)
    if truth.shape != predicted.shape:
        raise ValueError(f"labels have {truth.size} values, the predictions {predicted.size} ([N, ...] without C)")
    keep = (truth >= 0) & (truth < classes)
    confusion = np.bincount(truth[keep].astype(np.int64) * classes + predicted[keep], minlength=classes * classes)
    confusion = confusion.reshape(classes, classes)
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - inter
    present = union > 0
    return float(np.mean(inter[present] / union[present])) if present.any() else math.nan


BUILT_IN: dict[str, MetricFn] = {"top1": top1, "top5": top5, "mean_iou": mean_iou}


def metric_problems(metric: Any) -> list[str]:
    if metric is None or callable(metric) or metric in BUILT_IN:
        return []
    return [f"unknown metric {metric!r}; choose from {', '.join(METRICS)} or pass a callable(outputs, labels) -> float"]


def resolve(metric: Any) -> tuple[str, MetricFn]:
    """The metric's name (for the report and baseline) and function; ``None`` means ``top1``."""
    if metric is None:
        return "top1", top1
    if isinstance(metric, str):
        return metric, BUILT_IN[metric]
    return getattr(metric, "__name__", type(metric).__name__), metric


def compute(name: str, fn: MetricFn, outputs: np.ndarray, labels: np.ndarray, where: str) -> float:
    """*fn* on the outputs, as a float; a metric that raises or returns a non-number is a one-line error."""
    try:
        value = fn(outputs, labels)
    except Exception as exc:
        raise SuiteError(f"{where}: metric {name} failed on outputs {list(outputs.shape)} and labels "
                         f"{list(labels.shape)}: {type(exc).__name__}: {exc}") from None
    shape = getattr(value, "shape", ())
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__") or shape:
        what = f"an array of shape {list(shape)}" if shape else type(value).__name__
        raise SuiteError(f"{where}: metric {name} returned {what}, not a number; return a float (higher is better)")
    return float(value)


@dataclass(frozen=True)
class TaskMetric:
    """The task metric of one case: the reference's and the engine's values on the evaluation data."""

    name: str
    reference: float
    engine: float
    samples: int
    failures: tuple[str, ...] = ()
    """Why the criterion failed (empty: it passed)."""
    output: str = ""
    """The model output the metric read (its tolerance holds the budget)."""

    @property
    def loss(self) -> float:
        return self.reference - self.engine

    @property
    def relative_loss(self) -> float:
        """``(reference - engine) / |reference|``: positive when the engine is worse."""
        if self.reference == 0 or not math.isfinite(self.reference):
            return 0.0 if self.loss == 0 else math.nan
        return self.loss / abs(self.reference)

    def stored(self) -> dict[str, Any]:
        """What a baseline entry keeps (``task_metric``)."""
        return {"name": self.name, "reference": self.reference, "engine": self.engine, "samples": self.samples,
                "relative_loss": self.relative_loss}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "failures": list(self.failures)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskMetric:
        return cls(**{**data, "failures": tuple(data.get("failures", ()))})


def budget(tol: Tolerance) -> tuple[float | None, float | None]:
    """``(relative, absolute)`` loss allowed; neither set gives :data:`DEFAULT_RELATIVE_LOSS` relative."""
    rel, absolute = tol.max_relative_metric_loss, tol.max_metric_loss
    return (DEFAULT_RELATIVE_LOSS if rel is None and absolute is None else rel), absolute


def judge(name: str, reference: float, engine: float, samples: int, tol: Tolerance, output: str = "") -> TaskMetric:
    """The criterion: *engine* may fall below *reference* by the tolerance's budget; NaN never passes."""
    result = TaskMetric(name, reference, engine, samples)
    failures = []
    if not math.isfinite(engine):
        failures.append(f"{name} of the engine is {engine}: a non-finite metric never passes")
    if not math.isfinite(reference):
        failures.append(f"{name} of the reference is {reference}: nothing to compare with")
    rel, absolute = budget(tol)
    if not failures:
        if rel is not None and result.loss > 0 and not result.relative_loss <= rel + EPS:
            failures.append(f"{name} {engine:.4f} vs reference {reference:.4f}: relative loss "
                            f"{100 * result.relative_loss:.2f} % > max_relative_metric_loss {100 * rel:.2f} %")
        if absolute is not None and not result.loss <= absolute + EPS:
            failures.append(f"{name} {engine:.4f} vs reference {reference:.4f}: loss {result.loss:.4f} > "
                            f"max_metric_loss {absolute:g}")
    return TaskMetric(name, reference, engine, samples, tuple(failures), output)


def allowed_loss(reference: float, tol: Tolerance) -> float:
    """The budget as an absolute loss (the tighter of the two forms)."""
    rel, absolute = budget(tol)
    forms = [v for v in (None if rel is None else rel * abs(reference), absolute) if v is not None]
    return min(forms) if forms else 0.0


def metric_regressions(current: TaskMetric | None, stored: Mapping[str, Any] | None, tol: Tolerance) -> list[str]:
    """The loss vs the reference grew beyond the slack since the baseline (maybe still inside the budget).
    Nothing to compare when the baseline has no metric, or another one."""
    if current is None or not stored or stored.get("name") != current.name:
        return []
    base_ref, base_engine = stored.get("reference"), stored.get("engine")
    if not isinstance(base_ref, (int, float)) or not isinstance(base_engine, (int, float)):
        return []
    base_loss = float(base_ref) - float(base_engine)
    slack = (SLACK_OF_LOSS * max(base_loss, 0.0) + SLACK_OF_BUDGET * allowed_loss(current.reference, tol)
             + 1.0 / max(current.samples, 1))
    if current.loss <= base_loss + slack:
        return []
    return [f"task metric {current.name}: loss vs reference {current.loss:.4f} ({current.engine:.4f} vs "
            f"{current.reference:.4f}) > baseline loss {base_loss:.4f} ({float(base_engine):.4f} vs "
            f"{float(base_ref):.4f}) + slack {slack:.4f}"]
