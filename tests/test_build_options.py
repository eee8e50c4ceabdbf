"""Build options: parsed and checked in one place, part of the cache key, and really applied by a
TensorRT-RTX build on the CPU (read back from the builder config, not echoed from the request)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from pytest_trtbench.backends.base import BackendError, BuildRequest
from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend
from pytest_trtbench.build_options import check_build_options, parse_build_option
from pytest_trtbench.cache import cache_key, key_fields
from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.profile import InputRange, ShapeProfile
from pytest_trtbench.suite import Input, Suite, SuiteError

CPU = DeviceInfo(gpu="cpu", device_name="cpu", kind="cpu")
BATCH = ShapeProfile.from_mapping({"x": InputRange((1, 16), (4, 16), (8, 16))})
needs_rtx = pytest.mark.skipif(importlib.util.find_spec("tensorrt_rtx") is None, reason="needs tensorrt-rtx")


def test_values_are_parsed_to_their_type() -> None:
    assert parse_build_option("opt_level=3") == ("opt_level", 3)
    assert parse_build_option(" workspace_mib = 512 ") == ("workspace_mib", 512)
    assert parse_build_option("hardware_compat=AMPERE_PLUS") == ("hardware_compat", "ampere_plus")
    assert check_build_options({"opt_level": "2"}) == check_build_options({"opt_level": 2}) == {"opt_level": 2}


@pytest.mark.parametrize(("text", "error"), [
    ("opt_level", r"expected KEY=VALUE \(e.g. opt_level=3\), got 'opt_level'"),
    ("opt_lvl=3", r"unknown build option 'opt_lvl'; known: hardware_compat, opt_level, workspace_mib"),
    ("opt_level=9", r"build option opt_level: expected an integer in \[0, 5\], got '9'"),
    ("workspace_mib=lots", r"build option workspace_mib: expected an integer, got 'lots'"),
    ("hardware_compat=turing", r"build option hardware_compat: expected one of none, ampere_plus"),
])
def test_bad_options_name_the_rule(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_build_option(text)


def test_a_suite_checks_its_build_options() -> None:
    suite = Suite(model="m.onnx", inputs=[Input("x", (1,))], build_options={"opt_level": "1"})
    assert suite.build_options == {"opt_level": 1}
    with pytest.raises(SuiteError, match="unknown build option 'workspace'"):
        Suite(model="m.onnx", inputs=[Input("x", (1,))], build_options={"workspace": 1}, name="s").validate()


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
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--trt-build-option", "opt_level=9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--trt-build-option: build option opt_level: expected an integer in [[]0, 5[]], got '9'*"])
    pytester.makeini("[pytest]\ntrt_build_option = opt_lvl=1\n")
    pytester.makepyfile(test_mlp="""
        from pytest_trtbench import Input, Suite

        test_mlp = Suite(model="mlp.onnx", inputs=[Input("x", ("batch", 16))])
    """)
    result = pytester.runpytest_subprocess("--trt-gpu=cpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini trt_build_option: unknown build option 'opt_lvl'; known: *"])
