"""Build options: parsed and checked in one place, part of the cache key, and really applied by a
TensorRT-RTX build on the CPU (read back from the builder config, not echoed from the request)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from pytest_trtbench.backends.base import BackendError, BuildRequest
from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend
from pytest_trtbench.build_options import check_accepted, declared_options, options_for, parse_build_option
from pytest_trtbench.cache import cache_key, key_fields
from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.profile import InputRange, ShapeProfile
from pytest_trtbench.suite import Input, Suite, SuiteError

CPU = DeviceInfo(gpu="cpu", device_name="cpu", kind="cpu")
BATCH = ShapeProfile.from_mapping({"x": InputRange((1, 16), (4, 16), (8, 16))})
needs_rtx = pytest.mark.skipif(importlib.util.find_spec("tensorrt_rtx") is None, reason="needs tensorrt-rtx")


def test_values_are_parsed_by_the_backend_that_declares_them() -> None:
    from pytest_trtbench.backends.tensorrt import TensorRTBackend

    assert parse_build_option(" workspace_mib = 512 ") == ("workspace_mib", "512")  # text until a backend parses it
    trt = TensorRTBackend()
    assert options_for(trt, {"opt_level": "3", "hardware_compat": "AMPERE_PLUS"}) == {"opt_level": 3,
                                                                                      "hardware_compat": "ampere_plus"}
    assert options_for(trt, {"opt_level": "2"}) == options_for(trt, {"opt_level": 2}) == {"opt_level": 2}
    assert options_for(OnnxRuntimeBackend(), {"opt_level": "2", "fp32_ops": ["Gemm"]}) == {"fp32_ops": ["Gemm"]}
    assert sorted(declared_options(trt)) == ["hardware_compat", "opt_level", "workspace_mib"]
    assert declared_options(OnnxRuntimeBackend()) == {}


@pytest.mark.parametrize(("options", "error"), [
    ({"opt_lvl": "3"}, r"^--trt-build-option: key 'opt_lvl' is not a build option of the backend\(s\) in use "
                       r"\(onnxruntime, tensorrt\); accepted keys: onnxruntime: none; tensorrt: hardware_compat, "
                       r"opt_level, workspace_mib$"),
    ({"opt_level": "9"}, r"^--trt-build-option: opt_level \(tensorrt\): expected an integer in \[0, 5\], got '9'$"),
    ({"workspace_mib": "lots"}, r"workspace_mib \(tensorrt\): expected an integer, got 'lots'"),
    ({"hardware_compat": "turing"}, r"hardware_compat \(tensorrt\): expected one of none, ampere_plus"),
])
def test_bad_options_name_where_the_key_and_the_accepted_keys(options: dict, error: str) -> None:
    from pytest_trtbench.backends.tensorrt import TensorRTBackend

    with pytest.raises(ValueError, match=error):
        check_accepted(options, [OnnxRuntimeBackend(), TensorRTBackend()], "--trt-build-option")


def test_option_syntax_is_checked_when_given() -> None:
    with pytest.raises(ValueError, match=r"expected KEY=VALUE \(e.g. opt_level=3\), got 'opt_level'"):
        parse_build_option("opt_level")


def test_a_suite_checks_the_form_of_its_build_options() -> None:
    with pytest.raises(SuiteError, match="build_options must be a dict of option name -> value, got list"):
        Suite(model="m.onnx", inputs=[Input("x", (1,))], build_options=["opt_level"], name="s").validate()  # type: ignore[arg-type]
    with pytest.raises(SuiteError, match="build_options keys must be option names"):
        Suite(model="m.onnx", inputs=[Input("x", (1,))], build_options={3: 1}, name="s").validate()


def _harness(tmp_path: Path, **session_options: str):  # noqa: ANN202
    from pytest_trtbench.runner import Harness
    from pytest_trtbench.settings import Settings

    settings = Settings(device=CPU, cache_dir=tmp_path / "cache", baseline_dir=tmp_path / "baselines",
                        build_options=session_options)
    return Harness(settings)


def test_each_backend_is_keyed_only_by_the_options_it_declares(tmp_path: Path) -> None:
    from test_precision import write_mlp

    mlp = write_mlp(tmp_path / "mlp.onnx")
    suite = Suite(model=str(mlp), inputs=[Input("x", ("batch", 16))], build_options={"workspace_mib": 64},
                  name="test_mlp")
    (ort_case,) = suite.cases(["onnxruntime"])
    (trt_case,) = suite.cases(["tensorrt"])
    plain, tuned = _harness(tmp_path / "a"), _harness(tmp_path / "b", opt_level="1")
    try:
        assert tuned.build_request(ort_case).options == plain.build_request(ort_case).options == {}
        ort = OnnxRuntimeBackend()
        keys = [cache_key(key_fields(ort, h.build_request(ort_case))) for h in (plain, tuned)]
        assert keys[0] == keys[1]  # a TensorRT-only option does not rebuild ONNX Runtime entries
        assert plain.build_request(trt_case).options == {"workspace_mib": 64}
        assert tuned.build_request(trt_case).options == {"opt_level": 1, "workspace_mib": 64}
    finally:
        plain.close()
        tuned.close()


def test_an_unchanged_suite_keeps_its_cache_key(tmp_path: Path) -> None:
    """Before backends declared their options, a request carried every session and suite option (parsed)
    plus ``fp32_ops``, and the key hashed that dict. Where all of them belong to the backend the dict is the
    same now, so the entries already in users' caches keep their keys (the format of the key is unchanged)."""
    from test_precision import write_mlp

    mlp = write_mlp(tmp_path / "mlp.onnx")
    bare = Suite(model=str(mlp), inputs=[Input("x", ("batch", 16))], name="test_bare")
    tuned = Suite(model=str(mlp), inputs=[Input("x", ("batch", 16))], name="test_tuned",
                  build_options={"workspace_mib": "64"}, fp32_ops=["Gemm"], precisions=["fp16"])
    harness, none = _harness(tmp_path, opt_level="2"), _harness(tmp_path / "none")
    try:
        (bare_ort,) = bare.cases(["onnxruntime"])
        assert none.build_request(bare_ort).options == {}
        (tuned_trt,) = tuned.cases(["tensorrt"])
        assert harness.build_request(tuned_trt).options == {"opt_level": 2, "workspace_mib": 64, "fp32_ops": ["Gemm"]}
        fields = key_fields(OnnxRuntimeBackend(), BuildRequest(mlp, "fp32", (BATCH,), CPU))
        assert fields["options"] == {} and "options" in fields  # the field the old keys hashed, same shape
    finally:
        harness.close()
        none.close()


def test_build_options_are_part_of_the_cache_key(tmp_path: Path) -> None:
    from test_precision import write_mlp

    mlp = write_mlp(tmp_path / "mlp.onnx")
    backend = OnnxRuntimeBackend()

    def key(**options: object) -> str:
        return cache_key(key_fields(backend, BuildRequest(mlp, "fp32", (BATCH,), CPU, options=options)))

    assert key() == key()
    assert key(opt_level=1) != key() and key(opt_level=1) != key(opt_level=2)
    assert key(opt_level=1, workspace_mib=64) == key(workspace_mib=64, opt_level=1)


@needs_rtx
def test_tensorrt_rtx_applies_opt_level_and_workspace(tmp_path: Path) -> None:
    from test_precision import write_mlp

    from pytest_trtbench.backends.tensorrt import TensorRTBackend

    mlp = write_mlp(tmp_path / "mlp.onnx")
    applied = {}
    for name, options in {"default": {}, "set": {"opt_level": 1, "workspace_mib": 64}}.items():
        out = tmp_path / name
        out.mkdir()
        result = TensorRTBackend("tensorrt_rtx").build(BuildRequest(mlp, "fp32", (BATCH,), CPU, options=options), out, tmp_path)
        assert (out / "engine.plan").stat().st_size > 0
        applied[name] = result.metadata["builder_config"]
    assert applied["set"] == {"opt_level": 1, "workspace_bytes": 64 << 20}
    assert applied["default"]["opt_level"] == 3 and applied["default"]["workspace_bytes"] != 64 << 20


@needs_rtx
def test_hardware_compat_is_refused_where_the_library_has_none(tmp_path: Path) -> None:
    from test_precision import write_mlp

    from pytest_trtbench.backends.tensorrt import TensorRTBackend

    mlp = write_mlp(tmp_path / "mlp.onnx")
    request = BuildRequest(mlp, "fp32", (BATCH,), CPU, options={"hardware_compat": "ampere_plus"})
    with pytest.raises(BackendError, match="tensorrt_rtx .* has no hardware compatibility levels: drop build option"):
        TensorRTBackend("tensorrt_rtx").build(request, tmp_path, tmp_path)


SUITE = """
    from pytest_trtbench import Input, Suite

    test_mlp = Suite(model="mlp.onnx", inputs=[Input("x", ("batch", 16))], batch_sizes=[1, 4],
                     build_options={"workspace_mib": 64})
"""


def _entries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob(".trtbench-cache/cpu/tensorrt/*/meta.json"))]


@needs_rtx
def test_cli_ini_and_suite_options_reach_a_real_build(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_precision import write_mlp

    monkeypatch.delenv("TRTBENCH_CACHE_DIR", raising=False)
    write_mlp(pytester.path / "mlp.onnx")
    pytester.makepyfile(test_mlp=SUITE)
    pytester.makeini("[pytest]\ntrt_build_option =\n    opt_level=2\n    workspace_mib=16\n")
    args = ("--trt-gpu=cpu", "--trt-backend=tensorrt", "-p", "no:cacheprovider")

    result = pytester.runpytest_subprocess(*args, "--trt-build-option", "opt_level=1")
    result.assert_outcomes(passed=2)
    (entry,) = _entries(pytester.path)
    # the command line beats the ini for opt_level; the suite beats both for workspace_mib
    assert entry["key_fields"]["options"] == {"opt_level": 1, "workspace_mib": 64}
    assert entry["backend"]["builder_config"] == {"opt_level": 1, "workspace_bytes": 64 << 20}

    result = pytester.runpytest_subprocess(*args)  # the ini's opt_level=2: another engine
    result.assert_outcomes(passed=2)
    levels = sorted(e["backend"]["builder_config"]["opt_level"] for e in _entries(pytester.path))
    assert levels == [1, 2]


def test_bad_build_options_are_usage_errors(pytester: pytest.Pytester) -> None:
    from test_precision import write_mlp

    write_mlp(pytester.path / "mlp.onnx")
    pytester.makepyfile(test_mlp="""
        from pytest_trtbench import Input, Suite

        test_mlp = Suite(model="mlp.onnx", inputs=[Input("x", ("batch", 16))])
    """)
    result = pytester.runpytest_subprocess("--trt-gpu=cpu", "--trt-backend=tensorrt", "--trt-build-option", "opt_level=9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --trt-build-option (ini trt_build_option): opt_level (tensorrt): "
                                 "expected an integer in [[]0, 5[]], got '9'"])
    result = pytester.runpytest_subprocess("--trt-build-option", "opt_level")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--trt-build-option: expected KEY=VALUE (e.g. opt_level=3), got 'opt_level'*"])
    pytester.makeini("[pytest]\ntrt_build_option = opt_lvl=1\n")
    result = pytester.runpytest_subprocess("--trt-gpu=cpu", "--trt-backend=onnxruntime")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --trt-build-option (ini trt_build_option): key 'opt_lvl' is not a build "
                                 "option of the backend(s) in use (onnxruntime); accepted keys: onnxruntime: none"])
