"""Collection time of 10 000 trtbench cases vs a plain ``pytest.mark.parametrize`` of 10 000.

    python benchmarks/collection_time.py [--repeat 7] [--cases 10000] [--tree NAME=PATH ...]

Writes two test files into a temporary directory: a ``Suite`` whose sweep expands to ``--cases`` cases
(100 batch sizes x N sequence lengths, one backend, one precision: one shape profile) and a plain test
function with two stacked ``parametrize`` marks of the same size. Times ``pytest --collect-only -q`` on
each, in fresh interpreters, interleaved so machine drift hits both alike, and prints medians. Nothing
is built or run: collection only (the suite's model is a factory that collection never calls).
``--trt-gpu=cpu`` and ``--trt-backend=onnxruntime``: with ``auto`` the plugin detects the GPU once per session
(through torch, seconds on a busy machine), a constant that would hide the per-case cost.

``--tree NAME=PATH`` (repeatable) puts PATH first on ``PYTHONPATH`` for that run, to compare checkouts
(e.g. ``--tree before=/tmp/base --tree after=.``); runs of all trees are interleaved too. Default: this
checkout.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUITE = """
from pytest_trtbench import Input, Suite

test_sweep = Suite(
    model=lambda: None,  # a factory, never called during collection
    inputs=[Input("ids", ("batch", "seq"), "int64", (0, 100))],
    batch_sizes=list(range(1, 101)),
    dims={{"seq": list(range(1, {seqs} + 1))}},
    precisions=["fp32"],
)
"""
PLAIN = """
import pytest


@pytest.mark.parametrize("batch", range(1, 101))
@pytest.mark.parametrize("seq", range(1, {seqs} + 1))
def test_sweep(batch, seq):
    pass
"""


def _collect(target: str, cwd: Path, pythonpath: str) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": pythonpath + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
            "--trt-backend=onnxruntime", "--trt-gpu=cpu", target]
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-300:]
    if proc.returncode != 0:
        raise SystemExit(f"collecting {target} failed (exit {proc.returncode}): {tail}")
    return elapsed, tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cases", type=int, default=10_000, help="a multiple of 100")
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH: a checkout to measure")
    opts = parser.parse_args()
    trees = dict(t.split("=", 1) for t in opts.tree) or {"this": str(ROOT)}
    seqs = opts.cases // 100
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "test_suite.py").write_text(SUITE.format(seqs=seqs))
        (cwd / "test_plain.py").write_text(PLAIN.format(seqs=seqs))
        times: dict[tuple[str, str], list[float]] = {}
        tails: dict[tuple[str, str], str] = {}
        for _ in range(opts.repeat):
            for name, path in trees.items():
                for target in ("test_suite.py", "test_plain.py"):
                    elapsed, tails[name, target] = _collect(target, cwd, str(Path(path).resolve()))
                    times.setdefault((name, target), []).append(elapsed)
    print(f"pytest --collect-only of {seqs * 100} cases, median of {opts.repeat} fresh processes "
          "(whole process: interpreter start, plugin import and collection)")
    for name in trees:
        suite = statistics.median(times[name, "test_suite.py"])
        plain = statistics.median(times[name, "test_plain.py"])
        print(f"  {name:10s} trtbench Suite {suite:6.2f} s   plain parametrize {plain:6.2f} s   "
              f"ratio {suite / plain:4.2f}   ({tails[name, 'test_suite.py']} / {tails[name, 'test_plain.py']})")
        print(f"  {'':10s} all suite runs: {', '.join(f'{t:.2f}' for t in times[name, 'test_suite.py'])}")
        print(f"  {'':10s} all plain runs: {', '.join(f'{t:.2f}' for t in times[name, 'test_plain.py'])}")


if __name__ == "__main__":
    main()
