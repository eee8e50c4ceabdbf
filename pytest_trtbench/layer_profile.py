"""Per-layer (per-node) profiles: what one case's engine spends its time on, layer by layer.

A backend's profiler (ONNX Runtime's JSON profiler, TensorRT's ``IProfiler``) gives, per profiled run, a
list of ``(layer name, op type, µs)`` in execution order. :func:`aggregate` makes a :class:`LayerProfile`
of them: per layer the median over the runs, its op type, its position among the layers of that op type
(the fallback key when a rebuild renames layers) and its share of the total. :meth:`LayerProfile.compact`
keeps the layers that cover ~95 % of the time plus a tail bucket and the op counts of every layer: that is
what a baseline entry stores (``"layers"``, schema 4) and what travels with a result.

Profiling never runs inside the timed blocks: :func:`capture` is called after the latency gate has decided,
on a separate profiled session / execution context (see ``backends/ort_profile.py`` and
``backends/tensorrt/profiler.py``). Plain Python, no heavy imports.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    import numpy as np

PROFILE_RUNS = 5
"""Profiled runs per capture (after one discarded warm-up run); each layer's time is their median."""
COVERAGE = 0.95
"""A stored profile keeps the slowest layers until they cover this share of the total ..."""
MAX_STORED_LAYERS = 60
"""... but never more than this many (the rest go to the tail bucket), so baselines stay small."""

RunLayers = Sequence[tuple[str, str, float]]
"""One profiled run: ``(layer name, op type, µs)`` in execution order."""


class LayerProfileError(Exception):
    """A profile could not be captured or read; the message says why (it never fails a case)."""


@dataclass(frozen=True)
class LayerTime:
    name: str
    op: str
    position: int
    """Its index among the layers of the same op type, in execution order (0: the first MatMul)."""
    us: float
    """Median over the profiled runs, µs."""


@dataclass(frozen=True)
class LayerProfile:
    """Per-layer medians of one engine at one case's shapes, or (compacted) the top of them plus a tail."""

    source: str
    """What measured it, e.g. ``onnxruntime profiler (CPUExecutionProvider)``, ``tensorrt IProfiler``."""
    clock: str
    """``host`` (CPU provider: node compute time), ``launch-blocking`` (CUDA provider with
    ``CUDA_LAUNCH_BLOCKING=1``: launch + GPU time, serialized) or ``gpu`` (TensorRT's per-layer events)."""
    runs: int
    layers: tuple[LayerTime, ...]
    total_us: float
    """Sum over every layer (the tail included), µs."""
    op_counts: Mapping[str, int] = field(default_factory=dict)
    """Layers per op type over the whole engine (the tail included): a new block shows up here."""
    tail_count: int = 0
    tail_us: float = 0.0
    tail_max_us: float = 0.0

    def share(self, layer: LayerTime) -> float:
        return layer.us / self.total_us if self.total_us > 0 else math.nan

    def top(self, n: int) -> list[LayerTime]:
        return sorted(self.layers, key=lambda layer: -layer.us)[:n]

    def compact(self, coverage: float = COVERAGE, max_layers: int = MAX_STORED_LAYERS) -> LayerProfile:
        """The slowest layers covering *coverage* of the total (at most *max_layers*), the rest as a tail."""
        ordered = sorted(self.layers, key=lambda layer: -layer.us)
        kept: list[LayerTime] = []
        covered = 0.0
        for layer in ordered:
            if len(kept) >= max_layers or (kept and covered >= coverage * self.total_us):
                break
            kept.append(layer)
            covered += layer.us
        rest = ordered[len(kept):]
        return LayerProfile(
            self.source, self.clock, self.runs, tuple(kept), self.total_us, dict(self.op_counts),
            self.tail_count + len(rest), self.tail_us + sum(layer.us for layer in rest),
            max([self.tail_max_us, *(layer.us for layer in rest)]),
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form: layers as ``[name, op, position, µs]``, slowest first."""
        return {
            "source": self.source, "clock": self.clock, "runs": self.runs, "total_us": _round(self.total_us),
            "layers": [[layer.name, layer.op, layer.position, _round(layer.us)]
                       for layer in sorted(self.layers, key=lambda layer: -layer.us)],
            "tail": {"count": self.tail_count, "us": _round(self.tail_us), "max_us": _round(self.tail_max_us)},
            "ops": dict(sorted(self.op_counts.items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerProfile:
        tail = data.get("tail") or {}
        return cls(
            str(data["source"]), str(data["clock"]), int(data["runs"]),
            tuple(LayerTime(str(n), str(op), int(pos), float(us)) for n, op, pos, us in data["layers"]),
            float(data["total_us"]), {str(k): int(v) for k, v in (data.get("ops") or {}).items()},
            int(tail.get("count", 0)), float(tail.get("us", 0.0)), float(tail.get("max_us", 0.0)),
        )


def _round(us: float) -> float:
    return round(float(us), 2)


def aggregate(runs: Sequence[RunLayers], source: str, clock: str) -> LayerProfile:
    """Per layer: the median of its per-run time (a layer reported twice in one run, e.g. inside a loop,
    counts once with the sum); order and positions from the first run; the total is the sum of medians."""
    if not runs or not any(runs):
        raise LayerProfileError(f"{source} reported no layer times")
    per_run: list[dict[str, float]] = []
    ops: dict[str, str] = {}
    order: list[str] = []
    for run in runs:
        times: dict[str, float] = {}
        for name, op, us in run:
            if not math.isfinite(us) or us < 0:
                raise LayerProfileError(f"{source} reported {us!r} µs for layer {name!r}")
            times[name] = times.get(name, 0.0) + us
            if name not in ops:
                ops[name] = op
                order.append(name)
        per_run.append(times)
    counts: dict[str, int] = {}
    layers = []
    for name in order:
        op = ops[name]
        layers.append(LayerTime(name, op, counts.get(op, 0),
                                statistics.median(times.get(name, 0.0) for times in per_run)))
        counts[op] = counts.get(op, 0) + 1
    return LayerProfile(source, clock, len(runs), tuple(layers), sum(layer.us for layer in layers), counts)


def ort_run_layers(events: Any) -> list[list[tuple[str, str, float]]]:
    """ONNX Runtime's profile JSON (a list of trace events) as one list per ``model_run``.

    Per-node times are the ``"cat": "Node"`` events whose ``name`` ends in ``_kernel_time`` (``args``:
    ``op_name``, ``provider``; ``dur`` in µs); each is assigned to the ``"cat": "Session"``, ``model_run``
    event whose interval holds its ``ts``. ``_fence_before`` / ``_fence_after`` events are not node time."""
    if isinstance(events, Mapping):  # the Chrome trace "object" form
        events = events.get("traceEvents")
    if not isinstance(events, list):
        raise LayerProfileError("onnxruntime's profile is not a list of trace events")
    runs = sorted((float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0))) for e in events
                  if isinstance(e, Mapping) and e.get("cat") == "Session" and e.get("name") == "model_run")
    out: list[list[tuple[str, str, float]]] = [[] for _ in runs]
    suffix = "_kernel_time"
    for e in sorted((e for e in events if isinstance(e, Mapping) and e.get("cat") == "Node"
                     and str(e.get("name", "")).endswith(suffix)), key=lambda e: float(e.get("ts", 0))):
        ts = float(e.get("ts", 0))
        index = next((i for i, (start, end) in enumerate(runs) if start <= ts <= end), None)
        if index is None:
            continue
        args = e.get("args") or {}
        out[index].append((str(e["name"])[: -len(suffix)], str(args.get("op_name") or "?"), float(e.get("dur", 0))))
    return out


def capture(engine: Any, feeds: Mapping[str, np.ndarray], runs: int = PROFILE_RUNS) -> LayerProfile:
    """The engine's per-layer profile at *feeds*: its ``layer_profile(feeds, runs)`` method (a separate
    profiled session or context, never the timed one). :class:`LayerProfileError` when it has none."""
    method = getattr(engine, "layer_profile", None)
    if method is None:
        raise LayerProfileError(f"{type(engine).__name__} has no per-layer profiler")
    profile = method(feeds, runs)
    if not isinstance(profile, LayerProfile):
        raise LayerProfileError(f"{type(engine).__name__}.layer_profile returned {type(profile).__name__}")
    return profile
