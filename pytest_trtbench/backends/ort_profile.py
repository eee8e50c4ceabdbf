"""ONNX Runtime per-node profiles: a separate session with ``SessionOptions.enable_profiling``.

The profiled session loads the engine's file with the engine's providers and optimization level (so node
names and fusions are the timed engine's), runs one warm-up and *runs* profiled inferences, and
``end_profiling()`` returns the JSON trace it wrote (read by :func:`~pytest_trtbench.layer_profile.ort_run_layers`,
then deleted). The timed session is never profiled.

On the CUDA provider a node's ``_kernel_time`` is the host time of its ``Compute()``, which only *launches*
kernels (ONNX Runtime's sequential executor does not synchronize per node; GPU kernel events exist only in
builds with CUDA profiling). So on CUDA the profile runs in a child process with ``CUDA_LAUNCH_BLOCKING=1``:
every launch waits for its kernel, and a node's time is its launch plus its GPU time, nodes serialized
(clock ``launch-blocking``). The child is ``python -m pytest_trtbench.backends.ort_profile JOB.json``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from pytest_trtbench.layer_profile import LayerProfile, LayerProfileError, aggregate, ort_run_layers

if TYPE_CHECKING:
    import numpy as np

CHILD_TIMEOUT_S = 300


def profile_runs(path: Path, providers: Sequence[Any], feeds: Mapping[str, np.ndarray], runs: int,
                 work: Path) -> list[list[tuple[str, str, float]]]:
    """*runs* profiled runs of a fresh session on *path* (after one warm-up run, dropped)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # as the engine loads
    options.log_severity_level = 3
    options.enable_profiling = True
    options.profile_file_prefix = str(work / "trtbench-ort-profile")
    providers = [tuple(p) if isinstance(p, list) else p for p in providers]
    wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
        if session.get_providers()[0] != wanted:  # ORT falls back to the CPU when a provider fails to load
            raise LayerProfileError(f"the profiled session of {path} runs on {session.get_providers()[0]}, not {wanted} "
                                    "(the provider failed to load there)")
        for _ in range(runs + 1):
            session.run(None, dict(feeds))
        trace = Path(session.end_profiling())
    except LayerProfileError:
        raise
    except Exception as exc:  # onnxruntime's Fail / InvalidArgument have no common base
        raise LayerProfileError(f"onnxruntime profiling of {path} failed: {type(exc).__name__}: {str(exc)[:300]}") from None
    try:
        events = json.loads(trace.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LayerProfileError(f"cannot read onnxruntime's profile {trace}: {exc}") from None
    finally:
        trace.unlink(missing_ok=True)
    per_run = ort_run_layers(events)
    if len(per_run) != runs + 1:
        raise LayerProfileError(f"onnxruntime's profile has {len(per_run)} runs, expected {runs + 1}")
    return per_run[1:]


def ort_layer_profile(path: Path, providers: Sequence[Any], feeds: Mapping[str, np.ndarray], runs: int, *,
                      isolated: bool) -> LayerProfile:
    """The per-node profile; *isolated*: in a child process with ``CUDA_LAUNCH_BLOCKING=1`` (CUDA)."""
    main = providers[0] if isinstance(providers[0], str) else providers[0][0]
    source = f"onnxruntime profiler ({main})"
    with tempfile.TemporaryDirectory(prefix="trtbench-ort-profile-") as tmp:
        work = Path(tmp)
        per_run = _child_runs(path, providers, feeds, runs, work) if isolated else \
            profile_runs(path, providers, feeds, runs, work)
    return aggregate(per_run, source, "launch-blocking" if isolated and main == "CUDAExecutionProvider" else "host")


def _child_runs(path: Path, providers: Sequence[Any], feeds: Mapping[str, np.ndarray], runs: int,
                work: Path) -> list[list[tuple[str, str, float]]]:
    import numpy as np

    names = list(feeds)
    np.savez(work / "feeds.npz", *[np.asarray(feeds[n]) for n in names])
    job = {"model": str(path), "providers": [p if isinstance(p, str) else list(p) for p in providers],
           "runs": runs, "names": names, "feeds": str(work / "feeds.npz"), "out": str(work / "runs.json")}
    (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "CUDA_LAUNCH_BLOCKING": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-m", "pytest_trtbench.backends.ort_profile", str(work / "job.json")],
                              env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LayerProfileError(f"the profiling process for {path} ran over {CHILD_TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise LayerProfileError(f"the profiling process for {path} failed (exit {done.returncode}): {tail[0][:300]}")
    data = json.loads((work / "runs.json").read_text(encoding="utf-8"))
    return [[(str(n), str(op), float(us)) for n, op, us in run] for run in data]


def _child(job_file: str) -> int:
    import numpy as np

    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    if "CUDAExecutionProvider" in json.dumps(job["providers"]):
        _load_cuda_libraries()
    with np.load(job["feeds"]) as arrays:
        feeds = {name: arrays[f"arr_{i}"] for i, name in enumerate(job["names"])}
    try:
        per_run = profile_runs(Path(job["model"]), job["providers"], feeds, int(job["runs"]), Path(job["out"]).parent)
    except LayerProfileError as exc:
        print(exc, file=sys.stderr)
        return 1
    Path(job["out"]).write_text(json.dumps(per_run), encoding="utf-8")
    return 0


def _load_cuda_libraries() -> None:
    """Make the CUDA libraries ORT's CUDA provider needs loadable, as in the parent process: importing torch
    loads the ones its wheels ship (the parent imports torch before ORT); without torch, ORT's own
    ``preload_dlls()`` (recent onnxruntime-gpu releases have it) loads them from the nvidia-* packages."""
    try:
        import torch  # noqa: F401
    except ImportError:
        import onnxruntime as ort

        preload = getattr(ort, "preload_dlls", None)
        if preload is not None:
            preload()


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
