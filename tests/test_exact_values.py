"""Exact values of the pure functions users read in reports and failure messages (verdict reasons, default
tolerances, comparison metrics and messages, fingerprints, inputs, suite helpers, baseline migration).

Written to kill the mutants ``benchmarks/mutation_score.py`` found surviving: each asserts something a user
sees, computed independently here (by hand or with plain numpy), never copied from the function's output.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pytest_trtbench import Input, Suite, Tolerance
from pytest_trtbench.baseline import SCHEMA_VERSION, BaselineError, baseline_path, load_baselines
from pytest_trtbench.compare import accuracy_regressions, compare_output, compare_outputs
from pytest_trtbench.inputs import calibration_feeds, fingerprint, make_feeds, make_input, sample_at
from pytest_trtbench.suite import SuiteError
from pytest_trtbench.verdict import Verdict, decide_verdict

# --- verdict reasons ------------------------------------------------------------------------------

BASE = dict(accuracy_failures=[], accuracy_regressions=[], latency_verdict=None, latency_reason="", has_baseline=True)


def verdict(**kw: object) -> Verdict:
    return decide_verdict(**{**BASE, **kw})  # type: ignore[arg-type]


def test_verdict_reasons_are_exact() -> None:
    assert verdict(accuracy_failures=["a", "b"]) == Verdict("accuracy_fail", "a; b")
    assert verdict(accuracy_regressions=["r1", "r2"]) == Verdict("accuracy_regression", "r1; r2")
    assert verdict(latency_verdict="latency_regression", latency_reason="slower") == Verdict("latency_regression", "slower")
    assert verdict(has_baseline=False) == Verdict("new", "no baseline yet: record one with --trt-update-baselines")
    assert verdict(has_baseline=False, strict=True) == Verdict(
        "error", "no baseline yet: record one with --trt-update-baselines (--trt-strict fails new cases)")
    assert verdict(latency_verdict="improved", latency_reason="faster", notes=["n"]) == Verdict(
        "improved", "n; faster; update the baseline with --trt-update-baselines")
    assert verdict(latency_verdict="pass", latency_reason="same", notes=["n1", "n2"]) == Verdict("pass", "n1; n2; same")
    assert verdict() == Verdict("pass", "")
    assert verdict().failed is False and verdict(accuracy_failures=["x"]).failed is True


def test_verdict_does_not_change_the_callers_notes() -> None:
    notes = ["n"]
    verdict(latency_verdict="pass", latency_reason="same", notes=notes)
    assert notes == ["n"]


# --- tolerances and comparison -------------------------------------------------------------------------

def test_default_tolerances_per_precision() -> None:
    assert Tolerance.default_for("fp32") == Tolerance(atol=1e-4, rtol=1e-3, min_cosine=0.99999)
    assert Tolerance.default_for("tf32") == Tolerance(atol=1e-2, rtol=1e-2, min_cosine=0.999)
    assert Tolerance.default_for("fp16") == Tolerance(atol=1e-2, rtol=1e-2, min_cosine=0.999)
    assert Tolerance.default_for("bf16") == Tolerance(atol=5e-2, rtol=5e-2, min_cosine=0.995)
    for p in ("int8", "fp8"):
        assert Tolerance.default_for(p) == Tolerance(atol=None, rtol=0.0, min_cosine=0.98, min_top1=None)


def test_compare_output_metrics_by_hand() -> None:
    expected = np.array([[1.0, -2.0, 4.0], [0.5, 0.0, 3.0]], np.float32)
    actual = np.array([[1.1, -2.0, 4.0], [0.5, 0.2, 2.0]], np.float32)
    tol = Tolerance(atol=0.15, rtol=0.0, min_cosine=0.999, min_top1=1.0)
    got = compare_output("y", actual, expected, tol, classifier=True)
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    assert got.max_abs_err == pytest.approx(1.0) and got.mean_abs_err == pytest.approx(diff.mean())
    assert got.max_rel_err == math.inf  # 0.2 error on a 0.0 reference
    a, r = actual.astype(np.float64).ravel(), expected.astype(np.float64).ravel()
    assert got.cosine_similarity == pytest.approx(a @ r / np.linalg.norm(a) / np.linalg.norm(r))
    assert got.top1_agreement == 1.0  # both rows: argmax 2 in both
    assert (got.mismatches, got.total, got.nonfinite) == (2, 6, 0)  # 0.2 and 1.0 exceed 0.15
    assert got.required_atol == pytest.approx(1.0)
    assert not got.passed
    assert got.failures[0] == ("2 / 6 (33.33 %) elements exceed atol=0.15 + rtol=0*|ref| (max abs err 1; "
                               "atol >= 1 would pass)")
    assert got.failures[1].startswith("cosine similarity ") and got.failures[1].endswith(" < 0.999")
    assert len(got.failures) == 2  # top-1 1.0 >= min_top1 1.0 passes
    assert got.metrics() == {k: getattr(got, k) for k in (
        "max_abs_err", "max_rel_err", "mean_abs_err", "cosine_similarity", "top1_agreement", "nonfinite",
        "mismatches", "total", "required_atol")}


def test_compare_output_boundaries() -> None:
    ref = np.array([1.0, 2.0], np.float32)
    exactly = compare_output("y", ref + np.float32(0.5), ref, Tolerance(atol=0.5, rtol=0.0))
    assert exactly.passed and exactly.mismatches == 0  # |a - r| == atol passes (<=)
    rel = compare_output("y", np.array([1.1, 2.2]), np.array([1.0, 2.0]), Tolerance(atol=0.0, rtol=0.1 + 1e-9))
    assert rel.passed and rel.max_rel_err == pytest.approx(0.1)
    assert rel.required_atol == 0.0  # within rtol: no atol needed
    cos = compare_output("y", np.array([1.0, 0.0]), np.array([1.0, 0.0]), Tolerance(atol=None, min_cosine=1.0))
    assert cos.passed and cos.cosine_similarity == 1.0  # == min_cosine passes
    zeros = compare_output("y", np.zeros(3), np.zeros(3), Tolerance.default_for("fp32"))
    assert zeros.passed and zeros.cosine_similarity == 1.0 and zeros.max_rel_err == 0.0
    one_zero = compare_output("y", np.zeros(2), np.ones(2), Tolerance(atol=None))
    assert one_zero.cosine_similarity == 0.0
    binary = compare_output("y", np.array([[0.2, 0.8]]), np.array([[0.9, 0.1]]), Tolerance(atol=None, min_top1=1.0),
                            classifier=True)
    assert binary.top1_agreement == 0.0 and binary.failures == ["top-1 agreement 0.00 % < 100.00 %"]
    one_class = compare_output("y", np.array([[0.2]]), np.array([[0.9]]), Tolerance(atol=None), classifier=True)
    assert one_class.top1_agreement is None
    flat = compare_output("y", np.array([0.2, 0.8]), np.array([0.9, 0.1]), Tolerance(atol=None), classifier=True)
    assert flat.top1_agreement is None  # 1-D: no class axis
    not_classifier = compare_output("y", np.array([[0.2, 0.8]]), np.array([[0.9, 0.1]]), Tolerance(atol=None))
    assert not_classifier.top1_agreement is None
    empty = compare_output("y", np.zeros(0), np.zeros(0), Tolerance.default_for("fp32"))
    assert (empty.max_abs_err, empty.max_rel_err, empty.mean_abs_err, empty.required_atol) == (0.0, 0.0, 0.0, 0.0)


def test_nan_and_shape_mismatch_fail_with_their_own_messages() -> None:
    nan = compare_output("y", np.array([1.0, math.nan, math.inf]), np.ones(3), Tolerance(atol=None, min_cosine=None))
    assert not nan.passed and nan.nonfinite == 2 and nan.cosine_similarity == 0.0
    assert nan.failures == ["2 of 3 elements are NaN or Inf"] and nan.max_abs_err == math.inf
    shape = compare_output("y", np.ones((2, 3)), np.ones((3, 2)), Tolerance())
    assert not shape.passed and shape.failures == ["shape (2, 3) != reference shape (3, 2)"]
    assert (shape.max_abs_err, shape.cosine_similarity, shape.top1_agreement, shape.mismatches, shape.total) == (
        math.inf, 0.0, None, 6, 6)
    assert shape.required_atol == math.inf and shape.nonfinite == 0


def test_compare_outputs_per_output_tolerance_and_a_missing_output() -> None:
    expected = {"a": np.ones((2, 2)), "b": np.ones(2)}
    got = compare_outputs({"a": np.ones((2, 2)) * 1.5}, expected,
                          lambda name: Tolerance(atol=1.0) if name == "a" else Tolerance(), ["a"])
    assert [c.name for c in got] == ["a", "b"]
    assert got[0].passed and got[0].top1_agreement == 1.0
    assert not got[1].passed and got[1].failures == ["engine produced no output 'b' (it has ['a'])"]
    assert (got[1].max_abs_err, got[1].cosine_similarity, got[1].total, got[1].required_atol) == (math.inf, 0.0, 0, math.inf)


def test_accuracy_regression_limits_and_messages() -> None:
    tol = lambda name: Tolerance(atol=1e-2)  # noqa: E731  floor = 1e-3
    base = {"y": {"max_abs_err": 1e-2, "mean_abs_err": 1e-3, "cosine_similarity": 0.99}}
    at_limit = {"y": {"max_abs_err": 1e-2 * 1.5 + 1e-3, "mean_abs_err": 1e-3 * 1.5 + 1e-3,
                      "cosine_similarity": 1 - (0.01 * 1.5 + 0.9e-6)}}
    assert accuracy_regressions(at_limit, base, tol) == []  # the limit itself passes
    over = {"y": {"max_abs_err": 0.02, "mean_abs_err": 0.003, "cosine_similarity": 0.98}}
    assert accuracy_regressions(over, base, tol) == [
        "y.max_abs_err 0.02 > baseline 0.01 (+50% + 0.001 slack)",
        "y.mean_abs_err 0.003 > baseline 0.001 (+50% + 0.001 slack)",
        "y.cosine_similarity 0.980000 fell below baseline 0.990000",
    ]
    # atol None: a floor of 1e-3; missing metrics and outputs without a baseline are skipped
    no_atol = lambda name: Tolerance(atol=None)  # noqa: E731
    assert accuracy_regressions({"y": {"max_abs_err": 0.0159}}, {"y": {"max_abs_err": 0.01}}, no_atol) == []
    assert accuracy_regressions({"y": {"max_abs_err": 0.0161}}, {"y": {"max_abs_err": 0.01}}, no_atol) != []
    assert accuracy_regressions({"y": {"mean_abs_err": 9.0}}, {"y": {"max_abs_err": 0.01}}, no_atol) == []
    assert accuracy_regressions({"z": {"max_abs_err": 9.0}}, {"y": {"max_abs_err": 0.01}}, no_atol) == []
    two = accuracy_regressions({"y": {"max_abs_err": 9.0}, "z": {"max_abs_err": 9.0}},
                               {"y": {"max_abs_err": 0.0}, "z": {"max_abs_err": 0.0}}, no_atol)
    assert [m.split(".")[0] for m in two] == ["y", "z"]
    assert accuracy_regressions(over, base, tol, slack=2.0)[:1] == []  # 0.02 <= 0.01 * 3 + 0.001


# --- inputs and fingerprints ----------------------------------------------------------------------------

def test_fingerprint_structure_by_hand() -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    fp = fingerprint(arr, samples=5, seed=3)
    assert fp["shape"] == [3, 4] and len(fp["indices"]) == 5 == len(set(fp["indices"]))
    assert fp["indices"] == sorted(fp["indices"]) and all(0 <= i < 12 for i in fp["indices"])
    assert fp["values"] == [float(arr.ravel()[i]) for i in fp["indices"]]
    assert (fp["mean"], fp["min"], fp["max"]) == (0.5, -5.0, 6.0)
    assert fp["std"] == pytest.approx(float(np.std(np.arange(12))))
    assert fingerprint(arr, samples=5, seed=3) == fp and fingerprint(arr, samples=5, seed=4) != fp
    assert fingerprint(arr, samples=100)["indices"] == list(range(12))  # capped at the size, no repeats
    empty = fingerprint(np.zeros((0, 3)))
    assert empty == {"shape": [0, 3], "indices": [], "values": [], "mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0}
    assert list(sample_at(arr, [0, 11])) == [-5.0, 6.0]
    assert sample_at(arr, [1]).dtype == np.float64


def test_fingerprint_sample_depends_on_the_shape_and_seed() -> None:
    arr = np.arange(1000, dtype=np.float64)
    a = fingerprint(arr, samples=8, seed=0)["indices"]
    assert fingerprint(arr.reshape(10, 100), samples=8, seed=0)["indices"] != a
    assert fingerprint(arr, samples=8, seed=1)["indices"] != a
    assert isinstance(fingerprint(arr.astype(np.int32))["mean"], float)


def test_inputs_by_dtype_range_and_stream() -> None:
    ints = make_input(Input("i", (4, 50), "int32", (3, 7)), (4, 50), seed=0)
    assert ints.dtype == np.int32 and ints.shape == (4, 50) and ints.min() >= 3 and ints.max() <= 6
    assert set(np.unique(ints)) == {3, 4, 5, 6}  # [low, high)
    flags = make_input(Input("b", (1000,), "bool"), (1000,), seed=0)
    assert flags.dtype == np.bool_ and 400 < int(flags.sum()) < 600
    floats = make_input(Input("x", (1000,), "float16", (2.0, 3.0)), (1000,), seed=0)
    assert floats.dtype == np.float16 and floats.min() >= 2.0 and floats.max() <= 3.0
    spec = Input("x", (8,))
    base = make_input(spec, (8,), seed=0)
    assert np.array_equal(make_input(spec, (8,), seed=0), base)
    for other in (make_input(spec, (8,), seed=1), make_input(Input("z", (8,)), (8,), seed=0),
                  make_input(spec, (8,), seed=0, stream="calibration"), make_input(spec, (8,), seed=0, index=1)):
        assert not np.array_equal(other, base)
    assert not np.array_equal(make_input(spec, (2, 4), seed=0).ravel(), base)


def test_user_data_gets_the_shape_and_a_seeded_rng() -> None:
    seen = []

    def data(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        seen.append(shape)
        return rng.integers(0, 100, size=shape)

    spec = Input("ids", (2, 3), "int64", data=data)
    a = make_input(spec, (2, 3), seed=5)
    assert seen == [(2, 3)] and a.dtype == np.int64 and np.array_equal(a, make_input(spec, (2, 3), seed=5))
    with pytest.raises(ValueError, match=r"input 'bad': data\(\) returned shape \(3,\), expected \(2, 3\)"):
        make_input(Input("bad", (2, 3), data=lambda shape, rng: np.zeros(3)), (2, 3), seed=0)


def test_feeds_and_calibration_streams() -> None:
    suite = Suite(model="m.onnx", inputs=[Input("x", ("batch", 4)), Input("y", (2,))], calibration_batches=3, name="s", seed=7)
    feeds = make_feeds(suite, {"x": (2, 4), "y": (2,)})
    assert sorted(feeds) == ["x", "y"] and feeds["x"].shape == (2, 4)
    assert np.array_equal(feeds["x"], make_input(suite.inputs[0], (2, 4), seed=7))
    calib = list(calibration_feeds(suite, {"x": (2, 4), "y": (2,)}))
    assert len(calib) == 3 and not np.array_equal(calib[0]["x"], feeds["x"])
    assert not np.array_equal(calib[0]["x"], calib[1]["x"])
    assert np.array_equal(calib[1]["x"], make_input(suite.inputs[0], (2, 4), seed=7, stream="calibration", index=1))
    own = [{"x": np.ones((1, 4), np.float32)}]
    user = Suite(model="m.onnx", inputs=[Input("x", ("batch", 4))], calibration=lambda: own, name="u")
    assert list(calibration_feeds(user, {"x": (2, 4)})) == own


# --- suite helpers -----------------------------------------------------------------------------------

def test_tolerance_for_per_precision_and_output() -> None:
    a, b, star = Tolerance(atol=1.0), Tolerance(atol=2.0), Tolerance(atol=3.0)
    suite = Suite(model="m.onnx", inputs=[Input("x", (1,))], precisions=["fp32", "fp16", "int8"],
                  tolerances={"fp32": a, "fp16": {"out": b, "*": star}, "int8": {"out": b}})
    assert suite.tolerance_for("fp32", "anything") is a
    assert suite.tolerance_for("fp16", "out") is b and suite.tolerance_for("fp16", "other") is star
    assert suite.tolerance_for("int8", "other") == Tolerance.default_for("int8")
    assert suite.tolerance_for("bf16", "out") == Tolerance.default_for("bf16")


def test_case_labels_and_model_paths(tmp_path: Path) -> None:
    suite = Suite(model="models/m.onnx", inputs=[Input("x", ("batch", "seq")), Input("m", ("batch",))],
                  dims={"seq": [16]}, name="s", source_file="suites/test_s.py")
    case = suite.cases(["onnxruntime"])[0]
    assert case.shapes_label() == "m=1;x=1x16" and case.param_id == "onnxruntime-fp32-b1-seq16"
    assert case.case_id == "s[onnxruntime-fp32-b1-seq16]" and str(case) == case.param_id
    assert suite.onnx_path() == Path("suites/models/m.onnx")
    assert Suite(model=str(tmp_path / "m.onnx"), inputs=[Input("x", (1,))], source_file="a/b.py").onnx_path() == tmp_path / "m.onnx"
    assert Suite(model="m.onnx", inputs=[Input("x", (1,))]).onnx_path() == Path("m.onnx")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"precisions": ["fp64"]}, "unknown precision 'fp64'; choose from fp32, tf32, fp16, bf16, int8, fp8"),
    ({"batch_sizes": []}, r"batch_sizes must be positive integers, got \[\]"),
    ({"batch_sizes": [1, 0]}, r"batch_sizes must be positive integers, got \[1, 0\]"),
])
def test_bad_suites_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    args = {"model": "m.onnx", "inputs": [Input("x", (1,))], **kwargs}
    suite = Suite(**args)  # type: ignore[arg-type]
    with pytest.raises(SuiteError, match=f"^{message}$"):
        suite.validate()


def test_cases_expand_backends_precisions_and_grid_in_order() -> None:
    suite = Suite(model="m.onnx", inputs=[Input("x", ("batch", "seq"))], batch_sizes=[1, 4], dims={"seq": [8, 16]},
                  precisions=["fp32", "int8"], name="s")
    ids = [c.param_id for c in suite.cases(["onnxruntime", "tensorrt"])]
    assert ids[:4] == ["onnxruntime-fp32-b1-seq8", "onnxruntime-fp32-b1-seq16", "onnxruntime-fp32-b4-seq8",
                       "onnxruntime-fp32-b4-seq16"]
    assert len(ids) == 16 and ids[-1] == "tensorrt-int8-b4-seq16"
    assert [c.param_id for c in suite.cases()][:1] == ["onnxruntime-fp32-b1-seq8"]  # default backend
    named = Suite(model="m.onnx", inputs=[Input("x", ("batch",))], backends=["tensorrt"], name="n")
    assert [c.backend for c in named.cases(["onnxruntime"])] == ["tensorrt"]
    case = suite.cases(["onnxruntime"])[3]
    assert case.dims == (("batch", 4), ("seq", 16)) and case.shapes == (("x", (4, 16)),) and case.batch_size == 4


# --- baselines -------------------------------------------------------------------------------------

def test_schema_v1_without_blocks_migrates_to_an_empty_history(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"schema_version": 1, "cases": {
        "a": {"latency": {"median_ms": 1.0}}, "b": {"latency": {"blocks": [{"median_ms": 1.0, "iqr_ms": 0, "n": 1}]}},
        "c": {"accuracy": {}}, "d": {"latency": {"runs": [[]], "blocks": []}}}}))
    cases = load_baselines(path)
    assert cases["a"]["latency"]["runs"] == [] and [r["blocks"] for r in cases["b"]["latency"]["runs"]] == [[{"median_ms": 1.0, "iqr_ms": 0, "n": 1}]]
    assert cases["c"] == {"accuracy": {}} and [r["blocks"] for r in cases["d"]["latency"]["runs"]] == [[]]
    assert SCHEMA_VERSION == 4


@pytest.mark.parametrize("version", [5, None, "2"])
def test_unknown_schema_versions_are_refused_with_the_fix(tmp_path: Path, version: object) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"schema_version": version, "cases": {}}))
    with pytest.raises(BaselineError, match=rf"s\.json: schema_version {version!r} is not one this plugin reads "
                                            r"\(it writes 4\); upgrade pytest-trtbench or re-record with --trt-update-baselines"):
        load_baselines(path)


def test_baseline_files_live_per_gpu_and_suite(tmp_path: Path) -> None:
    assert baseline_path(tmp_path, "a10", "test_mlp") == tmp_path / "a10" / "test_mlp.json"
    assert load_baselines(tmp_path / "missing.json") == {}
    bad = tmp_path / "nan.json"
    bad.write_text('{"schema_version": 2, "cases": {"a": {"x": NaN}}}')
    with pytest.raises(BaselineError, match="malformed baseline JSON"):
        load_baselines(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(BaselineError, match="not a pytest-trtbench baseline"):
        load_baselines(bad)


@pytest.mark.parametrize("t", [-3.0, -0.5, 0.0, 0.3, 1.0, 2.5, 8.0])
def test_student_t_cdf_matches_closed_forms(t: float) -> None:
    """df = 1 (Cauchy) and df = 2 have closed forms: 1/2 + atan(t)/pi and 1/2 + t / (2 sqrt(2 + t^2))."""
    from pytest_trtbench.regression import student_t_cdf

    assert student_t_cdf(t, 1.0) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
    assert student_t_cdf(t, 2.0) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
