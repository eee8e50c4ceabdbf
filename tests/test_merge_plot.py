"""Merging, side-by-side, markdown and plotting of CSV reports, and their command line.

Reports are real CSV files written by pandas, with rows shaped like the plugin's.
"""
from __future__ import annotations

import math
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pd = pytest.importorskip("pandas")

from pytest_trtbench.merge import (  # noqa: E402
    REQUIRED_COLUMNS,
    DuplicateCaseWarning,
    ReportError,
    merge_reports,
    read_report,
    side_by_side,
    summary_markdown,
    to_markdown,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

DEVICE_NAMES = {"a10": "NVIDIA A10", "h100": "NVIDIA H100 80GB HBM3", "cpu": "AMD EPYC 7B13"}


def case_row(gpu: str, backend: str, precision: str, batch: int, *, suite: str = "mlp", model: str = "mlp",
             latency_ms: float | None = 1.0, status: str = "pass", **overrides: Any) -> dict[str, Any]:
    """One report row as the plugin writes it; a ``None`` latency is an unmeasured case."""
    measured = latency_ms is not None
    lat = latency_ms if latency_ms is not None else math.nan
    row: dict[str, Any] = {
        "case_id": f"test_{model}[{backend}-{precision}-b{batch}]",
        "suite": suite,
        "model": model,
        "backend": backend,
        "precision": precision,
        "batch_size": batch,
        "shapes": f"x:{batch}x64",
        "gpu": gpu,
        "device_name": DEVICE_NAMES[gpu],
        "status": status,
        "reason": "" if status == "pass" else f"{status} on {gpu}",
        "latency_ms_median": lat,
        "latency_ms_p90": lat * 1.05,
        "latency_ms_p99": lat * 1.2,
        "latency_cov_pct": 2.5 if measured else math.nan,
        "throughput_qps": batch * 1000.0 / lat if measured else math.nan,
        "baseline_latency_ms_median": lat * 0.98,
        "latency_change_pct": 2.0 if measured else math.nan,
        "reference_backend": "torch",
        "reference_latency_ms_median": lat * 3,
        "speedup_vs_reference": 3.0 if measured else math.nan,
        "max_abs_err": 1.2e-6 if precision == "fp32" else 3.1e-3,
        "max_rel_err": 4.0e-6 if precision == "fp32" else 8.0e-3,
        "cosine_similarity": 0.999999,
        "engine_cache": "hit",
        "build_s": 0.0 if measured else 12.5,
    }
    row.update(overrides)
    return row


def gpu_report(gpu: str, scale: float) -> list[dict[str, Any]]:
    """A small suite run on one GPU: two backends/precisions at batch 1, 8 and 32."""
    rows = []
    for backend, precision in (("onnxruntime", "fp32"), ("tensorrt", "fp16")):
        for batch in (1, 8, 32):
            rows.append(case_row(gpu, backend, precision, batch, latency_ms=scale * (0.2 + 0.05 * batch)))
    return rows


def write_report(path: Path, rows: list[dict[str, Any]], *, drop: tuple[str, ...] = ()) -> Path:
    pd.DataFrame(rows).drop(columns=list(drop)).to_csv(path, index=False)
    return path


@pytest.fixture
def two_gpu_reports(tmp_path: Path) -> tuple[Path, Path]:
    a10 = gpu_report("a10", 1.0)
    a10[-1].update(status="latency_regression", reason="median 1.80 ms vs baseline 1.50 ms (+20.0%)")
    h100 = [dict(row, mean_power_w=310.0) for row in gpu_report("h100", 0.4)]
    # a case only h100 ran
    h100.append(case_row("h100", "tensorrt", "fp8", 8, latency_ms=0.3, status="new", mean_power_w=290.0))
    return write_report(tmp_path / "report-a10.csv", a10), write_report(tmp_path / "report-h100.csv", h100)


# --- merge ---------------------------------------------------------------------------------------

def test_merge_concatenates_gpus_in_file_order(two_gpu_reports: tuple[Path, Path]) -> None:
    merged = merge_reports(two_gpu_reports)

    assert len(merged) == 6 + 7
    assert list(merged.columns[: len(REQUIRED_COLUMNS)]) == list(REQUIRED_COLUMNS)
    assert list(dict.fromkeys(merged["gpu"])) == ["a10", "h100"]
    assert not merged.duplicated(subset=["case_id", "gpu"]).any()
    # a column only one report has is kept, empty for the other's rows
    assert merged.loc[merged["gpu"] == "h100", "mean_power_w"].notna().all()
    assert merged.loc[merged["gpu"] == "a10", "mean_power_w"].isna().all()
    assert merged["latency_ms_median"].dtype == "float64"


def test_merge_keeps_missing_numbers_as_nan_and_text_as_text(tmp_path: Path) -> None:
    rows = [
        case_row("cpu", "onnxruntime", "fp32", 1, latency_ms=None, status="skipped", reason="NA"),
        case_row("cpu", "onnxruntime", "fp32", 2, status="pass", reason="None"),
    ]
    merged = merge_reports([write_report(tmp_path / "r.csv", rows)])

    assert pd.isna(merged.loc[0, "latency_ms_median"])
    assert merged.loc[0, "status"] == "skipped"
    assert list(merged["reason"]) == ["NA", "None"]  # text that looks like a missing value stays text


def test_merge_duplicate_case_keeps_last_file_and_warns(tmp_path: Path) -> None:
    first = write_report(tmp_path / "first.csv", [case_row("a10", "tensorrt", "fp16", 8, latency_ms=2.0)])
    rerun = write_report(tmp_path / "rerun.csv", [case_row("a10", "tensorrt", "fp16", 8, latency_ms=1.5)])

    with pytest.warns(DuplicateCaseWarning, match=r"test_mlp\[tensorrt-fp16-b8\] on a10 .*first\.csv.*rerun\.csv"):
        merged = merge_reports([first, rerun])

    assert len(merged) == 1
    assert merged.loc[0, "latency_ms_median"] == 1.5


def test_merge_duplicate_case_can_be_an_error(tmp_path: Path) -> None:
    report = write_report(tmp_path / "r.csv", [case_row("a10", "tensorrt", "fp16", 8)])

    with pytest.raises(ReportError, match="duplicate"):
        merge_reports([report, report], on_duplicate="error")


def test_missing_column_error_names_file_and_columns(tmp_path: Path, two_gpu_reports: tuple[Path, Path]) -> None:
    broken = write_report(tmp_path / "old-format.csv", gpu_report("a10", 1.0),
                          drop=("status", "latency_ms_p99"))

    with pytest.raises(ReportError) as excinfo:
        merge_reports([two_gpu_reports[0], broken])

    message = str(excinfo.value)
    assert str(broken) in message
    assert "status" in message.split("(has:")[0] and "latency_ms_p99" in message.split("(has:")[0]
    assert str(two_gpu_reports[0]) not in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("", "empty file"),
        ('case_id,gpu\n"unterminated,a10\n', "cannot read as CSV"),
    ],
)
def test_unreadable_report_error_names_file(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)

    with pytest.raises(ReportError, match=re.escape(str(path)) + ".*" + expected):
        merge_reports([path])


def test_non_number_in_numeric_column_is_named(tmp_path: Path) -> None:
    rows = gpu_report("a10", 1.0)
    rows[2]["latency_ms_median"] = "fast"
    path = write_report(tmp_path / "r.csv", rows)

    with pytest.raises(ReportError, match=r"r\.csv: column latency_ms_median must be numeric, row 4 has 'fast'"):
        read_report(path)


def test_unknown_status_is_refused(tmp_path: Path) -> None:
    path = write_report(tmp_path / "r.csv", [case_row("a10", "tensorrt", "fp16", 1, status="flaky")])

    with pytest.raises(ReportError, match="unknown status 'flaky'"):
        merge_reports([path])


def test_merge_needs_a_file() -> None:
    with pytest.raises(ReportError, match="no report files"):
        merge_reports([])


# --- side by side --------------------------------------------------------------------------------

def test_side_by_side_lines_up_gpus_per_case(two_gpu_reports: tuple[Path, Path]) -> None:
    table = side_by_side(merge_reports(two_gpu_reports))

    assert list(table.columns) == [
        "a10 latency_ms_median", "a10 status", "h100 latency_ms_median", "h100 status",
    ]
    assert table.index.name == "case_id"
    assert len(table) == 7
    case = "test_mlp[tensorrt-fp16-b8]"
    assert table.loc[case, "a10 latency_ms_median"] == pytest.approx(0.6)
    assert table.loc[case, "h100 latency_ms_median"] == pytest.approx(0.24)
    assert table.loc["test_mlp[tensorrt-fp16-b32]", "a10 status"] == "latency_regression"
    # the case only h100 ran: no value, no status on a10
    fp8 = "test_mlp[tensorrt-fp8-b8]"
    assert table.loc[fp8, "h100 status"] == "new"
    assert pd.isna(table.loc[fp8, "a10 latency_ms_median"]) and pd.isna(table.loc[fp8, "a10 status"])


def test_side_by_side_other_metric(two_gpu_reports: tuple[Path, Path]) -> None:
    table = side_by_side(merge_reports(two_gpu_reports), metric="throughput_qps")

    assert table.loc["test_mlp[onnxruntime-fp32-b1]", "a10 throughput_qps"] == pytest.approx(1000 / 0.25)


def test_side_by_side_unknown_metric_lists_choices(two_gpu_reports: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="unknown metric 'latency'.*latency_ms_median"):
        side_by_side(merge_reports(two_gpu_reports), metric="latency")


# --- markdown ------------------------------------------------------------------------------------

def split_row(line: str) -> list[str]:
    """Cells of one markdown table row, honouring ``\\|`` escapes."""
    assert line.startswith("| ") and line.endswith(" |"), line
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line[1:-1])]


def test_markdown_table_structure(two_gpu_reports: tuple[Path, Path]) -> None:
    table = side_by_side(merge_reports(two_gpu_reports))
    lines = to_markdown(table).splitlines()

    assert len(lines) == 2 + len(table)
    header, rule, *body = (split_row(line) for line in lines)
    assert header == ["case_id", "a10 latency_ms_median", "a10 status", "h100 latency_ms_median", "h100 status"]
    # numbers right-aligned, text left-aligned
    assert [cell.endswith(":") for cell in rule] == [False, True, False, True, False]
    assert all(set(cell) <= {"-", ":"} and len(cell) >= 3 for cell in rule)
    assert all(len(row) == len(header) for row in body)
    assert body[0] == ["test_mlp[onnxruntime-fp32-b1]", "0.2500", "pass", "0.1000", "pass"]
    assert body[-1] == ["test_mlp[tensorrt-fp8-b8]", "—", "—", "0.3000", "new"]
    assert len({len(line) for line in lines}) == 1  # padded: readable as plain text too


def test_markdown_escapes_cells_and_formats_numbers() -> None:
    frame = pd.DataFrame({
        "reason": ["a | b", "line1\nline2"],
        "batch_size": [8.0, 32.0],
        "value": [1234.5678, 1.5e-7],
    })
    lines = to_markdown(frame).splitlines()

    assert len(lines) == 4
    assert split_row(lines[2]) == ["a | b", "8", "1235"]
    assert split_row(lines[3]) == ["line1<br>line2", "32", "1.5e-07"]


@settings(deadline=None)  # pandas per example: a loaded machine must not decide this test
@given(st.lists(st.tuples(st.text(), st.floats(allow_nan=True, allow_infinity=False)), max_size=5))
def test_markdown_keeps_one_line_and_all_cells_per_row(rows: list[tuple[str, float]]) -> None:
    frame = pd.DataFrame(rows, columns=["text", "number"])
    lines = to_markdown(frame).splitlines()

    assert len(lines) == 2 + len(rows)
    assert all(len(split_row(line)) == 2 for line in lines)


def test_summary_markdown_counts_and_flags_failures(two_gpu_reports: tuple[Path, Path]) -> None:
    text = summary_markdown(merge_reports(two_gpu_reports))

    assert "7 cases on a10, h100: **1 failing result**" in text
    counts = [split_row(line) for line in text.splitlines() if line.startswith("| a10 ") or line.startswith("| h100 ")]
    assert counts[:2] == [["a10", "5", "0", "1"], ["h100", "6", "1", "0"]]
    assert "| **latency_regression** |" in text


# --- command line --------------------------------------------------------------------------------

def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    env["MPLCONFIGDIR"] = str(cwd / ".mplconfig")
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "pytest_trtbench", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )


def test_cli_merge_writes_csv_and_markdown(tmp_path: Path, two_gpu_reports: tuple[Path, Path]) -> None:
    result = run_cli("merge", *two_gpu_reports, "-o", "out/all.csv", "--markdown", "all.md", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    merged = read_report(tmp_path / "out" / "all.csv")
    assert len(merged) == 13 and set(merged["gpu"]) == {"a10", "h100"}
    markdown = (tmp_path / "all.md").read_text()
    assert markdown.startswith("## trtbench report")
    assert "| case_id " in markdown and "| a10 latency_ms_median |" in markdown.replace("  ", "")
    assert "merged 13 rows from 2 reports (gpus: a10, h100)" in result.stderr


def test_cli_merge_markdown_to_stdout_with_metric(tmp_path: Path, two_gpu_reports: tuple[Path, Path]) -> None:
    result = run_cli("merge", *two_gpu_reports, "--markdown", "-", "--metric", "throughput_qps", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "### throughput_qps by GPU" in result.stdout
    assert "h100 throughput_qps" in result.stdout


def test_cli_merge_reports_duplicates_on_stderr(tmp_path: Path, two_gpu_reports: tuple[Path, Path]) -> None:
    a10 = two_gpu_reports[0]
    result = run_cli("merge", a10, a10, "-o", "all.csv", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("warning: 6 duplicate (case_id, gpu)")
    assert len(read_report(tmp_path / "all.csv")) == 6


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["missing.csv", "-o", "all.csv"], "missing.csv: no such file"),
        (["{broken}", "-o", "all.csv"], "broken.csv: missing column gpu"),
        (["{good}", "--metric", "latency", "--markdown", "-"], "unknown --metric 'latency'"),
        (["{good}"], "nothing to write"),
        (["{good}", "{good}", "--on-duplicate", "error", "-o", "all.csv"], "duplicate (case_id, gpu)"),
    ],
)
def test_cli_merge_bad_input_exits_2_with_one_line(
    tmp_path: Path, two_gpu_reports: tuple[Path, Path], args: list[str], expected: str
) -> None:
    broken = write_report(tmp_path / "broken.csv", gpu_report("a10", 1.0), drop=("gpu",))
    paths = {"good": str(two_gpu_reports[0]), "broken": str(broken)}

    result = run_cli("merge", *[arg.format(**paths) for arg in args], cwd=tmp_path)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("python -m pytest_trtbench merge: error: ")
    assert expected in result.stderr
    assert not (tmp_path / "all.csv").exists()


def test_cli_usage_error_exits_2(tmp_path: Path) -> None:
    result = run_cli("merge", cwd=tmp_path)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "the following arguments are required: REPORT.csv" in result.stderr


# --- plot ----------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> dict[bytes, list[bytes]]:
    """The chunks of a PNG by type; asserts the signature and every chunk's CRC."""
    assert data[:8] == PNG_SIGNATURE
    chunks: dict[bytes, list[bytes]] = {}
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks.setdefault(kind, []).append(body)
        offset += 12 + length
    assert list(chunks)[-1] == b"IEND"
    return chunks


def assert_matplotlib_png(path: Path) -> None:
    chunks = png_chunks(path.read_bytes())
    width, height = struct.unpack(">II", chunks[b"IHDR"][0][:8])
    assert width > 400 and height > 200
    text = dict(chunk.split(b"\0", 1) for chunk in chunks.get(b"tEXt", []))
    assert text.get(b"Software", b"").startswith(b"Matplotlib"), text


@pytest.fixture
def two_suite_report(tmp_path: Path) -> Path:
    rows = gpu_report("a10", 1.0)
    rows += [
        case_row("a10", backend, precision, batch, suite="vision/resnet", model="resnet18", latency_ms=2.0 * batch)
        for backend, precision in (("onnxruntime", "fp32"), ("tensorrt", "int8")) for batch in (1, 4)
    ]
    # a suite with nothing measured gets no plot
    rows.append(case_row("a10", "tensorrt", "fp8", 1, suite="llm", model="gpt", latency_ms=None, status="built"))
    return write_report(tmp_path / "report.csv", rows)


def test_plot_writes_one_png_per_measured_suite(tmp_path: Path, two_suite_report: Path) -> None:
    pytest.importorskip("matplotlib")
    from pytest_trtbench.plot import plot_report

    written = plot_report(two_suite_report, tmp_path / "plots")

    assert [path.name for path in written] == ["mlp.png", "vision_resnet.png"]
    for path in written:
        assert path.parent == tmp_path / "plots"
        assert_matplotlib_png(path)


def test_plot_missing_columns_names_file(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from pytest_trtbench.plot import plot_report

    report = write_report(tmp_path / "thin.csv", gpu_report("a10", 1.0), drop=("throughput_qps", "batch_size"))

    with pytest.raises(ReportError, match=r"thin\.csv: missing columns batch_size, throughput_qps"):
        plot_report(report, tmp_path / "plots")
    assert not (tmp_path / "plots").exists()


def test_cli_plot(tmp_path: Path, two_suite_report: Path) -> None:
    pytest.importorskip("matplotlib")

    result = run_cli("plot", two_suite_report, "-o", "out", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(Path("out") / "mlp.png"), str(Path("out") / "vision_resnet.png")]
    assert_matplotlib_png(tmp_path / "out" / "mlp.png")


def test_cli_plot_bad_report_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")

    result = run_cli("plot", "nope.csv", "-o", "out", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip() == "python -m pytest_trtbench plot: error: nope.csv: no such file"
