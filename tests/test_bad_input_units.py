"""Unit tests of the checks behind the bad-input matrix: plain functions, no pytest run inside."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from pytest_trtbench.baseline import BaselineError
from pytest_trtbench.baseline_check import entry_problem, usable_entry
from pytest_trtbench.cache import meta_problem
from pytest_trtbench.compare import Tolerance, compare_output
from pytest_trtbench.paths import PathProblem, check_writable_dir, check_writable_file
from pytest_trtbench.suite import Input, Suite, SuiteError


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_output_fails_without_a_numpy_warning(bad: float) -> None:
    actual = np.ones((2, 4), dtype=np.float32)
    actual[1, 2] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the user's -W error: no RuntimeWarning may escape
        result = compare_output("y", actual, np.ones((2, 4), dtype=np.float32), Tolerance(), classifier=True)
    assert not result.passed and result.nonfinite == 1
    assert "1 of 8 elements are NaN or Inf" in result.failures[0]


def test_nonfinite_reference_never_passes() -> None:
    expected = np.array([1.0, np.nan, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compare_output("y", np.array([1.0, 2.0, 3.0]), expected, Tolerance(atol=None, min_cosine=0.5))
    assert not result.passed and any("the reference has 1 of 3" in f for f in result.failures)


@pytest.mark.parametrize(("tol", "message"), [
    (Tolerance(atol=math.nan), "atol=nan must be a finite number >= 0"),
    (Tolerance(rtol=-1.0), "rtol=-1.0 must be a finite number >= 0"),
    (Tolerance(min_cosine=1.5), "min_cosine=1.5 must be in [0, 1]"),
    (Tolerance(min_top1=-0.1), "min_top1=-0.1 must be in [0, 1]"),
])
def test_tolerance_problems(tol: Tolerance, message: str) -> None:
    assert message in tol.problems()[0]
    assert Tolerance().problems() == [] and Tolerance.default_for("int8").problems() == []


def test_suite_validate_lists_every_problem_and_a_good_suite_passes() -> None:
    bad = Suite(model="m.onnx", inputs=[Input("x", ("batch", 4), dtype="float33"), Input("ids", (4,), "int64", (2, 2))],
                batch_sizes=[2, 2], precisions=["fp61"], tolerances={"fp32": Tolerance(atol=-1.0)}, name="s")
    with pytest.raises(SuiteError) as info:
        bad.validate()
    text = str(info.value)
    for part in ("unknown precision 'fp61'", "unknown dtype 'float33'", "integer range=(2, 2) is empty",
                 "batch_sizes [2, 2] repeats [2]", "tolerances['fp32']: atol=-1.0"):
        assert part in text, part
    Suite(model=lambda: None, inputs=[Input("x", ("batch", 4))], batch_sizes=[1, 2], name="ok").validate()


def test_meta_problem_names_the_field() -> None:
    good = {"key": "k", "files": ["e"], "bytes": {"e": 3}, "sha256": {"e": "ab"}, "build_s": 1.5, "backend": {}}
    assert meta_problem(good) == ""
    assert meta_problem({**good, "build_s": "fast"}) == "'build_s' is str 'fast'"
    assert meta_problem({**good, "build_s": True}) == "'build_s' is bool True"
    assert meta_problem({**good, "files": ["../x"]}) == "bad file name '../x'"
    assert meta_problem({**good, "sha256": {}}) == "no size or sha256 for 'e'"
    assert meta_problem([good]) == "expected a JSON object, got list"


def _entry() -> dict:
    return {
        "accuracy": {"outputs": {"y": {"max_abs_err": 1e-7, "mean_abs_err": 1e-8, "cosine_similarity": 1.0}}},
        "latency": {"median_ms": 0.1, "runs": [[{"median_ms": 0.1, "iqr_ms": 0.01, "n": 5}]]},
        "golden": {"outputs": {"y": {"shape": [2, 3], "indices": [0, 5], "values": [0.5, 1.5]}}},
        "environment": {"device_name": "NVIDIA A10", "cpu_model": "Xeon"},
    }


@pytest.mark.parametrize(("path", "value", "message"), [
    (("latency", "runs"), [[{"median_ms": 0.0, "iqr_ms": 0.0, "n": 1}]], "block medians must be numbers > 0"),
    (("golden", "outputs"), {"y": {"shape": [2, 3], "indices": [6], "values": [1.0]}}, "lie outside an output of 6"),
    (("accuracy", "outputs"), {"y": {"max_abs_err": "x"}}, "max_abs_err is 'x', not a number"),
])
def test_entry_problem(path: tuple[str, str], value: object, message: str) -> None:
    entry = _entry()
    assert entry_problem(entry) == ""
    entry[path[0]][path[1]] = value
    assert message in entry_problem(entry)


def test_entry_from_another_profile_is_refused_unless_re_recorded() -> None:
    cases = {"c": _entry()}
    assert usable_entry(cases, "c", "f.json", gpu="a10", device_name="NVIDIA A10", updating=False) is not None
    with pytest.raises(BaselineError, match=r"f.json: case 'c' was recorded on 'NVIDIA A10' \(profile a10\), but this run is --trt-gpu=cpu"):
        usable_entry(cases, "c", "f.json", gpu="cpu", device_name="Xeon", updating=False)
    cases["c"]["latency"]["median_ms"] = "slow"
    assert usable_entry(cases, "c", "f.json", gpu="a10", device_name="NVIDIA A10", updating=True) is None


def test_writable_checks(tmp_path: Path) -> None:
    check_writable_dir(tmp_path / "new" / "deeper")  # created later: its existing parent is writable
    (tmp_path / "f").write_text("x")
    with pytest.raises(PathProblem, match="is a file, not a directory"):
        check_writable_dir(tmp_path / "f" / "sub")
    with pytest.raises(PathProblem, match="is a directory, not a file"):
        check_writable_file(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # the probe leaves nothing behind


def test_the_no_baselines_warning_is_for_a_wrong_dir_or_gpu_not_for_a_new_suite(tmp_path: Path) -> None:
    from pytest_trtbench.session_outputs import unused_baselines_warning

    rows = [{"status": "new", "case_id": "test_new[onnxruntime-fp32-b1]"}]
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "test_other.json").write_text("{}", encoding="utf-8")
    # the right folder holds another suite's baselines: the suite that ran is just new, nothing to warn about
    assert unused_baselines_warning(rows, tmp_path, "cpu") == ""
    # a wrong --trt-gpu: baselines exist, none for this GPU
    assert unused_baselines_warning(rows, tmp_path, "a10").startswith(
        f"no case found a baseline in {tmp_path / 'a10'}, but baseline files exist: {tmp_path / 'cpu' / 'test_other.json'}")
    # a wrong --trt-baseline-dir (one level too deep)
    assert unused_baselines_warning(rows, tmp_path / "cpu", "cpu").startswith("no case found a baseline in ")
