"""Shared pieces of the bad-input matrix (tests/test_bad_inputs*.py): the tiny suite, a primed engine
cache and baseline, one run of a kind, and the invariants every run must keep.

Every kind of bad input is run the way a user would meet it (pytester in-process, or a subprocess where
signals, capabilities, xdist or a second process are involved) and must end with the expected exit
code and a visible message naming what to fix, with no traceback, no silent pass and no partial file.
With ``TRTBENCH_MATRIX_OUT=path.jsonl`` each run appends one JSON line (kind, mode, rc, status,
message) for the report table.
"""
from __future__ import annotations

import csv
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

# pytester's in-process runs drop every module they imported; what the inner runs import lazily (our own
# modules, hypothesis through its pytest plugin: both assertion-rewritten on import) is imported once here
# so each run doesn't pay seconds to compile it again.
for _name in ("hypothesis", "pytest_trtbench.runner", "pytest_trtbench.report", "pytest_trtbench.session_outputs",
              "pytest_trtbench.progress", "pytest_trtbench.backends.onnxruntime", "pytest_trtbench.quantize",
              "pytest_trtbench.convert", "pytest_trtbench.benchmark_json", "pytest_trtbench.workers"):
    try:
        importlib.import_module(_name)
    except ImportError:
        pass

REPO = Path(__file__).resolve().parents[1]
CASE = "test_tiny[onnxruntime-fp32-b2]"
FAST = ["--trt-gpu=cpu", "--trt-warmup-s=0.001", "--trt-blocks=2", "--trt-min-block-iters=2",
        "--trt-min-block-s=0.001", "--trt-energy-s=0", "-p", "no:cacheprovider"]
MODES = ("W-error", "W-default")

SUITE = '''
from torch import nn
from pytest_trtbench import Input, Suite, Tolerance

def mlp():
    return nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))

test_tiny = Suite(model=mlp, inputs=[Input("x", shape=("batch", 16))], batch_sizes=[2], output_names=["logits"])
'''


def suite_with(extra: str = "", *, head: str = "") -> str:
    """The tiny suite, plus *extra* module code (a second suite, a helper model) after it."""
    return head + SUITE + extra


@dataclass
class Primed:
    """A cache holding the tiny suite's engine and a baseline recorded for it (built once per session)."""

    cache: Path
    baseline: Path
    engine_dir: Path


def prime(directory: Path) -> Primed:
    (directory / "test_tiny.py").write_text(SUITE)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "test_tiny.py", *FAST, "--trt-update-baselines", "-W", "error",
         f"--trt-cache-dir={directory / 'cache'}"],
        cwd=directory, capture_output=True, text=True, timeout=600, env=env_with_repo(),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    (engine_dir,) = (directory / "cache" / "cpu" / "onnxruntime").glob("[0-9a-f]*")
    return Primed(directory / "cache", directory / "baselines" / "cpu" / "test_tiny.json", engine_dir)


def env_with_repo(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.update(extra)
    return env


class Env:
    """One kind's sandbox: the pytester directory, with the primed cache and baseline at hand."""

    def __init__(self, pytester: pytest.Pytester, primed: Primed) -> None:
        self.p = pytester
        self.root = pytester.path
        self.primed = primed
        self.cache = primed.cache  # shared, never damaged; kinds that damage one call own_cache()
        self.report = self.root / "r.csv"

    def suite(self, source: str = SUITE, name: str = "test_tiny") -> None:
        (self.root / f"{name}.py").write_text(source)

    def own_cache(self) -> Path:
        """A private copy of the primed cache, safe to damage; returns the engine entry's directory."""
        self.cache = self.root / "cache"
        shutil.copytree(self.primed.cache, self.cache)
        return self.cache / "cpu" / "onnxruntime" / self.primed.engine_dir.name

    def baseline(self) -> Path:
        """A private copy of the primed baseline file under baselines/cpu/."""
        target = self.root / "baselines" / "cpu" / "test_tiny.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.primed.baseline, target)
        return target

    def edit_baseline(self, edit: Callable[[dict[str, Any]], None]) -> Path:
        path = self.baseline()
        data = json.loads(path.read_text())
        edit(data["cases"]["onnxruntime-fp32-b2"])
        path.write_text(json.dumps(data))
        return path

    def args(self, mode: str) -> list[str]:
        warn = ["-W", "error"] if mode == "W-error" else []
        return [*FAST, f"--trt-cache-dir={self.cache}", f"--trt-report={self.report}", *warn]


@dataclass
class Outcome:
    rc: int
    output: str
    status: str
    """The tiny case's status in the CSV report ('' when it has no row or no report was written)."""


def run_inprocess(env: Env, mode: str, args: Sequence[str]) -> Outcome:
    result = env.p.runpytest(*env.args(mode), *args)
    output = result.stdout.str() + "\n" + result.stderr.str()
    return Outcome(int(result.ret), output, report_status(env.report))


def run_subprocess(env: Env, mode: str, args: Sequence[str], *, prefix: Sequence[str] = (),
                   timeout: float = 600, **extra_env: str) -> Outcome:
    proc = subprocess.run([*prefix, sys.executable, "-m", "pytest", *env.args(mode), *args], cwd=env.root,
                          capture_output=True, text=True, timeout=timeout, env=env_with_repo(**extra_env))
    return Outcome(proc.returncode, proc.stdout + "\n" + proc.stderr, report_status(env.report))


def report_status(path: Path) -> str:
    if not path.is_file():
        return ""
    with open(path, newline="") as f:
        rows = {row["case_id"]: row for row in csv.DictReader(f)}
    return rows.get(CASE, {}).get("status", "")


def check_invariants(env: Env, out: Outcome) -> None:
    """No traceback or INTERNALERROR shown; no partial baseline, report or cache entry left behind."""
    from pytest_trtbench.cache import EngineCache

    for bad in ("Traceback (most recent call last)", "INTERNALERROR"):
        assert bad not in out.output, out.output[-4000:]
    for path in (env.root / "baselines").rglob("*") if (env.root / "baselines").is_dir() else []:
        assert not path.name.endswith(".tmp"), f"temporary file left: {path}"
    if env.report.is_file():
        with open(env.report, newline="") as f:
            rows = list(csv.reader(f))
        assert rows and rows[0][0] == "case_id" and all(len(r) == len(rows[0]) for r in rows), "partial report"
    if out.rc in (0, 1) and env.cache.is_dir():
        cache = EngineCache(env.cache, "cpu")
        for entry in (env.cache / "cpu").glob("*/*"):
            if entry.parent.name == "locks" or entry.name.startswith(".") or not entry.is_dir():
                continue
            meta, why = cache._read_meta(entry)
            assert meta is not None, f"cache entry {entry} left unusable after the run: {why}"


def matches(line: str, pattern: str) -> bool:
    """*pattern* is literal text where ``*`` matches anything (``[[]`` / ``[]]`` also stand for brackets)."""
    parts = pattern.replace("[[]", "[").replace("[]]", "]").split("*")
    return re.fullmatch(".*".join(re.escape(p) for p in parts), line) is not None


def expect(out: Outcome, rc: int, lines: Sequence[str], status: str | None) -> None:
    assert out.rc == rc, f"exit code {out.rc}, expected {rc}\n{out.output[-4000:]}"
    text = out.output.splitlines()
    for pattern in lines:
        assert any(matches(line, pattern) for line in text), f"no line matches {pattern!r}\n{out.output[-4000:]}"
    if status is not None:
        assert out.status == status, f"report status {out.status!r}, expected {status!r}\n{out.output[-3000:]}"


def message_line(out: Outcome, lines: Sequence[str]) -> str:
    """The line the user sees that the kind's first pattern matched (for the report table)."""
    for pattern in lines:
        for line in out.output.splitlines():
            if matches(line, pattern):
                return line.strip()[:220]
    return ""


def record(kind: str, mode: str, out: Outcome, lines: Sequence[str]) -> None:
    target = os.environ.get("TRTBENCH_MATRIX_OUT")
    if not target:
        return
    row = {"kind": kind, "mode": mode, "rc": out.rc, "status": out.status, "message": message_line(out, lines),
           "traceback": "Traceback (most recent call last)" in out.output or "INTERNALERROR" in out.output}
    with open(target, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
