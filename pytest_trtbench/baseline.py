"""Baselines: one JSON file per suite under ``baselines/<gpu>/``, reviewed and committed like code.

Format: ``{"schema_version": N, "suite": name, "cases": {param_id: entry}}`` with sorted keys and
one entry per case, so a refresh diff shows exactly the cases that changed. Loading is plain JSON
(never pickle); older schema versions are migrated on load; each entry is checked before use
(:mod:`pytest_trtbench.baseline_check`), so a damaged one is refused naming the file, case and field.
Writes are atomic and touch only the cases that ran; the read-modify-write of an update holds a file
lock (:func:`lock_path`), so concurrent runs lose no entries.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pytest_trtbench.gate import StoredRun, stored_runs
from pytest_trtbench.regression import update_history

if TYPE_CHECKING:
    from pytest_trtbench.outcome import CaseOutcome, LatencySummary

SCHEMA_VERSION = 4


class BaselineError(Exception):
    """A baseline file is unreadable or malformed; the message names the file and the fix."""


def baseline_path(root: Path, gpu: str, suite: str) -> Path:
    return Path(root) / gpu / f"{suite}.json"


def _migrate(data: dict[str, Any], path: Path) -> dict[str, Any]:
    version = data.get("schema_version")
    if version == 1:
        # v1 stored one latency summary per case; v2 keeps a history of runs of block summaries
        for entry in data.get("cases", {}).values():
            lat = entry.get("latency") if isinstance(entry, dict) else None
            if isinstance(lat, dict) and "runs" not in lat:
                blocks = lat.get("blocks") or []
                lat["runs"] = [blocks] if blocks else []
        data["schema_version"] = 2
        version = 2
    if version == 2:
        # v3 stores each run as an object: its blocks, the machine hash and GPU clock it ran at
        # (pytest_trtbench.gate.StoredRun); v2 runs were bare block lists of an unknown machine
        for entry in data.get("cases", {}).values():
            lat = entry.get("latency") if isinstance(entry, dict) else None
            if isinstance(lat, dict) and isinstance(lat.get("runs"), list):
                lat["runs"] = [{"blocks": run, "machine": None, "gpu_clock_mhz": None, "launch_bound": False}
                               if isinstance(run, list) else run for run in lat["runs"]]
        data["schema_version"] = 3
        version = 3
    if version == 3:
        # v4 adds optional per-entry data, nothing else changed: "task_metric" (Suite(data=...): name, reference,
        # engine, samples) and "layers" (a compact per-layer profile, pytest_trtbench.layer_profile); v3 has neither
        data["schema_version"] = 4
        version = 4
    if version != SCHEMA_VERSION:
        raise BaselineError(
            f"{path}: schema_version {version!r} is not one this plugin reads (it writes {SCHEMA_VERSION}); "
            "upgrade pytest-trtbench or re-record with --trt-update-baselines"
        )
    return data


def load_baselines(path: Path) -> dict[str, Any]:
    """The ``cases`` mapping of one baseline file; empty if the file does not exist."""
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text, parse_constant=_reject_constant)
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read baseline file: {exc}") from None
    except ValueError as exc:
        raise BaselineError(
            f"{path}: malformed baseline JSON ({exc}). Fix the file (git diff / git checkout it), "
            "or delete it and re-record with --trt-update-baselines"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), dict):
        raise BaselineError(f"{path}: not a pytest-trtbench baseline (expected an object with 'schema_version' and 'cases')")
    return _migrate(data, path)["cases"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _clean(value: Any) -> Any:
    """Make a structure strict JSON: NaN/Inf become null, tuples lists, numpy scalars floats."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float) or hasattr(value, "__float__"):
        f = float(value)
        return f if math.isfinite(f) else None
    return str(value)


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(_clean(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write *text* to *path* via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_entry(
    outcome: CaseOutcome, *, golden: Mapping[str, Any] | None, old: Mapping[str, Any] | None, history: int,
    environment: Mapping[str, Any],
) -> dict[str, Any]:
    """The baseline entry for a measured case: its accuracy metrics, latency summary with the block history
    (the old entry's runs, kept only if recorded on the same device), golden fingerprints (*golden*, or the
    old entry's where no reference ran) and the environment."""
    old = old or {}
    if outcome.latency is None:
        raise ValueError(f"{outcome.case.case_id}: no latency measured, nothing to record")
    runs = _stored_history(outcome.latency, old, outcome.case.device_name, environment, history)
    return {
        "accuracy": {"outputs": {c.name: c.metrics() for c in outcome.comparisons}},
        "latency": {**outcome.latency.stats(), "runs": [r.to_json() for r in runs]},
        "golden": {"outputs": golden if golden is not None else old.get("golden", {}).get("outputs", {})},
        "reference": {"backend": outcome.reference_backend, "latency_ms_median": outcome.reference_latency_ms},
        "engine": {"precisions": outcome.engine.precisions_label(), "build_s": outcome.engine.build_s},
        "environment": dict(environment),
        "shapes": outcome.case.shapes,
        **({"task_metric": outcome.task.stored()} if outcome.task is not None else {}),
        **({"layers": outcome.layers.profile.to_json()} if outcome.layers and outcome.layers.profile else {}),
    }


def lock_path(path: Path) -> Path:
    """The lock guarding *path*'s read-modify-write: in the temp directory, keyed by the absolute path,
    so nothing appears next to baselines that are committed like code."""
    import hashlib

    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:24]
    folder = Path(tempfile.gettempdir()) / "pytest-trtbench-locks"
    folder.mkdir(exist_ok=True)
    return folder / f"baseline-{digest}.lock"


def _stored_history(
    latency: LatencySummary, old: Mapping[str, Any], device_name: str, environment: Mapping[str, Any], keep: int
) -> list[StoredRun]:
    """The old entry's runs with this one appended (its machine hash, GPU clock, launch-bound flag, timing
    method), the last *keep* kept. Runs of other machines with the same GPU model stay: they measure the
    between-machine spread (:mod:`pytest_trtbench.gate`); a different GPU model or timing method starts over."""
    same_gpu = old.get("environment", {}).get("device_name") == device_name
    runs = [r for r in stored_runs(old.get("latency")) if r.method in (None, latency.method)] if same_gpu else []
    update_history([list(r.blocks) for r in runs], list(latency.blocks), 1)  # validates the new run
    clock = latency.telemetry.get("gpu_clock_mhz_end")
    machine = environment.get("machine")
    new = StoredRun(tuple(latency.blocks), str(machine) if machine else None,
                    float(clock) if isinstance(clock, (int, float)) else None, bool(latency.launch_bound),
                    latency.method)
    return [*runs, new][-max(1, keep):]


def update_baselines(path: Path, suite: str, entries: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge *entries* (param_id -> entry) into the file, leaving other cases untouched.

    Read, merge and write happen under a file lock: two processes updating one file both keep their cases."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path(path))):
        cases = dict(load_baselines(path))
        cases.update(entries)
        write_atomic(path, dumps({"schema_version": SCHEMA_VERSION, "suite": suite, "cases": cases}))
