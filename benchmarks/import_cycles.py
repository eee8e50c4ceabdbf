"""Import cycles inside the package: module-level and function-level (lazy) imports; TYPE_CHECKING blocks excluded.

    python benchmarks/import_cycles.py [--package pytest_trtbench] [--root DIR]

Prints each strongly connected group of modules that import each other (directly or around a loop) with the
edges inside it, lazy ones marked, then the count. Besides ``import`` statements, a string constant that is a
whole module name of the package (``"pytest_trtbench.cuda.select:parse_layer"``, ``importlib.import_module``'s
argument, the backend registry's table) counts as a lazy edge; a name assembled at run time (an f-string) is
not seen. A gate as well as a report: exits 1 when there is a cycle (``tests/test_import_cycles.py`` runs it),
so a cycle hidden behind a function-level import cannot come back unnoticed.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, package: str, lazy: bool, out: set[tuple[str, str | None, bool]]) -> None:
    named = re.compile(rf"{re.escape(package)}(\.\w+)*(:\w+)?")
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            continue
        inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
        if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith(package):
            out.update((child.module, alias.name, inner) for alias in child.names)
        elif isinstance(child, ast.Import):
            out.update((alias.name, None, inner) for alias in child.names if alias.name.startswith(package))
        elif isinstance(child, ast.Constant) and isinstance(child.value, str) and named.fullmatch(child.value):
            out.add((child.value.partition(":")[0], None, True))  # imported by name when used: lazy
        _imports(child, package, inner, out)


def import_graph(package: str, root: Path = ROOT) -> dict[str, dict[str, bool]]:
    """module -> {imported module: True if every import of it is lazy}."""
    modules = {}
    for path in (root / package).rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, dict[str, bool]] = {}
    for name, path in modules.items():
        found: set[tuple[str, str | None, bool]] = set()
        _imports(ast.parse(path.read_text(encoding="utf-8")), package, False, found)
        edges: dict[str, bool] = {}
        for module, attribute, lazy in found:
            target = f"{module}.{attribute}" if attribute and f"{module}.{attribute}" in modules else module
            if target in modules and target != name and not name.startswith(target + "."):
                edges[target] = edges.get(target, True) and lazy
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return groups


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--package", default="pytest_trtbench")
    parser.add_argument("--root", type=Path, default=ROOT, help="the directory holding the package (default: the repository)")
    args = parser.parse_args()
    graph = import_graph(args.package, args.root)
    groups = cycles(graph)
    for group in groups:
        print("cycle among:", ", ".join(group))
        for a in group:
            for b, lazy in sorted(graph[a].items()):
                if b in group:
                    print(f"    {a} -> {b}{' (lazy)' if lazy else ''}")
    print(f"{len(groups)} import cycle(s)")
    return 1 if groups else 0


if __name__ == "__main__":
    sys.exit(main())
