"""One-off check: do engines cached by an older checkout stay cache hits for this one?

    python benchmarks/cache_key_compat.py --old-commit 8e778e8

Runs a small ONNX suite (tests/test_precision.py's MLP, batch 1 and 4, fp32) in a fresh project directory
without an ini file, first with the old commit's package (``git archive`` into a temp dir, first on
``PYTHONPATH``), then with this working tree, sharing one engine cache, and prints each case's
``engine_cache`` column (``hit`` = the old entry was reused, ``built`` = a new key). Three scenarios:

1. ONNX Runtime, no build options: an unchanged suite must keep its key (hit).
2. TensorRT-RTX (builds on the CPU, cannot execute: ``built`` status) with ``--trt-build-option opt_level=1``
   and ``workspace_mib=64``: options the backend declares keep their key (hit).
3. Both backends with ``opt_level=1`` after an old run of ONNX Runtime *without* it: the old code keyed ONNX
   Runtime entries by every option (a new key, a rebuild: the control run shows it); this one keys them only by
   what ORT declares (hit).

Exits 1 if an expected hit is not one.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SUITE = """
from pytest_trtbench import Input, Suite

test_mlp = Suite(model="mlp.onnx", inputs=[Input("x", ("batch", 16))], batch_sizes=[1, 4])
"""


def run(tree: Path, project: Path, report: str, *args: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("TRTBENCH_CACHE_DIR", None)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--trt-gpu=cpu", "--trt-blocks=1",
           "--trt-warmup-s=0.01", "--trt-min-block-s=0.005", f"--trt-report={report}", *args]
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}")
    with open(project / report, newline="") as f:
        return {row["case_id"]: row["engine_cache"] for row in csv.DictReader(f)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-commit", required=True)
    parser.add_argument("--repo", type=Path, default=ROOT, help="the git repository holding --old-commit")
    args = parser.parse_args()
    from test_precision import write_mlp

    work = Path(tempfile.mkdtemp(prefix="trtbench-keycompat-"))
    old = work / "old"
    old.mkdir()
    archive = subprocess.run(["git", "archive", args.old_commit], cwd=args.repo, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    failures = 0
    scenarios = [
        ("onnxruntime, no options", ["--trt-backend=onnxruntime"], ["--trt-backend=onnxruntime"], {"onnxruntime"}),
        ("tensorrt-rtx, opt_level=1 workspace_mib=64",
         ["--trt-backend=tensorrt", "--trt-build-option", "opt_level=1", "--trt-build-option", "workspace_mib=64"],
         ["--trt-backend=tensorrt", "--trt-build-option", "opt_level=1", "--trt-build-option", "workspace_mib=64"],
         {"tensorrt"}),
        ("old: onnxruntime without options; new: both backends with opt_level=1",
         ["--trt-backend=onnxruntime"], ["--trt-backend=onnxruntime,tensorrt", "--trt-build-option", "opt_level=1"],
         {"onnxruntime"}),
    ]
    # control: the old code itself rebuilt ONNX Runtime entries for a TensorRT-only option (the fix is real)
    project = work / "control"
    project.mkdir()
    write_mlp(project / "mlp.onnx")
    (project / "test_mlp.py").write_text(SUITE)
    run(old, project, "old.csv", "--trt-backend=onnxruntime")
    control = run(old, project, "old2.csv", "--trt-backend=onnxruntime,tensorrt", "--trt-build-option", "opt_level=1")
    print(f"control, old code twice (onnxruntime; then both backends with opt_level=1): {control}")
    for i, (label, old_args, new_args, must_hit) in enumerate(scenarios):
        project = work / f"project{i}"
        project.mkdir()
        write_mlp(project / "mlp.onnx")
        (project / "test_mlp.py").write_text(SUITE)
        before = run(old, project, "old.csv", *old_args)
        after = run(ROOT, project, "new.csv", *new_args)
        print(f"\n{label}\n  old {args.old_commit}: {before}\n  this tree: {after}")
        for case, cache in after.items():
            backend = case.split("[")[1].split("-")[0]
            if backend in must_hit and cache != "hit":
                print(f"  NOT A HIT: {case} ({cache})")
                failures += 1
    print(f"\n{failures} expected hit(s) missed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
