"""TensorRT's timing cache as a file shared by every build of one GPU namespace."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

TIMING_CACHE_FILE = "timing.cache"


class TimingCacheFile:
    """A timing cache shared by every build of one GPU namespace, merged under a file lock.

    Loaded before a build (so tactics timed before are reused), merged with whatever another
    worker saved meanwhile after it, and written atomically (temporary file + ``os.replace``).
    The lock is not held during the build itself.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: Any = None

    def _lock(self) -> Any:
        from filelock import FileLock

        return FileLock(str(self.path) + ".lock")

    def attach(self, config: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock():
            blob = self.path.read_bytes() if self.path.exists() else b""
        cache = config.create_timing_cache(blob)
        if cache is None or not config.set_timing_cache(cache, False):  # unreadable or another device's
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, False)
        self._cache = cache

    def merge_and_save(self, config: Any) -> None:
        with self._lock():
            if self.path.exists():
                on_disk = config.create_timing_cache(self.path.read_bytes())
                if on_disk is not None:
                    self._cache.combine(on_disk, True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".timing-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(self._cache.serialize())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
