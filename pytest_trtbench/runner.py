"""The session's memo of models, engines, references and baselines: :class:`Harness`, the ``trtbench`` fixture.

Cases sharing an engine or a reference pay for them once. Running a case is
:func:`pytest_trtbench.pipeline.run_case`; the harness is the :class:`~pytest_trtbench.pipeline.CaseResources`
it asks for models, engines, references, baselines and measurements. Plain Python: the pytest plugin only
calls :meth:`Harness.run_case` and reports the :class:`~pytest_trtbench.outcome.CaseOutcome`.
"""
from __future__ import annotations

import math
import platform
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pytest_trtbench.backends import get_backend
from pytest_trtbench.backends.base import Backend, BackendError, BuildRequest, Engine
from pytest_trtbench.baseline import BaselineError, baseline_path, load_baselines
from pytest_trtbench.baseline_check import usable_entry
from pytest_trtbench.cache import CacheEntry, EngineCache
from pytest_trtbench.device import cpu_model
from pytest_trtbench.engine_memo import LoadedEngines
from pytest_trtbench.export_cache import EXPORTS
from pytest_trtbench.inputs import calibration_feeds, make_feeds
from pytest_trtbench.measure import LatencyResult, measure_latency
from pytest_trtbench.model import ModelSource, load_model
from pytest_trtbench.normalize import NormalizedModel, NormalizeError, normalize_model
from pytest_trtbench.outcome import CaseOutcome
from pytest_trtbench.pipeline import run_case as run_pipeline
from pytest_trtbench.precision import CALIBRATED
from pytest_trtbench.profile import InputRange, ShapeProfile
from pytest_trtbench.reference_timing import ReferenceTiming, time_reference
from pytest_trtbench.resources import MeteredBackend
from pytest_trtbench.settings import Settings
from pytest_trtbench.suite import Case, Suite, SuiteError
from pytest_trtbench.task_data import (
    TaskData,
    case_feeds,
    load_task_data,
    measure_task,
    metric_output,
    reference_metric,
)

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.task_metrics import TaskMetric

CALIBRATION_MAX_BATCH = 4


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
        self._models: dict[Suite, ModelSource | SuiteError] = {}
        self._normalized: dict[tuple[Suite, str], NormalizedModel | NormalizeError] = {}
        self._engines = LoadedEngines()  # closes engines beyond the few most recently used
        self._references: dict[tuple[Any, ...], dict[str, np.ndarray]] = {}
        self._reference_latency: dict[tuple[Any, ...], ReferenceTiming] = {}
        self._baselines: dict[Path, dict[str, Any] | BaselineError] = {}
        self._task_data: dict[Suite, TaskData | SuiteError] = {}
        self._task_reference: dict[Suite, float] = {}
        self._cpu_model = cpu_model()
        self._machine: str | None = None
        self._versions = _versions()

    # --- collaborators, also used by custom tests -------------------------------------------------

    def model(self, suite: Suite) -> ModelSource:
        """The suite's ONNX model and reference, exported once per session."""
        got = self._models.get(suite)
        if got is None:
            try:
                got = load_model(suite, self._work, self.settings.device, self.settings.cache_dir / EXPORTS)
            except SuiteError as exc:
                got = exc
            self._models[suite] = got
        if isinstance(got, SuiteError):
            raise got
        return got

    def normalized_model(self, case: Case) -> NormalizedModel:
        """The model the case's precision recipe starts from: for an ONNX-file suite, a private
        normalized copy where the file needs one (:mod:`pytest_trtbench.normalize`); the only place
        normalization happens. Exported PyTorch models are ours and used as they are."""
        model = self.model(case.suite)
        if not case.suite.is_onnx_file:
            return NormalizedModel(model.onnx_path, model.onnx_path)
        key = (case.suite, case.precision)
        if key not in self._normalized:
            try:
                self._normalized[key] = normalize_model(model.onnx_path, self._work / "normalized", case.precision)
            except NormalizeError as exc:
                self._normalized[key] = exc
        got = self._normalized[key]
        if isinstance(got, NormalizeError):
            raise SuiteError(str(got))
        return got

    def close(self) -> None:
        """Remove the session's exported and normalized models (the cache keeps what engines need)."""
        import shutil

        shutil.rmtree(self._work, ignore_errors=True)

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
        """What the case's engine depends on. Its options: the session's and the suite's build options
        (the suite's win) that the case's backend declares, parsed by it, plus the suite's ``fp32_ops`` and
        ``calibration_method``."""
        from pytest_trtbench.build_options import options_for

        suite = case.suite
        calibrated = case.precision in CALIBRATED
        calib_shapes = self.calibration_shapes(case) if calibrated else {}
        calibration = (lambda: calibration_feeds(suite, calib_shapes)) if calib_shapes else None
        if calibrated and suite.data is not None and self.task_data(suite).calibration:
            calibration = lambda: iter(self.task_data(suite).calibration)  # noqa: E731  (the data's calibration part)
        method = suite.calibration_method if calibrated and suite.calibration_method != "minmax" else None
        try:
            options = options_for(self.backend(case), {**self.settings.build_options, **suite.build_options})
        except ValueError as exc:  # checked at collection; reached only through the fixture API
            raise BackendError(f"suite {suite.name}: {exc}") from None
        return BuildRequest(
            onnx_path=self.normalized_model(case).path,
            precision=case.precision,
            profiles=(self.engine_profile(case),),
            device=self.settings.device,
            calibration=calibration,
            options={**options, **({"fp32_ops": list(suite.fp32_ops)} if suite.fp32_ops else {}),
                     **({"calibration_method": method} if method else {})},
            cuda=self.settings.cuda,
        )

    def engine(self, case: Case) -> tuple[CacheEntry, Engine]:
        """The case's engine: one per (GPU, backend, precision, profile), built or taken from the cache."""
        entry, engine = self.engine_entry(case, load=True)
        assert engine is not None
        return entry, engine

    def engine_entry(self, case: Case, *, load: bool) -> tuple[CacheEntry, Engine | None]:
        """The cache entry, and the loaded engine if *load* (else ``None``: a build-only or verify-only run)."""
        key = (case.suite, case.backend, case.precision, case.profile, load)
        if key not in self._engines:
            backend = MeteredBackend(self.backend(case), self.settings.device, self.settings.cuda)
            label = f"{case.suite.name} {case.backend}-{case.precision} [{case.profile.label()}]"
            self._engines[key] = self.cache.get_or_build(backend, self.build_request(case), label, load=load)
        return self._engines[key]

    def inputs(self, case: Case) -> dict[str, np.ndarray]:
        """The case's feeds: seeded, or with ``Suite(data=...)`` the first evaluation samples."""
        if case.suite.data is not None:
            return case_feeds(case, self.task_data(case.suite))
        return make_feeds(case.suite, case.shape_map())

    def task_data(self, suite: Suite) -> TaskData:
        """The suite's data, read and checked once per session (:mod:`pytest_trtbench.task_data`)."""
        if suite not in self._task_data:
            try:
                self._task_data[suite] = load_task_data(suite)
            except SuiteError as exc:
                self._task_data[suite] = exc
        got = self._task_data[suite]
        if isinstance(got, SuiteError):
            raise got
        return got

    def task_metric(self, case: Case, engine: Engine, baseline: Mapping[str, Any] | None) -> TaskMetric:
        """The case's task metric on the evaluation data, the reference's computed once per suite."""
        suite, data = case.suite, self.task_data(case.suite)
        model = self.model(suite)
        output = metric_output(suite, model.output_names)

        def reference_value() -> float:
            if suite not in self._task_reference:
                run = model.reference.run if model.reference is not None and suite.live_reference else None
                self._task_reference[suite] = reference_metric(
                    suite, run, data, output, (baseline or {}).get("task_metric"), self.baseline_file(case))
            return self._task_reference[suite]

        return measure_task(case, engine.run, data, output, reference_value)

    def reference(self, case: Case) -> dict[str, np.ndarray] | None:
        """The live reference's outputs for the case's inputs, or ``None`` without a live reference."""
        model = self.model(case.suite)
        if model.reference is None or not case.suite.live_reference:
            return None
        key = (case.suite, case.shapes)
        if key not in self._references:
            self._references[key] = model.reference.run(self.inputs(case))
        return self._references[key]

    def reference_latency(self, case: Case) -> float:
        model = self.model(case.suite)
        key = (case.suite, case.shapes)
        if model.reference is None or not case.suite.live_reference:
            return math.nan
        if key not in self._reference_latency:
            launch = model.reference.prepare(self.inputs(case))

            def warm() -> None:
                launch()
                launch.synchronize()

            self._reference_latency[key] = time_reference(
                lambda: measure_latency(launch, case.batch_size, self.settings.timing), warm)
        return self._reference_latency[key].median_ms

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
        device = self.settings.device
        return usable_entry(got, case.param_id, path, gpu=device.gpu, device_name=device.device_name,
                            updating=self.settings.update_baselines)

    def backend(self, case: Case) -> Backend:
        return get_backend(case.backend)

    def measure(self, case: Case, engine: Engine, feeds: Mapping[str, np.ndarray]) -> LatencyResult:
        """Time the engine on *feeds* (warmup, then timed blocks)."""
        return measure_latency(engine.prepare(feeds), case.batch_size, self.settings.timing)

    def _cuda_layer_name(self) -> str:
        """The CUDA layer this GPU run resolved ``--trt-cuda`` to (``torch`` on CPU: none is used)."""
        if not self.settings.device.has_cuda:
            return "torch"
        from pytest_trtbench.cuda import CudaLayerError, cuda_layer

        try:
            return cuda_layer(self.settings.cuda).name
        except CudaLayerError:
            return self.settings.cuda

    def environment(self) -> dict[str, Any]:
        """Where a baseline entry was recorded: device, CPU model, library versions."""
        if self._machine is None:
            from pytest_trtbench.machine import machine_identity

            self._machine = machine_identity(self.settings.device, self._cuda_layer_name())
        return {"device_name": self.settings.device.device_name, "cpu_model": self._cpu_model, "versions": self._versions,
                "machine": self._machine}

    # --- one case --------------------------------------------------------------------------------

    def run_case(self, case: Case) -> CaseOutcome:
        """Run *case* through the pipeline; its own failures come back as the outcome's verdict."""
        return self._own_model_notes(case, run_pipeline(case, self))

    def _own_model_notes(self, case: Case, outcome: CaseOutcome) -> CaseOutcome:
        """What normalization did to the case's ONNX file; the user's file named instead of the private
        copy in errors; an unstable reference timing said in the reason (it is not stored)."""
        from dataclasses import replace

        from pytest_trtbench.verdict import ERROR, Verdict

        got = self._normalized.get((case.suite, case.precision))
        if not isinstance(got, NormalizedModel) or got.path == got.source:
            normalized = outcome
        else:
            normalized = replace(outcome, model_normalized=got.summary)
            if outcome.status == ERROR:
                def named(text: str) -> str:
                    return text.replace(str(got.path), f"{got.source} (normalized copy)")

                normalized = replace(normalized, verdict=Verdict(ERROR, named(outcome.reason)), message=named(outcome.message))
        timing = self._reference_latency.get((case.suite, case.shapes))
        if timing is not None and timing.note and outcome.status != ERROR and outcome.latency is not None:
            # only cases that were timed (a skipped or built case sharing the shapes never used the reference time)
            reason = "; ".join(filter(None, [outcome.reason, timing.note]))
            normalized = replace(normalized, verdict=Verdict(outcome.status, reason))
        return normalized


def _pin(shape: tuple[int, ...], fixed: tuple[int | None, ...]) -> tuple[int, ...]:
    """*shape* with every dim the model fixes (non-``None`` in *fixed*) replaced by the fixed value."""
    out = list(shape)
    for axis, value in enumerate(fixed[: len(out)]):
        if value is not None:
            out[axis] = value
    return tuple(out)
