"""The typed result of one case: what the pipeline returns and every view is made from.

:class:`CaseOutcome` holds values, not a report row: which case it was (:class:`CaseInfo`), the
engine the cache gave (:class:`EngineInfo`), the per-output comparisons, the latency measured
(:class:`LatencySummary`) and what the gate made of it (:class:`LatencyCheck`), the verdict, the
failure text and the new baseline entry. The CSV row is made from it in :mod:`pytest_trtbench.report`
(one column schema), the baseline entry in :mod:`pytest_trtbench.baseline`. It survives xdist as JSON
(:meth:`CaseOutcome.to_json` / :meth:`CaseOutcome.from_json`). Adding a metric: one field here, one
column in ``report.COLUMNS``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping

from pytest_trtbench import verdict as V
from pytest_trtbench.compare import OutputComparison
from pytest_trtbench.layer_report import LayerReport
from pytest_trtbench.regression import BlockSummary, LatencyDecision
from pytest_trtbench.task_metrics import TaskMetric

if TYPE_CHECKING:
    from pytest_trtbench.measure import LatencyResult

NAN = math.nan


@dataclass(frozen=True)
class CaseInfo:
    """Which case ran where: the identifying columns of a report row."""

    case_id: str
    param_id: str
    suite: str
    model: str
    backend: str
    precision: str
    batch_size: int | None
    """``None`` for a shape-fuzzing test (it draws batch sizes)."""
    shapes: str
    gpu: str
    device_name: str
    source_file: str = ""
    """The suite's file relative to the rootdir (for the update command in failure texts)."""


@dataclass(frozen=True)
class EngineInfo:
    """What the engine cache gave this case."""

    cache: str = "none"
    """``built``, ``hit`` or ``none`` (no engine was asked for)."""
    build_s: float = NAN
    key: str = ""
    precisions: Mapping[str, Any] = field(default_factory=dict)
    """Compute layers per realized precision, from the backend's ``engine_precisions`` metadata."""
    file_bytes: float = NAN
    """Bytes of the cache entry's engine files. The rest: :mod:`pytest_trtbench.resources` (NaN where not measured)."""
    load_s: float = NAN
    cold_start_s: float = NAN
    """Load (deserialize / session creation) + the first inference."""
    device_memory_bytes: float = NAN
    """GPU: device memory in use after load + first inference minus before (``cudaMemGetInfo``)."""
    engine_device_memory_bytes: float = NAN
    """TensorRT: its execution contexts' device memory (``device_memory_size_v2`` per context)."""
    host_rss_growth_bytes: float = NAN

    def precisions_label(self) -> str:
        return ",".join(f"{k}:{v}" for k, v in sorted(self.precisions.items()))


@dataclass(frozen=True)
class LatencySummary:
    """One measurement (all its blocks), without the samples: small enough to travel with the result."""

    method: str
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    cov_pct: float
    throughput_qps: float
    iterations: int
    enqueue_ms_median: float
    blocks: tuple[BlockSummary, ...] = ()
    notes: tuple[str, ...] = ()
    distribution: Mapping[str, Any] = field(default_factory=dict)
    """Order statistics in pytest-benchmark's shape (:meth:`LatencyResult.distribution`)."""
    telemetry: Mapping[str, Any] = field(default_factory=dict)
    """NVML readings around the timed blocks (:meth:`TelemetrySummary.to_json`); empty without NVML."""
    host_synchronous: bool = False
    """The launch waited for the GPU itself (its enqueue time is not separable)."""
    cuda_layer: str = ""
    """The CUDA layer that timed it (``torch``, ``cuda-python``, ``pycuda``); empty on CPU."""
    peak_gpu_memory_bytes: float = NAN
    """GPU: the most device memory in use (``cudaMemGetInfo``) sampled before and after each timed block."""

    @property
    def launch_bound(self) -> str:
        """Why this GPU measurement is launch-bound (:func:`pytest_trtbench.gate.launch_bound_reason`), or ``""``."""
        from pytest_trtbench.gate import launch_bound_reason

        return launch_bound_reason(self.median_ms, self.enqueue_ms_median, self.host_synchronous,
                                   self.method != "host-clock", graph_replay="cuda-graph" in self.method)

    @classmethod
    def of(cls, result: LatencyResult) -> LatencySummary:
        s = result.summary()
        return cls(
            method=s["method"], median_ms=s["median_ms"], p90_ms=s["p90_ms"], p99_ms=s["p99_ms"],
            mean_ms=s["mean_ms"], std_ms=s["std_ms"], cov_pct=s["cov_pct"], throughput_qps=s["throughput_qps"],
            iterations=s["iterations"], enqueue_ms_median=s["enqueue_ms_median"], blocks=tuple(result.blocks),
            notes=tuple(result.notes), distribution=result.distribution(),
            telemetry=result.telemetry.to_json() if result.telemetry is not None else {},
            host_synchronous=result.host_synchronous, cuda_layer=result.cuda_layer,
            peak_gpu_memory_bytes=result.peak_gpu_memory_bytes,
        )

    def stats(self) -> dict[str, Any]:
        """The summary stored in baselines (the keys :meth:`LatencyResult.summary` has)."""
        return {
            "median_ms": self.median_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms, "mean_ms": self.mean_ms,
            "std_ms": self.std_ms, "cov_pct": self.cov_pct, "throughput_qps": self.throughput_qps,
            "iterations": self.iterations, "method": self.method, "enqueue_ms_median": self.enqueue_ms_median,
            "blocks": [b.to_json() for b in self.blocks],
        }

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "blocks": [b.to_json() for b in self.blocks], "notes": list(self.notes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencySummary:
        fields = dict(data)
        fields["blocks"] = tuple(BlockSummary.from_json(b) for b in fields.get("blocks", ()))
        fields["notes"] = tuple(fields.get("notes", ()))
        return cls(**fields)


@dataclass(frozen=True)
class LatencyCheck:
    """The latency compared with the baseline: the gate's verdict and the numbers it reports."""

    baseline_ms: float = NAN
    """The level the rule compared against (the history's, when the rule ran)."""
    change_pct: float = NAN
    confidence: float = NAN
    verdict: str | None = None
    """:data:`verdict.LATENCY_REGRESSION`, :data:`verdict.IMPROVED` or :data:`verdict.PASS`; ``None`` when the
    gate did not decide (the reason says why)."""
    reason: str = ""
    decision: LatencyDecision | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencyCheck:
        decision = data.get("decision")
        return cls(**{**data, "decision": LatencyDecision(**decision) if decision else None})


@dataclass(frozen=True)
class FuzzSummary:
    """What a shape-fuzzing test (:mod:`pytest_trtbench.fuzz`) adds to its row."""

    seed: int
    shapes_tried: int = 0
    failing_shape: str = ""
    """The smallest failing shape's label (``batch=1, seq=10 (x=1x10)``), or empty."""


@dataclass(frozen=True)
class CaseOutcome:
    """Everything one case produced. Stages fill it in order; an error keeps what earlier stages found."""

    case: CaseInfo
    baseline_file: str
    verdict: V.Verdict = V.Verdict("", "")
    engine: EngineInfo = EngineInfo()
    comparisons: tuple[OutputComparison, ...] = ()
    reference_backend: str = ""
    reference_latency_ms: float = NAN
    latency: LatencySummary | None = None
    latency_check: LatencyCheck = LatencyCheck()
    message: str = ""
    """The failure text (empty unless the verdict fails the test)."""
    baseline_entry: Mapping[str, Any] | None = None
    """The new baseline entry (``--trt-update-baselines`` only), made by :func:`baseline.make_entry`."""
    fuzz: FuzzSummary | None = None
    """Shape-fuzzing tests only."""
    model_normalized: str = ""
    """What :mod:`pytest_trtbench.normalize` changed in the suite's ONNX file for this case (empty: nothing)."""
    task: TaskMetric | None = None
    """``Suite(data=...)`` only: the task metric of the reference and the engine on the evaluation data."""
    layers: LayerReport | None = None
    """The per-layer profile (and, for a slower case, its diff against the baseline's): :mod:`layer_report`."""
    nodeid: str = ""
    """The pytest node id, set where the report is received (not part of the JSON)."""

    @property
    def status(self) -> str:
        return self.verdict.status

    @property
    def reason(self) -> str:
        return self.verdict.reason

    @property
    def failed(self) -> bool:
        return self.verdict.failed

    def with_error(self, reason: str) -> CaseOutcome:
        """This outcome as an error verdict: what earlier stages found stays."""
        return replace(self, verdict=V.Verdict(V.ERROR, reason), message=f"{self.case.case_id}: error\n  {reason}")

    def to_json(self) -> dict[str, Any]:
        return {
            "case": asdict(self.case), "baseline_file": self.baseline_file,
            "verdict": {"status": self.verdict.status, "reason": self.verdict.reason},
            "engine": asdict(self.engine), "comparisons": [asdict(c) for c in self.comparisons],
            "reference_backend": self.reference_backend, "reference_latency_ms": self.reference_latency_ms,
            "latency": self.latency.to_json() if self.latency is not None else None,
            "latency_check": self.latency_check.to_json(), "message": self.message,
            "baseline_entry": self.baseline_entry, "fuzz": asdict(self.fuzz) if self.fuzz is not None else None,
            "model_normalized": self.model_normalized, "task": self.task.to_json() if self.task is not None else None,
            "layers": self.layers.to_json() if self.layers is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseOutcome:
        return cls(
            case=CaseInfo(**data["case"]), baseline_file=data["baseline_file"], verdict=V.Verdict(**data["verdict"]),
            engine=EngineInfo(**data["engine"]), comparisons=tuple(OutputComparison(**c) for c in data["comparisons"]),
            reference_backend=data["reference_backend"], reference_latency_ms=data["reference_latency_ms"],
            latency=LatencySummary.from_json(data["latency"]) if data.get("latency") else None,
            latency_check=LatencyCheck.from_json(data["latency_check"]), message=data["message"],
            baseline_entry=data.get("baseline_entry"), fuzz=FuzzSummary(**data["fuzz"]) if data.get("fuzz") else None,
            model_normalized=data.get("model_normalized", ""),
            task=TaskMetric.from_json(data["task"]) if data.get("task") else None,
            layers=LayerReport.from_json(data["layers"]) if data.get("layers") else None,
        )
