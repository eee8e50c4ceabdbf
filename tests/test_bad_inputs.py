"""The bad-input matrix, in-process part: corrupt files of every kind we read, wrong JSON types, bad
option and suite values, wrong dtypes, NaN outputs, bad paths. Each kind runs with the user's warnings
as errors (``-W error``) and without; see tests/badinputs.py for the invariants every run keeps, and
tests/test_bad_inputs_procs.py for the kinds that need another process (signals, read-only paths,
disk full, concurrent updates, xdist)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from badinputs import (
    CASE,
    MODES,
    SUITE,
    Env,
    Primed,
    check_invariants,
    expect,
    prime,
    record,
    run_inprocess,
    suite_with,
)

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

ENTRY = "onnxruntime-fp32-b2"
REBUILT = "trtbench: cache entry * for test_tiny onnxruntime-fp32 *: {}; rebuilt it"
NO_TB = "*error*"


@dataclass(frozen=True)
class Kind:
    id: str
    setup: Callable[[Env], list[str]]
    rc: int
    lines: list[str]
    status: str | None = None
    """The tiny case's status in the CSV ('' = no row / no report; None = not checked)."""
    post: Callable[[Env], None] | None = None
    modes: tuple[str, ...] = MODES
    marks: list[Any] = field(default_factory=list)


def _suite_and(args: list[str] | None = None, source: str = SUITE) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        env.suite(source)
        return list(args or [])
    return setup


# --- engine cache ------------------------------------------------------------------------------------

def _damage(target: str, action: Callable[[Path], None]) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        env.suite()
        entry = env.own_cache()
        action(entry / target)
        return []
    return setup


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _meta_edit(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def action(path: Path) -> None:
        meta = json.loads(path.read_text())
        replaced = edit(meta)
        path.write_text(json.dumps(meta if replaced is None else replaced))
    return action


def _stale_tmp(env: Env) -> list[str]:
    env.suite()
    entry = env.own_cache()
    stale = entry.parent / f".tmp-{entry.name}-killed"
    stale.mkdir()
    (stale / "model.onnx").write_bytes(b"half a model")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = entry.parent / f".tmp-{entry.name}-building"
    fresh.mkdir()
    return []


def _stale_tmp_post(env: Env) -> None:
    left = sorted(p.name for p in (env.cache / "cpu" / "onnxruntime").glob(".tmp-*"))
    assert len(left) == 1 and left[0].endswith("-building"), left  # the old one went, the fresh one stays


def _cache_is_file(env: Env) -> list[str]:
    env.suite()
    env.cache = env.root / "cachefile"
    env.cache.write_text("not a directory")
    return []


def _two_profiles(env: Env) -> list[str]:
    """A cache shared by two GPU profiles: a10 engines are built (not run) next to the cpu ones."""
    env.suite()
    env.own_cache()
    return ["--trt-gpu=a10", "--trt-build-only", "--trt-backend=tensorrt"]


def _two_profiles_post(env: Env) -> None:
    assert len(list((env.cache / "a10" / "tensorrt").glob("*/engine.plan"))) == 1
    again = run_inprocess(env, "W-error", [])
    assert again.rc == 0 and again.status == "new", again.output[-3000:]
    assert "engines: 0 built" in again.output  # the cpu entry is still a hit


CACHE_KINDS = [
    Kind("cache-engine-truncated", _damage("model.onnx", lambda p: p.write_bytes(p.read_bytes()[:100])), 0,
         [REBUILT.format("model.onnx has 100 bytes*"), "engines: 1 built*"], "new"),
    Kind("cache-engine-garbage", _damage("model.onnx", lambda p: p.write_bytes(b"\x00garbage" * 9)), 0,
         [REBUILT.format("model.onnx has 72 bytes*")], "new"),
    Kind("cache-engine-zero-bytes", _damage("model.onnx", lambda p: p.write_bytes(b"")), 0,
         [REBUILT.format("model.onnx has 0 bytes*")], "new"),
    Kind("cache-engine-deleted", _damage("model.onnx", lambda p: p.unlink()), 0,
         [REBUILT.format("model.onnx is missing")], "new"),
    Kind("cache-engine-tampered-same-size", _damage("model.onnx", _flip_byte), 0,
         [REBUILT.format("model.onnx does not match its sha256*")], "new"),
    Kind("cache-meta-deleted", _damage("meta.json", lambda p: p.unlink()), 0,
         [REBUILT.format("meta.json is missing")], "new"),
    Kind("cache-meta-invalid-json", _damage("meta.json", lambda p: p.write_text('{"key": ')), 0,
         [REBUILT.format("meta.json is unreadable (JSONDecodeError)")], "new"),
    Kind("cache-meta-zero-bytes", _damage("meta.json", lambda p: p.write_bytes(b"")), 0,
         [REBUILT.format("meta.json is unreadable*")], "new"),
    Kind("cache-meta-garbage-bytes", _damage("meta.json", lambda p: p.write_bytes(b"\xff\xfe\x00junk")), 0,
         [REBUILT.format("meta.json is unreadable*")], "new"),
    Kind("cache-meta-build_s-string", _damage("meta.json", _meta_edit(lambda m: m.update(build_s="fast"))), 0,
         [REBUILT.format("meta.json is malformed: 'build_s' is str 'fast'")], "new"),
    Kind("cache-meta-no-sha256", _damage("meta.json", _meta_edit(lambda m: m.pop("sha256") and None)), 0,
         [REBUILT.format("meta.json is malformed: no 'sha256'*")], "new"),
    Kind("cache-meta-files-not-list", _damage("meta.json", _meta_edit(lambda m: m.update(files="model.onnx"))), 0,
         [REBUILT.format("meta.json is malformed: 'files' is str*")], "new"),
    Kind("cache-meta-not-object", _damage("meta.json", _meta_edit(lambda m: [m])), 0,
         [REBUILT.format("meta.json is malformed: expected a JSON object, got list")], "new"),
    Kind("cache-meta-path-escape", _damage("meta.json", _meta_edit(lambda m: m.update(files=["../../x"]))), 0,
         [REBUILT.format("meta.json is malformed: bad file name '../../x'")], "new"),
    Kind("cache-stale-tmp-dirs", _stale_tmp, 0, ["trtbench: removed *.tmp-*-killed: left by a build that was killed*"],
         "new", post=_stale_tmp_post),
    Kind("cache-dir-is-a-file", _cache_is_file, 4,
         ["ERROR: --trt-cache-dir: engine cache *cachefile*is a file, not a directory; pass --trt-cache-dir=*"], ""),
    Kind("cache-shared-by-two-gpu-profiles", _two_profiles, 0, ["*test_tiny[[]tensorrt-fp32-b2[]]*built*"], "", post=_two_profiles_post,
         modes=("W-error",)),
]


# --- baselines --------------------------------------------------------------------------------------

def _baseline_text(text: str) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        env.suite()
        env.baseline().write_text(text)
        return []
    return setup


def _entry(edit: Callable[[dict[str, Any]], None]) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        env.suite()
        env.edit_baseline(edit)
        return []
    return setup


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(entry: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = entry
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return edit


def _golden_only(edit: Callable[[dict[str, Any]], None]) -> Callable[[Env], list[str]]:
    """A suite without a live reference: compared with the baseline's golden fingerprint."""
    def setup(env: Env) -> list[str]:
        env.suite(SUITE.replace('output_names=["logits"])', 'output_names=["logits"], live_reference=False)'))
        env.edit_baseline(edit)
        return []
    return setup


def _from_h200(env: Env) -> list[str]:
    env.suite()
    env.edit_baseline(_set("environment.device_name", "NVIDIA H200"))
    return []


def _wrong_baseline_dir(env: Env) -> list[str]:
    env.suite()
    target = env.root / "baselines" / "h200" / "test_tiny.json"
    target.parent.mkdir(parents=True)
    target.write_text(env.primed.baseline.read_text())
    return ["--trt-baseline-dir=baselines/h200"]


def _duplicate_names(env: Env) -> list[str]:
    env.suite()
    env.suite(SUITE, name="test_tiny_dup")
    env.baseline()
    return ["--trt-update-baselines"]


def _duplicate_post(env: Env) -> None:
    data = json.loads((env.root / "baselines" / "cpu" / "test_tiny.json").read_text())
    assert list(data["cases"]) == [ENTRY] and data["suite"] == "test_tiny"


BAD_ENTRY = "*baselines/cpu/test_tiny.json: case 'onnxruntime-fp32-b2': {}*--trt-update-baselines*"
BASELINE_KINDS = [
    Kind("baseline-malformed-json", _baseline_text('{"schema_version": 2, "cases": {'), 1,
         ["*test_tiny.json: malformed baseline JSON*--trt-update-baselines*"], "error"),
    Kind("baseline-zero-bytes", _baseline_text(""), 1, ["*test_tiny.json: malformed baseline JSON*"], "error"),
    Kind("baseline-garbage-bytes", _baseline_text("\udcff\x00junk".encode("utf-8", "surrogateescape").decode("latin-1")), 1,
         ["*test_tiny.json: *baseline*"], "error"),
    Kind("baseline-nan-literal", _baseline_text('{"schema_version": 2, "suite": "t", "cases": {"a": NaN}}'), 1,
         ["*test_tiny.json: malformed baseline JSON (non-standard JSON constant NaN)*"], "error"),
    Kind("baseline-not-an-object", _baseline_text("[1, 2]"), 1, ["*test_tiny.json: not a pytest-trtbench baseline*"],
         "error"),
    Kind("baseline-missing-cases", _baseline_text('{"schema_version": 2}'), 1,
         ["*test_tiny.json: not a pytest-trtbench baseline*'cases'*"], "error"),
    Kind("baseline-schema-99", _baseline_text('{"schema_version": 99, "cases": {}}'), 1,
         ["*test_tiny.json: schema_version 99 is not one this plugin reads*"], "error"),
    Kind("baseline-entry-not-object", _baseline_text(json.dumps({"schema_version": 2, "cases": {ENTRY: "fast"}})), 1,
         [BAD_ENTRY.format("the entry is str, not an object")], "error"),
    Kind("baseline-metric-string", _entry(_set("accuracy.outputs.logits.max_abs_err", "small")), 1,
         [BAD_ENTRY.format("accuracy.outputs['logits'].max_abs_err is 'small', not a number")], "error"),
    Kind("baseline-block-median-zero", _entry(_set("latency.runs.0.blocks.0.median_ms", 0)), 1,
         [BAD_ENTRY.format("latency.runs[[]0[]][[]0[]].median_ms is 0: block medians must be numbers > 0")], "error"),
    Kind("baseline-block-median-negative", _entry(_set("latency.runs.0.blocks.1.median_ms", -2.5)), 1,
         [BAD_ENTRY.format("latency.runs[[]0[]][[]1[]].median_ms is -2.5*")], "error"),
    Kind("baseline-block-missing-n", _entry(lambda e: e["latency"]["runs"][0]["blocks"][0].pop("n")), 1,
         [BAD_ENTRY.format("latency.runs[[]0[]][[]0[]].n is None*")], "error"),
    Kind("baseline-runs-not-list", _entry(_set("latency.runs", {"a": 1})), 1,
         [BAD_ENTRY.format("latency.runs must be a list of runs*")], "error"),
    Kind("baseline-device-name-number", _entry(_set("environment.device_name", 7)), 1,
         [BAD_ENTRY.format("'environment.device_name' must be a string")], "error"),
    Kind("baseline-golden-index-out-of-range", _golden_only(_set("golden.outputs.logits.indices.0", 10**6)), 1,
         [BAD_ENTRY.format("golden.outputs['logits'].indices [[]1000000[]] lie outside an output of 8 elements*")],
         "error"),
    Kind("baseline-golden-length-mismatch", _golden_only(lambda e: e["golden"]["outputs"]["logits"]["values"].pop()), 1,
         [BAD_ENTRY.format("golden.outputs['logits']: indices and values must be lists of the same length")], "error"),
    Kind("baseline-golden-missing", _golden_only(_set("golden.outputs", {})), 1,
         ["*no live reference and no golden fingerprint in *test_tiny.json*--trt-update-baselines*"], "error"),
    Kind("baseline-from-another-gpu", _from_h200, 1,
         ["*test_tiny.json: case 'onnxruntime-fp32-b2' was recorded on 'NVIDIA H200' (profile h200), but this run is "
          "--trt-gpu=cpu*"], "error"),
    Kind("baseline-dir-of-another-gpu", _wrong_baseline_dir, 0,
         ["WARNING: no case found a baseline in *baselines/h200/cpu, but baseline files exist: *h200/test_tiny.json*"],
         "new"),
    Kind("duplicate-suite-names", _duplicate_names, 1,
         ["*suite test_tiny (test_tiny_dup.py:*) is invalid: suite test_tiny in test_tiny_dup.py has the same name as the suite in test_tiny.py*rename one*"],
         "pass", post=_duplicate_post),
]


# --- suite values -----------------------------------------------------------------------------------

def _bad_suite(declaration: str) -> Callable[[Env], list[str]]:
    """A second suite in the module with a bad value: it alone fails, test_tiny still runs."""
    def setup(env: Env) -> list[str]:
        env.suite(suite_with(f"\ntest_bad = Suite(model=mlp, {declaration})\n"))
        return []
    return setup


INPUT = 'inputs=[Input("x", shape=("batch", 16))]'
INVALID = "*suite test_bad (test_tiny.py:*) is invalid: {}"
SUITE_KINDS = [
    Kind("tolerance-atol-nan", _bad_suite(f'{INPUT}, tolerances={{"fp32": Tolerance(atol=float("nan"))}}'), 1,
         [INVALID.format("tolerances['fp32']: atol=nan must be a finite number >= 0*")], "new"),
    Kind("tolerance-rtol-negative", _bad_suite(f'{INPUT}, tolerances={{"fp32": Tolerance(rtol=-0.1)}}'), 1,
         [INVALID.format("tolerances['fp32']: rtol=-0.1 must be a finite number >= 0*")], "new"),
    Kind("tolerance-min-cosine-1.5", _bad_suite(f'{INPUT}, tolerances={{"fp32": {{"*": Tolerance(min_cosine=1.5)}}}}'),
         1, [INVALID.format("tolerances['fp32'][[]'*'[]]: min_cosine=1.5 must be in [[]0, 1[]]*")], "new"),
    Kind("tolerance-precision-typo", _bad_suite(f'{INPUT}, tolerances={{"fp3": Tolerance()}}'), 1,
         [INVALID.format("tolerances['fp3']: unknown precision; choose from fp32, tf32, fp16, bf16, int8, fp8*")], "new"),
    Kind("tolerance-not-a-tolerance", _bad_suite(f'{INPUT}, tolerances={{"fp32": 0.1}}'), 1,
         [INVALID.format("tolerances['fp32'] must be a Tolerance(...), got 0.1*")], "new"),
    Kind("batch-sizes-duplicate", _bad_suite(f"{INPUT}, batch_sizes=[1, 1]"), 1,
         [INVALID.format("batch_sizes [[]1, 1[]] repeats [[]1[]]: each value would run the same case twice*")], "new"),
    Kind("batch-sizes-zero", _bad_suite(f"{INPUT}, batch_sizes=[0]"), 1,
         [INVALID.format("batch_sizes must be positive integers, got [[]0[]]*")], "new"),
    Kind("precision-typo-fp61", _bad_suite(f'{INPUT}, precisions=["fp61"]'), 1,
         [INVALID.format("unknown precision 'fp61'; choose from fp32, tf32, fp16, bf16, int8, fp8*")], "new"),
    Kind("dtype-float33", _bad_suite('inputs=[Input("x", shape=("batch", 16), dtype="float33")]'), 1,
         [INVALID.format("input 'x': unknown dtype 'float33'; choose from float32*")], "new"),
    Kind("int-range-empty", _bad_suite('inputs=[Input("ids", shape=("batch", 16), dtype="int64", range=(1, 1))]'), 1,
         [INVALID.format("input 'ids': integer range=(1, 1) is empty*use high > low*")], "new"),
    Kind("float-range-reversed", _bad_suite('inputs=[Input("x", shape=("batch", 16), range=(1.0, -1.0))]'), 1,
         [INVALID.format("input 'x': range=(1.0, -1.0) has low > high*")], "new"),
    Kind("dim-without-values", _bad_suite('inputs=[Input("x", shape=("batch", "seq"))]'), 1,
         [INVALID.format("input 'x' uses dim 'seq' but the suite gives no values for it*")], "new"),
    Kind("shape-zero", _bad_suite('inputs=[Input("x", shape=("batch", 0))]'), 1,
         [INVALID.format("input 'x': shape entries are positive integers or dim names, got 0*")], "new"),
    Kind("no-inputs", _bad_suite("inputs=[]"), 1, [INVALID.format("a PyTorch suite needs its inputs: inputs=[[]Input(name, shape), ...[]]")], "new"),
    Kind("backend-typo", _bad_suite(f'{INPUT}, backends=["onnxrt"]'), 1,
         ["*suite test_bad (test_tiny.py:*) is invalid: unknown backend 'onnxrt'*"], "new"),
]


# --- models, inputs, outputs ------------------------------------------------------------------------

def _onnx_file(env: Env, name: str = "m.onnx") -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(env.root / name))
    return env.root / name


ONNX_SUITE = '''
test_file = Suite(model="m.onnx", inputs=[Input("x", shape=("batch", 4), dtype="{dtype}")], batch_sizes=[2])
'''


def _onnx_suite(dtype: str = "float32", damage: Callable[[Path], None] | None = None) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        path = _onnx_file(env)
        if damage is not None:
            damage(path)
        env.suite(suite_with(ONNX_SUITE.replace("{dtype}", dtype)))
        return []
    return setup


def _model(body: str, inputs: str = 'Input("x", shape=("batch", 16))', factory: str = "Net") -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        env.suite(suite_with(f'''
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return {body}

def broken():
    raise RuntimeError("weights not found")

test_model = Suite(model={factory}, inputs=[{inputs}], batch_sizes=[2])
''', head="import torch\n"))
        return []
    return setup


FILE_ERR = "*test_file[[]onnxruntime-fp32-b2[]]: error*"
MODEL_KINDS = [
    Kind("onnx-file-truncated", _onnx_suite(damage=lambda p: p.write_bytes(p.read_bytes()[:20])), 1,
         ["*m.onnx: not a readable ONNX model*"], "new"),
    Kind("onnx-file-zero-bytes", _onnx_suite(damage=lambda p: p.write_bytes(b"")), 1,
         ["*m.onnx: not a readable ONNX model*"], "new"),
    Kind("onnx-file-garbage", _onnx_suite(damage=lambda p: p.write_bytes(b"\x08\x07garbage" * 50)), 1,
         ["*m.onnx: not a readable ONNX model*"], "new"),
    Kind("onnx-file-missing", _onnx_suite(damage=lambda p: p.unlink()), 1,
         ["*suite test_file (test_tiny.py:*) is invalid: ONNX file *m.onnx does not exist; fix the suite's model= path*"], "new"),
    Kind("float16-fed-to-float-model", _onnx_suite(dtype="float16"), 1,
         ["*input 'x' is float16 but the model expects float32: declare Input('x', ..., dtype='float32')*"], "new"),
    Kind("int64-fed-to-float-model", _onnx_suite(dtype="int64"), 1,
         ["*input 'x' is int64 but the model expects float32*"], "new"),
    Kind("int64-fed-to-torch-float-model", _model("self.fc(x)", 'Input("x", shape=("batch", 16), dtype="int64", range=(0, 5))'),
         1, ["*suite test_model: the model fails on the declared inputs (x int64[[]2x16[]]): RuntimeError*make each "
             "Input's dtype and shape what the model expects*"], "new"),
    Kind("nan-output", _model("torch.log(x - 2.0)"), 1,
         ["*test_model[[]onnxruntime-fp32-b2[]]: accuracy_fail*", "*NaN or Inf*"], "new"),
    Kind("inf-output", _model("torch.exp(x * 1000.0)"), 1,
         ["*test_model[[]onnxruntime-fp32-b2[]]: accuracy_fail*", "*NaN or Inf*"], "new"),
    Kind("data-wrong-shape", _model("x", 'Input("x", shape=("batch", 16), data=lambda shape, rng: rng.random((3, 3)))'), 1,
         ["*input 'x': data() returned shape (3, 3), expected (2, 16)*"], "new"),
    Kind("model-factory-raises", _model("x", factory="broken"), 1, ["*RuntimeError: weights not found (in test_tiny.py:*)"], "new"),
]


# --- options and paths ------------------------------------------------------------------------------

def _option(*args: str) -> Callable[[Env], list[str]]:
    return _suite_and(list(args))


def _ini(text: str) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        env.suite()
        (env.root / "pytest.ini").write_text(f"[pytest]\n{text}\n")
        return []
    return setup


def _report_is_dir(env: Env) -> list[str]:
    env.suite()
    env.report = env.root / "out"
    env.report.mkdir()
    return []


def _report_parent_is_file(env: Env) -> list[str]:
    env.suite()
    (env.root / "plain").write_text("a file")
    env.report = env.root / "plain" / "r.csv"
    return []


def _report_new_dir(env: Env) -> list[str]:
    env.suite()
    env.report = env.root / "reports" / "nightly" / "r.csv"
    return []


def _stale_report(source: str) -> Callable[[Env], list[str]]:
    def setup(env: Env) -> list[str]:
        env.suite(source)
        env.report.write_text("case_id,status\ntest_tiny[old],pass\n")
        return []
    return setup


def _report_gone(env: Env) -> None:
    assert not env.report.exists(), "a report from an earlier run was left in place"


def _baseline_dir_is_file(env: Env) -> list[str]:
    env.suite()
    (env.root / "bl").write_text("a file")
    return ["--trt-baseline-dir=bl", "--trt-update-baselines"]


USAGE = "ERROR: *"
OPTION_KINDS = [
    Kind("opt-latency-tolerance-abc", _option("--trt-latency-tolerance=abc"), 4,
         ["*--trt-latency-tolerance*expected a fraction (0.05) or a percentage (5%), got 'abc'*"], ""),
    Kind("opt-blocks-negative", _option("--trt-blocks=-1"), 4, ["*--trt-blocks*expected an integer >= 1, got '-1'*"], ""),
    # 0 blocks, 0 iterations, 0 stored runs: silently ran as 1 before
    Kind("opt-blocks-zero", _option("--trt-blocks=0"), 4, ["*--trt-blocks*expected an integer >= 1, got '0'*"], ""),
    Kind("opt-min-block-iters-zero", _option("--trt-min-block-iters=0"), 4,
         ["*--trt-min-block-iters*expected an integer >= 1, got '0'*"], ""),
    Kind("opt-history-zero", _option("--trt-history=0"), 4, ["*--trt-history*expected an integer >= 1, got '0'*"], ""),
    Kind("opt-warmup-zero", _option("--trt-warmup-s=0"), 4, ["*--trt-warmup-s*expected a number > 0, got '0'*"], ""),
    Kind("opt-warmup-inf", _option("--trt-warmup-s=inf"), 4, ["*--trt-warmup-s*expected a number > 0, got 'inf'*"], ""),
    Kind("opt-min-block-s-nan", _option("--trt-min-block-s=nan"), 4, ["*--trt-min-block-s*got 'nan'*"], ""),
    Kind("opt-confirm-fraction", _option("--trt-confirm=1.5"), 4, ["*--trt-confirm*expected an integer, got '1.5'*"], ""),
    Kind("opt-energy-negative", _option("--trt-energy-s=-1"), 4, ["*--trt-energy-s*expected a number >= 0*"], ""),
    Kind("opt-size-huge", _option("--trt-size=huge"), 4, ["*--trt-size*expected one of tiny, full; got 'huge'*"], ""),
    Kind("opt-backend-unknown", _option("--trt-backend=tensorflow"), 4,
         ["ERROR: --trt-backend: unknown backend 'tensorflow'; available: onnxruntime, tensorrt*"], ""),
    Kind("opt-backend-empty", _option("--trt-backend=,"), 4, ["*--trt-backend*expected at least one backend name*"], ""),
    Kind("opt-gpu-not-present", _option("--trt-gpu=h100"), 4, [USAGE + "h100*--trt-build-only*"], ""),
    Kind("ini-history-many", _ini("trt_history = many"), 4, ["ERROR: ini trt_history: expected an integer, got 'many'"], ""),
    Kind("report-is-a-directory", _report_is_dir, 4, ["ERROR: --trt-report: *out is a directory, not a file*"], ""),
    Kind("report-parent-is-a-file", _report_parent_is_file, 4,
         ["ERROR: --trt-report: *plain*is a file, not a directory*"], ""),
    Kind("report-in-new-directory", _report_new_dir, 0, ["verdicts: new 1"], "new"),
    Kind("stale-report-collection-error", _stale_report("import no_such_module_here\n" + SUITE), 2,
         ["*ModuleNotFoundError: No module named 'no_such_module_here'*"], "", post=_report_gone),
    Kind("stale-report-nothing-collected", _stale_report("x = 1\n"), 5, ["*no tests ran*"], "", post=_report_gone),
    Kind("baseline-dir-is-a-file", _baseline_dir_is_file, 4,
         ["ERROR: --trt-baseline-dir (written by --trt-update-baselines): *bl*is a file, not a directory*"], ""),
]

ALL_KINDS = CACHE_KINDS + BASELINE_KINDS + SUITE_KINDS + MODEL_KINDS + OPTION_KINDS


@pytest.fixture(scope="module")
def primed(tmp_path_factory: pytest.TempPathFactory) -> Primed:
    return prime(tmp_path_factory.mktemp("primed"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ALL_KINDS, ids=[k.id for k in ALL_KINDS])
def test_bad_input(kind: Kind, mode: str, pytester: pytest.Pytester, primed: Primed) -> None:
    if mode not in kind.modes:
        pytest.skip(f"{kind.id} runs once, with -W error")
    env = Env(pytester, primed)
    args = kind.setup(env)
    out = run_inprocess(env, mode, args)
    record(kind.id, mode, out, kind.lines)
    expect(out, kind.rc, kind.lines, kind.status)
    check_invariants(env, out)
    if kind.post is not None:
        kind.post(env)


def test_matrix_has_50_distinct_kinds() -> None:
    from test_bad_inputs_procs import PROCESS_KINDS

    ids = [k.id for k in ALL_KINDS] + PROCESS_KINDS
    assert len(ids) == len(set(ids)) and len(ids) >= 50, len(ids)
    assert CASE == "test_tiny[onnxruntime-fp32-b2]"
