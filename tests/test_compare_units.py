"""Output comparison details a user reads in the report and failure text (issue 18: these survived mutation
testing): tolerance validation, classifier top-1 on squeezable score shapes, the metrics of a shape mismatch
or a missing output, NaN/Inf on either side under ``-W error``, and the baseline-drift check. Real numpy
arrays throughout; no backend runs."""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest

from pytest_trtbench.compare import (
    Tolerance,
    _cosine,
    accuracy_regressions,
    compare_output,
    compare_outputs,
)

INF = math.inf


# --- tolerance validation -------------------------------------------------------------------------

@pytest.mark.parametrize("tol", [
    Tolerance(), Tolerance(atol=None), Tolerance(atol=0, rtol=0), Tolerance(atol=0.5, rtol=0.9),
    Tolerance(min_cosine=0.0, min_top1=1.0), Tolerance(min_cosine=1, min_top1=0),
    Tolerance(max_relative_metric_loss=0.0, max_metric_loss=0), Tolerance(max_relative_metric_loss=0.5),
    Tolerance(max_metric_loss=2.5),  # an absolute loss on a metric that is not a fraction (e.g. a score)
])
def test_valid_tolerances_have_no_problems(tol: Tolerance) -> None:
    assert tol.problems() == []


@pytest.mark.parametrize(("tol", "problems"), [
    (Tolerance(atol=-1e-9), ["atol=-1e-09 must be a finite number >= 0"]),
    (Tolerance(atol=math.nan), ["atol=nan must be a finite number >= 0"]),
    (Tolerance(atol=True), ["atol=True must be a finite number >= 0"]),
    (Tolerance(rtol=None), ["rtol=None must be a finite number >= 0"]),  # type: ignore[arg-type]
    (Tolerance(rtol=INF), ["rtol=inf must be a finite number >= 0"]),
    (Tolerance(rtol="0.1"), ["rtol='0.1' must be a finite number >= 0"]),  # type: ignore[arg-type]
    (Tolerance(min_cosine=1.5), ["min_cosine=1.5 must be in [0, 1] (or None to switch it off)"]),
    (Tolerance(min_top1=-0.1), ["min_top1=-0.1 must be in [0, 1] (or None to switch it off)"]),
    (Tolerance(min_top1="0.9"), ["min_top1='0.9' must be in [0, 1] (or None to switch it off)"]),  # type: ignore[arg-type]
    (Tolerance(min_cosine=False), ["min_cosine=False must be in [0, 1] (or None to switch it off)"]),
    (Tolerance(atol=None, rtol=-0.5), ["rtol=-0.5 must be a finite number >= 0"]),  # no atol: rtol still checked
    (Tolerance(max_relative_metric_loss=-0.01),
     ["max_relative_metric_loss=-0.01 must be a finite number >= 0 (or None), e.g. 0.01"]),
    (Tolerance(max_relative_metric_loss=math.nan),
     ["max_relative_metric_loss=nan must be a finite number >= 0 (or None), e.g. 0.01"]),
    (Tolerance(max_metric_loss=INF), ["max_metric_loss=inf must be a finite number >= 0 (or None), e.g. 0.01"]),
    (Tolerance(max_metric_loss="1%"),  # type: ignore[arg-type]
     ["max_metric_loss='1%' must be a finite number >= 0 (or None), e.g. 0.01"]),
    (Tolerance(max_metric_loss=True), ["max_metric_loss=True must be a finite number >= 0 (or None), e.g. 0.01"]),
    (Tolerance(atol=-1, rtol=-2, min_cosine=2, min_top1=3),
     ["atol=-1 must be a finite number >= 0", "rtol=-2 must be a finite number >= 0",
      "min_cosine=2 must be in [0, 1] (or None to switch it off)",
      "min_top1=3 must be in [0, 1] (or None to switch it off)"]),
])
def test_each_bad_tolerance_value_is_named(tol: Tolerance, problems: list[str]) -> None:
    assert tol.problems() == problems


# --- classifier outputs ---------------------------------------------------------------------------

def scores(labels: list[int], classes: int = 3) -> np.ndarray:
    out = np.zeros((len(labels), classes), np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


@pytest.mark.parametrize("trailing", [(), (1,), (1, 1)])
def test_top1_reads_class_scores_with_trailing_singleton_axes(trailing: tuple[int, ...]) -> None:
    ref = scores([0, 1, 2, 1]).reshape(4, 3, *trailing)
    out = scores([0, 1, 0, 2]).reshape(4, 3, *trailing)  # 2 of 4 agree
    c = compare_output("logits", out, ref, Tolerance(atol=None, rtol=0.0, min_top1=0.4), classifier=True)
    assert c.top1_agreement == 0.5 and c.passed
    c = compare_output("logits", out, ref, Tolerance(atol=None, rtol=0.0, min_top1=0.6), classifier=True)
    assert not c.passed and c.failures == ["top-1 agreement 50.00 % < 60.00 %"]


def test_top1_is_over_the_last_axis_of_a_sequence_classifier() -> None:
    ref = scores([0, 1, 2, 1]).reshape(4, 1, 3)  # [batch, 1 position, 3 classes]
    out = scores([0, 1, 0, 2]).reshape(4, 1, 3)
    assert compare_output("y", out, ref, Tolerance(atol=None, rtol=0.0), classifier=True).top1_agreement == 0.5


def test_top1_of_a_per_position_classifier_counts_every_position() -> None:
    ref = scores([0, 1, 2, 1, 0, 2], classes=4).reshape(2, 3, 4)  # [batch 2, 3 positions, 4 classes]
    out = scores([0, 1, 3, 1, 0, 2], classes=4).reshape(2, 3, 4)  # one of the 6 positions disagrees
    c = compare_output("tags", out, ref, Tolerance(atol=None, rtol=0.0, min_top1=0.9), classifier=True)
    assert c.top1_agreement == 5 / 6
    assert c.failures == [f"top-1 agreement {500 / 6:.2f} % < 90.00 %"]


@pytest.mark.parametrize("shape", [(4, 3, 2, 1), (4, 1), (4,)])
def test_no_top1_without_a_class_axis(shape: tuple[int, ...]) -> None:
    ref = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    assert compare_output("y", ref, ref, Tolerance(), classifier=True).top1_agreement is None


# --- what a failure reports ----------------------------------------------------------------------

def test_a_shape_mismatch_reports_infinite_errors_and_every_element_mismatched() -> None:
    c = compare_output("y", np.zeros((2, 3)), np.zeros((3, 2)), Tolerance())
    assert (c.name, c.passed, c.failures) == ("y", False, ["shape (2, 3) != reference shape (3, 2)"])
    assert c.metrics() == {"max_abs_err": INF, "max_rel_err": INF, "mean_abs_err": INF, "cosine_similarity": 0.0,
                           "top1_agreement": None, "nonfinite": 0, "mismatches": 6, "total": 6, "required_atol": INF}


def test_a_missing_output_is_reported_and_the_others_still_compared() -> None:
    ref = {"a": np.ones(3), "b": np.ones(3), "c": np.ones(3)}
    got = compare_outputs({"b": np.ones(3), "c": np.zeros(3)}, ref, lambda name: Tolerance())
    assert [c.name for c in got] == ["a", "b", "c"] and [c.passed for c in got] == [False, True, False]
    assert got[0].failures == ["engine produced no output 'a' (it has ['b', 'c'])"]
    assert got[0].metrics() == {"max_abs_err": INF, "max_rel_err": INF, "mean_abs_err": INF, "cosine_similarity": 0.0,
                                "top1_agreement": None, "nonfinite": 0, "mismatches": 0, "total": 0,
                                "required_atol": INF}
    assert got[0].passed is False


def test_a_one_element_mismatch_is_100_percent() -> None:
    c = compare_output("y", np.array([1.0]), np.array([2.0]), Tolerance(atol=0.1, rtol=0.0))
    assert c.failures == ["1 / 1 (100.00 %) elements exceed atol=0.1 + rtol=0*|ref| (max abs err 1; "
                          "atol >= 1 would pass)"]


def test_without_an_atol_nothing_counts_as_a_mismatch() -> None:
    c = compare_output("y", np.array([1.0, 5.0]), np.array([2.0, 2.0]), Tolerance(atol=None, rtol=0.0))
    assert c.mismatches == 0 and c.max_abs_err == 3.0


def test_a_reference_with_nan_fails_and_its_cosine_ignores_the_nan() -> None:
    ref = np.array([1.0, np.nan, 2.0, 0.5])
    out = np.array([1.0, 7.0, 2.0, 0.5])
    c = compare_output("y", out, ref, Tolerance(atol=None, rtol=0.0))
    assert c.failures == ["the reference has 1 of 4 elements NaN or Inf: nothing to compare with"] and not c.passed
    assert c.cosine_similarity == _cosine(out, np.array([1.0, 0.0, 2.0, 0.5]))


def test_nan_and_inf_on_both_sides_never_raise_under_warnings_as_errors() -> None:
    out = np.array([np.inf, np.nan, -np.inf, 0.0, 1.0], np.float32)
    ref = np.array([np.inf, np.nan, np.inf, 0.0, 0.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = compare_output("y", out, ref, Tolerance())
    assert not c.passed and c.nonfinite == 3 and c.failures[0] == "3 of 5 elements are NaN or Inf"


# --- drift against the baseline --------------------------------------------------------------------

def metrics(max_abs: float | None = 1e-3, mean_abs: float | None = 1e-4, cosine: float | None = 0.999) -> dict[str, Any]:
    return {"max_abs_err": max_abs, "mean_abs_err": mean_abs, "cosine_similarity": cosine}


FP32 = Tolerance.default_for("fp32")  # atol 1e-4: floor 1e-5


def test_an_error_grown_past_half_again_plus_a_tenth_of_atol_is_reported() -> None:
    base = {"y": metrics(max_abs=1e-3)}
    assert accuracy_regressions({"y": metrics(max_abs=1.5e-3 + 0.9e-5)}, base, lambda n: FP32) == []
    assert accuracy_regressions({"y": metrics(max_abs=1.5e-3 + 1.1e-5)}, base, lambda n: FP32) == [
        "y.max_abs_err 0.00151 > baseline 0.001 (+50% + 1e-05 slack)"]


def test_without_an_atol_the_floor_is_1e_3() -> None:
    base = {"y": metrics(max_abs=1e-3)}
    int8 = Tolerance.default_for("int8")
    assert int8.atol is None
    assert accuracy_regressions({"y": metrics(max_abs=2.4e-3)}, base, lambda n: int8) == []
    assert accuracy_regressions({"y": metrics(max_abs=2.6e-3)}, base, lambda n: int8) == [
        "y.max_abs_err 0.0026 > baseline 0.001 (+50% + 0.001 slack)"]


def test_each_output_is_checked_with_its_own_tolerance_and_missing_baselines_are_skipped() -> None:
    tolerances = {"a": Tolerance(atol=1.0), "b": FP32}
    current = {"new": metrics(max_abs=9.0), "a": metrics(max_abs=1.58e-3), "b": metrics(max_abs=1.58e-3)}
    base = {"a": metrics(), "b": metrics()}
    assert accuracy_regressions(current, base, tolerances.__getitem__) == [
        "b.max_abs_err 0.00158 > baseline 0.001 (+50% + 1e-05 slack)"]


def test_a_metric_missing_on_either_side_is_skipped_not_the_rest() -> None:
    base = {"y": metrics(max_abs=None)}
    assert accuracy_regressions({"y": metrics(mean_abs=1e-3)}, base, lambda n: FP32) == [
        "y.mean_abs_err 0.001 > baseline 0.0001 (+50% + 1e-05 slack)"]
    assert accuracy_regressions({"y": metrics(cosine=None)}, {"y": metrics()}, lambda n: FP32) == []
    assert accuracy_regressions({"y": metrics()}, {"y": metrics(cosine=None)}, lambda n: FP32) == []


def test_cosine_may_fall_by_half_again_its_distance_from_one() -> None:
    b = 0.6  # a limit >= 0.5 lies on the grid 1 - c can hit exactly (a low cosine, but a valid baseline)
    for _ in range(100):
        limit = (1 - b) * 1.5 + 1e-6
        if 1 - (1 - limit) == limit:
            break
        b = math.nextafter(b, 0.0)
    c = 1 - limit
    assert 1 - c == limit
    base = {"y": metrics(cosine=b)}
    assert accuracy_regressions({"y": metrics(cosine=c)}, base, lambda n: FP32) == []  # exactly at the limit: fine
    lower = math.nextafter(c, 0.0)
    assert accuracy_regressions({"y": metrics(cosine=lower)}, base, lambda n: FP32) == [
        f"y.cosine_similarity {lower:.6f} fell below baseline {b:.6f}"]
