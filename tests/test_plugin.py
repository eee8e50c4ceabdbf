"""The plugin end to end through pytester, on a tiny real PyTorch model and ONNX Runtime (CPU)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from fast_history import make_history_fast

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

SUITE = '''
from torch import nn
from pytest_trtbench import Input, Suite, Tolerance

def mlp():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

test_tiny = Suite(
    model=mlp,
    inputs=[Input("x", shape=("batch", 16))],
    batch_sizes=[1, 4],
    precisions=["fp32", "int8"],
    output_names=["logits"],
    classifier_outputs=["logits"],
    tolerances={TOLERANCES},
    live_reference=LIVE,
)
'''
FAST = ["--trt-gpu=cpu", "--trt-warmup-s=0.01", "--trt-blocks=3", "--trt-min-block-s=0.005", "-p", "no:cacheprovider"]
CASES = ["onnxruntime-fp32-b1", "onnxruntime-fp32-b4", "onnxruntime-int8-b1", "onnxruntime-int8-b4"]


def write_suite(pytester: pytest.Pytester, tolerances: str = "{}", live: bool = True) -> None:
    pytester.makepyfile(test_tiny=SUITE.replace("{TOLERANCES}", tolerances).replace("LIVE", str(live)))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*FAST, *args)


def report_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["case_id"]: row for row in csv.DictReader(f)}


def baseline_file(pytester: pytest.Pytester) -> Path:
    return pytester.path / "baselines" / "cpu" / "test_tiny.json"


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> pytest.Pytester:
    """A suite whose baselines were recorded with --trt-update-baselines."""
    write_suite(pytester)
    result = run(pytester, "--trt-update-baselines")
    result.assert_outcomes(passed=4)
    return pytester


def test_a_suite_passes_and_reports_every_column(pytester: pytest.Pytester) -> None:
    from pytest_trtbench.report import REPORT_COLUMNS

    write_suite(pytester)
    result = run(pytester, "--trt-report=r.csv", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_tiny.py::test_tiny[[]onnxruntime-fp32-b1[]] PASSED*",
                                 "*trtbench summary*", "*test_tiny[[]onnxruntime-int8-b4[]]*new*",
                                 "engines: 2 built*", "verdicts: new 4"])
    with open(pytester.path / "r.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[: len(REPORT_COLUMNS)] == REPORT_COLUMNS
    rows = report_rows(pytester.path / "r.csv")
    assert sorted(rows) == sorted(f"test_tiny[{c}]" for c in CASES)
    for row in rows.values():
        assert row["status"] == "new" and row["engine_cache"] == "built" and row["reference_backend"] == "torch-cpu"
        assert float(row["latency_ms_median"]) > 0 and float(row["throughput_qps"]) > 0
        assert float(row["cosine_similarity"]) > 0.98
        # under heavy load the reference timing may be dropped (documented): then the row must say why
        if row["speedup_vs_reference"]:
            assert float(row["speedup_vs_reference"]) > 0
        else:
            assert "reference timing unstable, not stored" in row["reason"], row["reason"]


def test_second_run_builds_nothing(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    run(pytester).assert_outcomes(passed=4)
    result = run(pytester, "--trt-report=r.csv")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["engines: 0 built (0.0 s), 2 cache hit(s)"])
    assert {row["engine_cache"] for row in report_rows(pytester.path / "r.csv").values()} == {"hit"}
    result = run(pytester, "--trt-rebuild")
    result.stdout.fnmatch_lines(["engines: 2 built*"])


def test_update_baselines_round_trip(recorded: pytest.Pytester) -> None:
    path = baseline_file(recorded)
    data = json.loads(path.read_text())
    assert data["schema_version"] == 4 and sorted(data["cases"]) == sorted(CASES)
    entry = data["cases"]["onnxruntime-int8-b4"]
    assert {"accuracy", "latency", "golden", "reference", "environment"} <= set(entry)
    assert entry["latency"]["runs"] and entry["golden"]["outputs"]["logits"]["shape"] == [4, 4]
    stored = entry["latency"]["runs"][0]
    assert len(stored["machine"]) == 16 and int(stored["machine"], 16) >= 0 and stored["blocks"]
    result = run(recorded, "--trt-report=r.csv", "--trt-no-latency-gate")
    result.assert_outcomes(passed=4)
    assert {row["status"] for row in report_rows(recorded.path / "r.csv").values()} == {"pass"}
    # refreshing one case touches only that case
    before = json.loads(path.read_text())["cases"]
    run(recorded, "--trt-update-baselines", "-k", "fp32-b1").assert_outcomes(passed=1, deselected=3)
    after = json.loads(path.read_text())["cases"]
    assert after["onnxruntime-int8-b4"] == before["onnxruntime-int8-b4"]
    assert len(after["onnxruntime-fp32-b1"]["latency"]["runs"]) == 2


def test_accuracy_fail_fails_only_that_test(pytester: pytest.Pytester) -> None:
    write_suite(pytester, '{"int8": Tolerance(atol=1e-7, rtol=0.0)}')
    result = run(pytester, "--trt-report=r.csv")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*test_tiny[[]onnxruntime-int8-b1[]]: accuracy_fail*",
        "*elements exceed atol=1e-07*",
        "*output logits: max abs err*",
        "*baseline: *test_tiny.json*",
        "*update it: pytest test_tiny.py --trt-gpu=cpu --trt-update-baselines -k 'onnxruntime-int8-b1'*",
    ])
    rows = report_rows(pytester.path / "r.csv")
    assert rows["test_tiny[onnxruntime-int8-b1]"]["status"] == "accuracy_fail"
    assert rows["test_tiny[onnxruntime-fp32-b1]"]["status"] == "new"


def test_accuracy_regression_against_the_baseline(recorded: pytest.Pytester) -> None:
    path = baseline_file(recorded)
    data = json.loads(path.read_text())
    metrics = data["cases"]["onnxruntime-int8-b4"]["accuracy"]["outputs"]["logits"]
    metrics["max_abs_err"] = metrics["mean_abs_err"] = 0.0
    path.write_text(json.dumps(data))
    result = run(recorded, "--trt-no-latency-gate")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_tiny[[]onnxruntime-int8-b4[]]: accuracy_regression*",
                                 "*logits.max_abs_err * > baseline 0*"])


def test_latency_regression_fails_that_test(recorded: pytest.Pytester, steady_clock: object) -> None:
    # a clean 0.1 us history against runs timed by the FAKE steady clock: 100x slower whatever this VM's load
    make_history_fast(baseline_file(recorded), ["onnxruntime-fp32-b4"])
    # only the case with the fast baseline: the others would be gated on this VM's real (noisy) CPU timing
    result = run(recorded, "--trt-report=r.csv", "--trt-latency-gate=on", "-k", "fp32-b4")
    result.assert_outcomes(failed=1, deselected=3)
    result.stdout.fnmatch_lines(["*test_tiny[[]onnxruntime-fp32-b4[]]: latency_regression*",
                                 "*latency: median * ms vs baseline * ms (+*"])
    row = report_rows(recorded.path / "r.csv")["test_tiny[onnxruntime-fp32-b4]"]
    assert row["status"] == "latency_regression" and float(row["latency_change_pct"]) > 100
    run(recorded, "--trt-no-latency-gate").assert_outcomes(passed=4)
    run(recorded, "--trt-latency-gate=off").assert_outcomes(passed=4)


def test_gpu_name_mismatch_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    result = pytester.runpytest("--trt-gpu=a10", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # "has no CUDA device" here; "has 'NVIDIA H200' (h200)" on a GPU machine
    result.stderr.fnmatch_lines(["*--trt-gpu=a10 but this machine has *Baselines of one GPU are never compared*"])


def test_corrupt_cache_entry_is_rebuilt(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    run(pytester).assert_outcomes(passed=4)
    engines = list((pytester.path / ".trtbench-cache").glob("cpu/onnxruntime/*/model.onnx"))
    assert len(engines) == 2
    engines[0].write_bytes(b"not an onnx model")
    result = run(pytester, "-W", "error")  # the user's warnings-as-errors must not stop the rebuild
    result.assert_outcomes(passed=4, warnings=1)
    result.stdout.fnmatch_lines(["*CacheWarning: cache entry * model.onnx has 17 bytes*rebuilding*",
                                 "trtbench: cache entry * model.onnx has 17 bytes*rebuilt it", "engines: 1 built*"])


def test_malformed_baseline_json_names_the_file(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    path = baseline_file(pytester)
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 2, "cases": {')
    result = run(pytester)
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*: error*", f"*{path}: malformed baseline JSON*--trt-update-baselines*"])
    assert "Traceback" not in result.stdout.str()


def test_strict_fails_cases_without_baseline(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    run(pytester, "--trt-strict", "-k", "fp32-b1").assert_outcomes(failed=1, deselected=3)


def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    result = pytester.runpytest("--trt-blocks=-2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*expected an integer >= 1*"])


def test_plain_python_style_with_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(tiny_suite=SUITE.replace("{TOLERANCES}", "{}").replace("LIVE", "True").replace("test_tiny =", "tiny ="))
    pytester.makepyfile(test_custom='''
import pytest
from tiny_suite import tiny
tiny.name = "tiny"

@pytest.mark.parametrize("case", tiny.cases(), ids=str)
def test_engine_matches_reference(case, trtbench, trt_check):
    entry, engine = trtbench.engine(case)
    feeds = trtbench.inputs(case)
    trt_check(engine.run(feeds), trtbench.reference(case), case.precision)

def test_check_reports_numbers(trt_check):
    import numpy as np
    trt_check({"y": np.ones(3, np.float32)}, {"y": np.zeros(3, np.float32)})
''')
    result = pytester.runpytest("--trt-gpu=cpu", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*1 of 1 outputs differ (fp32*", "*y: 3 / 3 (100.00 %) elements exceed*"])


def test_github_step_summary_gets_the_markdown_table(pytester: pytest.Pytester, monkeypatch) -> None:
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_suite(pytester)
    run(pytester, "-k", "fp32").assert_outcomes(passed=2, deselected=2)
    text = summary.read_text()
    assert text.startswith("### pytest-trtbench (cpu)") and "| test_tiny[onnxruntime-fp32-b1] | new |" in text


def test_importing_the_plugin_pulls_in_no_heavy_module(pytester: pytest.Pytester) -> None:
    result = pytester.run(
        sys.executable, "-c",
        "import sys, pytest_trtbench.plugin; "
        "print(sorted(m for m in ('numpy','torch','onnxruntime','tensorrt','tensorrt_rtx','pandas','onnx') if m in sys.modules))",
    )
    assert result.ret == 0 and result.stdout.lines[-1] == "[]"


def test_golden_fingerprint_gates_accuracy_without_a_live_reference(recorded: pytest.Pytester) -> None:
    write_suite(recorded, live=False)
    result = run(recorded, "--trt-report=r.csv", "--trt-no-latency-gate")
    result.assert_outcomes(passed=4)
    rows = report_rows(recorded.path / "r.csv")
    assert {row["reference_backend"] for row in rows.values()} == {"golden-fingerprint"}
    assert {row["status"] for row in rows.values()} == {"pass"}
    path = baseline_file(recorded)
    data = json.loads(path.read_text())
    golden = data["cases"]["onnxruntime-fp32-b4"]["golden"]["outputs"]["logits"]
    golden["values"] = [v + 1.0 for v in golden["values"]]
    path.write_text(json.dumps(data))
    result = run(recorded, "--trt-no-latency-gate")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_tiny[[]onnxruntime-fp32-b4[]]: accuracy_fail*", "*elements exceed atol=*"])


def test_golden_only_without_a_baseline_says_how_to_record_one(pytester: pytest.Pytester) -> None:
    write_suite(pytester, live=False)
    result = run(pytester, "-k", "fp32-b1")
    result.assert_outcomes(failed=1, deselected=3)
    result.stdout.fnmatch_lines(["*no live reference and no golden fingerprint in *test_tiny.json*--trt-update-baselines*"])
