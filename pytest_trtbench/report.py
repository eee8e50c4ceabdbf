"""The CSV report (pandas), the terminal summary table and its markdown twin."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

REPORT_COLUMNS = [
    "case_id", "suite", "model", "backend", "precision", "batch_size", "shapes", "gpu", "device_name",
    "status", "reason", "latency_ms_median", "latency_ms_p90", "latency_ms_p99", "latency_cov_pct",
    "throughput_qps", "baseline_latency_ms_median", "latency_change_pct", "latency_confidence",
    "reference_backend", "reference_latency_ms_median", "speedup_vs_reference", "max_abs_err", "max_rel_err",
    "mean_abs_err", "cosine_similarity", "top1_agreement", "engine_cache", "build_s", "engine_key", "engine_precisions",
    "timing_method", "enqueue_ms_median", "energy_j_per_inference", "mean_power_w", "gpu_clock_mhz_start",
    "gpu_clock_mhz_end", "gpu_temp_c_end", "fuzz_shapes_tried", "fuzz_failing_shape", "fuzz_seed",
]

INTEGER_COLUMNS = ("batch_size", "fuzz_shapes_tried", "fuzz_seed")

_TABLE = [
    ("case", "case_id", "{}"), ("status", "status", "{}"), ("median ms", "latency_ms_median", "{:.3f}"),
    ("change", "latency_change_pct", "{:+.1f}%"), ("CoV", "latency_cov_pct", "{:.1f}%"),
    ("speedup", "speedup_vs_reference", "{:.2f}x"), ("max abs err", "max_abs_err", "{:.2e}"),
    ("engine", "engine_cache", "{}"),
]


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """One row per case, columns in :data:`REPORT_COLUMNS` order (extra keys follow)."""
    import pandas as pd

    from pytest_trtbench.baseline import write_atomic

    extra = sorted({k for r in rows for k in r} - set(REPORT_COLUMNS))
    frame = pd.DataFrame(list(rows), columns=REPORT_COLUMNS + extra)
    for column in INTEGER_COLUMNS:  # stay integers where some rows leave them empty (fuzz rows, case rows)
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    write_atomic(Path(path), frame.to_csv(index=False))


def _cell(row: Mapping[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = [name for name, _, _ in _TABLE]
    body = [[_cell(r, key, fmt) for _, key, fmt in _TABLE] for r in rows]
    return header, body


def text_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    header, body = table(rows)
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(b) for b in body]


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    header, body = table(rows)
    esc = lambda c: c.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in b) + " |" for b in body]
    return "\n".join(lines) + "\n"


def counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[str(r["status"])] = out.get(str(r["status"]), 0) + 1
    return out
