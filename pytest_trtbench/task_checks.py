"""What can be wrong with a suite's data, metric and calibration method, found at collection without reading
the data (registered in :data:`pytest_trtbench.suite_checks.CHECKS`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from pytest_trtbench.compare import Tolerance
from pytest_trtbench.precision.quantize import CALIBRATION_METHODS
from pytest_trtbench.task_data import Dataset, data_problems
from pytest_trtbench.task_metrics import metric_problems

if TYPE_CHECKING:
    from pytest_trtbench.suite import Suite


def _metric_bounds_set(tolerances: Any) -> list[str]:
    if not isinstance(tolerances, Mapping):
        return []
    found = []
    for precision, given in tolerances.items():
        for tol in (given.values() if isinstance(given, Mapping) else [given]):
            if isinstance(tol, Tolerance) and (tol.max_relative_metric_loss is not None or tol.max_metric_loss is not None):
                found.append(str(precision))
    return found


def task_problems(suite: Suite) -> list[str]:
    out = []
    method = getattr(suite, "calibration_method", "minmax")
    if method not in CALIBRATION_METHODS:
        out.append(f"unknown calibration_method {method!r}; choose from {', '.join(CALIBRATION_METHODS)}")
    data, metric = getattr(suite, "data", None), getattr(suite, "metric", None)
    out += data_problems(data)
    out += metric_problems(metric)
    if data is None:
        if metric is not None:
            out.append(f"metric={metric!r} needs labelled data: add data=Dataset(evaluation=...) or drop the metric")
        bounded = _metric_bounds_set(suite.tolerances)
        if bounded:
            out.append(f"tolerances[{bounded[0]!r}] sets a task-metric loss, which needs labelled data: "
                       "add data=Dataset(evaluation=...)")
    elif suite.calibration is not None and not (isinstance(data, Dataset) and data.calibration is None):
        out.append("give calibration= or a calibration part of data=, not both: int8 calibrates on "
                   "Dataset(calibration=...); Dataset(evaluation=..., calibration=None) keeps calibration=")
    return out
