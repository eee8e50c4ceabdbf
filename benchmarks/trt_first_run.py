"""First real run of pytest-trtbench's TensorRT execution path. Run it once on a GPU runner -- an A10
(TensorRT-RTX) or an H100 (full TensorRT >= 10.1) -- and paste the printed report into an issue.

    python benchmarks/trt_first_run.py                 # everything (a few minutes plus suite builds)
    python benchmarks/trt_first_run.py --skip-suites   # engine-level checks only (about a minute)
    python benchmarks/trt_first_run.py --out first_run.md

Every step prints ``ok`` or ``FAILED`` with the error; a failure never stops the later steps.

1. Environment: GPU, compute capability, the CUDA layer the run uses, torch and its CUDA (only where torch
   can be imported: a torch-free runner says so), TensorRT flavor and version.
2. Engine level, on a small MLP written here (dynamic batch, two optimization profiles) and a zero-size
   batch: build fp32 and fp16, layer info source (the engine inspector runs only on a GPU), realized
   precisions, load, device-memory stats, outputs against numpy, CUDA graph capture (TensorRT-RTX's
   built-in capture, or trtexec-style stream capture on full TensorRT) and replay, latency with and
   without the graph, release of the engine.
3. One case of every shipped suite through pytest, with and without CUDA graphs (``--trt-report`` CSV).

Nothing is written outside a temporary directory (engine cache, baselines and reports included).
"""
from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LINES: list[str] = []
FAILURES: list[str] = []


def say(line: str = "") -> None:
    LINES.append(line)
    print(line, flush=True)


def step(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run one check; print ``ok: <what it returned>`` or ``FAILED: <error>``; never raise."""
    try:
        got = fn(*args)
    except Exception as exc:  # the report must show every failure, not stop at the first
        FAILURES.append(name)
        where = traceback.extract_tb(exc.__traceback__)[-1]
        say(f"- {name}: **FAILED** `{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}` "
            f"(at {Path(where.filename).name}:{where.lineno})")
        return None
    shown = f" -- {got}" if isinstance(got, (str, dict)) else ""
    say(f"- {name}: ok{shown}")
    return got


# -- the model ---------------------------------------------------------------------------------


def write_mlp(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x[b,16] -> MatMul(w1) + b1 -> Relu -> MatMul(w2) -> y[b,8]; returns the weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((16, 32)) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal(32) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((32, 8)) * 0.3).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"], name="mm1"),
        helper.make_node("Add", ["h1", "b1"], ["h2"], name="add1"),
        helper.make_node("Relu", ["h2"], ["h3"], name="relu1"),
        helper.make_node("MatMul", ["h3", "w2"], ["y"], name="mm2"),
    ]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 8])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w1, b1, w2


# -- steps -------------------------------------------------------------------------------------


def torch_text() -> str:
    """torch's version and CUDA where this run can import torch; else that it can't (no version is claimed)."""
    try:
        import torch
    except ImportError as exc:
        return f"torch: not importable here ({str(exc).splitlines()[0]}); this run uses no torch"
    return f"torch {torch.__version__}, CUDA {torch.version.cuda}, available: {torch.cuda.is_available()}"


def cuda_layer_text() -> str:
    """The CUDA layer ``--trt-cuda=auto`` picks here (torch, cuda-python or pycuda), or why none is usable."""
    from pytest_trtbench.cuda import LAYERS, CudaLayerError, choose, unavailable_reason

    reasons = {name: unavailable_reason(name) for name in LAYERS}
    try:
        return f"{choose('auto', reasons)} (--trt-cuda=auto)"
    except CudaLayerError:
        return "none usable: " + "; ".join(f"{name}: {why}" for name, why in reasons.items())


def environment() -> Any:
    from pytest_trtbench.backends.tensorrt import detect_flavor
    from pytest_trtbench.device import resolve_device

    say("## Environment")
    device = resolve_device("auto")
    flavor = detect_flavor()
    say(f"- machine: {platform.node()} / {platform.platform()} / python {platform.python_version()}")
    say(f"- GPU: {device.device_name} (compute capability {device.compute_capability or '?'}), kind {device.kind}")
    say(f"- CUDA layer: {cuda_layer_text()}")
    say(f"- {torch_text()}")
    say(f"- TensorRT: {flavor.label if flavor else 'not installed'}")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    say(f"- pytest-trtbench commit: {commit.stdout.strip() or '?'}")
    return device


def engine_checks(device: Any, work: Path) -> None:
    from pytest_trtbench.backends.base import BuildRequest
    from pytest_trtbench.backends.tensorrt import TensorRTBackend
    from pytest_trtbench.profile import InputRange, ShapeProfile

    say("\n## Engine level (a 2-layer MLP, profiles batch 1-8 and 9-32)")
    backend = TensorRTBackend()
    reason = backend.execution_unavailable_reason(device)
    if reason:  # still build: the report then shows how far the path got
        say(f"- execution: **not possible here**: {reason}")
        FAILURES.append("execution unavailable")
    w1, b1, w2 = write_mlp(work / "mlp.onnx")

    def reference(x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ w1 + b1, 0) @ w2

    def profile(lo: int, opt: int, hi: int) -> ShapeProfile:
        return ShapeProfile.from_mapping({"x": InputRange((lo, 16), (opt, 16), (hi, 16))})

    for precision, tol in (("fp32", 1e-4), ("fp16", 3e-2)):
        say(f"\n### {precision}")
        request = BuildRequest(onnx_path=work / "mlp.onnx", precision=precision,
                               profiles=(profile(1, 4, 8), profile(9, 16, 32)), device=device)
        out = work / f"engine-{precision}"
        out.mkdir()
        built = step("build", _build, backend, request, out, work)
        if built is None or reason:
            continue
        engine = step("load + contexts", backend.load, out, built.metadata, request)
        if engine is None:
            continue
        step("device memory", lambda e: e.device_memory, engine)
        for batch in (4, 20):
            x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
            step(f"run batch {batch} vs numpy (tol {tol})", _run_and_compare, engine, x, reference, tol)
        _graph_and_latency(engine, reference, tol)
        step("release (close)", _released, engine)
    say("\n### zero-size batch (profile batch 0-8)")
    request = BuildRequest(onnx_path=work / "mlp.onnx", precision="fp32", profiles=(profile(0, 4, 8),), device=device)
    out = work / "engine-zero"
    out.mkdir()
    built = step("build", _build, backend, request, out, work)
    if built is not None and not reason:
        engine = step("load", backend.load, out, built.metadata, request)
        if engine is not None:
            x0 = np.zeros((0, 16), np.float32)
            step("run batch 0", lambda: {k: str(v.shape) for k, v in engine.run({"x": x0}).items()})


def _build(backend: Any, request: Any, out: Path, work: Path) -> Any:
    built = backend.build(request, out, work / "cache")
    meta = built.metadata
    say(f"  - layer info source: {meta.get('layer_info_source')}; realized precisions: {meta.get('engine_precisions')}")
    return built


def _run_and_compare(engine: Any, x: np.ndarray, reference: Callable, tol: float) -> str:
    return _compare(engine.run({"x": x}), reference(x), tol)


def _compare(got: dict, want: np.ndarray, tol: float) -> str:
    err = float(np.max(np.abs(got["y"] - want))) if want.size else 0.0
    if got["y"].shape != want.shape or not err <= tol:
        raise AssertionError(f"shape {got['y'].shape} vs {want.shape}, max abs error {err:.3g} > {tol}")
    return f"max abs error {err:.3g}"


def _graph_and_latency(engine: Any, reference: Callable, tol: float) -> None:
    from pytest_trtbench.measure import TimingConfig, measure_latency

    x = np.random.default_rng(7).standard_normal((8, 16)).astype(np.float32)
    launch = engine.prepare({"x": x})
    launch()
    replay = step("CUDA graph capture", launch.capture_graph)
    if replay is not None:
        def replay_and_check() -> str:
            replay()
            replay.synchronize()
            return _compare(launch.host_outputs(), reference(x), tol)

        step("graph replay output vs numpy", replay_and_check)
    for graphs in (False, True):
        config = TimingConfig(warmup_s=0.2, blocks=3, use_cuda_graph=graphs, telemetry=False, energy_s=0)
        result = step(f"latency, CUDA graph {'on' if graphs else 'off'}",
                      measure_latency, engine.prepare({"x": x}), 8, config)
        if result is not None:
            say(f"  - method {result.method}, median {result.median_ms:.4f} ms, enqueue {result.enqueue_ms_median:.4f} ms"
                f"{'; notes: ' + ' | '.join(result.notes) if result.notes else ''}")


def _released(engine: Any) -> str:
    from pytest_trtbench.backends.base import BackendError

    engine.close()
    try:
        engine.prepare({"x": np.zeros((1, 16), np.float32)})
    except BackendError as exc:
        return f"later use refused: {exc}"
    raise AssertionError("a closed engine still prepared a launch")


def suite_checks(device: Any, work: Path) -> None:
    from pytest_trtbench.verdict import BUILT, FAILING

    say("\n## One case per shipped suite (pytest, backend tensorrt)")
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
            f"--trt-gpu={device.gpu}", "--trt-backend=tensorrt", f"--trt-cache-dir={work / 'suite-cache'}",
            f"--trt-baseline-dir={work / 'baselines'}", "--trt-no-latency-gate"]
    listed = subprocess.run([*base, "suites", "--collect-only"], capture_output=True, text=True, cwd=ROOT)
    first: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        if "::" in line and not line.startswith(" "):
            first.setdefault(line.split("::")[0], line.strip())
    if not first:
        say(f"- collection: **FAILED**\n```\n{(listed.stdout + listed.stderr)[-1500:]}\n```")
        FAILURES.append("suite collection")
        return
    for graphs in ("--trt-cuda-graph", "--trt-no-cuda-graph"):
        report = work / f"report{graphs}.csv"
        done = subprocess.run([*base, graphs, f"--trt-report={report}", *first.values()],
                              capture_output=True, text=True, cwd=ROOT)
        say(f"\n### {graphs} (pytest exit code {done.returncode})")
        if not report.exists():
            say(f"```\n{(done.stdout + done.stderr)[-1500:]}\n```")
            FAILURES.append(f"suites {graphs}")
            continue
        say("| case | status | timing method | median ms | reason |")
        say("|---|---|---|---|---|")
        with open(report, newline="") as f:
            for row in csv.DictReader(f):
                say(f"| {row.get('case_id', '')} | {row.get('status', '')} | {row.get('timing_method', '')} | "
                    f"{row.get('latency_ms_median', '')} | {row.get('reason', '')[:160]} |")
                if row.get("status") in (*FAILING, BUILT):  # built = not executed, on a GPU runner a failure
                    FAILURES.append(f"{row.get('case_id')} {graphs}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-suites", action="store_true", help="only the engine-level checks")
    parser.add_argument("--out", type=Path, help="also write the report (markdown) to this file")
    args = parser.parse_args()
    say("# pytest-trtbench TensorRT first run")
    with tempfile.TemporaryDirectory(prefix="trt-first-run-") as tmp:
        work = Path(tmp)
        device = step("detect device", environment)
        if device is not None:
            engine_checks(device, work)
            if not args.skip_suites:
                suite_checks(device, work)
    failed = ", ".join(FAILURES[:12]) + (f", ... ({len(FAILURES) - 12} more)" if len(FAILURES) > 12 else "")
    say(f"\n## Summary: {f'{len(FAILURES)} FAILED: {failed}' if FAILURES else 'all steps ok'}")
    if args.out:
        args.out.write_text("\n".join(LINES) + "\n")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
