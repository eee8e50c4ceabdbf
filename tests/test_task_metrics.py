"""Task metrics, the metric criterion and its baseline regression, data plumbing and calibration methods, as units
(real numpy, real ONNX Runtime quantization; end-to-end runs through the plugin are in test_task_suites.py)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from pytest_trtbench import Dataset, Input, Suite, SuiteError, Tolerance
from pytest_trtbench.baseline import load_baselines
from pytest_trtbench.baseline_check import entry_problem
from pytest_trtbench.outcome import CaseInfo, CaseOutcome
from pytest_trtbench.task_data import case_feeds, load_task_data, run_evaluation
from pytest_trtbench.task_metrics import (
    TaskMetric,
    judge,
    mean_iou,
    metric_regressions,
    resolve,
    top1,
    top5,
    top_k,
)

# --- metrics ---------------------------------------------------------------------------------------


def test_top1_and_top5_count_the_label_among_the_best_scores() -> None:
    scores = np.array([[0.9, 0.1, 0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [6, 5, 4, 3, 2, 1]], dtype=np.float32)
    labels = np.array([0, 0, 5])
    assert top1(scores, labels) == pytest.approx(1 / 3)           # only the first sample's best class is right
    assert top5(scores, labels) == pytest.approx(1 / 3)           # sample 2's label 0 is its 6th best, 3's label 5 its 6th
    assert top_k(scores, labels, 6) == 1.0
    assert top1(scores.reshape(3, 6, 1, 1), labels) == pytest.approx(1 / 3)  # [N, C, 1, 1] heads
    assert top1(scores, np.eye(6)[labels]) == pytest.approx(1 / 3)           # one-hot labels


def test_top5_refuses_fewer_than_five_classes() -> None:
    with pytest.raises(ValueError, match="top5 needs at least 5 classes, the output has 3"):
        top5(np.zeros((2, 3)), np.array([0, 1]))


def test_mean_iou_over_the_whole_set_ignores_labels_outside_the_classes() -> None:
    # 2 images of 1x4 pixels, 3 classes; scores one-hot on the predicted class
    predicted = np.array([[[0, 0, 1, 1]], [[2, 2, 2, 0]]])
    truth = np.array([[[0, 1, 1, 1]], [[2, 2, 255, 0]]])               # 255 is ignored
    scores = np.moveaxis(np.eye(3)[predicted], -1, 1)                  # [N, C, H, W]
    # class 0: pred {0,1,7}, true {0,7} -> inter 2, union 3; class 1: pred {2,3}, true {1,2,3} -> 2/3; class 2: 2/2
    assert mean_iou(scores, truth) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    with pytest.raises(ValueError, match="class on axis 1"):
        mean_iou(np.zeros((2, 3)), np.zeros(2))


@pytest.mark.parametrize(("labels", "message"), [
    (np.array(["cat", "dog", "cat"]), "labels must be class ids"),                       # class names, not ids
    (np.array([0.0, np.nan, 1.0]), "labels must be whole numbers"),                     # NaN labels
    (np.array([0.5, 1.0, 2.0]), "labels must be whole numbers"),
    (np.array([1, 2, 3]), "label 3 is outside the output's classes 0..2"),              # 1-based ids
    (np.array([-1, 0, 1]), "label -1 is outside the output's classes 0..2"),
])
def test_top_k_refuses_labels_that_are_not_class_ids(labels: np.ndarray, message: str) -> None:
    # such labels match no prediction: top-1 is 0 for the reference and the engine alike, a relative loss of 0,
    # so the gate would pass whatever the engine does
    scores = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        top1(scores, labels)
    assert top1(scores, np.array([0.0, 1.0, 2.0])) == 1.0 and top1(scores, np.array([[0], [1], [2]])) == 1.0


def test_mean_iou_refuses_labels_that_are_not_whole_numbers() -> None:
    scores = np.moveaxis(np.eye(3)[np.array([[[0, 1, 2]]])], -1, 1)
    with pytest.raises(ValueError, match="labels must be whole numbers"):
        mean_iou(scores, np.array([[[0.0, np.nan, 2.0]]]))
    with pytest.raises(ValueError, match="labels must be class ids"):
        mean_iou(scores, np.array([[["a", "b", "c"]]]))


def test_a_callable_metric_is_named_after_the_function() -> None:
    def recall_of_one(outputs: Any, labels: Any) -> float:
        return float(np.mean(outputs.argmax(1)[labels == 1] == 1))

    assert resolve(recall_of_one)[0] == "recall_of_one" and resolve(None)[0] == "top1" and resolve("top5")[1] is top5


# --- the criterion and its baseline regression ------------------------------------------------------


def test_relative_criterion_fails_beyond_the_budget_and_passes_within() -> None:
    tol = Tolerance(max_relative_metric_loss=0.01)
    assert judge("top1", 0.95, 0.941, 600, tol).failures == ()       # 0.95 % loss
    failed = judge("top1", 0.95, 0.94, 600, tol)                       # 1.05 % loss
    assert failed.failures and "relative loss 1.05 % > max_relative_metric_loss 1.00 %" in failed.failures[0]
    assert judge("top1", 0.95, 0.99, 600, tol).failures == ()         # better than the reference
    assert judge("gain", 0.0, 0.05, 600, tol).failures == ()          # better than a reference of 0
    assert judge("gain", 0.0, 0.0, 600, tol).failures == ()
    assert judge("gain", 0.0, -0.05, 600, tol).failures                 # worse than a reference of 0


def test_absolute_criterion_and_the_default_budget() -> None:
    assert judge("top1", 0.9, 0.85, 10, Tolerance(max_metric_loss=0.05)).failures == ()
    assert "loss 0.0600 > max_metric_loss 0.05" in judge("top1", 0.9, 0.84, 10, Tolerance(max_metric_loss=0.05)).failures[0]
    # neither bound set: a data suite gets 1 % relative (INC's default)
    assert judge("top1", 1.0, 0.99, 100, Tolerance()).failures == ()
    assert judge("top1", 1.0, 0.98, 100, Tolerance()).failures


@pytest.mark.parametrize(("engine", "reference"), [(math.nan, 0.9), (0.9, math.nan), (math.inf, 0.9)])
def test_a_non_finite_metric_never_passes(engine: float, reference: float) -> None:
    assert judge("top1", reference, engine, 10, Tolerance(max_relative_metric_loss=1.0)).failures


def test_tolerance_refuses_negative_or_nan_metric_budgets() -> None:
    assert Tolerance(max_relative_metric_loss=-0.1).problems() == [
        "max_relative_metric_loss=-0.1 must be a finite number >= 0 (or None), e.g. 0.01"]
    assert Tolerance(max_metric_loss=math.nan).problems()


def test_a_loss_grown_beyond_the_slack_is_a_regression() -> None:
    tol = Tolerance(max_relative_metric_loss=0.5)
    stored = TaskMetric("top1", 0.9, 0.89, 600).stored()               # stored loss 0.01
    # slack: 50 % of 0.01 + 25 % of the budget (0.45) + 1/600
    assert metric_regressions(TaskMetric("top1", 0.9, 0.78, 600), stored, tol) == []
    grown = metric_regressions(TaskMetric("top1", 0.9, 0.7, 600), stored, tol)
    assert grown and grown[0].startswith("task metric top1: loss vs reference 0.2000")
    assert metric_regressions(TaskMetric("top5", 0.9, 0.1, 600), stored, tol) == []   # another metric: no history
    assert metric_regressions(TaskMetric("top1", 0.9, 0.1, 600), None, tol) == []


def test_one_sample_flip_is_never_a_regression() -> None:
    tol = Tolerance(max_relative_metric_loss=0.01)
    stored = TaskMetric("top1", 0.97, 0.97, 600).stored()
    assert metric_regressions(TaskMetric("top1", 0.97, 0.97 - 1 / 600, 600), stored, tol) == []
    assert metric_regressions(TaskMetric("top1", 0.97, 0.97 - 5 / 600, 600), stored, tol)


def test_baselines_of_schema_3_load_as_4_and_a_bad_task_metric_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"schema_version": 3, "cases": {"a": {"accuracy": {}}}}))
    assert load_baselines(path) == {"a": {"accuracy": {}}}
    assert entry_problem({"task_metric": {"name": "top1", "reference": 0.9, "engine": "high"}}) == (
        "task_metric.engine is 'high', not a number")
    assert entry_problem({"task_metric": {"name": "top1", "reference": 0.9, "engine": 0.8}}) == ""


def test_the_task_metric_travels_with_the_outcome_json() -> None:
    info = CaseInfo("s[c]", "c", "s", "m", "onnxruntime", "int8", 1, "x=1", "cpu", "cpu")
    outcome = CaseOutcome(info, "b.json", task=TaskMetric("top1", 0.9, 0.8, 10, ("worse",), "logits"))
    again = CaseOutcome.from_json(json.loads(json.dumps(outcome.to_json())))
    assert again.task == outcome.task and again.task is not None and again.task.relative_loss == pytest.approx(1 / 9)


# --- data plumbing --------------------------------------------------------------------------------


def _factory() -> Any:
    raise AssertionError("never built: these tests only read the declaration and the data")


def _suite(data: Any, **extra: Any) -> Suite:
    suite = Suite(model=_factory, inputs=[Input("x", ("batch", 4))], batch_sizes=[3], data=data, **extra)
    suite.name = "test_data"
    return suite


def _batches(n: int, size: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.full((size, 4), i, dtype=np.float64), np.full(size, i)) for i in range(n)]


def test_a_plain_source_is_split_and_a_generator_is_read_once() -> None:
    reads = []

    def source() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        reads.append(1)
        yield from _batches(5)

    suite = _suite(source, calibration_batches=2)
    assert reads == []                                                 # lazy: nothing read at declaration
    suite.validate()
    assert reads == []                                                 # nor at validation (collection)
    data = load_task_data(suite)
    assert reads == [1]
    assert [float(f["x"][0, 0]) for f in data.calibration] == [0.0, 1.0]
    assert [int(labels[0]) for _, labels in data.evaluation] == [2, 3, 4]
    assert data.evaluation[0][0]["x"].dtype == np.float32 and data.samples == 6   # cast to the Input's dtype


def test_case_feeds_and_evaluation_runs_use_the_case_batch_size() -> None:
    suite = _suite(Dataset(evaluation=_batches(3)))
    data = load_task_data(suite)
    case = suite.cases()[0]                                            # batch 3
    assert case_feeds(case, data)["x"][:, 0].tolist() == [0, 0, 1]
    seen: list[int] = []

    def engine(feeds: Any) -> dict[str, np.ndarray]:
        seen.append(len(feeds["x"]))
        return {"y": feeds["x"][:, :1] * 2}

    outputs, labels = run_evaluation(engine, data, "y", 4)
    assert seen == [4, 4] and outputs[:, 0].tolist() == [0, 0, 2, 2, 4, 4] and labels.tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize(("batches", "message"), [
    ([np.zeros((2, 4))], "evaluation batch 0 is ndarray, not an (inputs, labels) pair"),
    ([({"y": np.zeros((2, 4))}, np.zeros(2))], "inputs are named ['y'], the suite's inputs are ['x']"),
    ([(np.zeros((2, 4)), np.zeros(3))], "3 labels for a batch of 2 samples"),
    ([(np.zeros((2, 4)), np.zeros(2)), (np.zeros((2, 5)), np.zeros(2))], "samples are 5, earlier batches' are 4"),
    ([], "the evaluation part has no batches"),
])
def test_bad_data_is_one_line_naming_the_suite_and_the_fix(batches: list[Any], message: str) -> None:
    with pytest.raises(SuiteError) as info:
        load_task_data(_suite(Dataset(evaluation=batches)))
    text = str(info.value)
    assert text.startswith("suite test_data: data") and message in text and "\n" not in text


def test_a_failing_loader_is_named_with_its_error() -> None:
    def loader() -> list[Any]:
        raise FileNotFoundError("digits.csv.gz")

    with pytest.raises(SuiteError, match=r"suite test_data: data: reading it failed: FileNotFoundError: digits\.csv\.gz; "
                                         "fix the loader"):
        load_task_data(_suite(Dataset(evaluation=loader)))


def test_samples_of_another_shape_than_the_case_are_refused() -> None:
    suite = _suite(Dataset(evaluation=[(np.zeros((2, 5)), np.zeros(2))]))
    with pytest.raises(SuiteError, match="data samples of input 'x' are 5 but case onnxruntime-fp32-b3 feeds 3x4"):
        case_feeds(suite.cases()[0], load_task_data(suite))


@pytest.mark.parametrize(("extra", "message"), [
    ({"data": "digits.csv"}, "data must be a Dataset, an iterable of (inputs, labels) batches or a zero-argument "
                             "callable returning one, got str"),
    ({"data": _batches(2), "metric": "accuracy"}, "unknown metric 'accuracy'; choose from top1, top5, mean_iou"),
    ({"data": _batches(2), "calibration_method": "kl"}, "unknown calibration_method 'kl'; choose from minmax, entropy, "
                                                        "percentile"),
    ({"metric": "top1"}, "metric='top1' needs labelled data"),
    ({"tolerances": {"int8": Tolerance(max_relative_metric_loss=0.01)}}, "tolerances['int8'] sets a task-metric loss"),
    ({"data": _batches(2), "calibration": lambda: []}, "give calibration= or a calibration part of data=, not both"),
])
def test_bad_task_declarations_are_suite_errors(extra: dict[str, Any], message: str) -> None:
    suite = Suite(model=_factory, inputs=[Input("x", ("batch", 4))], **extra)
    with pytest.raises(SuiteError) as info:
        suite.validate()
    assert message in str(info.value)


def test_an_evaluation_only_dataset_keeps_the_suites_calibration() -> None:
    Suite(model=_factory, inputs=[Input("x", ("batch", 4))], data=Dataset(evaluation=_batches(2)),
          calibration=lambda: []).validate()


def test_without_a_live_reference_the_stored_reference_metric_is_used() -> None:
    from pytest_trtbench.task_data import reference_metric

    suite = _suite(Dataset(evaluation=_batches(2)))
    data = load_task_data(suite)
    stored = {"name": "top1", "reference": 0.8, "engine": 0.79}
    assert reference_metric(suite, None, data, "y", stored, "b.json") == 0.8
    with pytest.raises(SuiteError, match=r"suite test_data: no live reference and no stored top1 in b\.json: record "
                                         "the baseline once where the reference runs"):
        reference_metric(suite, None, data, "y", {**stored, "name": "top5"}, "b.json")


@pytest.mark.parametrize(("metric", "message"), [
    (lambda outputs, labels: "high", "metric <lambda> returned str, not a number; return a float (higher is better)"),
    (lambda outputs, labels: 1 / 0, "metric <lambda> failed on outputs [2, 3] and labels [2]: ZeroDivisionError"),
    (lambda outputs, labels: np.array([0.5, 0.6]), "metric <lambda> returned an array of shape [2], not a number"),
    (lambda outputs, labels: None, "metric <lambda> returned NoneType, not a number"),
])
def test_a_broken_metric_callable_is_one_line(metric: Any, message: str) -> None:
    from pytest_trtbench.task_metrics import compute

    name, fn = resolve(metric)
    with pytest.raises(SuiteError) as info:
        compute(name, fn, np.zeros((2, 3)), np.zeros(2), "suite test_data")
    assert str(info.value).startswith("suite test_data: ") and message in str(info.value)
