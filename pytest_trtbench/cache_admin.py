"""Seeing and bounding the engine cache: list entries, total size, prune by size (LRU) or age.

Every entry (``<root>/<gpu>/<backend>/<key>/``) has a ``last_used`` file whose mtime the cache
touches on every build and hit (:func:`touch_last_used`), so pruning removes the least recently
*used* entries first, not the oldest built. An entry is removed under its build lock, so a concurrent
session never loads a half-deleted entry. Used by ``python -m pytest_trtbench cache ...`` and by
``--trt-cache-max-size`` at the end of a session.

The PyTorch-factory exports (``<root>/exports/<suite>-<key>.onnx`` + ``.json``,
:mod:`pytest_trtbench.export_cache`) are entries too, one per pair (listed as ``exports/torch/<key>``, last
used = the newer file's mtime): listed, counted, pruned with the rest, the sidecar removed first so a half
pair is never usable; a lone half (a killed write) is an entry of its own, so pruning can remove it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_trtbench.export_cache import EXPORT_SUFFIX, EXPORTS, SIDECAR_SUFFIX

LAST_USED_FILE = "last_used"
META_FILE = "meta.json"
STALE_TMP_S = 3600.0
"""A ``.tmp-*`` build directory older than this is a crashed build's leftover."""

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4, "tib": 1024**4}
_AGES = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """``500MB``, ``1.5G``, ``2GiB``, ``1048576`` -> bytes (binary units). ValueError names the format."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"expected a size such as 500MB, 2G or 1048576 (bytes), got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``45m``, ``3600s`` (or plain seconds) -> seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhdw]?)\s*", text)
    if not match:
        raise ValueError(f"expected an age such as 7d, 12h, 30m or 3600s, got {text!r}")
    return float(match.group(1)) * _AGES[match.group(2) or "s"]


def format_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def touch_last_used(entry_dir: Path) -> None:
    try:
        (entry_dir / LAST_USED_FILE).touch()
    except OSError:
        pass  # a read-only cache still serves hits; it just can't record their use


@dataclass(frozen=True)
class EntryInfo:
    path: Path
    gpu: str
    backend: str
    key: str
    label: str
    bytes: int
    last_used: float

    def row(self, now: float) -> str:
        age = _age_text(now - self.last_used)
        return f"{format_size(self.bytes):>10}  {age:>8} ago  {self.gpu}/{self.backend}/{self.key[:12]}  {self.label}"


def _age_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{max(seconds, 0):.0f}s"


def tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def list_entries(root: Path) -> list[EntryInfo]:
    """Every complete entry under *root* (the cache dir holding ``<gpu>/<backend>/<key>``) and every
    export pair under ``<root>/exports``, LRU first."""
    out = _export_entries(Path(root) / EXPORTS)
    for meta_path in Path(root).glob(f"*/*/*/{META_FILE}"):
        entry = meta_path.parent
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        used = entry / LAST_USED_FILE
        try:
            last_used = used.stat().st_mtime if used.exists() else meta_path.stat().st_mtime
        except OSError:
            continue
        label = str(meta.get("label", "")) if isinstance(meta, dict) else ""
        out.append(EntryInfo(entry, entry.parent.parent.name, entry.parent.name, entry.name, label,
                             tree_bytes(entry), last_used))
    return sorted(out, key=lambda e: (e.last_used, str(e.path)))


def _export_entries(folder: Path) -> list[EntryInfo]:
    """One entry per ``<suite>-<key>`` stem holding an ``.onnx`` and/or its ``.json`` sidecar."""
    stems: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if path.suffix in (EXPORT_SUFFIX, SIDECAR_SUFFIX) and not path.name.startswith(".") and path.is_file():
            stems.setdefault(path.stem, []).append(path)
    out = []
    for stem, files in stems.items():
        try:
            stats = [f.stat() for f in files]
        except OSError:
            continue
        suite, _, key = stem.rpartition("-")
        half = "" if len(files) == 2 else f", incomplete: only {files[0].name}"
        out.append(EntryInfo(folder / (stem + EXPORT_SUFFIX), EXPORTS, "torch", key,
                             f"{suite or stem} (PyTorch export{half})", sum(st.st_size for st in stats),
                             max(st.st_mtime for st in stats)))
    return out


def stale_build_dirs(root: Path, now: float) -> list[Path]:
    return [p for p in Path(root).glob("*/*/.tmp-*") if p.is_dir() and now - p.stat().st_mtime > STALE_TMP_S]


def _stale_export_tmp(root: Path, now: float) -> list[Path]:
    """``exports/.tmp-export-*`` files a killed export copy left (an hour old)."""
    return [p for p in (Path(root) / EXPORTS).glob(".tmp-export-*") if now - p.stat().st_mtime > STALE_TMP_S]


def prune(root: Path, *, max_size: int | None = None, older_than_s: float | None = None,
          dry_run: bool = False, now: float | None = None) -> list[EntryInfo]:
    """Remove entries unused for longer than *older_than_s*, then least recently used ones until the
    cache is at most *max_size* bytes. Returns what was (or, with *dry_run*, would be) removed."""
    now = time.time() if now is None else now
    entries = list_entries(root)
    doomed = [e for e in entries if older_than_s is not None and now - e.last_used > older_than_s]
    if max_size is not None:
        size = tree_bytes(root) - sum(e.bytes for e in doomed)
        for e in entries:
            if size <= max_size:
                break
            if e not in doomed:
                doomed.append(e)
                size -= e.bytes
    if not dry_run:
        for e in doomed:
            _remove_entry(Path(root), e)
        for tmp in stale_build_dirs(root, now):
            shutil.rmtree(tmp, ignore_errors=True)
        for leftover in _stale_export_tmp(root, now):
            leftover.unlink(missing_ok=True)
    return doomed


def _remove_entry(root: Path, entry: EntryInfo) -> None:
    from filelock import FileLock

    if entry.gpu == EXPORTS and entry.path.parent == Path(root) / EXPORTS:
        for path in (entry.path.with_suffix(SIDECAR_SUFFIX), entry.path):  # sidecar first: the pair is unusable
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # still listed (as an incomplete pair) and pruned next time
        return

    lock = root / entry.gpu / "locks" / f"{entry.key}.lock"
    if not lock.parent.is_dir():
        shutil.rmtree(entry.path, ignore_errors=True)
        return
    with FileLock(str(lock)):
        shutil.rmtree(entry.path, ignore_errors=True)
