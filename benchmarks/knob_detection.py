"""Detection power and false alarms on real GPU block samples of true slowdowns (``record_knob_blocks.py``).

For each size, the L-layer variant is the baseline and the L+1, L+2, L+5 variants are true slowdowns
(their real size: the ratio of the median of run medians, printed). Every comparison is a stored
history of K runs of the baseline (K = 1: each run; K = 5: every 5-run window of consecutive runs)
against one run of a variant that is not in the history. Verdicts:

* **trtbench**: ``gate.decide_machine_aware`` (one machine; launch-bound noise model where the
  recorded timing method was not a graph replay, as the plugin does), tolerance 5 %, no confirmation;
* **pytest-benchmark** ``--benchmark-compare-fail=median:5%``: the median of the history's last run
  against the current run's median (pytest-benchmark compares with one saved run), on the same blocks
  (the median of the block medians stands in for the median of all iterations).

    python benchmarks/knob_detection.py knob_samples.json --out benchmarks/results/knob_detection_h200.md
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pytest_trtbench.gate import StoredRun, decide_machine_aware  # noqa: E402
from pytest_trtbench.regression import BlockSummary  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytest_benchmark_rule import pytest_benchmark_rule  # noqa: E402  (benchmarks/, next to this script)


def blocks(raw: list[list[float]]) -> tuple[BlockSummary, ...]:
    return tuple(BlockSummary(float(m), float(i), int(n)) for m, i, n in raw)


def run_median(raw: list[list[float]]) -> float:
    return statistics.median(b[0] for b in raw)


def rates(data: dict[str, Any], base: str, variant: str, k: int) -> tuple[int, int, int]:
    """(comparisons, trtbench flags, pytest-benchmark flags)."""
    runs = data["runs"]
    bound = not data["methods"].get(variant, "").startswith("cuda-graph")
    total = ours = theirs = 0
    for start in range(len(runs) - k + 1):
        window = list(range(start, start + k))
        history = [StoredRun(blocks(runs[i][base]), "m") for i in window]
        for j, run in enumerate(runs):
            if j in window:
                continue
            current = blocks(run[variant])
            decision, _ = decide_machine_aware(history, current, "m", 0.05, launch_bound=bound)
            total += 1
            ours += decision.verdict == "latency_regression"
            theirs += pytest_benchmark_rule(run_median(runs[window[-1]][base]), run_median(run[variant]), 0.05)
    return total, ours, theirs


def report(data: dict[str, Any]) -> list[str]:
    out = [f"Device: {data['device']}, {data['precision']}, {len(data['runs'])} runs (separate processes); "
           f"timing methods: {sorted(set(data['methods'].values()))}.", "",
           "| size | variant | true slowdown | K | comparisons | trtbench detects | pytest-benchmark median:5% |",
           "|---|---|---|---|---|---|---|"]
    variants = data["variants"]
    for name, info in variants.items():
        base = f"{info['size']}-L{info['base_layers']}"
        true = statistics.median(run_median(r[name]) for r in data["runs"]) / \
            statistics.median(run_median(r[base]) for r in data["runs"])
        for k in (1, 5):
            if len(data["runs"]) <= k:
                continue
            n, ours, theirs = rates(data, base, name, k)
            label = "false alarms" if name == base else "detects"
            out.append(f"| {info['size']} | {name} ({label}) | {100 * (true - 1):+.1f} % | {k} | {n} | "
                       f"{100 * ours / n:.1f} % | {100 * theirs / n:.1f} % |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    raw = args.samples.read_bytes()
    text = "\n".join(report(json.loads(gzip.decompress(raw) if args.samples.suffix == ".gz" else raw))) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
