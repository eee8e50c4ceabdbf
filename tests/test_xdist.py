"""pytest-xdist: ``-n 2`` gives the same report as a serial run, and each engine is built once."""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xdist")
pytest.importorskip("torch")

from pytest_trtbench.cache import EngineCache  # noqa: E402
from pytest_trtbench.workers import pin_worker, worker_index  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SUITES = ["suites/test_mlp.py", "suites/test_cnn.py"]


def run(tmp_path: Path, name: str, *extra: str) -> tuple[str, dict[str, dict[str, str]]]:
    report = tmp_path / f"{name}.csv"
    proc = subprocess.run(
        # own (empty) baselines: the report must not depend on latency noise against the committed ones
        [sys.executable, "-m", "pytest", *SUITES, "--trt-gpu=cpu", f"--trt-cache-dir={tmp_path / name}",
         f"--trt-baseline-dir={tmp_path / 'baselines'}", "--trt-backend=onnxruntime",
         f"--trt-report={report}", "-p", "no:cacheprovider", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open(report, newline="") as f:
        return proc.stdout, {row["case_id"]: row for row in csv.DictReader(f)}


def test_two_workers_match_the_serial_report_and_build_each_engine_once(tmp_path: Path) -> None:
    serial_out, serial = run(tmp_path, "serial")
    xdist_out, parallel = run(tmp_path, "xdist", "-n", "2")
    assert "2 workers" in xdist_out or "created: 2/2 workers" in xdist_out
    assert sorted(parallel) == sorted(serial) and len(serial) == 12
    columns = ("status", "reason", "engine_key", "engine_precisions", "reference_backend", "shapes")
    def same(row: dict[str, str]) -> dict[str, str]:
        # a reference timed on a busy 2-core VM may be reported unstable in one run and not the other
        return {c: re.sub(r"; reference timing unstable.*", "", row[c]) for c in columns}

    for case_id, row in serial.items():
        assert same(parallel[case_id]) == same(row), case_id
    for out in (serial_out, xdist_out):
        assert "engines: 4 built" in out  # mlp and cnn, each in fp32 and int8 (fp16 skips on CPU)
    # the cache's own build log: every build by every process, not deduplicated
    for name in ("serial", "xdist"):
        log = EngineCache(tmp_path / name, "cpu").build_log()
        assert len(log) == 4, [(r["label"], r["pid"]) for r in log]
        assert {r["key"] for r in log} == {row["engine_key"] for row in serial.values() if row["engine_key"]}


def test_workers_are_pinned_round_robin(monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_index({"workerid": "gw11"}) == 11
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # restored (to unset) after the test
    assert pin_worker({"workerid": "gw3"}, ["0", "1", "2"]) == "0"
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert pin_worker({"workerid": "gw1"}, ["4"]) is None  # one GPU: nothing to pin
