"""Progress lines of long builds, on the terminal while pytest captures the test's output.

The terminal reporter writes to the stream pytest's fd capture redirects during a test, so a plain
``write_line`` only shows with ``-s``; live logging solves the same problem by suspending capture
around the write (``capturemanager.global_and_fixture_disabled``), and so do we. Builds tick from a
helper thread; a lock keeps one write at a time.
"""
from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.Lock()


def write_progress(config: Any, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < 0:
        return
    capman = config.pluginmanager.get_plugin("capturemanager")
    with _LOCK:
        if capman is None:
            reporter.write_line(line)
            reporter.flush()
            return
        with capman.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(line)
            reporter.flush()
