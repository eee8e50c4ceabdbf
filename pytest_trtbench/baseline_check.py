"""Is a baseline entry something we can compare with? Checked when a baseline file is loaded, so a
hand-edited or damaged entry is one message naming the file, the case and the field, never a
``TypeError`` from deep inside the comparison or the latency rule."""
from __future__ import annotations

import math
from typing import Any, Mapping

from pytest_trtbench.baseline import BaselineError
from pytest_trtbench.layer_report import stored_profile_problem

REFRESH = "fix the entry (git diff / git checkout the file) or re-record it with --trt-update-baselines"


def _num(value: Any, *, positive: bool = False) -> bool:
    """A JSON number (``null`` allowed: NaN is stored as null), > 0 when *positive*."""
    if value is None:
        return not positive
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value > 0 and math.isfinite(value) if positive else True


def _object(value: Any) -> bool:
    return isinstance(value, dict)


def _accuracy_problem(entry: Mapping[str, Any]) -> str:
    acc = entry.get("accuracy", {})
    if not _object(acc) or not _object(acc.get("outputs", {})):
        return "'accuracy.outputs' must be an object of per-output metrics"
    for name, metrics in acc.get("outputs", {}).items():
        if not _object(metrics):
            return f"accuracy.outputs[{name!r}] must be an object"
        for key in ("max_abs_err", "mean_abs_err", "cosine_similarity"):
            if not _num(metrics.get(key)):
                return f"accuracy.outputs[{name!r}].{key} is {metrics.get(key)!r}, not a number"
    return ""


def _latency_problem(entry: Mapping[str, Any]) -> str:
    lat = entry.get("latency") or {}
    if not _object(lat):
        return "'latency' must be an object"
    if not _num(lat.get("median_ms")):
        return f"latency.median_ms is {lat.get('median_ms')!r}, not a number"
    runs = lat.get("runs", [])
    # a run is a list of blocks (schema 2) or an object whose "blocks" is one (schema 3: with its machine)
    blocks_of = [run.get("blocks") if _object(run) else run for run in runs] if isinstance(runs, list) else None
    if blocks_of is None or not all(isinstance(blocks, list) for blocks in blocks_of):
        return "latency.runs must be a list of runs, each a list of blocks or an object with 'blocks'"
    for i, run in enumerate(blocks_of):
        for j, block in enumerate(run):
            where = f"latency.runs[{i}][{j}]"
            if not _object(block):
                return f"{where} must be an object with median_ms, iqr_ms, n"
            if not _num(block.get("median_ms"), positive=True):
                return f"{where}.median_ms is {block.get('median_ms')!r}: block medians must be numbers > 0"
            if not _num(block.get("iqr_ms")) or block.get("iqr_ms") is None or block["iqr_ms"] < 0:
                return f"{where}.iqr_ms is {block.get('iqr_ms')!r}: must be a number >= 0"
            if not isinstance(block.get("n"), int) or isinstance(block.get("n"), bool) or block["n"] < 1:
                return f"{where}.n is {block.get('n')!r}: must be a positive integer"
    return ""


def _golden_problem(entry: Mapping[str, Any]) -> str:
    golden = entry.get("golden", {})
    outputs = golden.get("outputs", {}) if _object(golden) else None
    if outputs is None or not _object(outputs):
        return "'golden.outputs' must be an object of fingerprints"
    for name, fp in outputs.items():
        where = f"golden.outputs[{name!r}]"
        if not _object(fp):
            return f"{where} must be an object"
        shape, indices, values = fp.get("shape"), fp.get("indices"), fp.get("values")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            return f"{where}.shape is {shape!r}, not a list of sizes"
        if not isinstance(indices, list) or not isinstance(values, list) or len(indices) != len(values):
            return f"{where}: indices and values must be lists of the same length"
        size = math.prod(shape)
        bad = [i for i in indices if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < size]
        if bad:
            return f"{where}.indices {bad[:3]} lie outside an output of {size} elements (shape {shape})"
        if not all(_num(v) and v is not None for v in values):
            return f"{where}.values must be numbers"
    return ""


def _task_problem(entry: Mapping[str, Any]) -> str:
    task = entry.get("task_metric")
    if task is None:
        return ""
    if not _object(task) or not isinstance(task.get("name"), str):
        return "'task_metric' must be an object with the metric's 'name'"
    for key in ("reference", "engine"):
        if not _num(task.get(key)) or task.get(key) is None:
            return f"task_metric.{key} is {task.get(key)!r}, not a number"
    return ""


def entry_problem(entry: Any) -> str:
    """Why *entry* can't be used ("" when it can)."""
    if not _object(entry):
        return f"the entry is {type(entry).__name__}, not an object"
    env = entry.get("environment", {})
    if not _object(env) or not isinstance(env.get("device_name", ""), str):
        return "'environment.device_name' must be a string"
    for check in (_accuracy_problem, _latency_problem, _golden_problem, _task_problem, stored_profile_problem):
        problem = check(entry)
        if problem:
            return problem
    return ""


def usable_entry(
    cases: Mapping[str, Any], case_id: str, path: Any, *, gpu: str, device_name: str, updating: bool
) -> dict[str, Any] | None:
    """The case's entry if it can be compared with; a damaged entry or one from another device profile
    is a :class:`BaselineError` naming the file, case and field, except while re-recording it
    (``--trt-update-baselines`` replaces it: then it is treated as absent)."""
    entry = cases.get(case_id)
    if entry is None:
        return None
    problem = entry_problem(entry)
    if problem:
        if updating:
            return None
        raise BaselineError(f"{path}: case {case_id!r}: {problem}; {REFRESH}")
    if not updating:
        check_device(entry, path, case_id, gpu, device_name)
    return dict(entry)


def recorded_profile(entry: Mapping[str, Any]) -> str:
    """The ``--trt-gpu`` profile an entry was recorded under: ``cpu`` when its device was the CPU."""
    from pytest_trtbench.device import short_gpu_name

    env = entry.get("environment") or {}
    name = str(env.get("device_name") or "")
    if not name or name == env.get("cpu_model"):
        return "cpu"
    try:
        return short_gpu_name(name)
    except ValueError:
        return name


def check_device(entry: Mapping[str, Any], path: Any, case_id: str, gpu: str, device_name: str) -> None:
    """Refuse an entry recorded on another device profile (an ``h200`` file copied into ``baselines/cpu/``)."""
    name = (entry.get("environment") or {}).get("device_name")
    recorded = recorded_profile(entry)
    if name != device_name and recorded != gpu:
        raise BaselineError(
            f"{path}: case {case_id!r} was recorded on {name!r} (profile {recorded}), but this run is "
            f"--trt-gpu={gpu} ({device_name!r}); use the baselines of this profile (baselines/{gpu}/) "
            f"or re-record with --trt-gpu={gpu} --trt-update-baselines"
        )
