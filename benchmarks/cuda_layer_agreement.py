"""Per-case agreement of GPU timings taken through different CUDA layers (``--trt-cuda``), from CSV reports.

    python benchmarks/cuda_layer_agreement.py --limit-pct 2 torch=a.csv cuda-python=b.csv pycuda=c.csv [--out t.md]

The first report is the reference; each other report's ``latency_ms_median`` per case is compared with it
(``|other / reference - 1|``). Prints a markdown table; the exit status is 0 either way (a miss is a result).
"""
from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path


def read(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["case_id"]: row for row in csv.DictReader(f)}


def table(reports: list[tuple[str, dict[str, dict[str, str]]]], limit_pct: float) -> tuple[str, int, int]:
    (ref_name, ref), others = reports[0], reports[1:]
    head = ["case", f"{ref_name} ms (layer, method)"] + [f"{name} ms (layer) / diff" for name, _ in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    compared = missed = 0
    for case, row in ref.items():
        base = float(row["latency_ms_median"] or "nan")
        if not math.isfinite(base):
            continue
        cells = [f"`{case}`", f"{base:.4f} ({row.get('cuda_layer', '')}, {row['timing_method']})"]
        for _, rows in others:
            got = rows.get(case)
            value = float(got["latency_ms_median"] or "nan") if got else math.nan
            if not math.isfinite(value):
                cells.append("–")
                continue
            diff = 100 * (value / base - 1)
            compared += 1
            ok = abs(diff) <= limit_pct
            missed += not ok
            cells.append(f"{value:.4f} ({got.get('cuda_layer', '') if got else ''}) / {diff:+.2f} %{'' if ok else ' **MISS**'}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), compared, missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", help="NAME=report.csv, the reference first")
    parser.add_argument("--limit-pct", type=float, default=2.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    reports = [(spec.split("=", 1)[0], read(Path(spec.split("=", 1)[1]))) for spec in args.reports]
    text, compared, missed = table(reports, args.limit_pct)
    summary = f"\n\n{compared} comparisons, {missed} outside ±{args.limit_pct:g} %\n"
    print(text + summary)
    if args.out:
        args.out.write_text(text + summary, encoding="utf-8")


if __name__ == "__main__":
    main()
