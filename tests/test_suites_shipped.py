"""The shipped suites through pytest itself: the bring-your-own-ONNX suite runs and skips as it should,
and the size knob changes which cases the real-architecture suites collect (nothing is built for that)."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITES = Path(__file__).resolve().parent.parent / "suites"
SIZED = {"test_bert", "test_resnet", "test_gpt2", "test_segmentation"}
"""The suites with a size knob."""
FIXED_SHAPE_REASON = "fixed_cnn.onnx fixes input 'image' to 1x3x32x32; this case needs 4x3x32x32"


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRTBENCH_CACHE_DIR", raising=False)


def test_byo_onnx_runs_the_fixed_shape_and_skips_the_rest(pytester: pytest.Pytester) -> None:
    (pytester.path / "models").mkdir()
    shutil.copy(SUITES / "models" / "fixed_cnn.onnx", pytester.path / "models" / "fixed_cnn.onnx")
    shutil.copy(SUITES / "test_byo_onnx.py", pytester.path / "test_byo_onnx.py")

    result = pytester.runpytest_subprocess(
        "--trt-gpu=cpu", "-p", "no:cacheprovider", "-v", "-rs", "--trt-report=report.csv", "--trt-blocks=1"
    )

    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines([
        "*test_byo_onnx[[]onnxruntime-fp32-b1-hw32[]] PASSED*",
        "*test_byo_onnx[[]onnxruntime-fp32-b4-hw32[]] SKIPPED*",
        "*test_byo_onnx[[]onnxruntime-int8-b1-hw32[]] PASSED*",
        f"SKIPPED [[]2[]] *: {FIXED_SHAPE_REASON}",
    ])
    with open(pytester.path / "report.csv", newline="") as f:
        rows = {row["case_id"]: row for row in csv.DictReader(f)}
    assert rows["test_byo_onnx[onnxruntime-fp32-b1-hw32]"]["status"] == "new"
    assert rows["test_byo_onnx[onnxruntime-int8-b1-hw32]"]["status"] == "new"
    assert rows["test_byo_onnx[onnxruntime-fp32-b4-hw32]"]["status"] == "skipped"
    assert rows["test_byo_onnx[onnxruntime-fp32-b4-hw32]"]["reason"] == FIXED_SHAPE_REASON


def _collected(pytester: pytest.Pytester, *args: str) -> dict[str, set[str]]:
    """Case ids per suite, from ``--collect-only -q`` over the real suites directory."""
    result = pytester.runpytest_subprocess(str(SUITES), "--collect-only", "-q", "--trt-gpu=cpu", "-p", "no:cacheprovider", *args)
    assert result.ret == 0, result.stdout.str()
    per_suite: dict[str, set[str]] = {}
    for line in result.stdout.lines:
        if "::" in line and "[" in line:
            case_id = line.split("::", 1)[1]
            per_suite.setdefault(case_id.split("[", 1)[0], set()).add(case_id)
    return per_suite


def test_size_knob_selects_full_or_tiny_cases_without_building(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = pytester.path / "cache"
    monkeypatch.setenv("TRTBENCH_CACHE_DIR", str(cache))

    tiny = _collected(pytester)
    full = _collected(pytester, "--trt-size=full")
    full_from_ini = _collected(pytester, "-o", "trt_size=full")

    assert full_from_ini == full
    # 3 precisions x batch sizes x dim values
    assert {name: len(ids) for name, ids in full.items() if name in SIZED} == {
        "test_bert": 18, "test_resnet": 9, "test_gpt2": 12, "test_segmentation": 6,
    }
    assert {name: len(ids) for name, ids in tiny.items() if name in SIZED} == {
        "test_bert": 12, "test_resnet": 6, "test_gpt2": 12, "test_segmentation": 6,
    }
    for case_id in ("test_bert[onnxruntime-fp32-b32-seq384]", "test_resnet[onnxruntime-int8-b32-hw224]",
                    "test_gpt2[onnxruntime-fp16-b8-seq512]", "test_segmentation[onnxruntime-fp32-b4-hw512]"):
        assert case_id in full[case_id.split("[")[0]]
    for case_id in ("test_bert[onnxruntime-fp32-b4-seq64]", "test_resnet[onnxruntime-int8-b4-hw64]",
                    "test_gpt2[onnxruntime-fp32-b4-seq16]", "test_segmentation[onnxruntime-fp32-b2-hw64]"):
        assert case_id in tiny[case_id.split("[")[0]]
    tiny_ids = set().union(*tiny.values())
    assert not any(size in case_id for case_id in tiny_ids for size in ("seq384", "seq512", "hw224", "hw512"))
    # suites without a size knob collect the same cases either way
    assert {k: v for k, v in tiny.items() if k not in SIZED} == {k: v for k, v in full.items() if k not in SIZED}
    assert "test_byo_onnx" in tiny
    assert not cache.exists(), "collecting must not build or cache anything"

