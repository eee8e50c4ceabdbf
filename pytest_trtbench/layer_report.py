"""The layer-profile stage of a case and its views: failure-text lines, the CSV cell, the step summary.

When (:func:`due`): every executed case under ``--trt-profile-layers`` (ini ``trt_profile_layers``), every
case written by ``--trt-update-baselines`` (its compact profile goes into the baseline entry), and every
case the latency rule found slower (a regression, also an advisory one on CPU). It runs after the latency
gate and its confirmation, so the timed blocks never see a profiler. A profile that can't be captured is a
note, never a failure.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from pytest_trtbench.layer_diff import LayerDiff, csv_cell, diff_profiles, text_lines
from pytest_trtbench.layer_profile import PROFILE_RUNS, LayerProfile, LayerProfileError, capture

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.outcome import CaseOutcome, LatencyCheck

NO_STORED_PROFILE = ("the baseline has no layer profile to compare with; profiles are stored by "
                     "--trt-update-baselines (re-record this case)")


@dataclass(frozen=True)
class LayerReport:
    profile: LayerProfile | None = None
    """This run's profile, compacted (what ``--trt-update-baselines`` stores)."""
    diff: LayerDiff | None = None
    """Against the baseline's stored profile: for a case the latency rule found slower, and for every case
    with a stored profile under ``--trt-profile-layers``."""
    note: str = ""

    def heading(self) -> str:
        p = self.profile
        if p is None:
            return "layers:"
        return f"layers ({p.source}, {p.clock} clock, median of {p.runs} runs):"

    def failure_lines(self) -> list[str]:
        """The failure text's layer block, indented like the rest of it."""
        if self.diff is not None:
            d = self.diff
            lines = [f"{self.heading()} total {d.base_total_us / 1000:.3f} ms -> {d.now_total_us / 1000:.3f} ms "
                     f"({d.total_delta_us / 1000:+.3f} ms)"]
            lines += [f"  {line}" for line in text_lines(d)]
        elif self.profile is not None:
            top = ", ".join(f"{layer.name} ({layer.op}) {100 * self.profile.share(layer):.0f} %"
                            for layer in self.profile.top(3))
            lines = [f"{self.heading()} total {self.profile.total_us / 1000:.3f} ms; slowest: {top}"]
        else:
            lines = ["layers:"]
        if self.note:
            lines.append(f"  {self.note}")
        return [f"  {line}" for line in lines]

    def csv_cell(self) -> str:
        return csv_cell(self.diff) if self.diff is not None else ""

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile.to_json() if self.profile else None,
                "diff": self.diff.to_json() if self.diff else None, "note": self.note}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerReport:
        return cls(LayerProfile.from_json(data["profile"]) if data.get("profile") else None,
                   LayerDiff.from_json(data["diff"]) if data.get("diff") else None, str(data.get("note", "")))


def slower(check: LatencyCheck) -> bool:
    """The latency rule found a regression (the gate may have made it advisory)."""
    return check.decision is not None and check.decision.verdict == "latency_regression"


def due(*, profile_layers: bool, update_baselines: bool, check: LatencyCheck) -> bool:
    return profile_layers or update_baselines or slower(check)


def layer_stage(engine: Any, feeds: Mapping[str, np.ndarray], baseline: Mapping[str, Any] | None,
                check: LatencyCheck, *, every_case: bool = False, runs: int = PROFILE_RUNS) -> LayerReport:
    """Capture the engine's profile; diff it against the baseline's when the case is slower, or for every
    case with a stored profile when *every_case* (``--trt-profile-layers``)."""
    try:
        full = capture(engine, feeds, runs)
    except LayerProfileError as exc:
        return LayerReport(note=f"layer profile not captured: {exc}")
    except Exception as exc:  # a backend failing inside its profiler must not turn the case into an error
        return LayerReport(note=f"layer profile not captured: {type(exc).__name__}: {str(exc)[:300]}")
    compact = full.compact()
    stored = (baseline or {}).get("layers")
    if not slower(check) and not (every_case and stored):
        return LayerReport(compact)
    if not stored:
        return LayerReport(compact, note=NO_STORED_PROFILE)
    return LayerReport(compact, diff_profiles(LayerProfile.from_json(stored), full))


def markdown_section(outcomes: Sequence[CaseOutcome]) -> str:
    """For the GitHub step summary: each slower case's layer block (empty when there is none)."""
    blocks = []
    for o in outcomes:
        layers = o.layers
        if layers is not None and layers.diff is not None:
            body = "\n".join(line[2:] for line in layers.failure_lines())
            blocks.append(f"**{o.case.case_id}** ({o.status})\n\n```\n{body}\n```\n")
    return "#### Layer deltas (slower cases)\n\n" + "\n".join(blocks) if blocks else ""


def _num(value: Any, minimum: float = 0.0) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value >= minimum)


def stored_profile_problem(entry: Mapping[str, Any]) -> str:
    """Why an entry's ``layers`` (schema 4) can't be read, or ``""`` (absent is fine)."""
    data = entry.get("layers")
    if data is None:
        return ""
    if not isinstance(data, dict):
        return "'layers' must be an object (a stored layer profile)"
    if not isinstance(data.get("source"), str) or not isinstance(data.get("clock"), str):
        return "layers.source and layers.clock must be strings"
    if not isinstance(data.get("runs"), int) or isinstance(data.get("runs"), bool) or data["runs"] < 1:
        return f"layers.runs is {data.get('runs')!r}: must be a positive integer"
    if not _num(data.get("total_us")):
        return f"layers.total_us is {data.get('total_us')!r}: must be a number >= 0"
    layers = data.get("layers")
    if not isinstance(layers, list):
        return "layers.layers must be a list of [name, op, position, µs]"
    for i, item in enumerate(layers):
        if not (isinstance(item, list) and len(item) == 4 and isinstance(item[0], str) and isinstance(item[1], str)
                and isinstance(item[2], int) and not isinstance(item[2], bool) and item[2] >= 0 and _num(item[3])):
            return f"layers.layers[{i}] is {item!r}: must be [name, op, position >= 0, µs >= 0]"
    tail = data.get("tail", {})
    if not isinstance(tail, dict) or not all(_num(tail.get(k, 0)) for k in ("count", "us", "max_us")):
        return "layers.tail must be an object with count, us, max_us >= 0"
    ops = data.get("ops", {})
    if not isinstance(ops, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ops.values()):
        return "layers.ops must map op types to layer counts"
    return ""
