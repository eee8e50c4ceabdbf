"""The engine cache: content-addressed entries, atomic writes, one build across xdist workers.

Layout: ``<root>/<gpu>/<backend>/<key>/`` holding the backend's files and ``meta.json``
(written last, inside a private temporary directory that is renamed into place). A file lock per key
makes concurrent workers build an entry once. An unreadable entry is rebuilt with a warning.
Every build appends one JSON line to ``<root>/<gpu>/builds.jsonl`` (key, backend, label, pid, seconds):
the record of what was built, by which process, that tests and users can count.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pytest_trtbench.backends.base import Backend, BackendError, BuildRequest, Engine
from pytest_trtbench.cache_admin import touch_last_used
from pytest_trtbench.precision import CALIBRATED, recipe

CACHE_LAYOUT_VERSION = 1
META_FILE = "meta.json"
BUILD_LOG = "builds.jsonl"


class CacheWarning(UserWarning):
    """A cache entry was unreadable and is being rebuilt."""


@dataclass
class CacheEntry:
    key: str
    path: Path
    metadata: dict[str, Any]
    status: str
    """``built`` or ``hit``."""
    build_s: float


def _sha256_file(path: Path) -> str:
    """Hash of the file's bytes, memoized per (path, mtime, size): a BERT-base export is 438 MB and every
    cache lookup of every precision needs its hash."""
    st = os.stat(path)
    return _sha256_of(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def calibration_digest(request: BuildRequest) -> str:
    """Hash of the calibration feeds an int8 build would see (empty when none are used)."""
    if request.precision not in CALIBRATED or request.calibration is None:
        return ""
    h = hashlib.sha256()
    for feeds in request.calibration():
        for name in sorted(feeds):
            arr = feeds[name]
            h.update(f"{name}:{arr.dtype}:{arr.shape}".encode())
            h.update(memoryview(arr.tobytes()))
    return h.hexdigest()


def key_fields(backend: Backend, request: BuildRequest) -> dict[str, Any]:
    """Everything the engine depends on; the cache key is the hash of this structure."""
    return {
        "layout": CACHE_LAYOUT_VERSION,
        "model_sha256": _sha256_file(request.onnx_path),
        "precision": request.precision,
        "recipe": recipe(request.precision),
        "calibration_sha256": calibration_digest(request),
        "profiles": [p.as_dict() for p in request.profiles],
        "backend": backend.name,
        "backend_identity": backend.cache_identity(request),
        "device": request.device.identity(),
        "options": {k: request.options[k] for k in sorted(request.options)},
    }


def cache_key(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:32]


class EngineCache:
    """Builds engines at most once per key and hands out loaded engines."""

    def __init__(
        self,
        root: Path,
        gpu: str,
        *,
        rebuild: bool = False,
        on_build: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.root = Path(root) / gpu
        self.rebuild = rebuild
        self._rebuilt: set[str] = set()
        self._on_build = on_build or (lambda label, phase, seconds: None)

    def entry_dir(self, backend: str, key: str) -> Path:
        return self.root / backend / key

    def build_log(self) -> list[dict[str, Any]]:
        """Every build recorded in this GPU namespace, oldest first (see :data:`BUILD_LOG`)."""
        try:
            lines = (self.root / BUILD_LOG).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def _log_build(self, record: dict[str, Any]) -> None:
        from filelock import FileLock

        with FileLock(str(self.root / "locks" / f"{BUILD_LOG}.lock")):
            with open(self.root / BUILD_LOG, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    def _read_meta(self, path: Path) -> dict[str, Any] | None:
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or any(not (path / f).is_file() for f in meta.get("files", [])):
            return None
        return meta

    def get_or_build(
        self, backend: Backend, request: BuildRequest, label: str, *, load: bool = True
    ) -> tuple[CacheEntry, Engine | None]:
        """Return the cached entry for *request* (building it if needed) and the loaded engine.

        With ``load=False`` (engines can't run here) a hit is only verified, and no engine is returned.
        """
        from filelock import FileLock

        fields = key_fields(backend, request)
        key = cache_key(fields)
        path = self.entry_dir(backend.name, key)
        lock_dir = self.root / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_dir / f"{key}.lock")):
            force = self.rebuild and key not in self._rebuilt
            if not force and path.exists():
                meta = self._read_meta(path)
                if meta is not None:
                    try:
                        if load:
                            engine: Engine | None = backend.load(path, meta.get("backend", {}), request)
                        else:
                            backend.verify(path, meta.get("backend", {}))
                            engine = None
                    except BackendError as exc:
                        warnings.warn(CacheWarning(f"cached engine {path} is unreadable ({exc}); rebuilding"), stacklevel=2)
                    else:
                        touch_last_used(path)
                        return CacheEntry(key, path, meta, "hit", float(meta.get("build_s", 0.0))), engine
                else:
                    warnings.warn(CacheWarning(f"cache entry {path} is incomplete or corrupt; rebuilding"), stacklevel=2)
            entry = self._build(backend, request, fields, key, path, label)
            self._rebuilt.add(key)
        if not load:
            return entry, None
        try:
            engine = backend.load(path, entry.metadata.get("backend", {}), request)
        except BackendError as exc:
            raise BackendError(f"engine {label} was just built but cannot be loaded: {exc}") from None
        return entry, engine

    def _build(self, backend: Backend, request: BuildRequest, fields: dict[str, Any], key: str, path: Path, label: str) -> CacheEntry:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:8]}-", dir=path.parent))
        done = threading.Event()
        start = time.perf_counter()
        self._on_build(label, "start", 0.0)
        ticker = threading.Thread(target=self._tick, args=(label, start, done), daemon=True)
        ticker.start()
        try:
            output = backend.build(request, tmp, self.root)
            build_s = time.perf_counter() - start
            meta = {
                "key": key,
                "key_fields": fields,
                "label": label,
                "build_s": round(build_s, 4),
                "files": sorted(output.files),
                "bytes": {f: (tmp / f).stat().st_size for f in output.files},
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "backend": output.metadata,
            }
            with open(tmp / META_FILE, "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=2, sort_keys=True, default=str)
            touch_last_used(tmp)
            if path.exists():
                shutil.rmtree(path)
            os.rename(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            done.set()
        self._log_build({"key": key, "backend": backend.name, "label": label, "pid": os.getpid(),
                         "build_s": meta["build_s"], "created": meta["created"]})
        self._on_build(label, "done", build_s)
        return CacheEntry(key, path, meta, "built", build_s)

    def _tick(self, label: str, start: float, done: threading.Event, every: float = 15.0) -> None:
        while not done.wait(every):
            self._on_build(label, "progress", time.perf_counter() - start)
