"""Running one case end to end: engine (cached) -> inputs -> run -> compare -> time -> gate -> verdict.

:class:`Harness` is the session's collaborator: it memoizes exported models, loaded engines,
reference outputs and baseline files, so cases sharing an engine or a reference pay for them once.
It is plain Python; the pytest plugin only calls :meth:`Harness.run_case` and reports the result.
"""
from __future__ import annotations

import math
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pytest_trtbench import verdict as V
from pytest_trtbench.backends import get_backend
from pytest_trtbench.backends.base import BackendError, BuildRequest, Engine
from pytest_trtbench.baseline import BaselineError, baseline_path, load_baselines
from pytest_trtbench.cache import CacheEntry, EngineCache
from pytest_trtbench.compare import OutputComparison, accuracy_regressions, compare_output, compare_outputs
from pytest_trtbench.device import DeviceInfo, cpu_model
from pytest_trtbench.inputs import calibration_feeds, fingerprint, make_feeds, sample_at
from pytest_trtbench.measure import LatencyResult, TimingConfig, measure_latency
from pytest_trtbench.model import ModelSource, load_model
from pytest_trtbench.precision import CALIBRATED, REDUCED_PRECISIONS
from pytest_trtbench.profile import InputRange, ShapeProfile
from pytest_trtbench.regression import BlockSummary, decide_latency, update_history
from pytest_trtbench.suite import Case, Suite, SuiteError

if TYPE_CHECKING:
    import numpy as np

CALIBRATION_MAX_BATCH = 4


@dataclass(frozen=True)
class Settings:
    device: DeviceInfo
    cache_dir: Path
    baseline_dir: Path
    timing: TimingConfig = TimingConfig()
    latency_tolerance: float = 0.05
    latency_gate: bool = True
    strict: bool = False
    update_baselines: bool = False
    build_only: bool = False
    rebuild: bool = False
    confirm: int = 1
    history: int = 10
    backend_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CaseResult:
    """Everything one case produced: the report row, the new baseline entry, the failure text."""

    row: dict[str, Any]
    baseline_entry: dict[str, Any] | None
    baseline_file: str
    message: str = ""
    latency: dict[str, Any] | None = None
    """The measured case's latency distribution (:meth:`LatencyResult.distribution`) plus ``method``,
    ``block_medians_ms`` and ``notes``: what pytest-benchmark's JSON needs (:mod:`pytest_trtbench.benchmark_json`)."""
    nodeid: str = ""
    """The pytest node id, set where the report is received (not part of the JSON)."""

    @property
    def status(self) -> str:
        return str(self.row["status"])

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "baseline_entry": self.baseline_entry, "baseline_file": self.baseline_file,
                "message": self.message, "latency": self.latency}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseResult:
        return cls(dict(data["row"]), data.get("baseline_entry"), data["baseline_file"], data.get("message", ""),
                   data.get("latency"))


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("torch", "onnxruntime", "onnxruntime-gpu", "tensorrt", "tensorrt-rtx", "numpy", "pytest-trtbench"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


class Harness:
    """Session-scoped: builds, caches and runs cases. Also the ``trtbench`` fixture for custom tests."""

    def __init__(self, settings: Settings, on_build: Callable[[str, str, float], None] | None = None) -> None:
        self.settings = settings
        self.cache = EngineCache(settings.cache_dir, settings.device.gpu, rebuild=settings.rebuild, on_build=on_build)
        self._work = Path(tempfile.mkdtemp(prefix="trtbench-export-"))
        self._models: dict[int, ModelSource | SuiteError] = {}
        self._engines: dict[tuple[Any, ...], tuple[CacheEntry, Engine | None]] = {}
        self._references: dict[tuple[Any, ...], dict[str, np.ndarray]] = {}
        self._reference_latency: dict[tuple[Any, ...], float] = {}
        self._baselines: dict[Path, dict[str, Any] | BaselineError] = {}
        self._cpu_model = cpu_model()
        self._versions = _versions()

    # --- collaborators, also used by custom tests -------------------------------------------------

    def model(self, suite: Suite) -> ModelSource:
        """The suite's ONNX model and reference, exported once per session."""
        got = self._models.get(id(suite))
        if got is None:
            try:
                got = load_model(suite, self._work, self.settings.device)
            except SuiteError as exc:
                got = exc
            self._models[id(suite)] = got
        if isinstance(got, SuiteError):
            raise got
        return got

    def calibration_shapes(self, case: Case) -> dict[str, tuple[int, ...]]:
        """Shapes of the default calibration feeds: the profile's opt shape with the batch capped at
        ``CALIBRATION_MAX_BATCH`` (ONNX Runtime's calibrator keeps every intermediate tensor), and any
        dim the ONNX file fixes taken from the file."""
        static = self.model(case.suite).static_input_shapes or {}
        shapes = {}
        for spec in case.suite.inputs:
            opt = list(case.profile[spec.name].opt)
            for axis, dim in enumerate(spec.shape):
                if dim == "batch":
                    opt[axis] = min(opt[axis], CALIBRATION_MAX_BATCH)
            for axis, fixed in enumerate(static.get(spec.name, ())):
                if fixed is not None and axis < len(opt):
                    opt[axis] = fixed
            shapes[spec.name] = tuple(opt)
        return shapes

    def engine_profile(self, case: Case) -> ShapeProfile:
        """The case's profile with every dim the ONNX file fixes pinned to the file's value (a profile
        may only vary what the model leaves dynamic; cases outside it are skipped before building)."""
        static = self.model(case.suite).static_input_shapes or {}
        ranges = {}
        for name, r in case.profile.ranges:
            fixed = static.get(name, ())
            ranges[name] = InputRange(_pin(r.min, fixed), _pin(r.opt, fixed), _pin(r.max, fixed))
        return ShapeProfile.from_mapping(ranges)

    def build_request(self, case: Case) -> BuildRequest:
        suite = case.suite
        calib_shapes = self.calibration_shapes(case) if case.precision in CALIBRATED else {}
        return BuildRequest(
            onnx_path=self.model(suite).onnx_path,
            precision=case.precision,
            profiles=(self.engine_profile(case),),
            device=self.settings.device,
            calibration=(lambda: calibration_feeds(suite, calib_shapes)) if calib_shapes else None,
            options={**self.settings.backend_options, **({"fp32_ops": list(suite.fp32_ops)} if suite.fp32_ops else {})},
        )

    def engine(self, case: Case) -> tuple[CacheEntry, Engine]:
        """The case's engine: one per (GPU, backend, precision, profile), built or taken from the cache."""
        entry, engine = self._engine(case, load=True)
        assert engine is not None
        return entry, engine

    def _engine(self, case: Case, *, load: bool) -> tuple[CacheEntry, Engine | None]:
        key = (id(case.suite), case.backend, case.precision, case.profile, load)
        if key not in self._engines:
            backend = get_backend(case.backend)
            label = f"{case.suite.name} {case.backend}-{case.precision} [{case.profile.label()}]"
            self._engines[key] = self.cache.get_or_build(backend, self.build_request(case), label, load=load)
        return self._engines[key]

    def inputs(self, case: Case) -> dict[str, np.ndarray]:
        return make_feeds(case.suite, case.shape_map())

    def reference(self, case: Case) -> dict[str, np.ndarray] | None:
        """The live reference's outputs for the case's inputs, or ``None`` without a live reference."""
        model = self.model(case.suite)
        if model.reference is None or not case.suite.live_reference:
            return None
        key = (id(case.suite), case.shapes)
        if key not in self._references:
            self._references[key] = model.reference.run(self.inputs(case))
        return self._references[key]

    def reference_latency(self, case: Case) -> float:
        model = self.model(case.suite)
        key = (id(case.suite), case.shapes)
        if model.reference is None or not case.suite.live_reference:
            return math.nan
        if key not in self._reference_latency:
            launch = model.reference.prepare(self.inputs(case))
            self._reference_latency[key] = measure_latency(launch, case.batch_size, self.settings.timing).median_ms
        return self._reference_latency[key]

    def baseline_file(self, case: Case) -> Path:
        return baseline_path(self.settings.baseline_dir, self.settings.device.gpu, case.suite.name)

    def baseline_entry(self, case: Case) -> dict[str, Any] | None:
        path = self.baseline_file(case)
        if path not in self._baselines:
            try:
                self._baselines[path] = load_baselines(path)
            except BaselineError as exc:
                self._baselines[path] = exc
        got = self._baselines[path]
        if isinstance(got, BaselineError):
            raise got
        return got.get(case.param_id)

    # --- one case --------------------------------------------------------------------------------

    def _row(self, case: Case) -> dict[str, Any]:
        return {
            "case_id": case.case_id, "suite": case.suite.name,
            "model": Path(case.suite.source_file).name if not case.suite.is_onnx_file else case.suite.onnx_path().name,
            "backend": case.backend, "precision": case.precision, "batch_size": case.batch_size,
            "shapes": case.shapes_label(), "gpu": self.settings.device.gpu,
            "device_name": self.settings.device.device_name, "status": "", "reason": "",
            "latency_ms_median": math.nan, "latency_ms_p90": math.nan, "latency_ms_p99": math.nan,
            "latency_cov_pct": math.nan, "throughput_qps": math.nan, "baseline_latency_ms_median": math.nan,
            "latency_change_pct": math.nan, "latency_confidence": math.nan, "reference_backend": "",
            "reference_latency_ms_median": math.nan, "speedup_vs_reference": math.nan, "max_abs_err": math.nan,
            "max_rel_err": math.nan, "mean_abs_err": math.nan, "cosine_similarity": math.nan,
            "top1_agreement": math.nan, "engine_cache": "none", "build_s": math.nan, "engine_key": "", "engine_precisions": "",
            "timing_method": "", "enqueue_ms_median": math.nan, "energy_j_per_inference": math.nan,
            "mean_power_w": math.nan, "gpu_clock_mhz_start": math.nan, "gpu_clock_mhz_end": math.nan,
            "gpu_temp_c_end": math.nan,
        }

    def run_case(self, case: Case) -> CaseResult:
        row = self._row(case)
        result = CaseResult(row, None, str(self.baseline_file(case)))
        try:
            self._run(case, result)
        except (BackendError, SuiteError, BaselineError) as exc:
            row["status"], row["reason"] = V.ERROR, str(exc)
            result.message = f"{case.case_id}: error\n  {exc}"
        except Exception as exc:  # a library failing deep inside: report it as this case's error, not a traceback
            where = _innermost_frame(exc)
            row["status"], row["reason"] = V.ERROR, f"{type(exc).__name__}: {exc} (in {where})"
            result.message = f"{case.case_id}: error\n  {row['reason']}"
        return result

    def _skip(self, result: CaseResult, status: str, reason: str) -> None:
        result.row["status"], result.row["reason"] = status, reason

    def _run(self, case: Case, result: CaseResult) -> None:
        row, settings = result.row, self.settings
        backend = get_backend(case.backend)
        reason = backend.unsupported_reason(case.precision, settings.device)
        if reason:
            return self._skip(result, V.SKIPPED, reason)
        model = self.model(case.suite)
        reason = _static_shape_conflict(model, case)
        if reason:
            return self._skip(result, V.SKIPPED, reason)
        not_here = backend.execution_unavailable_reason(settings.device)
        execute = not (settings.build_only or not_here)
        entry, engine = self._engine(case, load=execute)
        row["engine_cache"], row["build_s"], row["engine_key"] = entry.status, entry.build_s, entry.key
        precisions = entry.metadata.get("backend", {}).get("engine_precisions")
        if precisions:
            row["engine_precisions"] = ",".join(f"{k}:{v}" for k, v in sorted(precisions.items()))
            if case.precision in REDUCED_PRECISIONS and not precisions.get(case.precision):
                row["status"], row["reason"] = V.ERROR, (
                    f"asked for {case.precision} but the engine runs no compute layer in "
                    f"{case.precision} (realized: {row['engine_precisions']})"
                )
                result.message = f"{case.case_id}: error\n  {row['reason']}"
                return None
        if not execute or engine is None:
            return self._skip(result, V.BUILT, not_here or "--trt-build-only: built, not executed")

        feeds = self.inputs(case)
        outputs = engine.run(feeds)
        baseline = self.baseline_entry(case)
        comparisons, reference_name = self._accuracy(case, outputs, baseline)
        row["reference_backend"] = reference_name
        _fill_accuracy(row, comparisons)
        accuracy_failures = [f"{c.name}: {msg}" for c in comparisons for msg in c.failures]

        latency = measure_latency(engine.prepare(feeds), case.batch_size, settings.timing)
        _fill_latency(row, latency)
        row["reference_latency_ms_median"] = self.reference_latency(case)
        if row["reference_latency_ms_median"] > 0:
            row["speedup_vs_reference"] = row["reference_latency_ms_median"] / row["latency_ms_median"]

        current_metrics = {c.name: c.metrics() for c in comparisons}
        regressions: list[str] = []
        latency_verdict, latency_reason = None, ""
        if baseline and not settings.update_baselines:
            regressions = accuracy_regressions(
                current_metrics, baseline.get("accuracy", {}).get("outputs", {}),
                lambda name: case.suite.tolerance_for(case.precision, name),
            )
            latency_verdict, latency_reason, latency = self._latency_gate(case, engine, feeds, latency, baseline, row)
        result.latency = _latency_record(latency)
        verdict = V.decide_verdict(
            accuracy_failures=accuracy_failures, accuracy_regressions=regressions,
            latency_verdict=latency_verdict, latency_reason=latency_reason,
            has_baseline=bool(baseline) or settings.update_baselines, strict=settings.strict, notes=latency.notes,
        )
        row["status"], row["reason"] = verdict.status, verdict.reason
        if settings.update_baselines and not accuracy_failures:
            row["reason"] = "; ".join(filter(None, [row["reason"], "baseline updated"]))
            result.baseline_entry = self._baseline_entry(case, current_metrics, latency, baseline, row)
        if verdict.failed:
            result.message = self._failure_text(case, verdict, comparisons, row)
        return None

    def _accuracy(
        self, case: Case, outputs: Mapping[str, np.ndarray], baseline: Mapping[str, Any] | None
    ) -> tuple[list[OutputComparison], str]:
        suite = case.suite
        tol = lambda name: suite.tolerance_for(case.precision, name)  # noqa: E731
        expected = self.reference(case)
        if expected is not None:
            model = self.model(suite)
            return compare_outputs(outputs, expected, tol, list(suite.classifier_outputs)), model.reference.name  # type: ignore[union-attr]
        golden = (baseline or {}).get("golden", {}).get("outputs")
        if not golden:
            raise SuiteError(
                f"no live reference and no golden fingerprint in {self.baseline_file(case)}: record the "
                "baseline once where the reference runs (live_reference=True) with --trt-update-baselines"
            )
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
        return comparisons, "golden-fingerprint"

    def _latency_gate(
        self, case: Case, engine: Engine, feeds: Mapping[str, np.ndarray], latency: LatencyResult,
        baseline: Mapping[str, Any], row: dict[str, Any],
    ) -> tuple[str | None, str, LatencyResult]:
        base_lat = baseline.get("latency") or {}
        row["baseline_latency_ms_median"] = base_lat.get("median_ms", math.nan)
        if row["baseline_latency_ms_median"] and row["baseline_latency_ms_median"] > 0:
            row["latency_change_pct"] = 100.0 * (row["latency_ms_median"] / row["baseline_latency_ms_median"] - 1)
        if not self.settings.latency_gate:
            return None, "latency gate off (--trt-no-latency-gate)", latency
        if self.settings.device.gpu == "cpu":
            recorded = (baseline.get("environment") or {}).get("cpu_model")
            if recorded != self._cpu_model:
                return None, f"latency not compared: baseline CPU {recorded!r} is not this CPU {self._cpu_model!r}", latency
        history = [[BlockSummary.from_json(b) for b in run] for run in base_lat.get("runs", []) if run]
        if not history:
            return None, "latency not compared: the baseline has no block history", latency
        decision = decide_latency(history, latency.blocks, self.settings.latency_tolerance)
        for _ in range(self.settings.confirm if decision.needs_confirmation else 0):
            again = measure_latency(engine.prepare(feeds), case.batch_size, self.settings.timing)
            latency = LatencyResult(latency.samples_ms + again.samples_ms, latency.blocks + again.blocks,
                                    latency.batch_size, latency.method, latency.notes,
                                    latency.enqueue_ms + again.enqueue_ms, again.telemetry or latency.telemetry,
                                    latency.host_synchronous)
            decision = decide_latency(history, latency.blocks, self.settings.latency_tolerance)
            _fill_latency(row, latency)
        row["latency_confidence"] = decision.confidence
        if decision.ratio > 0 and math.isfinite(decision.ratio):
            # report what the rule compared: the history's level, not only the last run's median
            row["latency_change_pct"] = 100.0 * (decision.ratio - 1.0)
            row["baseline_latency_ms_median"] = row["latency_ms_median"] / decision.ratio
        verdict = {"latency_regression": V.LATENCY_REGRESSION, "improved": V.IMPROVED}.get(decision.verdict, V.PASS)
        return verdict, decision.reason, latency

    def _baseline_entry(
        self, case: Case, metrics: Mapping[str, Any], latency: LatencyResult, old: Mapping[str, Any] | None,
        row: Mapping[str, Any],
    ) -> dict[str, Any]:
        expected = self.reference(case)
        if expected is not None:
            golden = {name: fingerprint(arr, seed=case.suite.seed) for name, arr in expected.items()}
        else:
            golden = (old or {}).get("golden", {}).get("outputs", {})
        old_runs = [[BlockSummary.from_json(b) for b in run] for run in ((old or {}).get("latency") or {}).get("runs", [])]
        same_machine = (old or {}).get("environment", {}).get("device_name") == self.settings.device.device_name
        runs = update_history(old_runs if same_machine else [], latency.blocks, self.settings.history)
        lat = latency.summary()
        lat["runs"] = [[b.to_json() for b in run] for run in runs]
        return {
            "accuracy": {"outputs": dict(metrics)},
            "latency": lat,
            "golden": {"outputs": golden},
            "reference": {"backend": row["reference_backend"], "latency_ms_median": row["reference_latency_ms_median"]},
            "engine": {"precisions": row["engine_precisions"], "build_s": row["build_s"]},
            "environment": {
                "device_name": self.settings.device.device_name, "cpu_model": self._cpu_model,
                "versions": self._versions,
            },
            "shapes": case.shapes_label(),
        }

    def _failure_text(self, case: Case, verdict: V.Verdict, comparisons: list[OutputComparison], row: Mapping[str, Any]) -> str:
        lines = [f"{case.case_id}: {verdict.status}", f"  {verdict.reason}"]
        for c in comparisons:
            top1 = "" if c.top1_agreement is None else f", top-1 {100 * c.top1_agreement:.2f} %"
            lines.append(
                f"  output {c.name}: max abs err {c.max_abs_err:.4g}, max rel err {c.max_rel_err:.4g}, "
                f"mean abs err {c.mean_abs_err:.4g}, cosine {c.cosine_similarity:.6f}{top1}, "
                f"mismatches {c.mismatches} / {c.total}, non-finite {c.nonfinite}"
            )
        if verdict.status == V.LATENCY_REGRESSION:
            lines.append(
                f"  latency: median {row['latency_ms_median']:.4f} ms vs baseline {row['baseline_latency_ms_median']:.4f} ms "
                f"({row['latency_change_pct']:+.1f} %), CoV {row['latency_cov_pct']:.1f} %"
            )
        lines.append(f"  baseline: {self.baseline_file(case)}")
        lines.append(
            f"  if this change is intended, update it: pytest {case.suite.source_file or '<suite file>'} "
            f"--trt-gpu={self.settings.device.gpu} --trt-update-baselines -k '{case.param_id}'"
        )
        return "\n".join(lines)


def _pin(shape: tuple[int, ...], fixed: tuple[int | None, ...]) -> tuple[int, ...]:
    """*shape* with every dim the model fixes (non-``None`` in *fixed*) replaced by the fixed value."""
    out = list(shape)
    for axis, value in enumerate(fixed[: len(out)]):
        if value is not None:
            out[axis] = value
    return tuple(out)


def _innermost_frame(exc: BaseException) -> str:
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


def _static_shape_conflict(model: ModelSource, case: Case) -> str:
    for name, shape in case.shapes:
        fixed = (model.static_input_shapes or {}).get(name)
        if fixed is None:
            continue
        if len(fixed) != len(shape) or any(f is not None and f != d for f, d in zip(fixed, shape)):
            shown = "x".join("?" if f is None else str(f) for f in fixed)
            return f"{model.onnx_path.name} fixes input {name!r} to {shown}; this case needs {'x'.join(map(str, shape))}"
    return ""


def _fill_accuracy(row: dict[str, Any], comparisons: list[OutputComparison]) -> None:
    if not comparisons:
        return
    row["max_abs_err"] = max(c.max_abs_err for c in comparisons)
    row["max_rel_err"] = max(c.max_rel_err for c in comparisons)
    row["mean_abs_err"] = max(c.mean_abs_err for c in comparisons)
    row["cosine_similarity"] = min(c.cosine_similarity for c in comparisons)
    top1 = [c.top1_agreement for c in comparisons if c.top1_agreement is not None]
    row["top1_agreement"] = min(top1) if top1 else math.nan


def _fill_latency(row: dict[str, Any], latency: LatencyResult) -> None:
    summary = latency.summary()
    row["latency_ms_median"], row["latency_ms_p90"] = summary["median_ms"], summary["p90_ms"]
    row["latency_ms_p99"], row["latency_cov_pct"] = summary["p99_ms"], summary["cov_pct"]
    row["throughput_qps"], row["timing_method"] = summary["throughput_qps"], summary["method"]
    row["enqueue_ms_median"] = summary["enqueue_ms_median"]
    telemetry = latency.telemetry.to_json() if latency.telemetry is not None else {}
    for key in ("energy_j_per_inference", "mean_power_w", "gpu_clock_mhz_start", "gpu_clock_mhz_end", "gpu_temp_c_end"):
        value = telemetry.get(key)
        row[key] = math.nan if value is None else value


def _latency_record(latency: LatencyResult) -> dict[str, Any]:
    """The small latency record a :class:`CaseResult` carries: quantiles and block medians, no samples."""
    return {**latency.distribution(), "method": latency.method, "notes": list(latency.notes),
            "block_medians_ms": [b.median_ms for b in latency.blocks], "enqueue_ms_median": latency.enqueue_ms_median}
