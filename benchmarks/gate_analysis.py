"""Analyse the GPU gate runs of ``gpu_gate_runs.sh``: stability, false alarms, between-GPU spread, offline replay.

Every run is one pytest process; its results are the JSON report it wrote (``--trt-report=RUN.json``:
each case's row, timed blocks and the gate's check; :mod:`pytest_trtbench.json_report`). Older run
directories (``benchmarks/results/gate_h200x2/``) hold a CSV report and junit XML whose ``trtbench``
user property carried the blocks; those are read too. Run names say where a run ran:

* ``rec_<group>_gpu<N>``: recorded the baselines (``--trt-update-baselines``, K = 1) of its cases on GPU N
  (the old layout: one ``gpu0_record`` for every case);
* ``<group>_gpu<N>_r<i>`` / ``gpu<N>_run<i>``: a gate run on GPU N;
* ``nauto_gpu<A>+<B>``: one ``-n auto`` run over GPUs A and B (which GPU ran a case is read from the
  gate's note: "first run on this machine" or "of this machine").

Printed (markdown):

* **stability**: per case, the CoV of the reported median over the separate single-GPU processes on the
  GPU that ran it most often (the record run included; ``-n auto`` runs left out);
* **false alarms**: the verdicts each gate run gave live, split into cases gated on the machine that
  recorded them and cases gated on another machine (out of sample: the record was one run, the
  rule's constants were set before these runs);
* **between-GPU spread**: per noise class, the log ratio of a case's median on other GPUs to its
  stability GPU, beyond the within-GPU process-to-process spread;
* **offline replay**: this checkout's rule (``gate.decide_machine_aware`` and the launch-bound arming of
  ``gate.launch_bound_unarmed``) on the same blocks, history = the case's record run (K = 1): equal to
  the live verdicts unless the rule changed since.

    python benchmarks/gate_analysis.py RESULTS_DIR [...] --out benchmarks/results/gate_h200_oos.md
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import re
import statistics
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pytest_trtbench.gate import StoredRun, decide_machine_aware, launch_bound_reason, launch_bound_unarmed  # noqa: E402
from pytest_trtbench.json_report import load_json_report  # noqa: E402
from pytest_trtbench.regression import BlockSummary  # noqa: E402

Run = dict[str, dict[str, Any]]  # case_id -> row (+ "blocks": list[BlockSummary])


def load_run(path: Path) -> Run:
    """case_id -> report row with ``blocks``, from a JSON report or (old runs) a CSV + junit XML."""
    if path.name.endswith((".json", ".json.gz")):
        rows: Run = {}
        for case in load_json_report(path):
            row = {k: ("" if v is None else v) for k, v in case.items() if k not in ("latency", "latency_check")}
            latency = case.get("latency") or {}
            row["blocks"] = [BlockSummary.from_json(b) for b in latency.get("blocks", [])]
            row["gate_note"] = (case.get("latency_check") or {}).get("reason") or ""
            rows[case["case_id"]] = row
        return rows
    with open(path, newline="") as f:
        rows = {r["case_id"]: dict(r) for r in csv.DictReader(f)}
    for row in rows.values():
        row["gate_note"] = row.get("reason", "")
    xml, packed = path.with_suffix(".xml"), path.with_suffix(".xml.gz")
    if xml.exists() or packed.exists():
        tree = ET.parse(xml) if xml.exists() else ET.ElementTree(ET.fromstring(gzip.decompress(packed.read_bytes())))
        for case in tree.iter("testcase"):
            for prop in case.iter("property"):
                if prop.get("name") != "trtbench":
                    continue
                data = json.loads(prop.get("value") or "{}")
                row = rows.get((data.get("case") or data.get("row") or {}).get("case_id", ""))
                if row is not None and data.get("latency"):
                    row["blocks"] = [BlockSummary.from_json(b) for b in data["latency"].get("blocks", [])]
    return rows


def bound(row: dict[str, Any]) -> bool:
    """Launch-bound as the plugin decides it: the report's column, or (old reports, written before the
    column existed) recomputed for an ONNX Runtime launch (host-synchronous: plain enqueues are launch-bound)."""
    if row.get("launch_bound"):
        return True
    return bool(launch_bound_reason(fnum(row.get("latency_ms_median")), math.nan, True, True,
                                    graph_replay=str(row.get("timing_method", "")).startswith("cuda-graph")))


def is_record(name: str) -> bool:
    return name.startswith("rec_") or name == "gpu0_record"


def run_gpu(name: str) -> str | None:
    """``gpuN`` for a run on one GPU, ``None`` for an ``-n auto`` run over several."""
    found = re.findall(r"gpu(\d+)", name)
    return None if name.startswith("nauto") or len(found) != 1 else f"gpu{found[0]}"


def fnum(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def records(runs: dict[str, Run]) -> dict[str, tuple[str, str]]:
    """case_id -> (record run, its GPU) for every case a record run passed."""
    out: dict[str, tuple[str, str]] = {}
    for name, rows in runs.items():
        if is_record(name):
            for case, row in rows.items():
                if row["status"] == "pass" and row.get("blocks"):
                    out[case] = (name, run_gpu(name) or "gpu0")
    return out


def case_gpu(name: str, row: dict[str, Any], record_gpu: str, others: str = "other") -> str:
    """The GPU a case ran on: the run's, or (``-n auto``) the record's or another, read from the gate's note."""
    return run_gpu(name) or (others if "first run on this machine" in row.get("gate_note", "") else record_gpu)


def medians_by_gpu(runs: dict[str, Run], case: str, record_gpu: str, serial_only: bool = False) -> dict[str, list[float]]:
    """A case's reported medians per GPU (``serial_only``: without ``-n auto`` runs)."""
    out: dict[str, list[float]] = {}
    for name, rows in runs.items():
        if serial_only and run_gpu(name) is None:
            continue
        row = rows.get(case)
        if row is not None and fnum(row.get("latency_ms_median")) > 0:
            out.setdefault(case_gpu(name, row, record_gpu), []).append(fnum(row["latency_ms_median"]))
    return out


def cov_pct(values: list[float]) -> float:
    return 100 * statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else math.nan


def stability(runs: dict[str, Run], recs: dict[str, tuple[str, str]]) -> list[str]:
    out = ["## Stability of the reported median over separate processes on one GPU", "",
           "| case | timing method | GPU | processes | median ms | CoV of median % | launch-bound |",
           "|---|---|---|---|---|---|---|"]
    by_method: dict[str, list[tuple[float, int]]] = {}
    for case, (rec, gpu) in sorted(recs.items()):
        per = medians_by_gpu(runs, case, gpu, serial_only=True)
        best = max(per, key=lambda g: len(per[g]))
        meds = per[best]
        cov = cov_pct(meds)
        method = runs[rec][case]["timing_method"]
        by_method.setdefault(method, []).append((cov, len(meds)))
        out.append(f"| {case} | {method} | {best} | {len(meds)} | {statistics.median(meds):.4f} | {cov:.2f} | "
                   f"{runs[rec][case].get('launch_bound', '')} |")
    out.append("")
    for method, got in sorted(by_method.items()):
        covs = sorted(c for c, _ in got if math.isfinite(c))
        five = sum(1 for _, n in got if n >= 5)
        under = sum(1 for c in covs if c <= 0.5)
        if covs:
            out.append(f"- {method}: {len(got)} cases ({five} with >= 5 processes), CoV of the median: median "
                       f"{statistics.median(covs):.2f} %, max {covs[-1]:.2f} %, {under} of {len(covs)} at or under 0.5 %")
    return out


def live_verdicts(runs: dict[str, Run], recs: dict[str, tuple[str, str]]) -> list[str]:
    out = ["", "## Live gate verdicts (each case's baseline: 1 run recorded on one GPU; code unchanged, so every "
           "latency_regression is a false alarm)", "",
           "| run | cases gated on the recording GPU | false alarms | cases gated on another GPU (out of sample) | "
           "false alarms | improved | flagged |", "|---|---|---|---|---|---|---|"]
    totals = [0, 0, 0, 0]
    for name, rows in runs.items():
        if is_record(name):
            continue
        same = cross = fa_same = fa_cross = imp = 0
        flagged = []
        for case, row in rows.items():
            if case not in recs or not row.get("blocks") or row["status"] in ("error", "skipped", "new"):
                continue
            other = case_gpu(name, row, recs[case][1]) != recs[case][1]
            alarm = row["status"] == "latency_regression"
            same, cross = same + (not other), cross + other
            fa_same, fa_cross = fa_same + (alarm and not other), fa_cross + (alarm and other)
            imp += row["status"] == "improved"
            if alarm:
                flagged.append(f"{case} {fnum(row['latency_change_pct']):+.1f} % ({row['timing_method']}, CoV "
                               f"{fnum(row['latency_cov_pct']):.1f} %, {'other GPU' if other else 'same GPU'})")
        totals = [totals[0] + same, totals[1] + fa_same, totals[2] + cross, totals[3] + fa_cross]
        out.append(f"| {name} | {same} | {fa_same} | {cross} | {fa_cross} | {imp} | {'; '.join(flagged) or '-'} |")
    out.append(f"| **all** | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} | | |")
    return out


def spread(runs: dict[str, Run], recs: dict[str, tuple[str, str]]) -> list[str]:
    out = ["", "## Between-GPU spread, per noise class (stability GPU vs the others)", ""]
    classes: dict[str, list[str]] = {}
    for case, (rec, _) in recs.items():
        row = runs[rec][case]
        label = "graph-timed" if row["timing_method"].startswith("cuda-graph") else "plain enqueues"
        classes.setdefault(f"{label}, launch-bound" if bound(row) else label, []).append(case)
    for label, members in sorted(classes.items()):
        within, between = [], []
        for case in members:
            per = medians_by_gpu(runs, case, recs[case][1])
            per.pop("other", None)
            main = max(per, key=lambda g: len(per[g]))
            logs = [math.log(m) for m in per[main]]
            rest = [math.log(m) for g, v in per.items() if g != main for m in v]
            if len(logs) > 1:
                within.append(statistics.variance(logs))
            if logs and rest:
                between.append((statistics.fmean(rest) - statistics.fmean(logs)) ** 2)
        if within and between:
            w, b = statistics.fmean(within), statistics.fmean(between)
            out.append(f"- {label}: {len(between)} cases; within-GPU process sigma {100 * math.sqrt(w):.2f} %, "
                       f"RMS log ratio other GPUs / stability GPU {100 * math.sqrt(b):.2f} %, between-machine sigma "
                       f"beyond the within-GPU part {100 * math.sqrt(max(0.0, b - w)):.2f} %")
    return out


def replay(runs: dict[str, Run], recs: dict[str, tuple[str, str]]) -> list[str]:
    out = ["", "## Offline replay: this checkout's rule on the same blocks (history: the case's record run, K = 1)",
           "", "A launch-bound case's would-be regression with fewer than 3 runs of its machine is advisory "
           "(`gate.launch_bound_unarmed`), counted apart.", "",
           "| run | gated | latency_regression | cases | advisory (launch-bound, unarmed) |", "|---|---|---|---|---|"]
    for name, rows in runs.items():
        if is_record(name):
            continue
        flagged, advisory, gated = [], [], 0
        for case, (rec, gpu) in recs.items():
            row = rows.get(case)
            if row is None or not row.get("blocks"):
                continue
            gated += 1
            history = [StoredRun(tuple(runs[rec][case]["blocks"]), gpu)]
            machine = case_gpu(name, row, gpu)
            decision, _ = decide_machine_aware(history, row["blocks"], machine, 0.05, launch_bound=bound(row))
            if decision.verdict == "latency_regression":
                text = f"{case} {100 * (decision.ratio - 1):+.1f} %"
                (advisory if launch_bound_unarmed(history, machine, bound(row)) else flagged).append(text)
        out.append(f"| {name} | {gated} | {len(flagged)} | {'; '.join(flagged) or '-'} | {'; '.join(advisory) or '-'} |")
    return out


def analyse(runs: dict[str, Run]) -> list[str]:
    recs = records(runs)
    return stability(runs, recs) + live_verdicts(runs, recs) + spread(runs, recs) + replay(runs, recs)


def find_runs(dirs: list[Path]) -> dict[str, Run]:
    runs: dict[str, Run] = {}
    for d in dirs:
        for p in sorted(d.glob("*.json")) + sorted(d.glob("*.json.gz")) + sorted(d.glob("*.csv")):
            name = p.name.split(".")[0]
            if name.startswith(("nvidia", "knob")) or name in runs:
                continue
            runs[name] = load_run(p)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    text = "\n".join(analyse(find_runs(args.dirs))) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
