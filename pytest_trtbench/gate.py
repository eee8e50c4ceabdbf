"""The latency gate around the rule: options, machine-aware history, launch-bound cases, CPU advisory.

:func:`pytest_trtbench.regression.decide_latency` compares one run with a history of runs. This
module decides *which* history and *which* noise model a case gets:

* **Machine-aware history.**  Every stored run carries the hash of the machine it ran on
  (:mod:`pytest_trtbench.machine`) and its GPU clocks. A run on a machine the history has seen is
  compared with that machine's runs only (within-machine spread). A run on a machine the history
  has never seen is compared with all runs, and the between-machine variance is added: estimated
  from the spread of the machine means where the history holds several machines, shrunk toward
  :data:`PRIOR_BETWEEN_MACHINE_CV` (measured, see the README) and never below what the data show.
* **Launch-bound cases** (median under :data:`LAUNCH_BOUND_MS`, or host enqueue time at or over the
  GPU time) shift between processes by far more than long kernels do. Their between-run prior is
  :data:`LAUNCH_BOUND_PRIOR_CV` with little weight (:data:`LAUNCH_BOUND_PRIOR_DF` pseudo-runs), so
  their own history decides as soon as it has a few runs.
* **Launch-bound cases are armed by their own history**: with fewer than :data:`LAUNCH_BOUND_MIN_RUNS`
  stored runs of the current machine, their slowdown is advisory (reported, the case passes).
* **Modes**: ``on`` gates, ``off`` does not compare, ``auto`` is ``on`` on GPUs and ``advisory`` on
  CPU: a slowdown is reported in the reason but the case passes.

Pure Python, cheap to import (the plugin imports it for option parsing).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from pytest_trtbench.regression import PRIOR_BETWEEN_RUN_CV, PRIOR_DF, BlockSummary, LatencyDecision, decide_latency

#: Between-machine spread of a case's latency (sigma of the log) assumed when the history has
#: never seen the current machine and holds runs from fewer than two machines. Measured: the RMS
#: shift of graph-timed cases between the two H200s of one host, 1.01 % (README, "Latency").
PRIOR_BETWEEN_MACHINE_CV = 0.0101
#: Weight of that prior, in pseudo machines.
PRIOR_MACHINE_DF = 4.0
#: A GPU case whose median is under this (ms) is launch-bound: host and driver overheads, not
#: kernels, set its time.
LAUNCH_BOUND_MS = 0.05
#: Between-run prior for launch-bound cases, and its weight in pseudo-runs (small: history decides).
#: Measured on an H200: process-to-process sigma of such cases' medians on one GPU, 4.29 %.
LAUNCH_BOUND_PRIOR_CV = 0.0429
LAUNCH_BOUND_PRIOR_DF = 4.0
#: Between-machine prior for launch-bound cases: their spread between the two GPUs beyond it, 6.81 %.
LAUNCH_BOUND_MACHINE_CV = 0.0681
#: A launch-bound case's slowdown fails its test only once the history holds this many runs of the
#: current machine; before that it is reported as advisory. Their time is host time (launch overhead,
#: CPU-placed nodes), which moved by up to 2.3x between processes on one H200 host whose CPUs other GPU
#: jobs kept busy (benchmarks/results/gate_h200_oos.md): no prior makes one stored run a safe reference.
LAUNCH_BOUND_MIN_RUNS = 3

MODES = ("on", "off", "auto")
ON, OFF, ADVISORY = "on", "off", "advisory"


def parse_tolerance(text: str) -> float:
    """``"5%"`` and ``"0.05"`` both mean 5 %: a percentage in (0, 100) or a fraction in (0, 1).

    A bare number of 1 or more is refused rather than guessed at (``1`` could mean 1 % or 100 %).
    ValueError (with the fix) for anything else: NaN, inf, <= 0, >= 100 %.
    """
    raw = text.strip()
    percent = raw.endswith("%")
    number = raw[:-1].strip() if percent else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"expected a fraction (0.05) or a percentage (5%), got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite tolerance, got {text!r}")
    if value <= 0:
        raise ValueError(f"a tolerance must be > 0, got {text!r}")
    if percent:
        if value >= 100:
            raise ValueError(f"a tolerance must be under 100%, got {text!r}")
        return value / 100
    if value >= 1:
        raise ValueError(
            f"{text!r} is ambiguous: a bare number is a fraction and must be < 1; write {value:g}% for "
            f"{value:g} percent, or {value / 100:g} as a fraction"
        )
    return value


def effective_mode(mode: str, device_kind: str) -> str:
    """``on`` / ``off`` / ``advisory`` for the ``--trt-latency-gate`` value on this device."""
    if mode not in MODES:
        raise ValueError(f"latency gate mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        return ADVISORY if device_kind == "cpu" else ON
    return mode


def launch_bound_reason(median_ms: float, enqueue_ms: float, host_synchronous: bool, on_gpu: bool,
                        graph_replay: bool = True) -> str:
    """Why a GPU case is launch-bound, or ``""``.

    Launch-bound: the median is under :data:`LAUNCH_BOUND_MS`, or the host enqueue time reaches the
    GPU time, or (where the enqueue time cannot be separated, ``host_synchronous``) the case was
    timed by plain enqueues rather than a graph replay, so every kernel launch's host overhead is
    inside every iteration (measured: such cases' medians move 4.3 % between processes on one H200,
    graph-replayed ones 0.9 %), or by a graph replay that waits for the GPU on every call (ONNX
    Runtime's own graph: the host's wake-up after each replay is in the timing).
    """
    if not on_gpu or not median_ms > 0:
        return ""
    if median_ms < LAUNCH_BOUND_MS:
        return f"median {median_ms * 1000:.1f} us is under {LAUNCH_BOUND_MS * 1000:.0f} us"
    if not host_synchronous and math.isfinite(enqueue_ms) and enqueue_ms >= median_ms:
        return f"host enqueue {enqueue_ms:.4f} ms >= GPU time {median_ms:.4f} ms"
    if host_synchronous and not graph_replay:
        return "timed by plain enqueues (no CUDA graph): host launch overhead is in every iteration"
    if host_synchronous:
        return "every graph replay waits for the GPU (ONNX Runtime's own CUDA graph): host wake-up is in every iteration"
    return ""


@dataclass(frozen=True)
class StoredRun:
    """One stored run of a case: its blocks, the machine hash, the GPU clock it ran at."""

    blocks: tuple[BlockSummary, ...]
    machine: str | None = None
    """:func:`pytest_trtbench.machine.machine_identity`; ``None`` for runs migrated from schema 2."""
    gpu_clock_mhz: float | None = None
    launch_bound: bool = False
    method: str | None = None
    """The timing method (``cuda-graph-pinned``, ``cuda-events``, ...); runs of another method are not compared."""

    def to_json(self) -> dict[str, Any]:
        return {"blocks": [b.to_json() for b in self.blocks], "machine": self.machine,
                "gpu_clock_mhz": self.gpu_clock_mhz, "launch_bound": self.launch_bound, "method": self.method}

    @classmethod
    def from_json(cls, data: Any, legacy_method: str | None = None) -> StoredRun:
        """A schema-3 run object, or a schema-2 bare list of blocks (machine unknown); a run stored
        without its method gets *legacy_method*."""
        if isinstance(data, list):
            return cls(tuple(BlockSummary.from_json(b) for b in data), method=legacy_method)
        if not isinstance(data, Mapping) or not isinstance(data.get("blocks"), list):
            raise ValueError(f"stored run {data!r} is neither a list of blocks nor an object with 'blocks'")
        clock = data.get("gpu_clock_mhz")
        machine = data.get("machine")
        method = data.get("method")
        return cls(tuple(BlockSummary.from_json(b) for b in data["blocks"]),
                   str(machine) if machine is not None else None,
                   float(clock) if isinstance(clock, (int, float)) else None, bool(data.get("launch_bound", False)),
                   str(method) if method else legacy_method)


def legacy_method(entry_method: Any) -> str | None:
    """The timing method of a run stored before runs recorded theirs: the entry's, except that every
    graph-timed run then was ONNX Runtime's own, host-synchronous graph (TensorRT execution had not run)."""
    if not entry_method:
        return None
    method = str(entry_method)
    return "ort-" + method if method.startswith("cuda-graph") else method


def stored_runs(latency_entry: Mapping[str, Any] | None) -> list[StoredRun]:
    """The non-empty runs of a baseline entry's ``latency`` section, oldest first."""
    entry = latency_entry or {}
    legacy = legacy_method(entry.get("method"))
    runs = [StoredRun.from_json(r, legacy) for r in entry.get("runs", []) or []]
    return [r for r in runs if r.blocks]


def same_method(history: Sequence[StoredRun], method: str) -> tuple[list[StoredRun], str]:
    """The runs timed like *method* (runs of unknown method count as such), and, when none is, why the
    latency is not compared."""
    same = [r for r in history if r.method in (None, method)]
    if same or not history:
        return same, ""
    theirs = sorted({str(r.method) for r in history})
    return same, (f"latency not compared: the baseline's runs were timed by {', '.join(theirs)}, this run by "
                  f"{method} (re-record with --trt-update-baselines)")


def _log_location(blocks: Sequence[BlockSummary]) -> float:
    logs = sorted(math.log(b.median_ms) for b in blocks if b.median_ms > 0)
    n = len(logs)
    return (logs[(n - 1) // 2] + logs[n // 2]) / 2 if n else math.nan


def machine_variance(history: Sequence[StoredRun], prior_cv: float = PRIOR_BETWEEN_MACHINE_CV) -> tuple[float, int]:
    """(between-machine variance of the log latency, number of machines seen) from *history*.

    Machine means are the means of their runs' median log block medians; their spread, less what
    the within-machine run spread explains, is shrunk toward ``prior_cv ** 2`` with
    :data:`PRIOR_MACHINE_DF` pseudo machines, and never taken below the data's own estimate.
    Runs of unknown machine (schema 2) count as one machine.
    """
    groups: dict[str | None, list[float]] = {}
    for run in history:
        groups.setdefault(run.machine, []).append(_log_location(run.blocks))
    means = [math.fsum(v) / len(v) for v in groups.values()]
    g = len(means)
    prior = prior_cv**2
    if g < 2:
        return prior, g
    grand = math.fsum(means) / g
    s2_means = math.fsum((m - grand) ** 2 for m in means) / (g - 1)
    within_df = sum(len(v) - 1 for v in groups.values())
    within = math.fsum((x - math.fsum(v) / len(v)) ** 2 for v in groups.values() for x in v) / within_df if within_df else 0.0
    inv_k = math.fsum(1.0 / len(v) for v in groups.values()) / g
    s2 = max(0.0, s2_means - within * inv_k)
    return max((PRIOR_MACHINE_DF * prior + (g - 1) * s2) / (PRIOR_MACHINE_DF + g - 1), s2), g


def decide_machine_aware(
    history: Sequence[StoredRun], current: Sequence[BlockSummary], machine: str, tolerance: float,
    *, launch_bound: bool = False,
) -> tuple[LatencyDecision, str]:
    """The rule's decision for *current* measured on *machine*, and a note on which history it used."""
    prior_cv, prior_df = PRIOR_BETWEEN_RUN_CV, PRIOR_DF
    if launch_bound:
        prior_cv, prior_df = max(prior_cv, LAUNCH_BOUND_PRIOR_CV), LAUNCH_BOUND_PRIOR_DF
    same = [r for r in history if r.machine == machine]
    if same:
        decision = decide_latency([r.blocks for r in same], current, tolerance, prior_between_cv=prior_cv,
                                  prior_df=prior_df)
        return decision, f"vs {len(same)} run(s) of this machine"
    var_m, machines = machine_variance(history, LAUNCH_BOUND_MACHINE_CV if launch_bound else PRIOR_BETWEEN_MACHINE_CV)
    decision = decide_latency([r.blocks for r in history], current, tolerance, prior_between_cv=prior_cv,
                              prior_df=prior_df, machine_var=var_m * (1.0 + 1.0 / max(machines, 1)))
    return decision, (f"first run on this machine: vs {len(history)} run(s) of {machines} other machine(s), "
                      f"between-machine sigma {100 * math.sqrt(var_m):.1f} %")


def launch_bound_unarmed(history: Sequence[StoredRun], machine: str, launch_bound: bool) -> str:
    """Why the gate is only advisory for this launch-bound case on this machine, or ``""``: fewer than
    :data:`LAUNCH_BOUND_MIN_RUNS` stored runs of *machine* (its own spread is then unmeasured)."""
    if not launch_bound:
        return ""
    same = sum(1 for r in history if r.machine == machine)
    if same >= LAUNCH_BOUND_MIN_RUNS:
        return ""
    return (f"a launch-bound case with {same} stored run(s) of this machine; it fails from "
            f"{LAUNCH_BOUND_MIN_RUNS} (--trt-update-baselines)")


def advisory_reason(decision: LatencyDecision, where: str = "CPU") -> str:
    """``"latency +48 % (advisory on CPU): <rule's reason>"`` for a would-be regression (or speedup)."""
    return f"latency {100 * (decision.ratio - 1):+.0f} % (advisory on {where}): {decision.reason}"
