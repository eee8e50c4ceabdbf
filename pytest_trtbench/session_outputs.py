"""What a session leaves on disk: baselines, the CSV report, the GitHub step summary.

Paths are checked when the session starts (a usage error naming the option and the path); a write that
still fails at the end does not stop the others: every output is attempted, and the failures come back
as one line each for the summary and a failing exit status. A report CSV from an earlier run is removed
when this run executed nothing, so CI never uploads last week's numbers.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from pytest_trtbench.paths import PathProblem, check_writable_dir, check_writable_file

if TYPE_CHECKING:
    from pytest_trtbench.outcome import CaseOutcome


def check_output_paths(report: Path | None, baseline_dir: Path | None, *, report_option: str,
                       baseline_option: str) -> None:
    """Raise :class:`PathProblem` (message starting with the option) if an output can't be written."""
    if report is not None:
        try:
            check_writable_file(report)
        except PathProblem as exc:
            raise PathProblem(f"{report_option}: {exc}; pass a writable file path") from None
    if baseline_dir is not None:
        try:
            check_writable_dir(baseline_dir)
        except PathProblem as exc:
            raise PathProblem(f"{baseline_option} (written by --trt-update-baselines): {exc}; "
                              "make it writable or pass --trt-baseline-dir=A_WRITABLE_DIR") from None


def _baseline_batches(results: Sequence[CaseOutcome]) -> dict[tuple[str, str], dict[str, Any]]:
    per_file: dict[tuple[str, str], dict[str, Any]] = {}
    for result in results:
        if result.baseline_entry is not None:
            key = (result.baseline_file, result.case.suite)
            per_file.setdefault(key, {})[result.case.param_id] = result.baseline_entry
    return per_file


def write_baselines(results: Sequence[CaseOutcome]) -> tuple[list[str], list[str]]:
    """Merge each case's new entry into its suite's file. Returns (files written, failure lines)."""
    from pytest_trtbench.baseline import BaselineError, update_baselines

    written, failures = [], []
    for (path, suite), entries in sorted(_baseline_batches(results).items()):
        try:
            update_baselines(Path(path), suite, entries)
        except (OSError, BaselineError) as exc:
            failures.append(f"baselines not written to {path}: {exc}")
        else:
            written.append(path)
    return written, failures


def write_report(rows: Sequence[Mapping[str, Any]], path: Path, results: Sequence[CaseOutcome] = (),
                 gpu: str = "") -> list[str]:
    """The CSV report, or the JSON one (:mod:`pytest_trtbench.json_report`) for a ``.json`` file name."""
    from pytest_trtbench.json_report import is_json_report, write_json_report
    from pytest_trtbench.report import write_csv

    try:
        if is_json_report(path):
            write_json_report(results, rows, path, gpu)
        else:
            write_csv(rows, path)
    except OSError as exc:
        return [f"report not written to {path}: {exc}"]
    return []


def append_step_summary(path: str, gpu: str, rows: Sequence[Mapping[str, Any]], extra: str = "") -> list[str]:
    from pytest_trtbench.report import markdown_table

    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"### pytest-trtbench ({gpu})\n\n{markdown_table(rows)}\n{extra}")
    except OSError as exc:
        return [f"GITHUB_STEP_SUMMARY not written to {path}: {exc}"]
    return []


def remove_stale_report(path: Path) -> list[str]:
    """This run executed no case: an old report at *path* must not pass for this run's."""
    try:
        path.unlink(missing_ok=True)
    except IsADirectoryError:
        return []
    except OSError as exc:
        return [f"stale report {path} (from an earlier run) could not be removed: {exc}"]
    return []


def write_session_outputs(results: Sequence[CaseOutcome], report: Path | None, *, update: bool,
                          gpu: str) -> tuple[list[str], list[str]]:
    """Everything the session writes at its end. Returns (baseline files written, failure lines)."""
    if not results:
        return [], remove_stale_report(report) if report is not None else []
    from pytest_trtbench.report import row

    rows = [row(r) for r in results]
    written, failures = write_baselines(results) if update else ([], [])
    if report is not None:
        failures += write_report(rows, report, results, gpu)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        from pytest_trtbench.layer_report import markdown_section

        failures += append_step_summary(summary_file, gpu, rows, markdown_section(results))
    return written, failures


def unused_baselines_warning(rows: Sequence[Mapping[str, Any]], baseline_dir: Path, gpu: str) -> str:
    """A loud line when cases ran but none found a baseline although baseline files exist (a wrong
    ``--trt-baseline-dir`` or ``--trt-gpu`` would otherwise make every case ``new`` and pass)."""
    executed = [r for r in rows if r.get("status") not in ("skipped", "built", "error")]
    if not executed or any(r.get("status") != "new" for r in executed):
        return ""
    try:
        found = sorted(p for p in baseline_dir.rglob("*.json") if not p.name.startswith("."))
    except OSError:
        return ""
    if not found or any(baseline_dir / gpu in p.parents for p in found):
        return ""  # the folder it looked in holds other suites' baselines: the suites that ran are just new
    shown = ", ".join(str(p) for p in found[:3]) + (f" (+{len(found) - 3} more)" if len(found) > 3 else "")
    return (f"no case found a baseline in {baseline_dir / gpu}, but baseline files exist: {shown}; "
            f"check --trt-baseline-dir (the directory that holds <gpu>/ folders) and --trt-gpu={gpu}")


_NOT_COMPARED = "latency not compared: "
_NOT_COMPARED_KINDS = (("were timed by", "baseline timed another way"), ("no block history", "no block history"),
                       ("baseline CPU", "baseline from another CPU"))


def latency_not_compared_line(rows: Sequence[Mapping[str, Any]]) -> str:
    """``"latency not compared for 3 case(s): baseline timed another way 2, ... (the reason column says why)"``
    when a case with a baseline had its latency left ungated for a reason other than the user's own
    ``--trt-latency-gate=off``, or ``""``: a gate that compared nothing must not look like a gate that passed."""
    kinds: dict[str, int] = {}
    for row in rows:
        reason = str(row.get("reason") or "")
        at = reason.find(_NOT_COMPARED)
        if at < 0:
            continue
        rest = reason[at + len(_NOT_COMPARED):]
        kind = next((name for key, name in _NOT_COMPARED_KINDS if key in rest.split(";")[0]), "other")
        kinds[kind] = kinds.get(kind, 0) + 1
    if not kinds:
        return ""
    listed = ", ".join(f"{name} {n}" for name, n in sorted(kinds.items()))
    fix = " (re-record with --trt-update-baselines)" if "baseline timed another way" in kinds else ""
    return f"latency not compared for {sum(kinds.values())} case(s): {listed}{fix}; the reason column says why"
