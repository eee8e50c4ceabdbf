"""The report: the one column schema, the CSV (pandas), the terminal table, its markdown twin, the failure text.

A report row is a view of a :class:`~pytest_trtbench.outcome.CaseOutcome`: :data:`COLUMNS` says, per column,
its name, whether it is text or a number, whether every report must have it (what ``merge`` requires) and
how it is read off the outcome. ``merge.py`` reads reports with the same schema.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence

from pytest_trtbench import verdict as V

if TYPE_CHECKING:
    from pytest_trtbench.outcome import CaseOutcome

NAN = math.nan
REASON_MAX_CHARS = 500
"""The one truncation rule for the CSV's ``reason`` (and the tables): the failure message has the full text."""


def truncate_reason(text: str, limit: int = REASON_MAX_CHARS) -> str:
    """*text* cut to *limit* characters, saying so (whitespace runs collapsed first)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    marker = f" ... [cut: {len(text)} characters in all, the failure message has them]"
    return text[: max(0, limit - len(marker))].rstrip() + marker


@dataclass(frozen=True)
class Column:
    name: str
    kind: Literal["text", "number", "integer"]
    value: Callable[[CaseOutcome], Any]
    required: bool = False
    """Every report has it: ``merge`` refuses a file without it. Columns added later are optional, so
    reports written by older versions still merge."""


def _lat(field: str) -> Callable[[CaseOutcome], Any]:
    return lambda o: getattr(o.latency, field) if o.latency is not None else NAN


def _telemetry(key: str) -> Callable[[CaseOutcome], Any]:
    def value(o: CaseOutcome) -> Any:
        got = o.latency.telemetry.get(key) if o.latency is not None else None
        return NAN if got is None else got

    return value


def _worst(field: str, pick: Callable[[list[float]], float]) -> Callable[[CaseOutcome], float]:
    """The worst value of *field* over the outputs (*pick* is ``max`` for errors, ``min`` for similarities)."""
    def value(o: CaseOutcome) -> float:
        values = [getattr(c, field) for c in o.comparisons if getattr(c, field) is not None]
        return pick(values) if values else NAN

    return value


def _mib(value: float) -> float:
    return value / 2**20


def _speedup(o: CaseOutcome) -> float:
    median = o.latency.median_ms if o.latency is not None else NAN
    return o.reference_latency_ms / median if o.reference_latency_ms > 0 and median > 0 else NAN


COLUMNS: tuple[Column, ...] = (
    Column("case_id", "text", lambda o: o.case.case_id, True),
    Column("suite", "text", lambda o: o.case.suite, True),
    Column("model", "text", lambda o: o.case.model, True),
    Column("backend", "text", lambda o: o.case.backend, True),
    Column("precision", "text", lambda o: o.case.precision, True),
    Column("batch_size", "integer", lambda o: NAN if o.case.batch_size is None else o.case.batch_size, True),
    Column("shapes", "text", lambda o: o.case.shapes, True),
    Column("gpu", "text", lambda o: o.case.gpu, True),
    Column("device_name", "text", lambda o: o.case.device_name, True),
    Column("status", "text", lambda o: o.status, True),
    Column("reason", "text", lambda o: truncate_reason(o.reason), True),
    Column("latency_ms_median", "number", _lat("median_ms"), True),
    Column("latency_ms_p90", "number", _lat("p90_ms"), True),
    Column("latency_ms_p99", "number", _lat("p99_ms"), True),
    Column("latency_cov_pct", "number", _lat("cov_pct"), True),
    Column("throughput_qps", "number", _lat("throughput_qps"), True),
    Column("baseline_latency_ms_median", "number", lambda o: o.latency_check.baseline_ms, True),
    Column("latency_change_pct", "number", lambda o: o.latency_check.change_pct, True),
    Column("latency_confidence", "number", lambda o: o.latency_check.confidence),
    Column("reference_backend", "text", lambda o: o.reference_backend, True),
    Column("reference_latency_ms_median", "number", lambda o: o.reference_latency_ms, True),
    Column("speedup_vs_reference", "number", _speedup, True),
    Column("max_abs_err", "number", _worst("max_abs_err", max), True),
    Column("max_rel_err", "number", _worst("max_rel_err", max), True),
    Column("mean_abs_err", "number", _worst("mean_abs_err", max)),
    Column("cosine_similarity", "number", _worst("cosine_similarity", min), True),
    Column("top1_agreement", "number", _worst("top1_agreement", min)),
    Column("engine_cache", "text", lambda o: o.engine.cache, True),
    Column("build_s", "number", lambda o: o.engine.build_s, True),
    Column("engine_key", "text", lambda o: o.engine.key),
    Column("engine_precisions", "text", lambda o: o.engine.precisions_label()),
    Column("timing_method", "text", lambda o: o.latency.method if o.latency is not None else ""),
    Column("cuda_layer", "text", lambda o: o.latency.cuda_layer if o.latency is not None else ""),
    Column("enqueue_ms_median", "number", _lat("enqueue_ms_median")),
    Column("energy_j_per_inference", "number", _telemetry("energy_j_per_inference")),
    Column("mean_power_w", "number", _telemetry("mean_power_w")),
    Column("gpu_clock_mhz_start", "number", _telemetry("gpu_clock_mhz_start")),
    Column("gpu_clock_mhz_end", "number", _telemetry("gpu_clock_mhz_end")),
    Column("gpu_temp_c_end", "number", _telemetry("gpu_temp_c_end")),
    Column("fuzz_shapes_tried", "integer", lambda o: o.fuzz.shapes_tried if o.fuzz is not None else NAN),
    Column("fuzz_failing_shape", "text", lambda o: o.fuzz.failing_shape if o.fuzz is not None else ""),
    Column("fuzz_seed", "integer", lambda o: o.fuzz.seed if o.fuzz is not None else NAN),
    Column("model_normalized", "text", lambda o: o.model_normalized),
    Column("launch_bound", "text", lambda o: o.latency.launch_bound if o.latency is not None else ""),
    Column("engine_file_mib", "number", lambda o: _mib(o.engine.file_bytes)),
    Column("load_s", "number", lambda o: o.engine.load_s),
    Column("cold_start_s", "number", lambda o: o.engine.cold_start_s),
    Column("device_memory_mib", "number", lambda o: _mib(o.engine.device_memory_bytes)),
    Column("engine_context_memory_mib", "number", lambda o: _mib(o.engine.engine_device_memory_bytes)),
    Column("peak_gpu_memory_mib", "number", lambda o: _mib(o.latency.peak_gpu_memory_bytes) if o.latency else NAN),
    Column("host_rss_growth_mib", "number", lambda o: _mib(o.engine.host_rss_growth_bytes)),
    Column("task_metric", "text", lambda o: o.task.name if o.task is not None else ""),
    Column("task_metric_reference", "number", lambda o: o.task.reference if o.task is not None else NAN),
    Column("task_metric_engine", "number", lambda o: o.task.engine if o.task is not None else NAN),
    Column("task_metric_relative_loss", "number", lambda o: o.task.relative_loss if o.task is not None else NAN),
    Column("top_layer_deltas", "text", lambda o: o.layers.csv_cell() if o.layers is not None else ""),
)
"""The report's columns, in CSV order. A new metric: a field on the outcome and one line here."""

REPORT_COLUMNS = [c.name for c in COLUMNS]


def row(outcome: CaseOutcome) -> dict[str, Any]:
    """The outcome as one report row, keyed and ordered by :data:`COLUMNS`."""
    return {c.name: c.value(outcome) for c in COLUMNS}


def failure_text(outcome: CaseOutcome) -> str:
    """What a failing case's test reports: the verdict, per-output statistics, the latency numbers for a
    latency regression, the baseline file and the command that updates it."""
    case, check = outcome.case, outcome.latency_check
    lines = [f"{case.case_id}: {outcome.status}", f"  {outcome.reason}"]
    for c in outcome.comparisons:
        top1 = "" if c.top1_agreement is None else f", top-1 {100 * c.top1_agreement:.2f} %"
        lines.append(
            f"  output {c.name}: max abs err {c.max_abs_err:.4g}, max rel err {c.max_rel_err:.4g}, "
            f"mean abs err {c.mean_abs_err:.4g}, cosine {c.cosine_similarity:.6f}{top1}, "
            f"mismatches {c.mismatches} / {c.total}, non-finite {c.nonfinite}"
        )
    if outcome.task is not None:
        t = outcome.task
        lines.append(f"  task metric {t.name} on {t.samples} evaluation samples: engine {t.engine:.4f}, reference "
                     f"{t.reference:.4f}, relative loss {100 * t.relative_loss:.2f} %")
    if outcome.status == V.LATENCY_REGRESSION and outcome.latency is not None:
        lines.append(
            f"  latency: median {outcome.latency.median_ms:.4f} ms vs baseline {check.baseline_ms:.4f} ms "
            f"({check.change_pct:+.1f} %), CoV {outcome.latency.cov_pct:.1f} %"
        )
        lines += outcome.layers.failure_lines() if outcome.layers is not None else []
    lines.append(f"  baseline: {outcome.baseline_file}")
    lines.append(
        f"  if this change is intended, update it: pytest {case.source_file or '<suite file>'} "
        f"--trt-gpu={case.gpu} --trt-update-baselines -k '{case.param_id}'"
    )
    return "\n".join(lines)


INTEGER_COLUMNS = tuple(c.name for c in COLUMNS if c.kind == "integer")
"""Written as integers even where some rows leave them empty (fuzz rows have no batch size, case rows no seed)."""

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

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(b) for b in body]


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    header, body = table(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in b) + " |" for b in body]
    return "\n".join(lines) + "\n"


def counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[str(r["status"])] = out.get(str(r["status"]), 0) + 1
    return out
