"""Bring-your-own-model behaviour through the plugin: ONNX-file suites without ``inputs``, output
names checked, per-suite validation, anchored baselines, cache size and pruning, temp dirs cleaned."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import corpus_models as C  # noqa: E402

from pytest_trtbench.__main__ import main as cli  # noqa: E402
from pytest_trtbench.cache_admin import list_entries, parse_age, parse_size, prune, tree_bytes  # noqa: E402

FAST = ["--trt-gpu=cpu", "--trt-backend=onnxruntime", "--trt-warmup-s=0.01", "--trt-blocks=3",
        "--trt-min-block-s=0.005", "-p", "no:cacheprovider"]
REPO = Path(__file__).resolve().parents[1]


def read_report(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["case_id"]: row for row in csv.DictReader(f)}


def test_onnx_suites_need_no_inputs_and_a_broken_suite_errors_alone(pytester: pytest.Pytester) -> None:
    C.write_onnx_files(pytester.path / "models")
    pytester.makepyfile(test_own='''
from pytest_trtbench import Suite

test_head = Suite(model="models/squeezenet_ir3.onnx", precisions=["fp32", "int8"])
test_wrong_output = Suite(model="models/squeezenet_ir3.onnx", output_names=["prob"])
test_bad_precision = Suite(model="models/mlp_opset9_gemm.onnx", precisions=["fp64"])
test_missing_dim = Suite(model="models/int64_embedding_bag.onnx")
test_ids = Suite(model="models/int64_embedding_bag.onnx", batch_sizes=[2], dims={"seq": [5]})
''')
    result = pytester.runpytest(*FAST, "--trt-report=r.csv")
    result.assert_outcomes(passed=3, errors=3)
    out = result.stdout.str()
    for line in [
        "suite test_wrong_output (test_own.py:4) is invalid: output_names names ['prob'], which "
        "squeezenet_ir3.onnx does not output; its outputs are ['softmaxout_1']",
        "suite test_bad_precision (test_own.py:5) is invalid: unknown precision 'fp64'; choose from fp32,",
        "suite test_missing_dim (test_own.py:6) is invalid: int64_embedding_bag.onnx has dynamic dims ['seq']; "
        "give their values, e.g. dims={'seq': [16]}",
    ]:
        assert line in out
    assert out.count("ERROR at setup of") == 3 and "Traceback" not in out
    rows = read_report(pytester.path / "r.csv")
    head = rows["test_head[onnxruntime-fp32-b1]"]
    assert head["status"] == "new" and float(head["top1_agreement"]) == 1.0  # [1, 10, 1, 1] head gets top-1
    assert head["model_normalized"] == "dropped 10 initializer(s) from the graph inputs; IR version 3 -> 4"
    assert "opset 7 -> 13" in rows["test_head[onnxruntime-int8-b1]"]["model_normalized"]
    assert rows["test_ids[onnxruntime-fp32-b2-seq5]"]["status"] == "new"


def _project(root: Path) -> Path:
    """project/ with baselines/ and suites/test_p.py, no ini file anywhere."""
    C.write_onnx_files(root / "project" / "suites" / "models")
    (root / "project" / "baselines").mkdir(parents=True)
    suite = root / "project" / "suites" / "test_p.py"
    suite.write_text('from pytest_trtbench import Suite\n\n'
                     'test_p = Suite(model="models/mlp_opset9_gemm.onnx", batch_sizes=[2])\n', encoding="utf-8")
    (root / "elsewhere").mkdir()
    return suite


def _run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", *args, *FAST], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


def test_baselines_are_anchored_at_the_suite_project_without_an_ini_file(tmp_path: Path) -> None:
    suite = _project(tmp_path)
    project = tmp_path / "project"
    first = _run(tmp_path / "elsewhere", str(suite), "--trt-update-baselines")
    assert first.returncode == 0, first.stdout[-2000:]
    assert (project / "baselines" / "cpu" / "test_p.json").is_file()
    assert (project / ".trtbench-cache" / "cpu").is_dir() and not (tmp_path / "elsewhere" / ".trtbench-cache").exists()
    assert f"baselines: {project / 'baselines' / 'cpu'} (anchored at the suite project (baselines/ in {project}))" \
        in first.stdout
    again = _run(project / "suites", "test_p.py", f"--trt-report={tmp_path / 'r.csv'}", "--trt-no-latency-gate")
    assert again.returncode == 0 and "cache hit" in again.stdout
    assert {row["status"] for row in read_report(tmp_path / "r.csv").values()} == {"pass"}

    elsewhere = _run(tmp_path / "elsewhere", str(suite), f"--trt-baseline-dir={tmp_path / 'elsewhere' / 'bl'}")
    assert elsewhere.returncode == 0
    assert f"warning: every case is new, but {project / 'baselines'} exists and was not used" in elsewhere.stdout


def test_an_ini_file_anchors_relative_dirs(tmp_path: Path) -> None:
    suite = _project(tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # above project/, which has baselines/
    proc = _run(tmp_path / "elsewhere", str(suite))
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / ".trtbench-cache" / "cpu").is_dir() and not (tmp_path / "project" / ".trtbench-cache").exists()
    assert f"anchored at the ini file {tmp_path / 'pytest.ini'}" in proc.stdout


def test_session_prunes_the_cache_to_its_max_size_and_removes_its_temp_dirs(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    suite = _project(tmp_path)
    (suite.parent / "test_torch.py").write_text('''
from torch import nn
from pytest_trtbench import Input, Suite

test_t = Suite(model=lambda: nn.Linear(4, 3), inputs=[Input("x", ("batch", 4))])
''', encoding="utf-8")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = _run(suite.parent, "--trt-cache-max-size=1", env={"TMPDIR": str(tmp)})
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "--trt-cache-max-size pruned 3 entries" in proc.stdout  # 2 engines + test_t's PyTorch export
    assert list_entries(tmp_path / "project" / ".trtbench-cache") == []
    assert not list((tmp_path / "project" / ".trtbench-cache" / "exports").iterdir())  # the size limit holds
    assert not list(tmp.glob("trtbench-export-*"))  # exported and normalized models removed at session end
    bad = _run(suite.parent, "--trt-cache-max-size=lots")
    assert bad.returncode == 4 and "--trt-cache-max-size: expected a size such as 500MB" in bad.stderr


def _fake_cache(root: Path, sizes: dict[str, int], ages_h: dict[str, float]) -> None:
    """Entries laid out as the cache writes them (meta.json, last_used), with chosen sizes and last use."""
    now = time.time()
    for key, size in sizes.items():
        entry = root / "cpu" / "onnxruntime" / key
        entry.mkdir(parents=True)
        (entry / "meta.json").write_text(f'{{"label": "suite {key}"}}', encoding="utf-8")
        (entry / "model.onnx").write_bytes(b"\0" * size)
        (entry / "last_used").touch()
        os.utime(entry / "last_used", (now - ages_h[key] * 3600,) * 2)


def test_prune_removes_least_recently_used_first_and_by_age(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    _fake_cache(root, {"aaa": 5000, "bbb": 3000, "ccc": 1000}, {"aaa": 1, "bbb": 50, "ccc": 2})
    assert [e.key for e in list_entries(root)] == ["bbb", "ccc", "aaa"]  # LRU first, not by size or name
    removed = prune(root, max_size=7000)
    assert [e.key for e in removed] == ["bbb"] and tree_bytes(root) <= 7000
    removed = prune(root, older_than_s=parse_age("90m"))
    assert [e.key for e in removed] == ["ccc"]
    assert [e.key for e in list_entries(root)] == ["aaa"]


def test_cache_command_line(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    _fake_cache(root, {"k1": 2048, "k2": 4096}, {"k1": 30, "k2": 1})
    out, err = io.StringIO(), io.StringIO()
    assert cli(["cache", "list", "--cache-dir", str(root)], out, err) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "cpu/onnxruntime/k1" in lines[0] and "suite k2" in lines[1]
    out = io.StringIO()
    assert cli(["cache", "size", "--cache-dir", str(root)], out, err) == 0
    assert out.getvalue().startswith("6.") and "in 2 entries" in out.getvalue()
    out = io.StringIO()
    assert cli(["cache", "prune", "--cache-dir", str(root), "--older-than", "1d", "--dry-run"], out, err) == 0
    assert "would remove" in out.getvalue() and len(list_entries(root)) == 2
    assert cli(["cache", "prune", "--cache-dir", str(root), "--max-size", "5KB"], io.StringIO(), err) == 0
    assert [e.key for e in list_entries(root)] == ["k2"]
    err = io.StringIO()
    assert cli(["cache", "prune", "--cache-dir", str(root)], io.StringIO(), err) == 2
    assert "nothing to prune by: give --max-size and/or --older-than" in err.getvalue()
    assert cli(["cache", "size", "--cache-dir", str(tmp_path / "none")], io.StringIO(), err) == 2
    assert parse_size("1.5G") == int(1.5 * 1024**3) and parse_size("500MB") == 500 * 1024**2
    with pytest.raises(ValueError, match="expected a size"):
        parse_size("5 apples")


def _fake_export(root: Path, stem: str, size: int, age_h: float, *suffixes: str) -> None:
    """A PyTorch-factory export as export_cache stores it: ``exports/<suite>-<key>.onnx`` + ``.json``."""
    now = time.time()
    for suffix in suffixes or (".onnx", ".json"):
        path = root / "exports" / (stem + suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size if suffix == ".onnx" else b'{"output_names": ["y"]}')
        os.utime(path, (now - age_h * 3600,) * 2)


def test_exports_are_cache_entries_listed_sized_and_pruned_as_pairs(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    _fake_cache(root, {"e1": 3000, "e2": 3000}, {"e1": 5, "e2": 1})
    _fake_export(root, "test_f-00000000000000aa", 4000, 10)
    _fake_export(root, "test.g-00000000000000bb", 1000, 3)
    _fake_export(root, "test_h-00000000000000cc", 500, 48, ".onnx")  # a killed store: no sidecar
    _fake_export(root, ".tmp-export-x1", 700, 0.5, "")  # a killed copy's temporary file (young yet)
    entries = list_entries(root)
    assert [(e.gpu, e.key) for e in entries] == [("exports", "00000000000000cc"), ("exports", "00000000000000aa"),
                                                ("cpu", "e1"), ("exports", "00000000000000bb"), ("cpu", "e2")]
    pair = entries[1]
    assert pair.label == "test_f (PyTorch export)" and pair.bytes == 4000 + len(b'{"output_names": ["y"]}')
    assert entries[0].label == "test_h (PyTorch export, incomplete: only test_h-00000000000000cc.onnx)"
    assert entries[3].label == "test.g (PyTorch export)"
    out = io.StringIO()
    assert cli(["cache", "list", "--cache-dir", str(root)], out, io.StringIO()) == 0
    assert "exports/torch/00000000000" in out.getvalue().splitlines()[1] and "test_f (PyTorch export)" in out.getvalue()
    out = io.StringIO()
    assert cli(["cache", "size", "--cache-dir", str(root)], out, io.StringIO()) == 0
    assert "in 5 entries" in out.getvalue()
    removed = prune(root, older_than_s=parse_age("1d"))  # the lone half goes by age like any entry
    assert [e.key for e in removed] == ["00000000000000cc"] and not (root / "exports" / "test_h-00000000000000cc.onnx").exists()
    removed = prune(root, max_size=tree_bytes(root) - 1)  # LRU: the 10 h old export pair, both files
    assert [e.key for e in removed] == ["00000000000000aa"]
    assert sorted(p.name for p in (root / "exports").iterdir()) == [
        ".tmp-export-x1", "test.g-00000000000000bb.json", "test.g-00000000000000bb.onnx"]  # tmp: not an hour old
    os.utime(root / "exports" / ".tmp-export-x1", (time.time() - 7200,) * 2)
    assert prune(root, max_size=1) and not list((root / "exports").iterdir()) and list_entries(root) == []


def test_readme_cache_command_runs_as_a_module(tmp_path: Path) -> None:
    _fake_cache(tmp_path / ".trtbench-cache", {"k": 10}, {"k": 1})
    proc = subprocess.run([sys.executable, "-m", "pytest_trtbench", "cache", "size"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and "in 1 entries" in proc.stdout


def test_a_file_whose_unknown_dims_are_minus_one_runs_once_the_named_dim_gets_values(pytester: pytest.Pytester) -> None:
    """Older exporters write ``dim_value: -1`` for an unknown size: axis 0 is the batch, another axis is named
    ``<input>_dim<axis>`` and needs values in ``dims=`` (a real file, run by ONNX Runtime)."""
    from onnx import TensorProto, helper, save

    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 3], [0.1 * i for i in range(24)])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "old",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, -1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, -1, 3])], [w])
    (pytester.path / "models").mkdir()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    save(model, str(pytester.path / "models/old.onnx"))
    pytester.makepyfile(test_old='from pytest_trtbench import Suite\n'
                                 'test_old = Suite(model="models/old.onnx", batch_sizes=[2])\n')
    result = pytester.runpytest_subprocess("--trt-gpu=cpu", "-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*x_dim1*dims=*"])
    pytester.makepyfile(test_old='from pytest_trtbench import Suite\n'
                                 'test_old = Suite(model="models/old.onnx", batch_sizes=[2], dims={"x_dim1": [5]})\n')
    result = pytester.runpytest_subprocess("--trt-gpu=cpu", "-p", "no:cacheprovider", "-W", "error",
                                           "--trt-report=r.csv")
    result.assert_outcomes(passed=1)
    assert read_report(pytester.path / "r.csv")["test_old[onnxruntime-fp32-b2-x_dim15]"]["status"] == "new"
