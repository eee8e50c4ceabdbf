"""Suites with labelled data, through the plugin (pytester) and the real int8 recipe: calibration methods, the
task-metric gate catching a bad calibration set, its baseline regression, the CSV columns, one-line errors.
Real PyTorch training, real ONNX Runtime quantization and inference; no timing decides anything here."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def _train_one_step() -> None:
    """The suites below train with torch.optim inside pytester's in-process runs, which drop the modules a run
    imported; an optimizer's first step imports modules that register torch libraries, which must not be
    registered twice: take that step once here, before any inner run."""
    import torch

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(1, 2)).sum().backward()
    optimizer.step()


_train_one_step()

from pytest_trtbench.cache import key_fields  # noqa: E402
from pytest_trtbench.precision import recipe  # noqa: E402
from pytest_trtbench.precision.quantize import RECIPE, quantize_qdq  # noqa: E402

FAST = ["--trt-gpu=cpu", "--trt-warmup-s=0.01", "--trt-blocks=3", "--trt-min-block-s=0.005", "-p", "no:cacheprovider"]

# --- calibration methods -----------------------------------------------------------------------------


def _matmul_model(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), str(path))


def _input_scale(path: Path) -> float:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    return float(inits[node.input[1]])


@pytest.fixture(scope="module")
def scales(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """The input's int8 range (scale x 127) per calibration method, on 16384 x 8 normal values with one outlier (50)."""
    folder = tmp_path_factory.mktemp("calib")
    src = folder / "m.onnx"
    _matmul_model(src)
    data = np.random.default_rng(1).normal(size=(16384, 8)).astype(np.float32)
    data[3, 2] = 50.0
    feeds = [{"x": data[i:i + 1024]} for i in range(0, len(data), 1024)]
    out = {}
    for method in ("minmax", "entropy", "percentile"):
        quantize_qdq(src, folder / f"{method}.onnx", feeds, method)
        out[method] = 127 * _input_scale(folder / f"{method}.onnx")
    return out


def test_minmax_calibration_covers_the_outlier(scales: dict[str, float]) -> None:
    assert scales["minmax"] == pytest.approx(50.0, rel=1e-3)


def test_percentile_calibration_clips_the_outlier(scales: dict[str, float]) -> None:
    # 99.999 % of |x| over 131072 values: the one outlier is left out, the normal values' tail (~4.4) is kept
    assert 3.5 < scales["percentile"] < 6.0


def test_entropy_calibration_clips_the_outlier(scales: dict[str, float]) -> None:
    # the KL threshold over 2048 bins (TensorRT's entropy calibrator's histogram) lands inside the normal values'
    # tail; with quantize_static's own 128 / 128 bins it would be the full range, 50 (the recipe passes 2048)
    assert 3.5 < scales["entropy"] < 10.0


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_methods_take_batches_of_different_sizes(tmp_path: Path, method: str) -> None:
    # 256 samples in batches of 100 end with 56: ORT's histogram collectors stack batches and fail on that alone;
    # the recipe re-cuts them into batches of the gcd (4), every sample kept
    from pytest_trtbench.precision.quantize import uniform_batches

    _matmul_model(tmp_path / "m.onnx")
    data = np.random.default_rng(2).normal(size=(256, 8)).astype(np.float32)
    feeds = [{"x": data[i:i + 100]} for i in range(0, 256, 100)]
    recut = uniform_batches(feeds)
    assert {len(f["x"]) for f in recut} == {4} and np.array_equal(np.concatenate([f["x"] for f in recut]), data)
    quantize_qdq(tmp_path / "m.onnx", tmp_path / "q.onnx", feeds, method)
    assert _input_scale(tmp_path / "q.onnx") > 0


def test_the_method_is_part_of_the_recipe_and_minmax_keeps_the_old_one() -> None:
    assert recipe("int8") == RECIPE == {
        "format": "QDQ", "activations": "int8-symmetric", "weights": "int8-per-channel-symmetric",
        "calibration": "minmax", "ops": "Conv,ConvTranspose,MatMul,Gemm", "nodes": "with-weights", "bias": "float"}
    assert recipe("int8", "entropy") == {**RECIPE, "calibration": "entropy", "entropy_bins": "2048/128"}
    assert recipe("int8", "percentile") == {**RECIPE, "calibration": "percentile"}
    assert recipe("fp32", "entropy") == {}


def test_the_method_changes_the_cache_key_and_the_default_adds_nothing(tmp_path: Path) -> None:
    from pytest_trtbench.backends.base import BuildRequest
    from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend
    from pytest_trtbench.device import DeviceInfo
    from pytest_trtbench.profile import InputRange, ShapeProfile

    _matmul_model(tmp_path / "m.onnx")
    profile = ShapeProfile.from_mapping({"x": InputRange((1, 8), (1, 8), (1, 8))})
    device = DeviceInfo(gpu="cpu", device_name="cpu", kind="cpu")
    fields = {m: key_fields(OnnxRuntimeBackend(), BuildRequest(
        tmp_path / "m.onnx", "int8", (profile,), device, None, {"calibration_method": m} if m else {}))
        for m in (None, "entropy", "percentile")}
    assert fields[None]["recipe"]["calibration"] == "minmax" and "calibration_method" not in fields[None]["options"]
    assert fields["entropy"]["recipe"]["calibration"] == "entropy"
    assert len({json.dumps(f, sort_keys=True, default=str) for f in fields.values()}) == 3


# --- suites with data, through the plugin --------------------------------------------------------------

DIGITS = Path(__file__).resolve().parents[1] / "suites" / "data" / "digits.csv.gz"

# An anomaly detector: class 1 ("anomaly") inputs are 20x larger than class 0 ("normal") ones. Calibrating on
# normal samples only clips every anomaly to the normal range: the classic one-class calibration mistake.
SUITE = '''
import os
import numpy as np
import torch
from torch import nn
from pytest_trtbench import Dataset, Input, Suite, Tolerance

def samples(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, 16)).astype(np.float32) * np.where(labels == 1, 2.0, 0.1)[:, None].astype(np.float32)
    return x, labels

def detector():
    x, y = samples(512, 0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    return model

def calibration():
    x, y = samples(256, 1)
    if os.environ.get("CALIBRATE_ON") == "normal-only":
        x = x[y == 0]
    return [(x[i:i + 32], None) for i in range(0, len(x), 32)]

def anomaly_recall(outputs, labels):
    return float(np.mean(outputs.argmax(axis=1)[labels == 1] == 1))

def evaluation():
    x, y = samples(400, 2)
    return [(x[i:i + 100], y[i:i + 100]) for i in range(0, 400, 100)]

test_detector = Suite(
    model=detector,
    inputs=[Input("x", shape=("batch", 16))],
    batch_sizes=[8],
    precisions=["fp32", "int8"],
    output_names=["logits"],
    classifier_outputs=["logits"],
    data=Dataset(evaluation=evaluation, calibration=calibration),
    calibration_method=os.environ.get("CALIBRATION_METHOD", "minmax"),
    metric=anomaly_recall if os.environ.get("METRIC") == "callable" else None,
    tolerances={"int8": Tolerance(atol=None, rtol=0.0, min_cosine=None, max_relative_metric_loss=BUDGET)},
)
'''


def _write(pytester: pytest.Pytester, budget: float = 0.01) -> None:
    pytester.makepyfile(test_detector=SUITE.replace("BUDGET", repr(budget)))


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["param"]: row for row in ({**r, "param": r["case_id"].split("[")[1][:-1]} for r in csv.DictReader(f))}


def test_a_data_suite_reports_the_task_metric_of_reference_and_engine(pytester: pytest.Pytester) -> None:
    _write(pytester)
    result = pytester.runpytest(*FAST, "--trt-report=r.csv")
    result.assert_outcomes(passed=2)
    rows = _rows(pytester.path / "r.csv")
    for param in ("onnxruntime-fp32-b8", "onnxruntime-int8-b8"):
        row = rows[param]
        assert row["status"] == "new" and row["task_metric"] == "top1"
        assert float(row["task_metric_reference"]) > 0.9               # the detector learned its task
        assert abs(float(row["task_metric_relative_loss"])) <= 0.01
    assert float(rows["onnxruntime-fp32-b8"]["task_metric_engine"]) == float(rows["onnxruntime-fp32-b8"]["task_metric_reference"])


def test_a_callable_metric_gates_like_a_built_in(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIC", "callable")
    monkeypatch.setenv("CALIBRATE_ON", "normal-only")                  # every anomaly clipped: recall collapses
    _write(pytester)
    result = pytester.runpytest(*FAST, "--trt-report=r.csv")
    result.assert_outcomes(passed=1, failed=1)
    rows = _rows(pytester.path / "r.csv")
    assert {r["task_metric"] for r in rows.values()} == {"anomaly_recall"}
    assert float(rows["onnxruntime-fp32-b8"]["task_metric_reference"]) > 0.9
    assert rows["onnxruntime-int8-b8"]["status"] == "accuracy_fail"
    assert "anomaly_recall" in rows["onnxruntime-int8-b8"]["reason"]


def test_one_class_calibration_is_caught_by_the_metric_gate(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALIBRATE_ON", "normal-only")
    _write(pytester)
    result = pytester.runpytest(*FAST, "--trt-report=r.csv")
    result.assert_outcomes(passed=1, failed=1)                         # fp32 passes, int8 fails
    row = _rows(pytester.path / "r.csv")["onnxruntime-int8-b8"]
    assert row["status"] == "accuracy_fail" and float(row["task_metric_relative_loss"]) > 0.1
    assert "max_relative_metric_loss 1.00 %" in row["reason"]
    result.stdout.fnmatch_lines(["*test_detector[[]onnxruntime-int8-b8[]]: accuracy_fail*",
                                 "*task metric top1 on 400 evaluation samples: engine*relative loss*"])


def test_a_later_drop_beyond_the_slack_is_an_accuracy_regression(pytester: pytest.Pytester,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _write(pytester, budget=0.9)                                       # a loose budget: only the baseline can catch it
    pytester.runpytest(*FAST, "--trt-update-baselines").assert_outcomes(passed=2)
    stored = json.loads((pytester.path / "baselines" / "cpu" / "test_detector.json").read_text())
    assert stored["schema_version"] == 4
    assert stored["cases"]["onnxruntime-int8-b8"]["task_metric"]["name"] == "top1"
    pytester.runpytest(*FAST).assert_outcomes(passed=2)               # unchanged: no regression
    monkeypatch.setenv("CALIBRATE_ON", "normal-only")
    result = pytester.runpytest(*FAST, "--trt-report=r.csv")
    result.assert_outcomes(passed=1, failed=1)
    row = _rows(pytester.path / "r.csv")["onnxruntime-int8-b8"]
    assert row["status"] == "accuracy_regression" and "task metric top1: loss vs reference" in row["reason"]


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_a_suites_calibration_method_builds_its_own_engine(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                           method: str) -> None:
    monkeypatch.setenv("CALIBRATION_METHOD", method)
    _write(pytester)
    pytester.runpytest(*FAST, "--trt-report=r.csv", "-k", "int8").assert_outcomes(passed=1)
    metas = [json.loads(p.read_text()) for p in (pytester.path / ".trtbench-cache").rglob("meta.json")]
    assert [m["backend"]["recipe"]["calibration"] for m in metas] == [method]
    assert float(_rows(pytester.path / "r.csv")["onnxruntime-int8-b8"]["task_metric_relative_loss"]) <= 0.01


def test_bad_data_errors_the_case_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_detector=SUITE.replace("BUDGET", "0.01").replace(
        "return [(x[i:i + 100], y[i:i + 100]) for i in range(0, 400, 100)]",
        "return [(x[i:i + 100], y[i:i + 99]) for i in range(0, 400, 100)]"))
    result = pytester.runpytest(*FAST, "--trt-report=r.csv", "-k", "fp32")
    result.assert_outcomes(failed=1)
    reason = _rows(pytester.path / "r.csv")["onnxruntime-fp32-b8"]["reason"]
    assert reason == ("suite test_detector: data: evaluation batch 0: 99 labels for a batch of 100 samples; labels "
                      "need one entry per sample (first axis)")
    assert "Traceback" not in result.stdout.str()


def test_labels_that_are_not_class_ids_error_instead_of_passing(pytester: pytest.Pytester) -> None:
    # 1-based labels (1, 2 for a two-class output): top-1 of the reference and the engine alike would be ~0.5
    # and any engine would pass the relative criterion
    pytester.makepyfile(test_detector=SUITE.replace("BUDGET", "0.01").replace(
        "return [(x[i:i + 100], y[i:i + 100]) for i in range(0, 400, 100)]",
        "return [(x[i:i + 100], y[i:i + 100] + 1) for i in range(0, 400, 100)]"))
    result = pytester.runpytest(*FAST, "--trt-report=r.csv", "-k", "fp32")
    result.assert_outcomes(failed=1)
    row = _rows(pytester.path / "r.csv")["onnxruntime-fp32-b8"]
    assert row["status"] == "error"
    assert row["reason"].startswith("suite test_detector: metric top1 failed on outputs [400, 2] and labels [400]: "
                                    "ValueError: label 2 is outside the output's classes 0..1 (1-based ids?")
    assert "Traceback" not in result.stdout.str()


def test_an_unknown_method_is_an_invalid_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALIBRATION_METHOD", "kl")
    _write(pytester)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*suite test_detector*invalid*unknown calibration_method 'kl'; choose from minmax, "
                                 "entropy, percentile*"])


def test_the_shipped_digits_file_is_the_uci_test_set() -> None:
    import gzip

    with gzip.open(DIGITS, "rt") as f:
        raw = np.loadtxt(f, delimiter=",")
    assert raw.shape == (1797, 65) and raw[:, :64].min() == 0 and raw[:, :64].max() == 16
    assert sorted(np.bincount(raw[:, 64].astype(int)).tolist())[0] >= 170   # 10 classes, ~180 images each


def test_the_shipped_digits_suite_passes_under_xdist_with_its_task_metric(tmp_path: Path) -> None:
    """suites/test_digits.py in a subprocess with two workers (the task metric travels in the outcome's JSON),
    own baselines and cache; what the README says: fp32 and int8 within the 1 % top-1 budget."""
    import subprocess
    import sys

    pytest.importorskip("xdist")
    repo = DIGITS.parents[2]
    report = tmp_path / "r.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/test_digits.py", "--trt-gpu=cpu", "--trt-backend=onnxruntime",
         f"--trt-cache-dir={tmp_path / 'cache'}", f"--trt-baseline-dir={tmp_path / 'baselines'}",
         f"--trt-report={report}", "-p", "no:cacheprovider", "-n", "2", "-W", "error"],
        cwd=repo, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = _rows(report)
    assert sorted(rows) == ["onnxruntime-fp32-b1", "onnxruntime-fp32-b32", "onnxruntime-int8-b1", "onnxruntime-int8-b32"]
    for row in rows.values():
        assert row["status"] == "new" and row["task_metric"] == "top1"
        assert float(row["task_metric_reference"]) > 0.9 and float(row["task_metric_relative_loss"]) <= 0.01
