"""A/B on a GPU: ONNX Runtime's run captured into our CUDA graph (replays queued back to back) vs ONNX
Runtime's own CUDA graph (every replay waits for the GPU), same process, same pinned engine, idle and
with every CPU core busy (a shared runner).

For each encoder size (``gpu_targets``: BERT-base, BERT-small, tiny; fp16) the harness's ONNX Runtime
engine is built once, pinned to the case's shapes, and timed as the plugin times a case
(``measure_latency``, default config) through each graph, alternating A/B for ``--rounds`` rounds.
Prints one line per (size, load, graph): medians, CoV, block-median spread, enqueue median; writes JSON.

    python benchmarks/ort_graph_ab.py --out ab.json            # GPU with onnxruntime-gpu
    python benchmarks/ort_graph_ab.py --smoke --out /tmp/ab.json  # CPU: the script's plumbing only
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_targets as T  # noqa: E402


class ForcedGraph:
    """The engine's launch, replayed through a graph session of our choosing (``own``: ours or ORT's)."""

    def __init__(self, engine: Any, feeds: dict[str, Any], own: bool, pinned: Path) -> None:
        from pytest_trtbench.backends.onnxruntime import _ort
        from pytest_trtbench.backends.ort_graph import CudaGraphSession

        self.launch = engine.prepare(feeds)
        self.cuda_stream = self.launch.cuda_stream
        self.host_synchronous = self.launch.host_synchronous
        expected = engine.run(feeds)
        self.session = CudaGraphSession(_ort(), pinned, "ab", feeds, engine.output_names, expected, engine.stream,
                                        own_capture=own, pinned=True)

    def __call__(self) -> None:
        self.launch()

    def synchronize(self) -> None:
        self.launch.synchronize()

    def capture_graph(self) -> Any:
        return self.session


def _spin(stop: Any) -> None:
    while not stop.is_set():
        pass


def time_one(engine: Any, feeds: dict[str, Any], own: bool, pinned: Path, batch: int) -> dict[str, Any]:
    from pytest_trtbench.measure import TimingConfig, measure_latency

    result = measure_latency(ForcedGraph(engine, feeds, own, pinned), batch, TimingConfig(energy_s=0.0))
    blocks = [b.median_ms for b in result.blocks]
    return {"method": result.method, "median_ms": result.median_ms, "cov_pct": result.cov_pct,
            "block_spread_pct": 100 * (max(blocks) / min(blocks) - 1), "enqueue_ms": result.enqueue_ms_median,
            "host_synchronous": result.host_synchronous}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="CPU: build and pin only (no CUDA graphs here)")
    args = parser.parse_args(argv)
    from pytest_trtbench.backends.ort_graph import pin_input_shapes

    device = T.current_device(force_cpu=args.smoke)
    sizes = [T.TINY] if args.smoke else [T.BERT_BASE, T.BERT_SMALL, T.TINY]
    precision = "fp32" if args.smoke else "fp16"
    work = Path(tempfile.mkdtemp(prefix="trtbench-ab-"))
    rows: list[dict[str, Any]] = []
    for size in sizes:
        entry = T.build_onnxruntime(size, precision, device, work)
        engine = T.onnxruntime_engine(entry, device)
        feeds = {"input_ids": T.make_input_ids(size)}
        pinned = work / f"{size.label}-pinned.onnx"
        pin_input_shapes(engine.path, pinned, {k: tuple(v.shape) for k, v in feeds.items()})
        if args.smoke:
            print(f"{size.label}: built and pinned ({pinned.stat().st_size} bytes); CUDA graphs need a GPU")
            continue
        for load in ("idle", "cpu-busy"):
            stop = multiprocessing.Event()
            hogs = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
                    for _ in range((os.cpu_count() or 1) if load == "cpu-busy" else 0)]
            for h in hogs:
                h.start()
            try:
                for r in range(args.rounds):
                    for own in ((True, False) if r % 2 == 0 else (False, True)):
                        got = time_one(engine, feeds, own, pinned, size.batch)
                        rows.append({"size": size.label, "load": load, "graph": "ours" if own else "ort", **got})
            finally:
                stop.set()
                for h in hogs:
                    h.join()
        engine.close()
    for size in sizes:
        for load in ("idle", "cpu-busy"):
            for graph in ("ours", "ort"):
                sel = [r for r in rows if (r["size"], r["load"], r["graph"]) == (size.label, load, graph)]
                if not sel:
                    continue
                med = [r["median_ms"] for r in sel]
                print(f"{size.label:10s} {load:8s} {graph:4s} {sel[0]['method']:22s} medians "
                      f"{' '.join(f'{m:.4f}' for m in med)} ms (spread {100 * (max(med) / min(med) - 1):.2f} %) "
                      f"CoV {statistics.median(r['cov_pct'] for r in sel):.2f} % "
                      f"blocks {statistics.median(r['block_spread_pct'] for r in sel):.2f} % "
                      f"enqueue {statistics.median(r['enqueue_ms'] for r in sel):.4f} ms", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": device.device_name, "precision": precision, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
