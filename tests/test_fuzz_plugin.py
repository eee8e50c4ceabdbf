"""Shape fuzzing through the plugin (pytester), on real PyTorch models exported to ONNX and run by ONNX Runtime.

The buggy model is right in PyTorch, but its ONNX graph (what the engine runs) adds 0.5 to every output when
``seq % 7 == 3``: the listed sequence lengths (4, 32) pass, the fuzz item must find and shrink the bug.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

SUITE = '''
import torch
from torch import nn
from pytest_trtbench import Input, Suite


class ShapeBug(nn.Module):
    """Correct in PyTorch; when BUGGY, the exported ONNX graph adds 0.5 whenever seq % 7 == 3;
    when CRASHY, it reshapes through seq // 2, which ONNX Runtime refuses for odd seq."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 4)

    def forward(self, x):
        y = self.proj(x)
        if BUGGY and torch.onnx.is_in_onnx_export():
            seq = torch._shape_as_tensor(x)[1]  # Shape -> Gather -> Mod -> Equal in the graph
            y = y + 0.5 * (seq % 7 == 3).to(y.dtype)
        if CRASHY and torch.onnx.is_in_onnx_export():
            b, s = x.shape[0], x.shape[1]
            y = y.reshape(b, s // 2, 8).reshape(b, s, 4)
        return y


test_shapes = Suite(
    model=ShapeBug,
    inputs=[Input("x", shape=("batch", "seq", 8))],
    batch_sizes=[1, 4],
    dims={"seq": SEQS},
    output_names=["y"],
    fuzz_shapes=FUZZ,
    live_reference=LIVE,
    profiles=PROFILES,
)
'''
FAST = ["--trt-gpu=cpu", "--trt-warmup-s=0.01", "--trt-blocks=2", "--trt-min-block-s=0.005", "-p", "no:cacheprovider",
        "-W", "error"]
FUZZ_ID = "test_shapes[fuzz-onnxruntime-fp32]"


def write_suite(pytester: pytest.Pytester, *, buggy: bool = True, fuzz: int = 30, seqs: str = "[4, 32]",
                live: bool = True, crashy: bool = False, profiles: str = "None") -> None:
    text = SUITE.replace("BUGGY", str(buggy)).replace("CRASHY", str(crashy)).replace("FUZZ", str(fuzz))
    text = text.replace("SEQS", seqs).replace("LIVE", str(live)).replace("PROFILES", profiles)
    pytester.makepyfile(test_shapes=text)


def rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["case_id"]: row for row in csv.DictReader(f)}


def test_fuzz_item_catches_what_the_listed_cases_miss_and_shrinks_it(pytester: pytest.Pytester) -> None:
    from hypothesis import configuration

    home = lambda: Path(getattr(configuration.storage_directory(), "path", configuration.storage_directory()))  # noqa: E731
    before = home()
    write_suite(pytester)
    result = pytester.runpytest(*FAST, "--trt-report=r.csv")
    result.assert_outcomes(passed=4, failed=1)  # every listed case passes
    result.stdout.fnmatch_lines([
        "test_shapes?fuzz-onnxruntime-fp32?: accuracy_fail",
        "  shape fuzzing: * shapes run inside x:1x4x8-4x32x8 (Hypothesis seed *), * failed",
        "  smallest failing shape: batch=1, seq=10 (x=1x10x8)",
        "  output y: max abs err 0.5, *cosine*FAILS: 40 / 40 (100.00 %) elements exceed atol=0.0001*",
        "  pin it as a listed case: in test_shapes.py, test_shapes = Suite(..., dims={'seq': [4, 10, 32]})",
        "  run it as a case: pytest test_shapes.py --trt-gpu=cpu -k 'onnxruntime-fp32-b1-seq10'",
        "  repeat this search: pytest test_shapes.py --trt-gpu=cpu -k 'fuzz-onnxruntime-fp32'",
    ])
    row = rows(pytester.path / "r.csv")[FUZZ_ID]
    assert row["status"] == "accuracy_fail" and row["fuzz_failing_shape"] == "batch=1, seq=10 (x=1x10x8)"
    assert 2 <= int(row["fuzz_shapes_tried"]) <= 60 and row["batch_size"] == "" and row["shapes"] == "x:1x4x8-4x32x8"
    assert abs(float(row["max_abs_err"]) - 0.5) < 1e-3 and row["reference_backend"] == "torch-cpu"
    assert row["reason"].startswith("fails at batch=1, seq=10 (x=1x10x8): y: 40 / 40")
    listed = [r for case_id, r in rows(pytester.path / "r.csv").items() if case_id != FUZZ_ID]
    assert len(listed) == 4 and {r["engine_key"] for r in listed} == {row["engine_key"]}  # same engine
    assert {r["fuzz_shapes_tried"] for r in listed} == {""}
    assert not (pytester.path / ".hypothesis").exists()  # Hypothesis wrote nothing into the user's directory
    assert home() == before  # and the user's own Hypothesis tests keep their storage directory

    # the pin line, applied, makes a listed case that fails on its own
    write_suite(pytester, seqs="[4, 10, 32]", fuzz=0)
    pinned = pytester.runpytest(*FAST, "-k", "onnxruntime-fp32-b1-seq10")
    pinned.assert_outcomes(failed=1)
    pinned.stdout.fnmatch_lines(["*test_shapes[[]onnxruntime-fp32-b1-seq10[]]: accuracy_fail*"])


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds_explore_and_still_shrink_to_the_smallest_shape(pytester: pytest.Pytester, seed: int) -> None:
    write_suite(pytester)
    result = pytester.runpytest(*FAST, f"--trt-fuzz-seed={seed}", "-k", "fuzz", "--trt-report=r.csv")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "  smallest failing shape: batch=1, seq=10 (x=1x10x8)",
        f"  repeat this search: pytest test_shapes.py --trt-gpu=cpu --trt-fuzz-seed={seed} -k 'fuzz-onnxruntime-fp32'",
    ])
    from pytest_trtbench import Input, Suite
    from pytest_trtbench.fuzz import fuzz_seed, fuzz_targets

    same = Suite(model="same.onnx", inputs=[Input("x", shape=("batch", "seq", 8))], dims={"seq": [4]}, name="test_shapes")
    (target,) = fuzz_targets(same.cases(["onnxruntime"]), 30)
    assert rows(pytester.path / "r.csv")[FUZZ_ID]["fuzz_seed"] == str(fuzz_seed(target, seed)) != str(fuzz_seed(target))


def test_a_correct_model_passes_and_the_run_repeats(pytester: pytest.Pytester) -> None:
    write_suite(pytester, buggy=False, fuzz=0)
    first = pytester.runpytest(*FAST, "--trt-fuzz=12", "--trt-report=a.csv")  # the option overrides the suite
    first.assert_outcomes(passed=5)
    second = pytester.runpytest(*FAST, "--trt-fuzz=12", "--trt-report=b.csv", "-k", "fuzz")
    second.assert_outcomes(passed=1)
    a, b = rows(pytester.path / "a.csv")[FUZZ_ID], rows(pytester.path / "b.csv")[FUZZ_ID]
    assert a["status"] == "pass" and a["fuzz_shapes_tried"] == "12" and a["fuzz_failing_shape"] == ""
    assert a["reason"] == "12 shapes inside the profile, all within tolerance"
    assert 0 <= float(a["max_abs_err"]) < 1e-4 and float(a["cosine_similarity"]) > 0.99999
    for column in ("fuzz_seed", "max_abs_err", "mean_abs_err", "cosine_similarity"):  # same shapes, same numbers
        assert a[column] == b[column], column
    assert b["engine_cache"] == "hit"  # the second session reuses the cached engine: no build per shape
    pytester.runpytest(*FAST, "--trt-fuzz=0").assert_outcomes(passed=4)


def test_a_shape_that_makes_the_engine_raise_is_an_error_shrunk_the_same_way(pytester: pytest.Pytester) -> None:
    write_suite(pytester, buggy=False, crashy=True)
    result = pytester.runpytest(*FAST, "--trt-report=r.csv")
    result.assert_outcomes(passed=4, failed=1)  # listed seq 4 and 32 are even
    result.stdout.fnmatch_lines([
        "test_shapes?fuzz-onnxruntime-fp32?: error",
        "  smallest failing shape: batch=1, seq=5 (x=1x5x8)",
        "  the engine or the reference raised: *",
        "  pin it as a listed case: in test_shapes.py, test_shapes = Suite(..., dims={'seq': [4, 5, 32]})",
    ])
    row = rows(pytester.path / "r.csv")[FUZZ_ID]
    assert row["status"] == "error" and row["fuzz_failing_shape"] == "batch=1, seq=5 (x=1x5x8)"


def test_several_profiles_each_use_their_listed_engine(pytester: pytest.Pytester) -> None:
    two = ('[{"x": ((1, 4, 8), (1, 4, 8), (1, 32, 8))}, '
           '{"x": ((2, 4, 8), (4, 32, 8), (4, 32, 8))}]')
    write_suite(pytester, buggy=False, fuzz=16, profiles=two)
    result = pytester.runpytest(*FAST, "--trt-report=r.csv")
    result.assert_outcomes(passed=5)
    report = rows(pytester.path / "r.csv")
    fuzz = report.pop(FUZZ_ID)
    assert fuzz["status"] == "pass" and fuzz["fuzz_shapes_tried"] == "16"
    assert fuzz["shapes"] == "x:1x4x8-1x32x8 | x:2x4x8-4x32x8"
    assert sorted(fuzz["engine_key"].split(",")) == sorted({r["engine_key"] for r in report.values()})
    assert "engines: 2 built" in result.stdout.str()
    alone = pytester.runpytest(*FAST, "--trt-cache-dir=other-cache", "-k", "fuzz")  # the fuzz item builds both
    alone.assert_outcomes(passed=1)
    assert "engines: 2 built" in alone.stdout.str()


def test_ini_key_and_bad_values(pytester: pytest.Pytester) -> None:
    write_suite(pytester, buggy=False, fuzz=0)
    pytester.makeini("[pytest]\ntrt_fuzz = 3\n")
    result = pytester.runpytest(*FAST, "--trt-report=r.csv", "-k", "fuzz")
    result.assert_outcomes(passed=1)
    assert rows(pytester.path / "r.csv")[FUZZ_ID]["fuzz_shapes_tried"] == "3"
    bad = pytester.runpytest(*FAST, "--trt-fuzz=-2")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*expected an integer >= 0, got '-2'*"])


def test_without_a_live_reference_the_fuzz_item_is_skipped(pytester: pytest.Pytester) -> None:
    write_suite(pytester, live=False)
    result = pytester.runpytest(*FAST, "-k", "fuzz", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*shape fuzzing needs a live reference*golden fingerprints exist only for the listed*"])


def test_build_only_builds_the_engine_and_runs_nothing(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    result = pytester.runpytest(*FAST, "--trt-build-only", "--trt-report=r.csv", "-k", "fuzz")
    result.assert_outcomes(passed=1)
    row = rows(pytester.path / "r.csv")[FUZZ_ID]
    assert row["status"] == "built" and row["engine_cache"] == "built" and row["fuzz_shapes_tried"] == "0"


def test_xdist_workers_find_the_same_shape(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    write_suite(pytester)
    result = pytester.runpytest_subprocess(*FAST, "-n", "2", "--trt-report=r.csv")
    result.assert_outcomes(passed=4, failed=1)
    row = rows(pytester.path / "r.csv")[FUZZ_ID]
    assert row["status"] == "accuracy_fail" and row["fuzz_failing_shape"] == "batch=1, seq=10 (x=1x10x8)"
    assert not (pytester.path / ".hypothesis").exists()


def readme_example() -> str:
    """The complete test module the README shows under ``<!-- fuzz-example -->``."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- fuzz-example -->", 1)[1]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_runs_the_strategy_in_a_users_own_given_test(pytester: pytest.Pytester) -> None:
    example = readme_example()
    # count the shapes the user's test sees and the engines it gets (the README doesn't need to)
    probe = "    SEEN.add(point.dims)\n    KEYS.add(entry.key)\n\n\nSEEN, KEYS = set(), set()\n\n\n" + (
        "def test_zz_after():\n    assert 2 <= len(SEEN) <= 25 and len(KEYS) == 1\n")
    pytester.makepyfile(test_user=example + probe)
    result = pytester.runpytest(*FAST, "-v", "--trt-report=r.csv")
    result.assert_outcomes(passed=7)  # 4 listed cases, the fuzz item, the user's @given test, the counter
    result.stdout.fnmatch_lines(["*test_user.py::test_any_shape PASSED*", "*test_user.py::test_zz_after PASSED*"])
    assert result.stdout.str().count("building engine") == 1  # cases, fuzz item and @given test share one engine
    row = rows(pytester.path / "r.csv")["test_tagger[fuzz-onnxruntime-fp32]"]
    assert row["status"] == "pass" and row["fuzz_shapes_tried"] == "50"


def test_without_hypothesis_the_fuzz_item_says_what_to_install(pytester: pytest.Pytester) -> None:
    write_suite(pytester, buggy=False)
    pytester.makeconftest("import sys\nsys.modules['hypothesis'] = None  # as if not installed\n")
    result = pytester.runpytest_subprocess(*FAST, "-p", "no:hypothesispytest", "-k", "fuzz")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["test_shapes?fuzz-onnxruntime-fp32?: error", "*fuzzes shapes (fuzz_shapes / "
                                 "--trt-fuzz), which needs Hypothesis: pip install 'pytest-trtbench?fuzz?' (or*"])


def test_tensorrt_on_cpu_builds_the_fuzz_engine_once_and_executes_nothing(pytester: pytest.Pytester) -> None:
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed")
    write_suite(pytester)
    result = pytester.runpytest_subprocess(*FAST, "--trt-backend=tensorrt", "--trt-report=r.csv")
    result.assert_outcomes(passed=5)  # without a CUDA device nothing runs: the shape bug can't be seen here
    report = rows(pytester.path / "r.csv")
    fuzz = report.pop("test_shapes[fuzz-tensorrt-fp32]")
    assert fuzz["status"] == "built" and fuzz["reason"] == "no CUDA device: built, not executed"
    assert fuzz["fuzz_shapes_tried"] == "0" and fuzz["engine_precisions"].startswith("fp32:")
    assert {r["engine_key"] for r in report.values()} == {fuzz["engine_key"]}  # the listed cases' engine
    assert "engines: 1 built" in result.stdout.str()
