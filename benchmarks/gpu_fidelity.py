"""Does the harness report the latency a plain CUDA-event loop measures, and how repeatable is it?

For a BERT-base-like encoder (``suites/test_encoder.py``'s ``Encoder``: 12 layers, hidden 768,
batch 8 x sequence 128; fp16 by default) run (a) by ONNX Runtime's CUDA provider, built as the
harness builds it, and (b) by PyTorch itself, this script compares

* the harness: the median that ``measure_latency`` reports with the plugin's default
  ``TimingConfig`` (CUDA-graph replay on; and once more with it off), median over R runs;
* a raw loop written here without harness code: ``torch.cuda.Event`` pairs around N back-to-back
  launches, mean per launch (for the graph mode, the script captures its own graph);

and prints the ratio harness / raw (target within +-2 %) and the CoV of the harness's median over
R = 10 repeated ``measure_latency`` calls (target <= 1 %). ONNX Runtime's ``run_with_iobinding``
waits for the GPU before it returns, so for (a) both sides time a synchronous call.

    python benchmarks/gpu_fidelity.py --out fidelity.md            # GPU, a few minutes at most
    python benchmarks/gpu_fidelity.py --smoke --out /tmp/smoke.md  # CPU, tiny model, host clock

``--out X.md`` writes a markdown table and ``X.json`` next to it (``--out X.json``: JSON only).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_targets as T  # noqa: E402

RATIO_TARGET = 0.02
COV_TARGET_PCT = 1.0


@dataclass
class Row:
    target: str
    mode: str  # "cuda-graph" / "plain" (GPU) or "host-clock" (CPU)
    harness_ms: float
    raw_ms: float
    cov_pct: float
    repeats: int
    timing_method: str
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.harness_ms / self.raw_ms if self.raw_ms > 0 else math.nan

    @property
    def ok(self) -> bool:
        return abs(self.ratio - 1.0) <= RATIO_TARGET and self.cov_pct <= COV_TARGET_PCT


def raw_loop_ms(call: Callable[[], None], on_gpu: bool, seconds: float = 0.3, reps: int = 5) -> float:
    """Mean per launch over N back-to-back launches, median over *reps* repetitions; no harness code."""
    import torch

    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    start = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - start < 0.2:  # warmup, also sizes N
        call()
        sync()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    n = max(10, int(seconds / max(per_call, 1e-6)))
    means = []
    for _ in range(reps):
        if on_gpu:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            for _ in range(n):
                call()
            end.record()
            end.synchronize()
            means.append(begin.elapsed_time(end) / n)
        else:
            t0 = time.perf_counter()
            for _ in range(n):
                call()
            means.append((time.perf_counter() - t0) * 1e3 / n)
    return statistics.median(means)


def raw_torch_graph(module: Any, args: tuple[Any, ...]) -> Callable[[], None]:
    """Capture the module into a CUDA graph the textbook way (torch docs), independent of the harness."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(side):
        for _ in range(3):
            module(*args)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        module(*args)
    return graph.replay


def raw_ort(path: Path, input_ids: Any, graph: bool) -> Callable[[], None]:
    """An ONNX Runtime session and IOBinding of our own on the device (graph: ``enable_cuda_graph``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # as the plugin loads its engines
    options.log_severity_level = 3
    cuda = ("CUDAExecutionProvider", {"enable_cuda_graph": "1"} if graph else {})
    session = ort.InferenceSession(str(path), options, providers=[cuda] if graph else [cuda, "CPUExecutionProvider"])
    ids = ort.OrtValue.ortvalue_from_numpy(input_ids, "cuda", 0)
    probe = session.run(None, {"input_ids": input_ids})[0]
    out = ort.OrtValue.ortvalue_from_shape_and_type(list(probe.shape), probe.dtype.type, "cuda", 0)
    binding = session.io_binding()
    binding.bind_ortvalue_input("input_ids", ids)
    binding.bind_ortvalue_output("hidden", out)

    def call() -> None:
        session.run_with_iobinding(binding)

    call._keep = (session, ids, out, binding)  # type: ignore[attr-defined]
    return call


def harness_runs(make_launch: Callable[[], Any], batch: int, use_graph: bool, repeats: int,
                 smoke: bool) -> tuple[list[float], str, list[str]]:
    from pytest_trtbench.measure import TimingConfig, measure_latency

    config = TimingConfig(use_cuda_graph=use_graph)  # the plugin's defaults otherwise
    if smoke:
        config = TimingConfig(warmup_s=0.01, blocks=3, min_block_iters=3, min_block_s=0.005, use_cuda_graph=use_graph)
    medians, method, notes = [], "", []
    for _ in range(repeats):
        result = measure_latency(make_launch(), batch, config)
        medians.append(result.median_ms)
        method = result.method
        notes = list(result.notes)  # the last run's: every run says much the same
    return medians, method, notes


def cov_pct(values: list[float]) -> float:
    return 100.0 * statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else 0.0


def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Row]]:
    import torch

    device = T.current_device(force_cpu=args.smoke)
    on_gpu = device.has_cuda
    size = T.TINY if args.smoke else T.BERT_BASE
    precision = "fp32" if args.smoke or not on_gpu else args.precision
    repeats = 3 if args.smoke else args.repeats
    meta = {
        "device": torch.cuda.get_device_name() if on_gpu else "cpu", "model": asdict(size), "precision": precision,
        "repeats": repeats, "torch": torch.__version__,
        "targets": {"ratio_within_pct": 100 * RATIO_TARGET, "cov_max_pct": COV_TARGET_PCT},
    }
    print(f"device: {meta['device']}  model: {size.label} b{size.batch} x s{size.seq} {precision}", flush=True)
    modes = [(True, "cuda-graph"), (False, "plain")] if on_gpu else [(False, "host-clock")]
    rows: list[Row] = []

    if "torch" in args.targets:
        launch = T.torch_launch(size, precision, device)
        for use_graph, mode in modes:
            medians, method, notes = harness_runs(lambda: launch, size.batch, use_graph, repeats, args.smoke)
            if use_graph:
                raw_call = raw_torch_graph(launch.module, launch.args)
            else:
                def raw_call() -> None:
                    with torch.no_grad():
                        launch.module(*launch.args)
            raw = raw_loop_ms(raw_call, on_gpu)
            rows.append(Row("torch", mode, statistics.median(medians), raw, cov_pct(medians), repeats, method, notes))
            print(f"  torch {mode}: done", flush=True)
        del launch

    if "onnxruntime" in args.targets:
        reason = T.onnxruntime_unavailable(device, precision)
        if reason:
            meta["onnxruntime_skipped"] = reason
            print(f"  onnxruntime skipped: {reason}", flush=True)
        else:
            work = Path(tempfile.mkdtemp(prefix="trtbench-fidelity-"))
            entry = T.build_onnxruntime(size, precision, device, work)
            engine = T.onnxruntime_engine(entry, device)
            feeds = {"input_ids": T.make_input_ids(size)}
            for use_graph, mode in modes:
                medians, method, notes = harness_runs(lambda: engine.prepare(feeds), size.batch, use_graph, repeats,
                                                      args.smoke)
                if on_gpu:
                    try:
                        raw_call = raw_ort(entry / T.ORT_ENGINE_FILE, feeds["input_ids"], graph=use_graph)
                    except Exception as exc:  # noqa: BLE001 - onnxruntime errors share no base class
                        meta[f"onnxruntime_raw_{mode}_failed"] = f"{type(exc).__name__}: {exc}"[:300]
                        print(f"  onnxruntime raw {mode} loop failed: {exc}", flush=True)
                        continue
                else:
                    plain = engine.prepare(feeds)
                    raw_call = plain
                raw = raw_loop_ms(raw_call, on_gpu)
                rows.append(Row("onnxruntime", mode, statistics.median(medians), raw, cov_pct(medians), repeats,
                                method, notes))
                print(f"  onnxruntime {mode}: done", flush=True)
            engine.close()
    return meta, rows


def render(meta: dict[str, Any], rows: list[Row]) -> str:
    lines = [
        f"GPU fidelity on **{meta['device']}**: {meta['model']['label']} encoder, batch {meta['model']['batch']} x "
        f"seq {meta['model']['seq']}, {meta['precision']}; harness median over {meta['repeats']} measure_latency runs "
        f"vs a raw event loop (targets: ratio within +-{meta['targets']['ratio_within_pct']:.0f} %, "
        f"CoV <= {meta['targets']['cov_max_pct']:.0f} %).",
        "",
        "| target | mode | harness ms | raw ms | ratio | CoV of median | timing_method | within target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.target} | {r.mode} | {r.harness_ms:.4f} | {r.raw_ms:.4f} | {r.ratio:.4f} | "
                     f"{r.cov_pct:.2f} % | {r.timing_method} | {'yes' if r.ok else 'NO'} |")
    notes = sorted({n for r in rows for n in r.notes})
    if notes:
        lines += ["", "Harness notes:", *(f"- {n}" for n in notes)]
    skipped = {k: v for k, v in meta.items() if "skipped" in k or "failed" in k}
    lines += [f"- {k}: {v}" for k, v in skipped.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write markdown here (and a .json twin), or JSON if it ends in .json")
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU (host clock): checks the script runs")
    parser.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    parser.add_argument("--repeats", type=int, default=10, help="measure_latency runs per mode (default 10)")
    parser.add_argument("--targets", default="torch,onnxruntime", help="comma-separated: torch, onnxruntime")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a row misses its target")
    args = parser.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    started = time.perf_counter()
    meta, rows = run(args)
    meta["elapsed_s"] = round(time.perf_counter() - started, 1)
    text = render(meta, rows)
    print(text)
    if args.out:
        data = {**meta, "rows": [{**asdict(r), "ratio": r.ratio, "within_target": r.ok} for r in rows]}
        payload = json.dumps(data, indent=2, allow_nan=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix == ".json":
            args.out.write_text(payload)
        else:
            args.out.write_text(text)
            args.out.with_suffix(".json").write_text(payload)
    return 1 if args.strict and not all(r.ok for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
