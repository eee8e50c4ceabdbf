"""Run the bad-input matrix and write its table: every kind, with the exit code, report status and the
message the user sees, under ``-W error`` and without; plus totals and the wall time of the run.

    python benchmarks/bad_inputs_matrix.py [--out benchmarks/results/bad_inputs_matrix.md] [-- PYTEST_ARGS]
    python benchmarks/bad_inputs_matrix.py --rows rows.jsonl --wall S --summary TEXT   # render a run made with
                                                         # TRTBENCH_MATRIX_OUT=rows.jsonl (e.g. the full test run)

Set TRTBENCH_PYTEST_BENCHMARK_52 to a folder holding pytest-benchmark 5.2.x to include that kind.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULES = ["tests/test_bad_inputs.py", "tests/test_bad_inputs_procs.py", "tests/test_bad_input_units.py"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bad_inputs_matrix.md")
    parser.add_argument("--rows", type=Path, help="render these recorded rows instead of running the matrix")
    parser.add_argument("--wall", type=float, default=0.0, help="with --rows: the matrix's seconds")
    parser.add_argument("--summary", default="", help="with --rows: pytest's last line")
    parser.add_argument("pytest_args", nargs="*")
    opts = parser.parse_args()
    if opts.rows is not None:
        rows = [json.loads(line) for line in opts.rows.read_text().splitlines()]
        render(opts, rows, opts.summary, 0, opts.wall, "rendered from TRTBENCH_MATRIX_OUT rows of `pytest tests`")
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.jsonl"
        command = [sys.executable, "-m", "pytest", *MODULES, "-q", "-p", "no:cacheprovider", *opts.pytest_args]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "TRTBENCH_MATRIX_OUT": str(rows_file)})
        wall = time.perf_counter() - start
        rows = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.exists() else []
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    render(opts, rows, summary, proc.returncode, wall, f"runs `pytest {' '.join(MODULES)}`")
    sys.exit(proc.returncode)


def render(opts: argparse.Namespace, rows: list[dict], summary: str, returncode: int, wall: float, how: str) -> None:
    kinds = sorted({r["kind"] for r in rows})
    lines = [
        "# Bad-input matrix",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end (the VM is shared)",
        f"- command: `python benchmarks/bad_inputs_matrix.py {' '.join(opts.pytest_args)}` ({how})",
        f"- pytest: {summary}; exit code {returncode}; matrix wall time {wall:.0f} s",
        f"- kinds: {len(kinds)}; runs recorded: {len(rows)} (in-process kinds run twice: `-W error` and default)",
        f"- totals: tracebacks shown {sum(bool(r.get('traceback')) for r in rows)}; silent passes (exit 0 without "
        f"the expected message) {sum(r['rc'] == 0 and not r['message'] for r in rows)}; lost or partial files: "
        f"{'0 (asserted in every run)' if returncode == 0 else 'see the failing tests'}",
        "- every run asserts: the expected exit code and message line, no `Traceback (most recent call last)` or "
        "`INTERNALERROR` in the output, no partial/temporary baseline file, a report CSV that is whole (or absent "
        "when nothing ran), every cache entry usable after the run",
        "",
        "| kind | mode | exit | status | message the user sees |",
        "|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["kind"], r["mode"])):
        message = r["message"].replace("|", "\\|")
        lines.append(f"| {r['kind']} | {r['mode']} | {r['rc']} | {r['status'] or '-'} | `{message}` |")
    opts.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:9]))


if __name__ == "__main__":
    main()
