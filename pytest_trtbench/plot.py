"""Plot a ``--trt-report`` CSV: per suite, latency and throughput against batch size.

Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch), imported lazily;
install it with the ``plot`` extra.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_trtbench.merge import ReportError, read_report

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

PLOT_COLUMNS = (
    "case_id", "suite", "model", "backend", "precision", "batch_size", "gpu", "latency_ms_median", "throughput_qps",
)
"""The report columns :func:`plot_report` needs."""


def plot_report(csv: Path, out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<suite>.png`` for each suite with measured latency; return the paths.

    Each PNG has two subplots against batch size: median latency and throughput, one line per
    (backend, precision). The model, the GPU and the other case parameters (``seq64`` in
    ``test_bert[onnxruntime-fp32-b4-seq64]``) split lines further where a suite has several.
    Rows without a median latency (skipped, built-only, errors) are left out; cases that still
    share a line and a batch size are drawn as their median.
    Raises :class:`ReportError` if *csv* is unreadable or lacks :data:`PLOT_COLUMNS`.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'pytest-trtbench[plot]'") from None

    report = read_report(Path(csv), required=PLOT_COLUMNS)
    measured = report[report["latency_ms_median"].notna() & report["batch_size"].notna()]
    measured = measured.fillna({c: "" for c in ("suite", "model", "backend", "precision", "gpu")})
    measured = measured.assign(variant=[
        _shape_variant(str(case_id), str(backend), str(precision), float(batch))
        for case_id, backend, precision, batch in zip(
            measured["case_id"], measured["backend"], measured["precision"], measured["batch_size"]
        )
    ])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    written: list[Path] = []
    used_names: set[str] = set()
    for suite, rows in measured.groupby("suite", sort=True):
        figure = Figure(figsize=(11, 4.5), layout="constrained")
        FigureCanvasAgg(figure)
        latency_axes, throughput_axes = figure.subplots(1, 2)
        line_keys = ["model", "gpu", "backend", "precision", "variant"]
        optional_keys = ("model", "gpu", "variant")
        varying = [k for k in optional_keys if rows[k].nunique() > 1]
        for key, line in rows.groupby(line_keys, sort=True):
            shown = [part for part, name in zip(key, line_keys) if name not in optional_keys or name in varying]
            label = " ".join(map(str, shown))
            points = line.groupby("batch_size")[["latency_ms_median", "throughput_qps"]].median()
            latency_axes.plot(points.index, points["latency_ms_median"], marker="o", label=label)
            throughput = points["throughput_qps"].dropna()
            if len(throughput):
                throughput_axes.plot(throughput.index, throughput, marker="o", label=label)
        _style_axes(latency_axes, rows, "median latency (ms)")
        _style_axes(throughput_axes, rows, "throughput (qps)")
        gpus = ", ".join(sorted(set(rows["gpu"]) - {""}))
        figure.suptitle(f"{suite}" + (f" on {gpus}" if gpus else ""))

        name = _file_name(str(suite), used_names)
        path = out_dir / name
        figure.savefig(path, format="png", dpi=100)
        written.append(path)
    return written


def _style_axes(axes: Axes, rows: pd.DataFrame, ylabel: str) -> None:
    batch_sizes = sorted(set(rows["batch_size"]))
    if batch_sizes[0] > 0 and batch_sizes[-1] / batch_sizes[0] >= 8:
        axes.set_xscale("log", base=2)
    axes.set_xticks(batch_sizes, [f"{int(b)}" if float(b).is_integer() else f"{b:g}" for b in batch_sizes])
    axes.set_xlabel("batch size")
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    if axes.get_lines():
        axes.legend(fontsize="small")


def _shape_variant(case_id: str, backend: str, precision: str, batch: float) -> str:
    """The parameters of *case_id* other than backend, precision and batch (``seq64``), or ``""``."""
    if not case_id.endswith("]") or "[" not in case_id:
        return ""
    params = case_id[case_id.index("[") + 1 : -1].split("-")
    known = {backend, precision, f"b{int(batch)}" if batch.is_integer() else f"b{batch:g}"}
    return "-".join(p for p in params if p not in known)


def _file_name(suite: str, used: set[str]) -> str:
    """A safe, unique ``.png`` name for *suite* among those already *used*."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", suite).strip("._") or "suite"
    name, n = f"{stem}.png", 2
    while name in used:
        name, n = f"{stem}-{n}.png", n + 1
    used.add(name)
    return name


__all__ = ["PLOT_COLUMNS", "ReportError", "plot_report"]
