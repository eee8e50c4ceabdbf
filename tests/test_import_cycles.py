"""No two modules of the package import each other, not even through a function-level (deferred) import:
``benchmarks/import_cycles.py`` is the gate; these tests run it on the package and show it sees the cycles a
deferred import or a module named in a string would hide."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "import_cycles.py"
_spec = importlib.util.spec_from_file_location("import_cycles", SCRIPT)
assert _spec is not None and _spec.loader is not None
import_cycles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_cycles)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False)


def test_the_package_has_no_import_cycle() -> None:
    result = _run()
    assert result.returncode == 0, f"import cycle(s) in pytest_trtbench (move the shared code down):\n{result.stdout}"
    assert result.stdout.strip().endswith("0 import cycle(s)")


def _package(root: Path, files: dict[str, str]) -> None:
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    for name, text in files.items():
        (root / "pkg" / f"{name}.py").write_text(text)


def test_a_cycle_closed_by_a_function_level_import_fails_the_gate(tmp_path: Path) -> None:
    _package(tmp_path, {
        "a": "from pkg.b import helper\n",
        "b": "def helper():\n    from pkg.a import thing\n    return thing\n",
        "c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.d import D\n",
        "d": "from pkg.c import x\n",
    })
    assert import_cycles.cycles(import_cycles.import_graph("pkg", tmp_path)) == [["pkg.a", "pkg.b"]]
    result = _run("--package", "pkg", "--root", str(tmp_path))
    assert result.returncode == 1
    assert "    pkg.b -> pkg.a (lazy)" in result.stdout.splitlines()
    assert "    pkg.a -> pkg.b" in result.stdout.splitlines()  # module level: not marked lazy
    assert result.stdout.strip().endswith("1 import cycle(s)")


def test_a_module_named_in_a_string_is_an_edge(tmp_path: Path) -> None:
    # importlib.import_module("pkg.f") / a "module:function" table: imported when used, still a cycle
    _package(tmp_path, {"e": "TABLE = {'x': 'pkg.f:make'}\n", "f": "from pkg import e\n", "g": "DOC = 'pkg.f is fine'\n"})
    graph = import_cycles.import_graph("pkg", tmp_path)
    assert graph["pkg.e"] == {"pkg.f": True}
    assert graph["pkg.g"] == {}  # a sentence that mentions a module is not an import
    assert import_cycles.cycles(graph) == [["pkg.e", "pkg.f"]]
