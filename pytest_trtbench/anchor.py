"""Where relative ``--trt-baseline-dir`` / ``--trt-cache-dir`` paths are anchored.

pytest's rootdir moves with the directory pytest runs from when no ini file is found, and baselines
silently went unused (every case ``new``, a fresh cache under ``/tmp``). The rule here:

1. the directory of the ini file pytest found (``pytest.ini``, ``pyproject.toml``, ``tox.ini``,
   ``setup.cfg``), when there is one;
2. else the suite file's project: walking up from the (first) suite file, the first directory that
   holds a ``baselines/`` folder or a ``pyproject.toml``;
3. else the rootdir.

:func:`stray_baselines` finds a ``baselines/`` folder up the tree that the session did not use, for
the warning printed when every case came out ``new``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

BASELINES = "baselines"


@dataclass(frozen=True)
class Anchor:
    path: Path
    why: str
    """``ini file /p/pyproject.toml``, ``suite project (baselines/ in /p)``, ``rootdir``."""


def find_anchor(inipath: Path | None, rootpath: Path, suite_files: Iterable[Path]) -> Anchor:
    if inipath is not None:
        return Anchor(inipath.parent, f"ini file {inipath}")
    for suite_file in suite_files:
        for directory in Path(suite_file).resolve().parents:
            if (directory / BASELINES).is_dir():
                return Anchor(directory, f"suite project ({BASELINES}/ in {directory})")
            if (directory / "pyproject.toml").is_file():
                return Anchor(directory, f"suite project (pyproject.toml in {directory})")
        break
    return Anchor(rootpath, f"rootdir {rootpath} (no ini file, no baselines/ or pyproject.toml above the suites)")


def resolve(anchor: Anchor, configured: str) -> Path:
    path = Path(configured).expanduser()
    return path if path.is_absolute() else anchor.path / path


def stray_baselines(used: Path, starts: Iterable[Path]) -> list[Path]:
    """``baselines/`` folders above *starts* (suite files, the working directory) other than *used*."""
    found: dict[Path, None] = {}
    used = used.resolve()
    for start in starts:
        start = Path(start).resolve()
        for directory in [start, *start.parents]:
            candidate = directory / BASELINES
            if candidate.is_dir() and candidate.resolve() != used:
                found[candidate] = None
    return list(found)


def location_lines(baselines: Path, anchor_why: str, cache: Path, pruned: tuple[int, int] | None,
                   rows: Sequence[Mapping[str, Any]], suite_files: Sequence[Path]) -> list[tuple[str, bool]]:
    """The summary's lines on where baselines and the cache are (and how big), and the warning when every
    case is ``new`` while another ``baselines/`` folder exists up the tree: ``(text, is_warning)``."""
    from pytest_trtbench.cache_admin import format_size, tree_bytes

    lines = [(f"baselines: {baselines} (anchored at the {anchor_why})", False)]
    note = f"; --trt-cache-max-size pruned {pruned[0]} entries ({format_size(pruned[1])})" if pruned else ""
    lines.append((f"cache: {cache} holds {format_size(tree_bytes(cache))}{note} "
                  "(python -m pytest_trtbench cache list|prune)", False))
    if rows and all(r["status"] == "new" for r in rows):
        for other in stray_baselines(baselines.parent, [*suite_files, Path.cwd()]):
            lines.append((f"warning: every case is new, but {other} exists and was not used: run from its "
                          f"project or pass --trt-baseline-dir={other}", True))
    return lines
