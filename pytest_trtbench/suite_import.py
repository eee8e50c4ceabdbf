"""A suite file that can't be imported because PyTorch is missing: skipped with the reason, not a collection error.

On a runner without torch, a suite file written the README's way (``from torch import nn`` at the top) fails to
import; pytest would report a collection error and interrupt the whole session, so not even the ONNX-file suites
run. The plugin reports such a file ``skipped`` instead, saying how to make its suites runnable there (import
torch inside the model factory: the suite can then run from the export a run with torch kept). Only files that
mention ``pytest_trtbench`` are treated so; any other test module keeps pytest's own error.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

PACKAGE = b"pytest_trtbench"


def missing_torch(module: pytest.Module) -> ModuleNotFoundError | None:
    """Import *module* (as its collection would: a success is memoized by pytest); the ``ModuleNotFoundError``
    when it failed because ``torch`` (or a submodule) can't be imported, else ``None``."""
    try:
        if PACKAGE not in module.path.read_bytes():
            return None
    except OSError:
        return None
    try:
        module.obj  # noqa: B018 - the import itself
    except module.CollectError as exc:
        cause = exc.__cause__
        if isinstance(cause, ModuleNotFoundError) and _missing_name(cause).split(".")[0] == "torch":
            return cause
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - a module-level skip, any other error: pytest's own collection reports it
        return None
    return None


def _missing_name(exc: ModuleNotFoundError) -> str:
    """The module that could not be imported (``exc.name``; else read from the message, as an import hook
    that raises ``ModuleNotFoundError("No module named 'torch'")`` leaves ``name`` unset)."""
    if exc.name:
        return exc.name
    found = re.match(r"No module named '([\w.]+)'", str(exc))
    return found.group(1) if found else ""


def skip_report(module: pytest.Module, report: Any, cause: ModuleNotFoundError) -> None:
    """Turn *report* (the module's failed collection) into a skip naming the file, the line and the fix."""
    tb = cause.__traceback__
    line = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(module.path):
            line = tb.tb_lineno
        tb = tb.tb_next
    report.outcome = "skipped"
    report.longrepr = (str(module.path), line, (
        f"Skipped: {module.path.name} imports torch at module level and torch can't be imported here: its suites "
        "are skipped; to run them from the export a run with torch kept, import torch inside the model factory "
        "(README: GPU runners without PyTorch)"))
