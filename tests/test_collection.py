"""Collecting suites stays light: no heavy library is imported before a case runs (with --trt-gpu=cpu)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SUITE = """
from pytest_trtbench import Input, Suite

test_sweep = Suite(
    model=lambda: None,  # a factory, never called during collection
    inputs=[Input("ids", ("batch", "seq"), "int64", (0, 100))],
    batch_sizes=[1, 2, 4],
    dims={"seq": [8, 16]},
    precisions=["fp32", "fp16"],
)
"""

PROBE = """
import sys, pytest
rc = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "--trt-backend=onnxruntime", "--trt-gpu=cpu",
                  "test_sweep.py"])
heavy = ("torch", "numpy", "onnxruntime", "onnx", "pandas", "tensorrt", "tensorrt_rtx")
print("HEAVY:" + ",".join(m for m in heavy if m in sys.modules))
sys.exit(rc)
"""


def test_collecting_on_cpu_imports_no_heavy_library(tmp_path: Path) -> None:
    (tmp_path / "test_sweep.py").write_text(SUITE)
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "12 tests collected" in proc.stdout
    assert "HEAVY:\n" in proc.stdout, proc.stdout.splitlines()[-1]
