"""Can we write where the user pointed us? Checked at session start, so a read-only baseline directory
or a report path that is a directory is a usage error before anything is built, not a traceback after."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


class PathProblem(Exception):
    """A path can't be written; the message names it and says why."""


def _existing_ancestor(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _probe(directory: Path) -> str:
    """Why a file can't be created in the existing *directory* ("" if it can): a real write, since
    root ignores file modes and ``os.access`` can't see a read-only mount or a full disk."""
    try:
        fd, name = tempfile.mkstemp(prefix=".trtbench-probe-", dir=directory)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    os.unlink(name)
    return ""


def check_writable_dir(path: Path) -> None:
    """*path* is a directory we can create files in, or can be created as one."""
    base = _existing_ancestor(path)
    if not base.is_dir():
        raise PathProblem(f"{path}: {base} is a file, not a directory")
    why = _probe(base)
    if why:
        shown = f"{path}" if base == path else f"{path} (its existing parent {base})"
        raise PathProblem(f"{shown} is not writable: {why}")


def check_writable_file(path: Path) -> None:
    """*path* can be written as a file: it is not a directory and its directory is writable."""
    if path.is_dir():
        raise PathProblem(f"{path} is a directory, not a file")
    check_writable_dir(path.parent)  # written by a rename in that directory: the file's own mode doesn't matter
