"""Record real block medians for ``regression_detection.py --samples``: R independent runs per case.

Each run is a separate subprocess with fresh sessions, CUDA context and allocations, so the
run-to-run variance (clocks, placement, allocator state) is real, as between two CI jobs. A run
measures every case once with the plugin's default ``TimingConfig`` (CUDA graphs on) and reports
its block medians. Cases: the BERT-like encoder of ``suites/test_encoder.py`` at two sizes
(bert-small, bert-base; batch 8 x seq 128, fp16), run by ONNX Runtime's CUDA provider and by
PyTorch. Output::

    {"device": "NVIDIA H100 80GB HBM3", "cases": {case_id: [[block medians of run 1], [run 2], ...]},
     "meta": {...}}

    python benchmarks/record_gpu_blocks.py --out samples.json            # GPU, ~2-4 minutes
    python benchmarks/regression_detection.py --samples samples.json --out detection_real.md
    python benchmarks/record_gpu_blocks.py --smoke --out /tmp/smoke.json # CPU, tiny model
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_targets as T  # noqa: E402

MARK = "TRTBENCH-RUN-JSON "


def case_plan(smoke: bool, precision: str) -> list[tuple[str, T.EncoderSize, str]]:
    sizes = [T.TINY] if smoke else [T.BERT_SMALL, T.BERT_BASE]
    return [(f"encoder-{s.label}-{backend}-{precision}-b{s.batch}-s{s.seq}", s, backend)
            for s in sizes for backend in ("onnxruntime", "torch")]


def child(work: Path, smoke: bool, precision: str, blocks: int) -> dict[str, Any]:
    """One run: every case measured once, in this (fresh) process."""
    from pytest_trtbench.measure import TimingConfig, measure_latency

    device = T.current_device(force_cpu=smoke)
    config = TimingConfig(blocks=blocks)
    if smoke:
        config = TimingConfig(warmup_s=0.01, blocks=blocks, min_block_iters=3, min_block_s=0.005)
    out: dict[str, Any] = {"cases": {}, "methods": {}, "notes": {}}
    for case_id, size, backend in case_plan(smoke, precision):
        if backend == "torch":
            launch = T.torch_launch(size, precision, device)
        else:
            entry = work / f"ort-{size.label}-{precision}"
            if not (entry / T.ORT_ENGINE_FILE).is_file():
                continue  # the parent could not build it (reason in meta)
            engine = T.onnxruntime_engine(entry, device)
            launch = engine.prepare({"input_ids": T.make_input_ids(size)})
        result = measure_latency(launch, size.batch, config)
        out["cases"][case_id] = [b.median_ms for b in result.blocks]
        out["methods"][case_id] = result.method
        out["notes"][case_id] = result.notes
        del launch
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="samples JSON to write")
    parser.add_argument("--runs", type=int, default=None, help="separate measurement runs (default 10; 2 with --smoke)")
    parser.add_argument("--blocks", type=int, default=5, help="blocks per run (default 5, the plugin's default)")
    parser.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU: checks the script runs")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # work dir of a parent run
    args = parser.parse_args(argv)
    precision = "fp32" if args.smoke else args.precision

    if args.child is not None:
        print(MARK + json.dumps(child(args.child, args.smoke, precision, args.blocks)), flush=True)
        return 0

    import torch

    started = time.perf_counter()
    device = T.current_device(force_cpu=args.smoke)
    if not args.smoke and not device.has_cuda:
        raise SystemExit("no CUDA device: run with --smoke on CPU")
    if not device.has_cuda:
        precision = "fp32"
    runs = args.runs or (2 if args.smoke else 10)
    work = Path(tempfile.mkdtemp(prefix="trtbench-blocks-"))
    meta: dict[str, Any] = {"precision": precision, "blocks": args.blocks, "runs": runs, "torch": torch.__version__,
                            "skipped": {}}
    reason = T.onnxruntime_unavailable(device, precision)
    for size in sorted({s for _, s, b in case_plan(args.smoke, precision) if b == "onnxruntime"}, key=lambda s: s.dim):
        if reason:
            meta["skipped"][f"onnxruntime {size.label}"] = reason
            continue
        T.build_onnxruntime(size, precision, device, work)  # once; every run loads the same engine
    print(f"device: {device.device_name}; built in {time.perf_counter() - started:.0f} s; {runs} runs", flush=True)

    cases: dict[str, list[list[float]]] = {}
    methods: dict[str, str] = {}
    notes: dict[str, list[str]] = {}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(args.out), "--child", str(work),
           "--blocks", str(args.blocks), "--precision", precision] + (["--smoke"] if args.smoke else [])
    for i in range(runs):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
        if proc.returncode != 0 or not lines:
            sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
            raise SystemExit(f"run {i + 1} failed (exit {proc.returncode})")
        got = json.loads(lines[-1][len(MARK):])
        for case_id, medians in got["cases"].items():
            cases.setdefault(case_id, []).append(medians)
        methods.update(got["methods"])
        notes.update(got["notes"])
        print(f"  run {i + 1}/{runs}: " + ", ".join(f"{c.split('-b')[0]} {sorted(m)[len(m) // 2]:.4f} ms"
                                                    for c, m in got["cases"].items()), flush=True)
    meta.update(timing_methods=methods, last_run_notes=notes, elapsed_s=round(time.perf_counter() - started, 1))
    data = {"device": device.device_name, "cases": cases, "meta": meta}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1))
    print(f"wrote {args.out} ({len(cases)} cases x {runs} runs, {meta['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
