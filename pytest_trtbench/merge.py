"""Read, validate and merge ``--trt-report`` CSV files, e.g. one per GPU of a CI matrix.

A report has one row per case. The same ``case_id`` on different ``gpu`` values is the same case
measured on several GPUs; :func:`side_by_side` lines those up, and :func:`to_markdown` renders any
small frame as a GitHub markdown table (for ``$GITHUB_STEP_SUMMARY``) without ``tabulate``.

pandas is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

from pytest_trtbench.report import COLUMNS
from pytest_trtbench.verdict import FAILING as FAILING_STATUSES
from pytest_trtbench.verdict import VERDICTS as STATUSES

if TYPE_CHECKING:
    import pandas as pd

REQUIRED_COLUMNS = tuple(c.name for c in COLUMNS if c.required)
"""Every report has these, in this order (the order merged reports are written in)."""
TEXT_COLUMNS = tuple(c.name for c in COLUMNS if c.kind == "text")
NUMERIC_COLUMNS = tuple(c.name for c in COLUMNS if c.kind != "text")

KEY = ["case_id", "gpu"]
"""One row per case and GPU in a merged report."""

# how a missing number may be spelled; text columns treat only the empty string as missing,
# so a GPU or reason spelled "NA" or "None" stays text
_MISSING_NUMBER_SPELLINGS = ["", "nan", "NaN", "NA", "N/A", "null", "None", "<NA>"]


class ReportError(Exception):
    """A report file cannot be used: unreadable, or missing columns or values. Names the file."""


class DuplicateCaseWarning(UserWarning):
    """The same (case_id, gpu) appeared more than once while merging; the last one was kept."""


def read_report(path: Path, required: Sequence[str] = REQUIRED_COLUMNS) -> pd.DataFrame:
    """Read one report CSV; raise :class:`ReportError` naming *path* if it is unreadable,
    lacks any of *required*, or has a non-number in a numeric column."""
    import pandas as pd

    path = Path(path)
    text_columns = set(TEXT_COLUMNS)
    numeric_columns = set(NUMERIC_COLUMNS)
    try:
        frame = pd.read_csv(
            path,
            dtype={column: "object" for column in text_columns},
            keep_default_na=False,
            na_values={
                **{column: [""] for column in text_columns},
                **{column: _MISSING_NUMBER_SPELLINGS for column in numeric_columns},
            },
        )
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise ReportError(f"{path}: empty file, not a report (no header row)") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = " ".join(str(exc).split())
        raise ReportError(f"{path}: cannot read as CSV: {reason}") from None

    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ReportError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(has: {', '.join(map(str, frame.columns))})"
        )
    for column in sorted(numeric_columns & set(frame.columns)):
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column][converted.isna() & frame[column].notna()]
        if len(bad):
            raise ReportError(
                f"{path}: column {column} must be numeric, "
                f"row {int(bad.index[0]) + 2} has {bad.iloc[0]!r}"  # +2: header line, 1-based
            )
        frame[column] = converted.astype("float64")
    for column in sorted(text_columns & set(frame.columns)):
        frame[column] = frame[column].astype("object")
    return frame


def _check_keys_and_statuses(frame: pd.DataFrame, path: Path) -> None:
    for column in (*KEY, "status"):
        empty = frame[column].isna()
        if empty.any():
            raise ReportError(f"{path}: row {int(frame.index[empty][0]) + 2} has no {column}")
    unknown = sorted(set(frame["status"]) - set(STATUSES))
    if unknown:
        raise ReportError(
            f"{path}: unknown status {', '.join(map(repr, unknown))}; expected one of {', '.join(STATUSES)}"
        )


def merge_reports(
    paths: Sequence[Path], *, on_duplicate: Literal["last", "error"] = "last"
) -> pd.DataFrame:
    """Concatenate reports (in order) into one frame with one row per (case_id, gpu).

    A (case_id, gpu) seen more than once -- a re-run GPU job whose old report was downloaded too,
    or the same report passed twice -- keeps the row of the last file, and a
    :class:`DuplicateCaseWarning` says which cases and files; with ``on_duplicate="error"`` it
    raises :class:`ReportError` instead. Columns are the required ones in their order, then any
    others in the order first seen (absent values are NaN).
    """
    import pandas as pd

    if not paths:
        raise ReportError("no report files given")
    frames = []
    for path in paths:
        frame = read_report(Path(path))
        _check_keys_and_statuses(frame, Path(path))
        frames.append(frame.assign(_source=str(path)))

    columns = list(REQUIRED_COLUMNS)
    for frame in frames:
        columns += [c for c in frame.columns if c not in columns]
    merged = pd.concat([frame.reindex(columns=columns) for frame in frames], ignore_index=True)

    duplicated = merged.duplicated(subset=KEY, keep=False)
    if duplicated.any():
        message = _describe_duplicates(merged[duplicated])
        if on_duplicate == "error":
            raise ReportError(message)
        warnings.warn(f"{message}; kept the row of the last file", DuplicateCaseWarning, stacklevel=2)
        merged = merged.drop_duplicates(subset=KEY, keep="last").reset_index(drop=True)
    return merged.drop(columns="_source")


def _describe_duplicates(rows: pd.DataFrame) -> str:
    sources: dict[tuple[str, str], list[str]] = {}
    for case_id, gpu, source in zip(rows["case_id"], rows["gpu"], rows["_source"]):
        sources.setdefault((str(case_id), str(gpu)), []).append(str(source))
    shown = [f"{case_id} on {gpu} (in {', '.join(files)})" for (case_id, gpu), files in list(sources.items())[:3]]
    more = f" and {len(sources) - len(shown)} more" if len(sources) > len(shown) else ""
    return f"{len(sources)} duplicate (case_id, gpu): {'; '.join(shown)}{more}"


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric columns of *frame* that :func:`side_by_side` can compare."""
    import pandas as pd

    return [
        str(c) for c in frame.columns
        if c not in KEY and c != "batch_size" and pd.api.types.is_numeric_dtype(frame[c])
    ]


def side_by_side(frame: pd.DataFrame, metric: str = "latency_ms_median") -> pd.DataFrame:
    """One row per case_id (the index), and per GPU two columns: ``"<gpu> <metric>"`` and
    ``"<gpu> status"``. GPUs and cases keep the order they first appear in; a case not run on a
    GPU has NaN there. Raises :class:`ValueError` if *metric* is not a numeric column."""
    valid = metric_columns(frame)
    if metric not in valid:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(valid)}")
    missing = [c for c in (*KEY, "status") if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if frame.duplicated(subset=KEY).any():
        raise ValueError("frame has duplicate (case_id, gpu) rows; merge it with merge_reports first")

    import pandas as pd

    gpus = list(dict.fromkeys(frame["gpu"]))
    cases = list(dict.fromkeys(frame["case_id"]))
    indexed = frame.set_index(KEY)
    table = {}
    for gpu in gpus:
        per_gpu = indexed.xs(gpu, level="gpu")
        table[f"{gpu} {metric}"] = per_gpu[metric].reindex(cases)
        table[f"{gpu} status"] = per_gpu["status"].reindex(cases)
    return pd.DataFrame(table, index=pd.Index(cases, name="case_id"))


def summary_markdown(frame: pd.DataFrame, metric: str = "latency_ms_median") -> str:
    """A step-summary section: status counts per GPU, then the cases side by side with failing
    statuses in bold."""
    import pandas as pd

    gpus = list(dict.fromkeys(frame["gpu"]))
    counts = (
        pd.crosstab(frame["gpu"], frame["status"])
        .reindex(index=gpus, columns=[s for s in STATUSES if s in set(frame["status"])])
        .rename_axis(index="gpu", columns=None)
    )
    failing = int(frame["status"].isin(FAILING_STATUSES).sum())
    table = side_by_side(frame, metric)
    for column in [c for c in table.columns if c.endswith(" status")]:
        table[column] = table[column].map(
            lambda s: f"**{s}**" if isinstance(s, str) and s in FAILING_STATUSES else s
        )
    headline = (
        f"{len(frame['case_id'].unique())} cases on {', '.join(gpus)}: "
        + (f"**{failing} failing result{'s' if failing > 1 else ''}**" if failing else "none failing")
    )
    return (
        f"## trtbench report\n\n{headline}\n\n{to_markdown(counts)}\n"
        f"### {metric} by GPU\n\n{to_markdown(table)}"
    )


def to_markdown(frame: pd.DataFrame) -> str:
    """Render *frame* as a GitHub-flavored markdown table (numbers right-aligned, NaN as "—").

    A named or non-default index becomes the first column. Cells have ``|`` escaped and newlines
    turned into ``<br>`` so a table row stays one line. Ends with a newline.
    """
    import pandas as pd

    if not (isinstance(frame.index, pd.RangeIndex) and frame.index.name is None):
        frame = frame.reset_index()
    if len(frame.columns) == 0:
        return ""
    headers = [_escape(str(c)) for c in frame.columns]
    columns = [_format_column(frame.iloc[:, i]) for i in range(len(frame.columns))]
    numeric = [pd.api.types.is_numeric_dtype(frame.iloc[:, i]) for i in range(len(frame.columns))]
    widths = [max([len(h), 3, *map(len, cells)]) for h, cells in zip(headers, columns)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(
        "-" * (width - 1) + ":" if right else "-" * width for width, right in zip(widths, numeric)
    ) + " |"
    rows = [line(list(cells)) for cells in zip(*columns)]
    return "\n".join([line(headers), rule, *rows]) + "\n"


def _format_column(column: pd.Series) -> list[str]:
    import pandas as pd

    values = list(column)
    if pd.api.types.is_bool_dtype(column):
        return [str(v) for v in values]
    if pd.api.types.is_numeric_dtype(column):
        present = [float(v) for v in values if not pd.isna(v)]
        integral = all(math.isfinite(v) and v.is_integer() for v in present)
        return [_format_number(float(v), integral) if not pd.isna(v) else "—" for v in values]
    return ["—" if _is_missing(v) else _escape(str(v)) for v in values]


def _format_number(value: float, integral: bool) -> str:
    """Four significant digits without an exponent for ordinary magnitudes; integers as integers."""
    if not math.isfinite(value):
        return str(value)
    if integral:
        return f"{int(value)}"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if 1e-3 <= magnitude < 1e6:
        decimals = max(0, 3 - math.floor(math.log10(magnitude)))
        return f"{value:.{decimals}f}"
    return f"{value:.3g}"


def _is_missing(value: Any) -> bool:
    import pandas as pd

    return not isinstance(value, str) and bool(pd.api.types.is_scalar(value) and pd.isna(value))


_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
"""What :meth:`str.splitlines` splits on: any of it would break a table row."""


def _escape(text: str) -> str:
    return _LINE_BREAK.sub("<br>", text.replace("|", "\\|"))
