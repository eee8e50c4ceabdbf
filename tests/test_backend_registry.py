"""The backend registry: built-ins by name, third-party backends through the ``pytest_trtbench.backends``
entry-point group, and the proof that a backend living outside the package (tests/onnx_reference_backend.py)
runs real cases once registered. Nothing is installed into the environment: the entry point comes from a
throwaway ``.dist-info`` directory put on ``sys.path`` / ``PYTHONPATH``."""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from pytest_trtbench.backends import registry
from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend

HERE = Path(__file__).resolve().parent
EXTERNAL = "onnx-reference = onnx_reference_backend:OnnxReferenceBackend"


def throwaway_dist(site: Path, entry_points: str, name: str = "trtbench_onnx_reference") -> Path:
    """A distribution on *site* that declares *entry_points* (lines of the backends group) and ships
    tests/onnx_reference_backend.py; put *site* on ``sys.path`` to "install" it."""
    dist = site / f"{name}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{entry_points}\n", encoding="utf-8")
    shutil.copy(HERE / "onnx_reference_backend.py", site / "onnx_reference_backend.py")
    return site


def test_builtins_are_found_without_any_entry_point() -> None:
    assert registry.backend_names()[:2] == ("onnxruntime", "tensorrt")
    assert isinstance(registry.get_backend("onnxruntime"), OnnxRuntimeBackend)
    assert registry.get_backend("tensorrt").name == "tensorrt"


def test_an_unknown_name_lists_what_is_available() -> None:
    with pytest.raises(registry.BackendRegistryError, match=(
        r"unknown backend 'tensorrtt'; available: onnxruntime, tensorrt.* entry-point group 'pytest_trtbench.backends'"
    )):
        registry.get_backend("tensorrtt")


def test_an_entry_point_on_sys_path_is_a_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "onnx-reference" not in registry.backend_names()
    monkeypatch.syspath_prepend(str(throwaway_dist(tmp_path, EXTERNAL)))
    assert registry.backend_names() == ("onnxruntime", "tensorrt", "onnx-reference")
    backend = registry.get_backend("onnx-reference")
    assert type(backend).__module__ == "onnx_reference_backend" and backend.name == "onnx-reference"


@pytest.mark.parametrize(("line", "error"), [
    ("tensorrt = onnx_reference_backend:OnnxReferenceBackend", "reuses the name of a built-in backend"),
    ("onnx-reference = onnx_reference_backend:NoSuchClass", "cannot load backend onnx_reference_backend:NoSuchClass: "
                                                            "AttributeError"),
    ("onnx-ref = onnx_reference_backend:OnnxReferenceBackend", "made an object whose .name is 'onnx-reference'"),
    # a factory that raises (here: it needs an argument) names the backend, not only the exception
    ("onnx-reference = onnx_reference_backend:engine_precisions",
     r"backend 'onnx-reference' \(onnx_reference_backend:engine_precisions\) could not be made: TypeError: "),
])
def test_a_broken_entry_point_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str,
                                                error: str) -> None:
    monkeypatch.syspath_prepend(str(throwaway_dist(tmp_path, line)))
    with pytest.raises(registry.BackendRegistryError, match=error):
        registry.get_backend(line.split(" =")[0])


def test_our_own_entry_points_name_the_builtins_table() -> None:
    """pyproject declares the built-ins under the group too; the two must agree (an install made from this
    checkout would otherwise be refused as shadowing a built-in)."""
    import tomllib

    pyproject = tomllib.loads((HERE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["entry-points"][registry.ENTRY_POINT_GROUP] == registry.BUILTIN


def _suite_dir(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_precision import write_mlp

    write_mlp(pytester.path / "mlp.onnx")
    pytester.makepyfile(test_mlp="""
        from pytest_trtbench import Input, Suite

        test_mlp = Suite(model="mlp.onnx", inputs=[Input("x", ("batch", 16))], batch_sizes=[1, 4],
                         precisions=["fp32", "int8"])
    """)
    site = throwaway_dist(tmp_path / "site", EXTERNAL)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("TRTBENCH_CACHE_DIR", raising=False)


def test_a_backend_outside_the_package_runs_cases_through_the_entry_point(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _suite_dir(pytester, tmp_path, monkeypatch)
    result = pytester.runpytest_subprocess(
        "--trt-gpu=cpu", "--trt-backend=onnx-reference", "-p", "no:cacheprovider", "-v", "--trt-blocks=1",
        "--trt-report=report.csv",
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_mlp[[]onnx-reference-int8-b4[]] PASSED*"])
    with open(pytester.path / "report.csv", newline="") as f:
        rows = {row["case_id"]: row for row in csv.DictReader(f)}
    int8 = rows["test_mlp[onnx-reference-int8-b4]"]
    assert (int8["status"], int8["backend"], int8["engine_precisions"]) == ("new", "onnx-reference", "int8:2")
    assert float(int8["max_abs_err"]) > 0  # the quantized model really ran: it differs from the fp32 reference
    assert rows["test_mlp[onnx-reference-fp32-b1]"]["engine_precisions"] == "fp32:2"
    assert float(rows["test_mlp[onnx-reference-fp32-b1]"]["max_abs_err"]) < 1e-4
    entries = list((pytester.path / ".trtbench-cache" / "cpu" / "onnx-reference").iterdir())
    assert len([e for e in entries if (e / "engine.onnx").is_file()]) == 2  # one engine per precision


def test_trt_backend_is_validated_against_the_registry(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _suite_dir(pytester, tmp_path, monkeypatch)
    result = pytester.runpytest_subprocess("--trt-gpu=cpu", "--trt-backend=onnxruntime,onnx-refrence",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*unknown backend 'onnx-refrence'; available: onnxruntime, tensorrt, onnx-reference (a third-party*",
    ])
    pytester.makepyfile(test_other="""
        from pytest_trtbench import Input, Suite

        test_other = Suite(model="mlp.onnx", inputs=[Input("x", ("batch", 16))], backends=["onnx-refrence"])
    """)
    result = pytester.runpytest_subprocess("--trt-gpu=cpu", "-p", "no:cacheprovider", "test_other.py")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # one error for this suite; other suites would still run
    result.stdout.fnmatch_lines(["*suite test_other (test_other.py:3) is invalid: unknown backend 'onnx-refrence'; available:*"])


def _metas(root: Path, backend: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / ".trtbench-cache" / "cpu" / backend).glob("*/meta.json"))]


def test_a_third_party_backend_declares_the_build_options_it_accepts(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    _suite_dir(pytester, tmp_path, monkeypatch)
    args = ("--trt-gpu=cpu", "--trt-backend=onnx-reference", "-p", "no:cacheprovider", "--trt-blocks=1", "-k", "fp32")
    result = pytester.runpytest_subprocess(*args, "--trt-build-option", "min_opset=21")
    result.assert_outcomes(passed=2)
    (meta,) = _metas(pytester.path, "onnx-reference")
    assert meta["key_fields"]["options"] == {"min_opset": 21}  # parsed by the backend's own parser
    engine = onnx.load(str(pytester.path / ".trtbench-cache" / "cpu" / "onnx-reference" / meta["key"] / "engine.onnx"))
    assert [o.version for o in engine.opset_import if o.domain in ("", "ai.onnx")] == [21]  # the build applied it

    # a key no backend of the run declares, and a value the backend's parser refuses: one line each
    result = pytester.runpytest_subprocess(*args, "--trt-build-option", "opt_level=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --trt-build-option (ini trt_build_option): key 'opt_level' is not a build option of the backend(s) "
        "in use (onnx-reference); accepted keys: onnx-reference: min_opset",
    ])
    result = pytester.runpytest_subprocess(*args, "--trt-build-option", "min_opset=99")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --trt-build-option (ini trt_build_option): min_opset (onnx-reference): "
        "expected an integer in [[]1, 23[]], got '99'",
    ])

    # a suite's build_options are checked against the suite's own backends, naming the suite
    pytester.makepyfile(test_other="""
        from pytest_trtbench import Input, Suite

        test_other = Suite(model="mlp.onnx", inputs=[Input("x", ("batch", 16))], backends=["onnx-reference", "onnxruntime"],
                           build_options={"workspace_mib": 64})
    """)
    result = pytester.runpytest_subprocess("--trt-gpu=cpu", "-p", "no:cacheprovider", "test_other.py")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*suite test_other (test_other.py:3) is invalid: build_options: key 'workspace_mib' is not a build option of "
        "the backend(s) in use (onnx-reference, onnxruntime); accepted keys: onnx-reference: min_opset; onnxruntime: none",
    ])


def test_an_option_one_backend_declares_does_not_rebuild_another_backends_engines(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _suite_dir(pytester, tmp_path, monkeypatch)
    args = ("--trt-gpu=cpu", "--trt-backend=onnxruntime,onnx-reference", "-p", "no:cacheprovider", "--trt-blocks=1",
            "-k", "fp32", "--trt-report=report.csv")

    def engine_cache() -> dict[str, str]:
        with open(pytester.path / "report.csv", newline="") as f:
            return {row["backend"] + "-" + row["batch_size"]: row["engine_cache"] for row in csv.DictReader(f)}

    pytester.runpytest_subprocess(*args).assert_outcomes(passed=4)
    ort_keys = [m["key"] for m in _metas(pytester.path, "onnxruntime")]
    pytester.runpytest_subprocess(*args, "--trt-build-option", "min_opset=21").assert_outcomes(passed=4)
    cache = engine_cache()
    assert cache["onnxruntime-1"] == cache["onnxruntime-4"] == "hit"  # min_opset is not an ORT option
    assert "built" in {cache["onnx-reference-1"], cache["onnx-reference-4"]}  # it is one of onnx-reference's
    assert [m["key"] for m in _metas(pytester.path, "onnxruntime")] == ort_keys
    assert len(_metas(pytester.path, "onnx-reference")) == 2
