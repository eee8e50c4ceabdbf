"""No side channels: the size setting lives in the config stash (not os.environ), results travel on the
report object (not in user_properties, so --junitxml files stay clean) and survive xdist, and the torch
reference's TF32 switch is restored after each use."""
from __future__ import annotations

import csv
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import pytest_trtbench
from pytest_trtbench.model import full_fp32

SIZE_PROBE = """
    import os

    from pytest_trtbench import model_size

    SIZE_AT_COLLECTION = model_size()

    def test_size(pytestconfig):
        from pytest_trtbench.plugin import model_size as of_config

        assert SIZE_AT_COLLECTION == model_size() == of_config(pytestconfig) == "{size}"
        assert "TRTBENCH_SIZE" not in os.environ
"""


@pytest.mark.parametrize("size", ["full", "tiny"])
def test_model_size_comes_from_the_session_and_leaves_no_trace(pytester: pytest.Pytester, size: str) -> None:
    pytester.makepyfile(test_probe=SIZE_PROBE.format(size=size))
    ours = lambda: {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}  # noqa: E731  (pytest's own)
    before = ours()
    result = pytester.runpytest_inprocess(f"--trt-size={size}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert ours() == before
    assert pytest_trtbench.model_size() == "tiny"  # the inner session's size ended with it


def test_model_size_outside_a_session_is_tiny() -> None:
    from pytest_trtbench.plugin import _configured, model_size

    saved = list(_configured)
    _configured.clear()
    try:
        assert model_size() == "tiny"
    finally:
        _configured.extend(saved)


def test_full_fp32_restores_the_processes_tf32_settings() -> None:
    torch = pytest.importorskip("torch")
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with full_fp32(True):
            assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
        with pytest.raises(RuntimeError), full_fp32(True):
            raise RuntimeError("a failing forward")
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
        with full_fp32(False):  # the CPU reference leaves the switches alone
            assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


SUITE = """
    from pytest_trtbench import Input, Suite

    test_mlp = Suite(model="mlp.onnx", inputs=[Input("x", ("batch", 16))], batch_sizes=[1, 2, 4])
"""


def _run(pytester: pytest.Pytester, *args: str) -> dict[str, dict[str, str]]:
    from test_precision import write_mlp

    write_mlp(pytester.path / "mlp.onnx")
    pytester.makepyfile(test_mlp=SUITE)
    result = pytester.runpytest_subprocess("--trt-gpu=cpu", "--trt-backend=onnxruntime", "-p", "no:cacheprovider",
                                           "--trt-blocks=1", "--trt-report=report.csv", *args)
    result.assert_outcomes(passed=3)
    with open(pytester.path / "report.csv", newline="") as f:
        return {row["case_id"]: row for row in csv.DictReader(f)}


def test_junitxml_carries_no_trtbench_payload(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRTBENCH_CACHE_DIR", raising=False)
    rows = _run(pytester, "--junitxml=junit.xml")
    assert sorted(rows) == [f"test_mlp[onnxruntime-fp32-b{b}]" for b in (1, 2, 4)]
    assert all(row["status"] == "new" for row in rows.values())
    tree = ET.parse(pytester.path / "junit.xml")
    assert len(tree.findall(".//testcase")) == 3
    assert tree.findall(".//property") == [], "results must not travel as junit properties"


def test_results_on_the_report_survive_xdist(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTBENCH_CACHE_DIR", str(pytester.path / "cache"))
    rows = _run(pytester, "-n", "2", "--junitxml=junit.xml")
    assert sorted(rows) == [f"test_mlp[onnxruntime-fp32-b{b}]" for b in (1, 2, 4)]
    assert all(float(row["latency_ms_median"]) > 0 for row in rows.values())
    assert ET.parse(pytester.path / "junit.xml").findall(".//property") == []
    assert Path(pytester.path / "cache").is_dir()
