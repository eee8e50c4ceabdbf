"""The shipped suites through the TensorRT backend (TensorRT-RTX on this CPU machine): real engine builds.

Without a CUDA device every case is reported ``built``: engines are built, cached and their realized
precision checked, but nothing is executed or compared.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed: pip install tensorrt-rtx")
pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
SUITES = ["suites/test_mlp.py", "suites/test_cnn.py", "suites/test_encoder.py"]


def run_suites(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, str]]]:
    report = tmp_path / "r.csv"
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *SUITES, "--trt-gpu=cpu", "--trt-backend=tensorrt",
         f"--trt-cache-dir={tmp_path / 'cache'}", f"--trt-report={report}", "-p", "no:cacheprovider",
         "-W", "default", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    with open(report, newline="") as f:
        return proc, {row["case_id"]: row for row in csv.DictReader(f)}


def run_suite_file(directory: Path, name: str) -> subprocess.CompletedProcess[str]:
    """Run one suite module in *directory* on the CPU (engines are built, not executed)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", name, "--trt-gpu=cpu", "-p", "no:cacheprovider"],
        cwd=directory, capture_output=True, text=True, timeout=600,
    )


def test_engines_build_once_with_realized_precision(tmp_path: Path) -> None:
    first, rows = run_suites(tmp_path)
    assert first.returncode == 0, first.stdout[-3000:]
    # mlp 2 batches + cnn 2 + encoder 2x2, each in fp32, fp16 and int8; + the encoder's 3 shape-fuzzing items
    assert len(rows) == 27 and sum("[fuzz-" in case_id for case_id in rows) == 3
    for case_id, row in rows.items():
        assert row["status"] == "built", (case_id, row["reason"])
        assert row["reason"] == "no CUDA device: built, not executed"
        counts = dict(item.split(":") for item in row["engine_precisions"].split(","))
        precision = row["precision"]
        assert int(counts.get(precision, 0)) > 0, (case_id, row["engine_precisions"])
        if precision == "fp32":
            assert set(counts) == {"fp32"}, (case_id, row["engine_precisions"])
    engines = {row["engine_key"] for row in rows.values()}
    assert len(engines) == 9  # 3 suites x 3 precisions: one engine per profile, not per case
    assert "engines: 9 built" in first.stdout

    second, rows = run_suites(tmp_path)
    assert second.returncode == 0 and "engines: 0 built (0.0 s), 9 cache hit(s)" in second.stdout
    assert {row["engine_cache"] for row in rows.values()} == {"hit"}

    plans = sorted((tmp_path / "cache" / "cpu" / "tensorrt").glob("*/engine.plan"))
    assert len(plans) == 9
    plans[0].write_bytes(b"\x00" * 64)
    third, rows = run_suites(tmp_path)
    assert third.returncode == 0
    assert "CacheWarning" in third.stdout and "rebuilding" in third.stdout
    assert "engines: 1 built" in third.stdout


def test_broken_onnx_names_the_node(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["h"], name="ok_relu"),
         helper.make_node("NoSuchOp", ["h"], ["y"], name="bad_node")],
        "broken", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(tmp_path / "broken.onnx"))
    (tmp_path / "test_broken.py").write_text(
        "from pytest_trtbench import Input, Suite\n"
        "test_broken = Suite(model='broken.onnx', inputs=[Input('x', ('batch', 4))], batch_sizes=[1, 2],\n"
        "                    backends=['tensorrt'])\n"
    )
    proc = run_suite_file(tmp_path, "test_broken.py")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "test_broken[tensorrt-fp32-b1]: error" in proc.stdout
    assert "'bad_node'" in proc.stdout and "NoSuchOp" in proc.stdout and "broken.onnx" in proc.stdout
    assert "Traceback" not in proc.stdout


def test_fp16_engine_without_fp16_layers_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "test_kept.py").write_text(
        "from torch import nn\n"
        "from pytest_trtbench import Input, Suite\n"
        "def mlp():\n"
        "    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))\n"
        "test_kept = Suite(model=mlp, inputs=[Input('x', ('batch', 8))], batch_sizes=[2], precisions=['fp16'],\n"
        "                  backends=['tensorrt'], fp32_ops=['Gemm', 'MatMul', 'Relu', 'Add'])\n"
    )
    proc = run_suite_file(tmp_path, "test_kept.py")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "test_kept[tensorrt-fp16-b2]: error" in proc.stdout
    assert "asked for fp16 but the engine runs no compute layer in fp16 (realized: fp32:" in proc.stdout
