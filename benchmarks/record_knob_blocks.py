"""Record block summaries of true slowdowns for ``knob_detection.py``: the encoder with a depth knob.

A "case" keeps its id while its model gets deeper: the BERT-like encoder of ``suites/test_encoder.py``
at L layers (the baseline) and at L+1, L+2, L+5 layers (true slowdowns of roughly +5 %, +10 %,
+25 %; the real ratio is measured, not assumed). Two sizes: ``small`` (dim 256, a short GPU case)
and ``base`` (dim 768, BERT-base width). Each engine is built once as the harness builds ONNX
Runtime engines, from a dynamic-shape export, and timed as the plugin times a case (shape-pinned
CUDA graph on a GPU). Each run is a separate process; a run measures every variant once. Output::

    {"device": ..., "variants": {"small-L20": {"size": "small", "layers": 20, "base_layers": 20}, ...},
     "runs": [{"small-L20": [[median_ms, iqr_ms, n], ...blocks], ...}, ...], "methods": {...},
     "notes": {"small-L20": ["CUDA graph not used, timed plain enqueues: <why>"], ...}}

    python benchmarks/record_knob_blocks.py --out knob.json             # GPU: ~10 runs
    python benchmarks/record_knob_blocks.py --smoke --out /tmp/k.json   # CPU, tiny: checks the script
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_targets as T  # noqa: E402

MARK = "TRTBENCH-KNOB-JSON "
BASE_LAYERS = 20
EXTRA_LAYERS = (0, 1, 2, 5)
SIZES = {"small": dataclasses.replace(T.BERT_SMALL, layers=BASE_LAYERS),
         "base": dataclasses.replace(T.BERT_BASE, layers=BASE_LAYERS)}
SMOKE_SIZES = {"tiny": dataclasses.replace(T.TINY, layers=2)}


def variants(smoke: bool) -> dict[str, T.EncoderSize]:
    sizes = SMOKE_SIZES if smoke else SIZES
    return {f"{name}-L{s.layers + extra}": dataclasses.replace(s, layers=s.layers + extra, label=f"{name}-L{s.layers + extra}")
            for name, s in sizes.items() for extra in EXTRA_LAYERS}


def build(size: T.EncoderSize, precision: str, device: Any, work: Path) -> Path:
    """Dynamic-shape export (batch x seq), built by the harness's ONNX Runtime backend."""
    import torch

    from pytest_trtbench.backends.base import BuildRequest
    from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend

    entry = work / f"ort-{size.label}"
    entry.mkdir(parents=True, exist_ok=True)
    src = work / f"{size.label}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(T.make_module(size), (torch.from_numpy(T.make_input_ids(size)),), str(src),
                          input_names=["input_ids"], output_names=["hidden"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "hidden": {0: "batch", 1: "seq"}})
    OnnxRuntimeBackend().build(BuildRequest(onnx_path=src, precision=precision, profiles=(), device=device), entry, work)
    return entry


def child(work: Path, smoke: bool, precision: str) -> dict[str, Any]:
    from pytest_trtbench.measure import TimingConfig, measure_latency

    device = T.current_device(force_cpu=smoke)
    config = TimingConfig(energy_s=0.0) if not smoke else TimingConfig(warmup_s=0.01, blocks=3, min_block_iters=3,
                                                                         min_block_s=0.005)
    out: dict[str, Any] = {"blocks": {}, "methods": {}, "notes": {}}
    for name, size in variants(smoke).items():
        engine = T.onnxruntime_engine(work / f"ort-{size.label}", device)
        result = measure_latency(engine.prepare({"input_ids": T.make_input_ids(size)}), size.batch, config)
        out["blocks"][name] = [[b.median_ms, b.iqr_ms, b.n] for b in result.blocks]
        out["methods"][name] = result.method
        out["notes"][name] = list(result.notes)  # why a CUDA graph was not used, if it was not
        engine.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=None, help="separate processes (default 12; 2 with --smoke)")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    precision = "fp32" if args.smoke else "fp16"
    if args.child is not None:
        print(MARK + json.dumps(child(args.child, args.smoke, precision)), flush=True)
        return 0
    started = time.perf_counter()
    device = T.current_device(force_cpu=args.smoke)
    work = Path(tempfile.mkdtemp(prefix="trtbench-knob-"))
    for size in variants(args.smoke).values():
        build(size, precision, device, work)
    data: dict[str, Any] = {
        "device": device.device_name, "precision": precision, "runs": [], "methods": {},
        "variants": {n: {"size": n.split("-L")[0], "layers": s.layers, "batch": s.batch, "seq": s.seq, "dim": s.dim,
                         "base_layers": (SMOKE_SIZES if args.smoke else SIZES)[n.split("-L")[0]].layers}
                     for n, s in variants(args.smoke).items()},
    }
    print(f"device {device.device_name}: built {len(data['variants'])} engines in {time.perf_counter() - started:.0f} s",
          flush=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(args.out), "--child", str(work)]
    cmd += ["--smoke"] if args.smoke else []
    for i in range(args.runs or (2 if args.smoke else 12)):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
        if proc.returncode != 0 or not lines:
            sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
            break
        got = json.loads(lines[-1][len(MARK):])
        data["runs"].append(got["blocks"])
        data["methods"].update(got["methods"])
        data["notes"] = got.get("notes", {})  # the last run's timing notes per variant
        args.out.write_text(json.dumps(data))  # after every run: a run cut short keeps what it has
        print(f"run {i + 1}: {time.perf_counter() - started:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data))
    print(f"wrote {args.out}: {len(data['runs'])} runs x {len(data['variants'])} variants", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
