"""One case end to end, as stage functions: skip? → engine → accuracy → latency → gate (+ confirm) → verdict.

Each stage takes values and returns values; :func:`run_case` threads a frozen
:class:`~pytest_trtbench.outcome.CaseOutcome` through them. The session's memo of models, engines,
references and baselines comes in as :class:`CaseResources` (the :class:`~pytest_trtbench.runner.Harness`
in a real run, a labelled fake in ``tests/test_pipeline.py``), so the pipeline can be tested without
building anything.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol, Sequence

from pytest_trtbench import gate
from pytest_trtbench import verdict as V
from pytest_trtbench.backends.base import BackendError
from pytest_trtbench.baseline import BaselineError, make_entry
from pytest_trtbench.compare import OutputComparison, accuracy_regressions, compare_output, compare_outputs
from pytest_trtbench.inputs import fingerprint, sample_at
from pytest_trtbench.layer_report import due, layer_stage
from pytest_trtbench.measure import LatencyResult
from pytest_trtbench.outcome import CaseInfo, CaseOutcome, EngineInfo, LatencyCheck, LatencySummary
from pytest_trtbench.precision import REDUCED_PRECISIONS
from pytest_trtbench.regression import BlockSummary, LatencyDecision
from pytest_trtbench.report import failure_text
from pytest_trtbench.resources import engine_resources
from pytest_trtbench.suite import Case, Suite, SuiteError

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.backends.base import Backend, Engine
    from pytest_trtbench.cache import CacheEntry
    from pytest_trtbench.model import ModelSource
    from pytest_trtbench.settings import Settings
    from pytest_trtbench.task_metrics import TaskMetric

class CaseResources(Protocol):
    """What the pipeline asks of the session (memoized there, so cases share engines and references)."""

    settings: Settings

    def backend(self, case: Case) -> Backend: ...

    def model(self, suite: Suite) -> ModelSource: ...

    def engine_entry(self, case: Case, *, load: bool) -> tuple[CacheEntry, Engine | None]: ...

    def inputs(self, case: Case) -> dict[str, np.ndarray]: ...

    def reference(self, case: Case) -> dict[str, np.ndarray] | None: ...

    def reference_latency(self, case: Case) -> float: ...

    def baseline_file(self, case: Case) -> Path: ...

    def baseline_entry(self, case: Case) -> dict[str, Any] | None: ...

    def measure(self, case: Case, engine: Engine, feeds: Mapping[str, np.ndarray]) -> LatencyResult: ...

    def task_metric(self, case: Case, engine: Engine, baseline: Mapping[str, Any] | None) -> TaskMetric:
        """``Suite(data=...)`` only: the task metric on the evaluation data (:mod:`pytest_trtbench.task_data`)."""
        ...

    def environment(self) -> dict[str, Any]:
        """``device_name``, ``cpu_model``, ``versions``: stored with a baseline entry."""
        ...


def run_case(case: Case, res: CaseResources) -> CaseOutcome:
    """Run *case*; never raises for the case's own failures: an exception becomes an error verdict that
    keeps what the stages before it found (e.g. the engine that was built)."""
    outcome = CaseOutcome(case_info(case, res.settings), str(res.baseline_file(case)))
    try:
        for reached in _stages(case, res, outcome):
            outcome = reached
    except (BackendError, SuiteError, BaselineError) as exc:
        return outcome.with_error(str(exc))
    except Exception as exc:  # a library failing deep inside: report it as this case's error, not a traceback
        return outcome.with_error(f"{type(exc).__name__}: {exc} (in {innermost_frame(exc)})")
    return outcome


def _stages(case: Case, res: CaseResources, outcome: CaseOutcome) -> Iterator[CaseOutcome]:
    """The stages in order, yielding the outcome after each; the last one yielded is the result."""
    settings = res.settings
    backend = res.backend(case)
    skip = backend.unsupported_reason(case.precision, settings.device) or model_skip(case, res)
    if skip:
        yield replace(outcome, verdict=V.Verdict(V.SKIPPED, skip))
        return
    not_here = backend.execution_unavailable_reason(settings.device)
    execute = not (settings.build_only or not_here)
    entry, engine = res.engine_entry(case, load=execute)
    outcome = replace(outcome, engine=engine_info(entry))
    yield outcome
    wrong = realized_precision_error(case.precision, outcome.engine)
    if wrong:
        yield outcome.with_error(wrong)
        return
    if not execute or engine is None:
        yield replace(outcome, verdict=V.Verdict(V.BUILT, not_here or "--trt-build-only: built, not executed"))
        return

    feeds = res.inputs(case)
    outputs = engine.run(feeds)
    outcome = replace(outcome, engine=engine_resources(outcome.engine, entry, engine))
    baseline = res.baseline_entry(case)
    comparisons, reference_name = accuracy(case, outputs, res, baseline)
    task = res.task_metric(case, engine, baseline) if case.suite.data is not None else None
    outcome = replace(outcome, comparisons=tuple(comparisons), reference_backend=reference_name, task=task)
    yield outcome

    latency = res.measure(case, engine, feeds)
    outcome = replace(outcome, latency=LatencySummary.of(latency))
    yield outcome
    outcome = replace(outcome, reference_latency_ms=res.reference_latency(case))
    yield outcome

    regressions: list[str] = []
    if baseline and not settings.update_baselines:
        regressions = accuracy_regressions(
            {c.name: c.metrics() for c in comparisons}, baseline.get("accuracy", {}).get("outputs", {}),
            lambda name: case.suite.tolerance_for(case.precision, name),
        ) + task_regressions(case, outcome, baseline)
        latency, check = latency_gate(
            latency, baseline, settings, res.environment(), lambda: res.measure(case, engine, feeds)
        )
        outcome = replace(outcome, latency=LatencySummary.of(latency), latency_check=check)
        yield outcome
    if due(profile_layers=settings.profile_layers, update_baselines=settings.update_baselines, check=outcome.latency_check):
        outcome = replace(outcome, layers=layer_stage(engine, feeds, baseline, outcome.latency_check,  # after timing
                                                      every_case=settings.profile_layers))
        yield outcome
    yield finish(case, res, outcome, regressions, has_baseline=bool(baseline))


# --- stages ----------------------------------------------------------------------------------------


def case_info(case: Case, settings: Settings) -> CaseInfo:
    suite = case.suite
    return CaseInfo(
        case_id=case.case_id, param_id=case.param_id, suite=suite.name,
        model=Path(suite.source_file).name if not suite.is_onnx_file else suite.onnx_path().name,
        backend=case.backend, precision=case.precision, batch_size=case.batch_size, shapes=case.shapes_label(),
        gpu=settings.device.gpu, device_name=settings.device.device_name, source_file=suite.source_file,
    )


def model_skip(case: Case, res: CaseResources) -> str:
    """Why the case's model can't run it: a PyTorch factory without torch (skipped, not an error: a runner
    without torch runs the ONNX-file suites), or a shape the ONNX file fixes otherwise; ``""`` if none."""
    from pytest_trtbench.model import TorchUnavailable

    try:
        model = res.model(case.suite)
    except TorchUnavailable as exc:
        return str(exc)
    return static_shape_conflict(model, case)


def static_shape_conflict(model: ModelSource, case: Case) -> str:
    """Why the ONNX file cannot take this case's shapes (a dim it fixes differs), or ``""``."""
    for name, shape in case.shapes:
        fixed = (model.static_input_shapes or {}).get(name)
        if fixed is None:
            continue
        if len(fixed) != len(shape) or any(f is not None and f != d for f, d in zip(fixed, shape)):
            shown = "x".join("?" if f is None else str(f) for f in fixed)
            return f"{model.onnx_path.name} fixes input {name!r} to {shown}; this case needs {'x'.join(map(str, shape))}"
    return ""


def engine_info(entry: CacheEntry) -> EngineInfo:
    precisions = entry.metadata.get("backend", {}).get("engine_precisions") or {}
    return EngineInfo(cache=entry.status, build_s=entry.build_s, key=entry.key, precisions=dict(precisions))


def realized_precision_error(precision: str, engine: EngineInfo) -> str:
    """An error when a reduced precision was asked for and the engine runs no compute layer in it."""
    if engine.precisions and precision in REDUCED_PRECISIONS and not engine.precisions.get(precision):
        return (
            f"asked for {precision} but the engine runs no compute layer in "
            f"{precision} (realized: {engine.precisions_label()})"
        )
    return ""


def accuracy(
    case: Case, outputs: Mapping[str, np.ndarray], res: CaseResources, baseline: Mapping[str, Any] | None
) -> tuple[list[OutputComparison], str]:
    """The engine's outputs against the live reference, or against the baseline's golden fingerprint
    where no reference runs; returns the comparisons and the name of what was compared against."""
    suite = case.suite
    tol = lambda name: suite.tolerance_for(case.precision, name)  # noqa: E731
    expected = res.reference(case)
    if expected is not None:
        reference = res.model(suite).reference
        assert reference is not None  # reference() returns outputs only where the model has one
        return compare_outputs(outputs, expected, tol, list(suite.classifier_outputs)), reference.name
    golden = (baseline or {}).get("golden", {}).get("outputs")
    if not golden:
        raise SuiteError(
            f"no live reference and no golden fingerprint in {res.baseline_file(case)}: record the "
            "baseline once where the reference runs (live_reference=True) with --trt-update-baselines"
        )
    return golden_comparisons(outputs, golden, tol), "golden-fingerprint"


def golden_comparisons(
    outputs: Mapping[str, np.ndarray], golden: Mapping[str, Mapping[str, Any]], tol: Callable[[str], Any]
) -> list[OutputComparison]:
    """Each fingerprinted output's sampled values against the engine's values at the same indices."""
    import numpy as np

    comparisons = []
    for name, fp in golden.items():
        actual = outputs.get(name)
        if actual is None or list(actual.shape) != fp["shape"]:
            got = "no such output" if actual is None else f"shape {list(actual.shape)}"
            comparisons.append(OutputComparison(
                name, math.inf, math.inf, math.inf, 0.0, None, 0, 0, 0, math.inf, False,
                [f"engine gives {got}, the golden fingerprint has shape {fp['shape']}"],
            ))
            continue
        comparisons.append(compare_output(name, sample_at(actual, fp["indices"]), np.asarray(fp["values"]), tol(name)))
    return comparisons


def task_regressions(case: Case, outcome: CaseOutcome, baseline: Mapping[str, Any]) -> list[str]:
    """The task metric's loss grew beyond the slack since the baseline (:func:`task_metrics.metric_regressions`)."""
    if outcome.task is None:
        return []
    from pytest_trtbench.task_metrics import metric_regressions

    tol = case.suite.tolerance_for(case.precision, outcome.task.output)
    return metric_regressions(outcome.task, baseline.get("task_metric"), tol)


def latency_gate(
    latency: LatencyResult, baseline: Mapping[str, Any], settings: Settings, environment: Mapping[str, Any],
    remeasure: Callable[[], LatencyResult],
) -> tuple[LatencyResult, LatencyCheck]:
    """Compare *latency* with the baseline's block history, machine-aware (:mod:`pytest_trtbench.gate`;
    this machine is ``environment["machine"]``). A would-be regression is re-measured ``settings.confirm``
    times (*remeasure*), each run appended, and decided again; returns the final measurement and the
    check. With the gate advisory (CPU under ``auto``, or a launch-bound case with too few runs of this
    machine: :func:`gate.launch_bound_unarmed`) a regression is reported in the reason, the verdict
    stays ``pass`` and nothing is re-measured; on CPU (advisory) a speedup is not ``improved`` either."""
    base_lat = baseline.get("latency") or {}
    check = _last_level(latency, base_lat)
    mode = gate.effective_mode(settings.latency_gate, settings.device.kind)
    skip = _gate_off_reason(mode, settings, baseline, environment.get("cpu_model"))
    history, other_method = gate.same_method(gate.stored_runs(base_lat), latency.method)
    if not skip and not history:
        skip = other_method or "latency not compared: the baseline has no block history"
    if skip:
        return latency, replace(check, reason=skip)
    bound = bool(LatencySummary.of(latency).launch_bound)
    machine = str(environment.get("machine") or "")
    unarmed = gate.launch_bound_unarmed(history, machine, bound)

    def decide(blocks: list[BlockSummary]) -> tuple[LatencyDecision, str]:
        return gate.decide_machine_aware(history, blocks, machine, settings.latency_tolerance, launch_bound=bound)

    decision, which = decide(latency.blocks)
    for _ in range(settings.confirm if decision.needs_confirmation and mode == gate.ON and not unarmed else 0):
        latency = combined(latency, remeasure())
        decision, which = decide(latency.blocks)
    verdict = {"latency_regression": V.LATENCY_REGRESSION, "improved": V.IMPROVED}.get(decision.verdict, V.PASS)
    reason = f"{decision.reason} ({which})"
    if verdict == V.LATENCY_REGRESSION and (mode == gate.ADVISORY or unarmed):
        where = "CPU" if mode == gate.ADVISORY else unarmed
        verdict, reason = V.PASS, f"{gate.advisory_reason(decision, where)} ({which})"
    elif verdict == V.IMPROVED and mode == gate.ADVISORY:
        # CPU timing decides no status either way: a speedup is reported, not a verdict
        verdict, reason = V.PASS, f"{gate.advisory_reason(decision)} ({which})"
    check = replace(check, confidence=decision.confidence, reason=reason, decision=decision, verdict=verdict)
    if decision.ratio > 0 and math.isfinite(decision.ratio):
        # report what the rule compared: the history's level, not only the last run's median
        check = replace(check, change_pct=100.0 * (decision.ratio - 1.0), baseline_ms=latency.median_ms / decision.ratio)
    return latency, check


def _last_level(latency: LatencyResult, base_lat: Mapping[str, Any]) -> LatencyCheck:
    """The change against the baseline's stored median, before (or without) the rule."""
    stored = base_lat.get("median_ms")
    baseline_ms = math.nan if stored is None else float(stored)
    if baseline_ms > 0:
        return LatencyCheck(baseline_ms=baseline_ms, change_pct=100.0 * (latency.median_ms / baseline_ms - 1))
    return LatencyCheck(baseline_ms=baseline_ms)


def _gate_off_reason(mode: str, settings: Settings, baseline: Mapping[str, Any], cpu_model: str | None) -> str:
    if mode == gate.OFF:
        return "latency gate off (--trt-latency-gate=off)"
    if settings.device.gpu == "cpu":
        recorded = (baseline.get("environment") or {}).get("cpu_model")
        if recorded != cpu_model:
            return f"latency not compared: baseline CPU {recorded!r} is not this CPU {cpu_model!r}"
    return ""


def combined(first: LatencyResult, again: LatencyResult) -> LatencyResult:
    """Two measurements of the same launch as one: samples, blocks and enqueue times appended."""
    return LatencyResult(
        first.samples_ms + again.samples_ms, first.blocks + again.blocks, first.batch_size, first.method, first.notes,
        first.enqueue_ms + again.enqueue_ms, again.telemetry or first.telemetry, first.host_synchronous,
        first.cuda_layer, max((v for v in (first.peak_gpu_memory_bytes, again.peak_gpu_memory_bytes) if v == v),
                              default=math.nan),
    )


def decide(
    outcome: CaseOutcome, regressions: Sequence[str], *, has_baseline: bool, settings: Settings
) -> tuple[V.Verdict, bool]:
    """The case's verdict from its comparisons, accuracy regressions and latency check; and whether
    a baseline entry is to be written (``--trt-update-baselines`` and no accuracy failure)."""
    failures = [f"{c.name}: {msg}" for c in outcome.comparisons for msg in c.failures]
    failures += list(outcome.task.failures) if outcome.task is not None else []
    check = outcome.latency_check
    verdict = V.decide_verdict(
        accuracy_failures=failures, accuracy_regressions=list(regressions),
        latency_verdict=check.verdict, latency_reason=check.reason,
        has_baseline=has_baseline or settings.update_baselines, strict=settings.strict,
        notes=list(outcome.latency.notes) if outcome.latency is not None else [],
    )
    write = settings.update_baselines and not failures
    layer_note = outcome.layers.note if outcome.layers is not None else ""  # e.g. why no profile was captured
    verdict = V.Verdict(verdict.status, "; ".join(filter(None, [verdict.reason, layer_note])))
    if write:
        verdict = V.Verdict(verdict.status, "; ".join(filter(None, [verdict.reason, "baseline updated"])))
    return verdict, write


def finish(
    case: Case, res: CaseResources, outcome: CaseOutcome, regressions: Sequence[str], *, has_baseline: bool
) -> CaseOutcome:
    """The verdict, the failure text and (when updating) the new baseline entry."""
    verdict, write = decide(outcome, regressions, has_baseline=has_baseline, settings=res.settings)
    outcome = replace(outcome, verdict=verdict)
    if write:
        expected = res.reference(case)
        golden = None if expected is None else {n: fingerprint(a, seed=case.suite.seed) for n, a in expected.items()}
        entry = make_entry(
            outcome, golden=golden, old=res.baseline_entry(case), history=res.settings.history,
            environment=res.environment(),
        )
        outcome = replace(outcome, baseline_entry=entry)
    if verdict.failed:
        outcome = replace(outcome, message=failure_text(outcome))
    return outcome


def innermost_frame(exc: BaseException) -> str:
    """``file.py:line`` where *exc* was raised: where a library failed, for a one-line error."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
