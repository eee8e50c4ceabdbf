"""The bring-your-own-model corpus end to end (``tests/corpus_models.py``): 8 ONNX files of different
vintages and 3 PyTorch / transformers models no shipped suite uses, on ONNX Runtime (CPU: fp32 and
int8 run; fp16 is skipped with its reason) and TensorRT-RTX (fp32, fp16 and int8 engines built; none
can execute without a GPU). Every case must be pass/new/built, or skipped with a reason."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed: pip install tensorrt-rtx")

import corpus_models as C  # noqa: E402

OK = {"pass", "new", "built"}


def _pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--trt-gpu=cpu", "--trt-backend=onnxruntime,tensorrt",
         "--trt-warmup-s=0.01", "--trt-blocks=3", "--trt-min-block-s=0.005", "-p", "no:cacheprovider", "-q"],
        cwd=directory, capture_output=True, text=True, timeout=900,
    )


def test_corpus_runs_on_onnxruntime_and_builds_with_tensorrt_rtx(tmp_path: Path) -> None:
    C.write_suites(tmp_path, ["fp32", "fp16", "int8"])
    proc = _pytest(tmp_path, "--trt-report=report.csv")
    assert proc.returncode == 0, proc.stdout[-4000:]
    with open(tmp_path / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    suites = {r["suite"] for r in rows}
    assert len(suites) == len(C.ONNX_MODELS) + 3
    for row in rows:
        ok = row["status"] in OK or (row["status"] == "skipped" and row["reason"])
        assert ok, (row["case_id"], row["status"], row["reason"])
        assert len(row["reason"]) <= 500
        if row["backend"] == "onnxruntime" and row["precision"] == "fp16":
            assert row["status"] == "skipped" and "needs the CUDA provider" in row["reason"]
            assert "reference timing" not in row["reason"]  # a skipped case never used the reference's time
        elif row["backend"] == "onnxruntime":
            assert row["status"] == "new", (row["case_id"], row["reason"])
        else:
            assert row["status"] == "built" and row["precision"] in row["engine_precisions"], row["case_id"]
    normalized = {r["suite"]: r["model_normalized"] for r in rows if r["precision"] == "int8"}
    assert "opset 7 -> 13" in normalized["test_squeezenet_ir3"]
    assert normalized["test_external_data_mlp"] == "external data read in"
    head = next(r for r in rows if r["case_id"] == "test_squeezenet_ir3[onnxruntime-fp32-b1]")
    assert float(head["top1_agreement"]) == 1.0  # the [1, 10, 1, 1] head is treated as a classifier

    again = _pytest(tmp_path, "test_corpus_onnx.py", "-k", "squeezenet or external")
    assert again.returncode == 0 and "engines: 0 built (0.0 s), 10 cache hit(s)" in again.stdout, again.stdout[-3000:]
