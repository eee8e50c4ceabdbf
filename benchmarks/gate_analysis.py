"""Analyse the GPU gate runs of ``gpu_gate_runs.sh``: stability, false alarms, between-GPU spread, offline replay.

Reads the run directories (CSV reports and junit XML with every case's block summaries in its
``trtbench`` user property) and prints a markdown report:

* **stability**: per case, the CoV of the reported median over the separate processes on GPU 0;
* **false alarms**: the verdicts each gate run gave live (the baselines are one run recorded on GPU 0);
* **between-GPU spread**: log ratio of a case's median on GPU 1 to GPU 0, beyond the within-GPU
  process-to-process spread: what ``PRIOR_BETWEEN_MACHINE_CV`` in ``pytest_trtbench/gate.py`` is set from;
* **offline replay**: the current rule (``gate.decide_machine_aware``, this checkout's constants) applied
  to the same block summaries, with GPU 0's record as the history (K = 1).

    python benchmarks/gate_analysis.py RESULTS_DIR [...] --out benchmarks/results/gate_h200x2.md
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import statistics
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pytest_trtbench.gate import StoredRun, decide_machine_aware, launch_bound_reason  # noqa: E402
from pytest_trtbench.regression import BlockSummary  # noqa: E402

RECORD = "gpu0_record"


def load_run(csv_path: Path) -> dict[str, dict[str, Any]]:
    """case_id -> report row (+ ``blocks`` from the junit XML beside it, where present)."""
    with open(csv_path, newline="") as f:
        rows = {r["case_id"]: dict(r) for r in csv.DictReader(f)}
    xml = csv_path.with_suffix(".xml")
    packed = csv_path.with_suffix(".xml.gz")
    if xml.exists() or packed.exists():
        tree = ET.parse(xml) if xml.exists() else ET.ElementTree(ET.fromstring(gzip.decompress(packed.read_bytes())))
        for case in tree.iter("testcase"):
            for prop in case.iter("property"):
                if prop.get("name") != "trtbench":
                    continue
                data = json.loads(prop.get("value") or "{}")
                # the user property is a CaseOutcome's JSON ("case"), or (before the pipeline split) a row ("row")
                row = rows.get((data.get("case") or data.get("row") or {}).get("case_id", ""))
                if row is not None and data.get("latency"):
                    row["blocks"] = [BlockSummary.from_json(b) for b in data["latency"].get("blocks", [])]
    return rows


def gpu_of(name: str, row: dict[str, Any]) -> str:
    """Which GPU a run's case ran on: from the run name, or (``-n auto``) from the gate's note."""
    if name.startswith("gpu0"):
        return "gpu0"
    if name.startswith("gpu1"):
        return "gpu1"
    return "gpu1" if "first run on this machine" in row.get("reason", "") else "gpu0"


def fnum(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def analyse(runs: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    out: list[str] = []
    record = runs[RECORD]
    cases = [c for c, r in record.items() if r["status"] == "pass"]
    gpu0 = [n for n in runs if n.startswith("gpu0")]
    # --- stability
    out += ["## Stability of the reported median over separate processes on GPU 0", "",
            f"Processes: {', '.join(gpu0)} ({len(gpu0)}).", "",
            "| case | timing method | median ms | CoV of median % | launch-bound |", "|---|---|---|---|---|"]
    by_method: dict[str, list[float]] = {}
    for c in cases:
        meds = [fnum(runs[n][c]["latency_ms_median"]) for n in gpu0 if c in runs[n]]
        meds = [m for m in meds if m > 0]
        cov = 100 * statistics.stdev(meds) / statistics.fmean(meds) if len(meds) > 1 else math.nan
        method = record[c]["timing_method"]
        by_method.setdefault(method, []).append(cov)
        out.append(f"| {c} | {method} | {statistics.median(meds):.4f} | {cov:.2f} | {record[c].get('launch_bound', '')} |")
    out.append("")
    for method, covs in sorted(by_method.items()):
        covs = sorted(covs)
        under = sum(1 for v in covs if v <= 0.5)
        out.append(f"- {method}: {len(covs)} cases, CoV of the median: median {statistics.median(covs):.2f} %, "
                   f"max {covs[-1]:.2f} %, {under} of {len(covs)} at or under 0.5 %")
    # --- live verdicts
    out += ["", "## Live gate verdicts (baselines: 1 run recorded on GPU 0)", "",
            "| run | GPU(s) | cases gated | latency_regression | improved | false alarms |", "|---|---|---|---|---|---|"]
    for name, rows in runs.items():
        if name == RECORD:
            continue
        gated = [r for c, r in rows.items() if c in cases]
        regs = [r for r in gated if r["status"] == "latency_regression"]
        imp = [r for r in gated if r["status"] == "improved"]
        gpus = sorted({gpu_of(name, r) for r in gated})
        listed = "; ".join(f"{r['case_id']} {fnum(r['latency_change_pct']):+.1f} % ({r['timing_method']}, "
                           f"CoV {fnum(r['latency_cov_pct']):.1f} %)" for r in regs)
        out.append(f"| {name} | {'+'.join(gpus)} | {len(gated)} | {len(regs)} | {len(imp)} | {listed or '-'} |")
    # --- between-GPU spread, per noise class (what gate.py's priors are set from)
    out += ["", "## Between-GPU spread (GPU 1 vs GPU 0, same host), per noise class", ""]
    classes: dict[str, list[str]] = {}
    for c in cases:
        bound = launch_bound_reason(fnum(record[c]["latency_ms_median"]), math.nan, True, True,
                                    graph_replay=record[c]["timing_method"].startswith("cuda-graph"))
        classes.setdefault("launch-bound" if bound else "graph-timed", []).append(c)
    for label, members in sorted(classes.items()):
        within, between = [], []
        for c in members:
            g0 = [math.log(fnum(runs[n][c]["latency_ms_median"])) for n in gpu0 if c in runs[n]]
            g1 = [math.log(fnum(r[c]["latency_ms_median"])) for n, r in runs.items()
                  if c in r and gpu_of(n, r[c]) == "gpu1" and fnum(r[c]["latency_ms_median"]) > 0]
            if len(g0) > 1:
                within.append(statistics.variance(g0))
            if g0 and g1:
                between.append((statistics.fmean(g1) - statistics.fmean(g0)) ** 2)
        if within and between:
            w, b = statistics.fmean(within), statistics.fmean(between)
            out.append(f"- {label}: {len(between)} cases; within-GPU process sigma {100 * math.sqrt(w):.2f} %, "
                       f"RMS log ratio GPU1/GPU0 {100 * math.sqrt(b):.2f} %, between-machine sigma beyond the "
                       f"within-GPU part {100 * math.sqrt(max(0.0, b - w)):.2f} %")
    # --- offline replay with this checkout's rule
    out += ["", "## Offline replay: this checkout's rule on the same block summaries (history: GPU 0 record, K = 1)",
            "", "| run | gated | latency_regression | cases |", "|---|---|---|---|"]
    for name, rows in runs.items():
        if name == RECORD:
            continue
        flagged, gated = [], 0
        for c in cases:
            hist, cur = record[c].get("blocks"), rows.get(c, {}).get("blocks")
            if not hist or not cur:
                continue
            gated += 1
            machine = gpu_of(name, rows[c])
            bound = bool(launch_bound_reason(fnum(rows[c]["latency_ms_median"]), math.nan, True, True,
                                             graph_replay=rows[c]["timing_method"].startswith("cuda-graph")))
            decision, _ = decide_machine_aware([StoredRun(tuple(hist), "gpu0")], cur, machine, 0.05,
                                               launch_bound=bound)
            if decision.verdict == "latency_regression":
                flagged.append(f"{c} {100 * (decision.ratio - 1):+.1f} %")
        out.append(f"| {name} | {gated} | {len(flagged)} | {'; '.join(flagged) or '-'} |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    runs = {p.stem: load_run(p) for d in args.dirs for p in sorted(d.glob("*.csv")) if not p.stem.startswith("nvidia")}
    text = "\n".join(analyse(runs)) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
