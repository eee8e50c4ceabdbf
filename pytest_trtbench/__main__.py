"""Command line: ``python -m pytest_trtbench merge|plot ...`` for reports, ``cache list|size|prune`` for the cache.

Bad input (a missing or malformed report, an unknown metric, an unwritable output) ends with
exit code 2 and one ``error:`` line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence, TextIO

PROG = "python -m pytest_trtbench"
EXIT_BAD_INPUT = 2


class _BadInput(Exception):
    """Input the user can fix; printed as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Merge and plot pytest-trtbench CSV reports.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    merge = commands.add_parser(
        "merge",
        help="merge reports (e.g. one per GPU) into one CSV and/or a markdown summary",
        description="Merge reports into one, one row per (case_id, gpu); a duplicate keeps the last file's row.",
    )
    merge.add_argument("reports", nargs="+", type=Path, metavar="REPORT.csv")
    merge.add_argument("-o", "--output", type=Path, metavar="OUT.csv", help="write the merged CSV here")
    merge.add_argument(
        "--markdown", metavar="OUT.md",
        help="write a markdown summary (status counts, cases side by side per GPU) here; '-' for stdout",
    )
    merge.add_argument(
        "--metric", default="latency_ms_median",
        help="numeric column compared side by side in the markdown (default: %(default)s)",
    )
    merge.add_argument(
        "--on-duplicate", choices=("last", "error"), default="last",
        help="a (case_id, gpu) in several rows: keep the last file's row, or fail (default: %(default)s)",
    )
    merge.set_defaults(run=_run_merge)

    plot = commands.add_parser(
        "plot",
        help="write one PNG per suite: latency and throughput vs batch size",
        description="Plot median latency and throughput against batch size, one PNG per suite (needs matplotlib).",
    )
    plot.add_argument("report", type=Path, metavar="REPORT.csv")
    plot.add_argument("-o", "--output-dir", type=Path, required=True, metavar="DIR")
    plot.set_defaults(run=_run_plot)
    _add_cache_commands(commands)
    return parser


def _add_cache_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from pytest_trtbench.cache_admin import parse_age, parse_size

    def typed(parse: Any) -> Any:
        def convert(text: str) -> Any:
            try:
                return parse(text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        return convert

    cache = commands.add_parser("cache", help="list, measure or prune the engine cache",
                                description="Inspect and bound the engine cache (--trt-cache-dir).")
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_text in (("list", "one line per entry, least recently used first"),
                            ("size", "total size and entry count"),
                            ("prune", "remove entries by age and/or least recently used beyond a size")):
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--cache-dir", type=Path, default=Path(".trtbench-cache"),
                         help="the cache directory (default: %(default)s)")
        if name == "prune":
            sub.add_argument("--max-size", type=typed(parse_size), metavar="SIZE",
                             help="remove least recently used entries until the cache is at most SIZE (500MB, 2G)")
            sub.add_argument("--older-than", type=typed(parse_age), metavar="AGE",
                             help="remove entries not used for AGE (7d, 12h, 30m)")
            sub.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    cache.set_defaults(run=_run_cache)


def _run_cache(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    import time

    from pytest_trtbench.cache_admin import format_size, list_entries, prune, tree_bytes

    root = args.cache_dir
    if not root.is_dir():
        raise _BadInput(f"no cache at {root}: pass --cache-dir (the suites' --trt-cache-dir, default .trtbench-cache)")
    now = time.time()
    if args.action == "list":
        for entry in list_entries(root):
            print(entry.row(now), file=out)
    elif args.action == "size":
        print(f"{format_size(tree_bytes(root))} in {len(list_entries(root))} entries ({root})", file=out)
    else:
        if args.max_size is None and args.older_than is None:
            raise _BadInput("nothing to prune by: give --max-size and/or --older-than")
        removed = prune(root, max_size=args.max_size, older_than_s=args.older_than, dry_run=args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        for entry in removed:
            print(f"{verb} {entry.row(now)}", file=out)
        print(f"{verb} {len(removed)} entries ({format_size(sum(e.bytes for e in removed))}); "
              f"cache now {format_size(tree_bytes(root))}", file=err)


def _run_merge(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    from pytest_trtbench.merge import DuplicateCaseWarning, merge_reports, metric_columns, summary_markdown

    if args.output is None and args.markdown is None:
        raise _BadInput("nothing to write: give -o OUT.csv and/or --markdown OUT.md")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DuplicateCaseWarning)
        merged = merge_reports(args.reports, on_duplicate=args.on_duplicate)
    for warning in caught:
        if issubclass(warning.category, DuplicateCaseWarning):
            print(f"warning: {warning.message}", file=err)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if args.metric not in metric_columns(merged):
        raise _BadInput(f"unknown --metric {args.metric!r}; choose one of {', '.join(metric_columns(merged))}")

    if args.markdown is not None:
        text = summary_markdown(merged, args.metric)
        if args.markdown == "-":
            out.write(text)
        else:
            _write_text(Path(args.markdown), text)
    if args.output is not None:
        _write_text(args.output, merged.to_csv(index=False))
    gpus = ", ".join(dict.fromkeys(merged["gpu"]))
    where = f" into {args.output}" if args.output is not None else ""
    print(f"merged {len(merged)} rows from {len(args.reports)} reports (gpus: {gpus}){where}", file=err)


def _run_plot(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    from pytest_trtbench.plot import plot_report

    try:
        written = plot_report(args.report, args.output_dir)
    except ImportError as exc:
        raise _BadInput(str(exc)) from None
    for path in written:
        print(path, file=out)
    if not written:
        print(f"warning: {args.report} has no rows with a median latency; nothing plotted", file=err)


def _write_text(path: Path, text: str) -> None:
    try:
        if path.parent != Path():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _BadInput(f"cannot write {path}: {exc.strerror or exc}") from None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 2 bad input)."""
    from pytest_trtbench.merge import ReportError

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    args = build_parser().parse_args(argv)  # usage errors exit 2 through argparse
    try:
        args.run(args, out, err)
    except (_BadInput, ReportError) as exc:
        print(f"{PROG} {args.command}: error: {' '.join(str(exc).split())}", file=err)
        return EXIT_BAD_INPUT
    except OSError as exc:  # an output directory that cannot be created, say
        print(f"{PROG} {args.command}: error: {exc}", file=err)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
