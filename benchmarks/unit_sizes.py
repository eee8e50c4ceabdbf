"""Modules over ~400 lines and functions over ~60 lines in the package: the redesign's size limits.

    python benchmarks/unit_sizes.py [--root .] [--package pytest_trtbench] [--module-lines 400] [--function-lines 60]

Counts physical lines (a function from its ``def`` or first decorator to its last line, nested functions
counted inside their parent and on their own). Prints every offender, largest first, and exits 0:
a report, not a gate.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """(qualified name, first line, line count) of every function and method in *tree*."""
    out: list[tuple[str, int, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                end = child.end_lineno or child.lineno
                out.append((f"{prefix}{child.name}", start, end - start + 1))
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(tree, "")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    parser.add_argument("--package", default="pytest_trtbench")
    parser.add_argument("--module-lines", type=int, default=400)
    parser.add_argument("--function-lines", type=int, default=60)
    opts = parser.parse_args()
    modules, funcs = [], []
    for path in sorted((opts.root / opts.package).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(opts.root)
        lines = len(text.splitlines())
        if lines > opts.module_lines:
            modules.append((lines, str(rel)))
        for name, start, count in functions(ast.parse(text)):
            if count > opts.function_lines:
                funcs.append((count, f"{rel}:{start} {name}"))
    print(f"modules over {opts.module_lines} lines: {len(modules)}")
    for lines, where in sorted(modules, reverse=True):
        print(f"  {lines:5d}  {where}")
    print(f"functions over {opts.function_lines} lines: {len(funcs)}")
    for count, where in sorted(funcs, reverse=True):
        print(f"  {count:5d}  {where}")


if __name__ == "__main__":
    main()
