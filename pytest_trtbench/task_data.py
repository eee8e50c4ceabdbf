"""Representative data in a suite: ``Suite(data=...)``, its calibration / evaluation split, loading and batching.

A suite's ``data`` is a :class:`Dataset` (an explicit ``calibration`` and ``evaluation`` part), or an iterable of
``(inputs, labels)`` batches (or a zero-argument callable returning one), of which the first
``calibration_batches`` calibrate int8 and the rest evaluate. ``inputs`` is a mapping of input name to array, or one
array when the suite has one input; ``labels`` an array whose first axis is the batch. Nothing is read before the
first case that needs it (:func:`load_task_data`, memoized by the harness), and nothing is downloaded: data comes
from files in the repository or from a package.

Every problem is a :class:`~pytest_trtbench.suite_types.SuiteError` naming the suite, the batch and the fix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from pytest_trtbench.suite_types import SuiteError
from pytest_trtbench.task_metrics import TaskMetric, compute, judge, resolve

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.suite import Case, Suite

Batch = tuple[Any, Any]
"""``(inputs, labels)``: inputs a ``{name: array}`` mapping (or one array for a one-input suite)."""
Source = Iterable[Batch] | Callable[[], Iterable[Batch]]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Labelled data for a suite, split in two: ``calibration`` batches calibrate int8 builds (their labels are
    not used; ``None``: the suite's ``calibration`` or the seeded random feeds), ``evaluation`` batches are where
    the task metric is measured and where the accuracy checks take their inputs. Each part is an iterable of
    ``(inputs, labels)`` batches or a zero-argument callable returning one (called once, at first use)."""

    evaluation: Source
    calibration: Source | None = None

    @classmethod
    def split(cls, source: Source, *, calibration: int) -> Dataset:
        """The first *calibration* batches of *source* calibrate, the rest evaluate."""
        shared = _Once(source)
        return cls(evaluation=_Slice(shared, calibration, None), calibration=_Slice(shared, 0, calibration))


class _Once:
    """A source read once (a generator can't be read twice), at first use."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._read: list[Batch] | None = None

    def batches(self) -> list[Batch]:
        if self._read is None:
            self._read = list(_batches(self.source))
        return self._read


@dataclass(frozen=True)
class _Slice:
    """Batches ``start:stop`` of a shared source."""

    shared: _Once
    start: int
    stop: int | None

    def __call__(self) -> list[Batch]:
        return self.shared.batches()[self.start:self.stop]


def _batches(source: Source) -> Iterable[Batch]:
    return source() if callable(source) else source


def as_dataset(data: Any, calibration_batches: int) -> Dataset:
    """A suite's ``data`` as a :class:`Dataset` (a plain source is split at *calibration_batches*)."""
    return data if isinstance(data, Dataset) else Dataset.split(data, calibration=calibration_batches)


def data_problems(data: Any) -> list[str]:
    """What is wrong with ``Suite(data=...)`` without reading it (collection stays lazy)."""
    if data is None:
        return []
    parts = [data.evaluation, data.calibration] if isinstance(data, Dataset) else [data]
    for part in parts:
        if part is None or callable(part):
            continue
        if isinstance(part, (str, bytes, Mapping)) or not isinstance(part, Iterable):
            return [f"data must be a Dataset, an iterable of (inputs, labels) batches or a zero-argument callable "
                    f"returning one, got {type(part).__name__}"]
    if isinstance(data, Dataset) and data.evaluation is None:
        return ["data: Dataset(evaluation=...) is required: the batches the task metric is measured on"]
    return []


@dataclass
class TaskData:
    """A suite's data, read and checked: feeds per batch (cast to the inputs' dtypes) and labels."""

    calibration: list[dict[str, np.ndarray]]
    """Calibration feeds; empty when the data has no calibration part."""
    evaluation: list[tuple[dict[str, np.ndarray], np.ndarray]]
    sample_shapes: dict[str, tuple[int, ...]]
    """Per input, the shape of one sample (the batch axis dropped)."""

    @property
    def samples(self) -> int:
        return sum(len(labels) for _, labels in self.evaluation)


def load_task_data(suite: Suite) -> TaskData:
    """Read and check *suite*'s data (call once per session; the harness memoizes it)."""
    dataset = as_dataset(suite.data, suite.calibration_batches)
    where = f"suite {suite.name}: data"
    try:
        evaluation_raw = list(_batches(dataset.evaluation))
        calibration_raw = [] if dataset.calibration is None else list(_batches(dataset.calibration))
    except Exception as exc:  # the user's loader: a missing file, a parse error
        raise SuiteError(f"{where}: reading it failed: {type(exc).__name__}: {exc}; fix the loader or the file it reads") from None
    if not evaluation_raw:
        raise SuiteError(f"{where}: the evaluation part has no batches; give Dataset(evaluation=...) at least one batch "
                     f"(a plain iterable is split: its first calibration_batches={suite.calibration_batches} calibrate)")
    shapes: dict[str, tuple[int, ...]] = {}
    evaluation = [_batch(suite, f"{where}: evaluation batch {i}", b, shapes) for i, b in enumerate(evaluation_raw)]
    calibration = [_batch(suite, f"{where}: calibration batch {i}", b, shapes, labelled=False)[0]
                   for i, b in enumerate(calibration_raw)]
    return TaskData(calibration, evaluation, shapes)


def _batch(
    suite: Suite, where: str, batch: Any, shapes: dict[str, tuple[int, ...]], *, labelled: bool = True
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One ``(inputs, labels)`` batch as feeds (the suite's input names and dtypes) and labels, checked."""
    import numpy as np

    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise SuiteError(f"{where} is {type(batch).__name__}, not an (inputs, labels) pair; yield (inputs, labels)")
    raw, labels = batch
    names = [spec.name for spec in suite.inputs]
    if not isinstance(raw, Mapping):
        if len(names) != 1:
            raise SuiteError(f"{where}: inputs is one array but the suite has inputs {names}; give {{name: array}}")
        raw = {names[0]: raw}
    if sorted(raw) != sorted(names):
        raise SuiteError(f"{where}: inputs are named {sorted(raw)}, the suite's inputs are {sorted(names)}")
    feeds = {spec.name: np.asarray(raw[spec.name]).astype(spec.dtype, copy=False) for spec in suite.inputs}
    sizes = {name: (a.shape[0] if a.ndim else 0) for name, a in feeds.items()}
    n = next(iter(sizes.values()))
    labels_array = np.asarray(labels)
    if labelled and (labels_array.ndim == 0 or labels_array.shape[0] != n):
        got = "a scalar" if labels_array.ndim == 0 else f"{labels_array.shape[0]} labels"
        raise SuiteError(f"{where}: {got} for a batch of {n} samples; labels need one entry per sample (first axis)")
    if n == 0 or len(set(sizes.values())) != 1:
        raise SuiteError(f"{where}: inputs have batch sizes {sizes}; every input needs the same number (>= 1) of samples")
    for name, array in feeds.items():
        sample = tuple(int(d) for d in array.shape[1:])
        first = shapes.setdefault(name, sample)
        if sample != first:
            raise SuiteError(f"{where}: input {name!r} samples are {'x'.join(map(str, sample))}, earlier batches' are "
                         f"{'x'.join(map(str, first))}; every sample of an input needs one shape")
    return feeds, labels_array


def check_fits(case: Case, data: TaskData) -> None:
    """The data's samples must have the case's shapes (batch on axis 0): the engine runs them at them."""
    for name, shape in case.shape_map().items():
        sample = data.sample_shapes.get(name)
        if sample is not None and tuple(shape[1:]) != sample:
            raise SuiteError(
                f"suite {case.suite.name}: data samples of input {name!r} are {'x'.join(map(str, sample))} but case "
                f"{case.param_id} feeds {'x'.join(map(str, shape))}; the batch must be axis 0 and the other dims "
                "must match the data (set dims= to the data's sizes)"
            )


def case_feeds(case: Case, data: TaskData) -> dict[str, np.ndarray]:
    """The case's accuracy-check feeds: its batch size of evaluation samples (repeated if there are fewer)."""
    import numpy as np

    check_fits(case, data)
    stacked = {name: np.concatenate([feeds[name] for feeds, _ in data.evaluation]) for name in data.sample_shapes}
    return {name: np.resize(array, (case.batch_size, *array.shape[1:])) for name, array in stacked.items()}


def run_evaluation(
    run: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]], data: TaskData, output: str, batch: int,
) -> tuple[np.ndarray, np.ndarray]:
    """*output* over the whole evaluation part, run in chunks of exactly *batch* samples (the last one padded
    by repeating samples, its padding dropped), and the labels: ``(outputs, labels)`` concatenated."""
    import numpy as np

    names = list(data.sample_shapes)
    inputs = {name: np.concatenate([feeds[name] for feeds, _ in data.evaluation]) for name in names}
    labels = np.concatenate([np.asarray(labels) for _, labels in data.evaluation])
    total = len(labels)
    chunks: list[np.ndarray] = []
    for start in range(0, total, batch):
        take = min(batch, total - start)
        feeds = {n: _padded(inputs[n][start:start + take], batch) for n in names}
        result = run(feeds)
        if output not in result:
            raise SuiteError(f"the task metric reads output {output!r} but the model gives {sorted(result)}")
        chunks.append(np.asarray(result[output])[:take])
    return np.concatenate(chunks), labels


def _padded(array: np.ndarray, batch: int) -> np.ndarray:
    import numpy as np

    if len(array) == batch:
        return array
    return np.concatenate([array, np.resize(array, (batch - len(array), *array.shape[1:]))])


def metric_output(suite: Suite, output_names: Sequence[str]) -> str:
    """The output the task metric reads: the first classifier output, else the model's first output."""
    if suite.classifier_outputs:
        return str(suite.classifier_outputs[0])
    return str(output_names[0])


def measure_task(
    case: Case, engine_run: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]], data: TaskData,
    output: str, reference_value: Callable[[], float],
) -> TaskMetric:
    """The case's task metric: the engine over the evaluation part at the case's batch size, the reference's
    value (*reference_value*, memoized by the caller), judged by the case's tolerance for *output*."""
    check_fits(case, data)
    name, fn = resolve(case.suite.metric)
    outputs, labels = run_evaluation(engine_run, data, output, case.batch_size)
    where = f"suite {case.suite.name}"
    engine_value = compute(name, fn, outputs, labels, where)
    tol = case.suite.tolerance_for(case.precision, output)
    return judge(name, reference_value(), engine_value, len(labels), tol, output)


def reference_metric(
    suite: Suite, reference_run: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]] | None,
    data: TaskData, output: str, stored: Mapping[str, Any] | None, baseline_file: Any,
) -> float:
    """The reference's metric on the evaluation part (batches of 64), or, without a live reference, the value
    the baseline stored for the same metric."""
    name, fn = resolve(suite.metric)
    if reference_run is None:
        if stored and stored.get("name") == name and isinstance(stored.get("reference"), (int, float)):
            return float(stored["reference"])
        raise SuiteError(f"suite {suite.name}: no live reference and no stored {name} in {baseline_file}: record the "
                     "baseline once where the reference runs (live_reference=True) with --trt-update-baselines")
    outputs, labels = run_evaluation(reference_run, data, output, 64)
    return compute(name, fn, outputs, labels, f"suite {suite.name} (reference)")
