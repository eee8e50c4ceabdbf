"""The engine cache: content-addressed entries, atomic writes, one build across xdist workers.

Layout: ``<root>/<gpu>/<backend>/<key>/`` holding the backend's files and ``meta.json``
(written last, inside a private temporary directory that is renamed into place). A file lock per key
makes concurrent workers build an entry once. ``meta.json`` records each file's size and sha256, checked
on the first load per session. An unreadable, tampered or malformed entry is rebuilt whatever the
user's warning filters are: the rebuild is recorded in :attr:`EngineCache.notes` (the plugin prints them
in its summary) and a :class:`CacheWarning` is shown that ``-W error`` cannot turn into a failure.
Temporary build directories left by a killed build are removed at session start once they are an hour old
and nobody holds their lock; each removal, or why one failed, is a line in :attr:`EngineCache.notes`.
Every build appends one JSON line to ``<root>/<gpu>/builds.jsonl`` (key, backend, label, pid, seconds):
the record of what was built, by which process, that tests and users can count.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
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


class CacheDirError(Exception):
    """The cache directory can't be used (a file, or not writable); the message names it and the fix."""


LOW_DISK_BYTES = 16 << 20
"""A failed build with less free space than this in the cache is reported as a full disk."""

STALE_TMP_S = 3600.0
"""A build directory older than this whose key is not locked belongs to a killed build."""

PROGRESS_EVERY_S = 15.0
"""Seconds between the "still building" progress calls during a long build."""


def warn_safely(message: str) -> None:
    """Show a :class:`CacheWarning` that no filter (``-W error``, ``filterwarnings = error``) turns
    into an exception: the rebuild already happened, the run must go on."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", CacheWarning)
        warnings.warn(CacheWarning(message), stacklevel=3)


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
        "recipe": recipe(request.precision, request.options.get("calibration_method", "minmax")),
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
        self.notes: list[str] = []
        """One line per entry rebuilt because it was corrupt, tampered or malformed, for the summary."""

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

    def _read_meta(self, path: Path) -> tuple[dict[str, Any] | None, str]:
        """The entry's metadata if it is well formed and every file matches its size and sha256; else
        ``None`` and why not."""
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, f"{META_FILE} is missing"
        except (OSError, ValueError) as exc:
            return None, f"{META_FILE} is unreadable ({type(exc).__name__})"
        problem = meta_problem(meta)
        if problem:
            return None, f"{META_FILE} is malformed: {problem}"
        for name in meta["files"]:
            file = path / name
            if not file.is_file():
                return None, f"{name} is missing"
            if file.stat().st_size != meta["bytes"][name]:
                return None, f"{name} has {file.stat().st_size} bytes, {META_FILE} says {meta['bytes'][name]}"
            if _sha256_file(file) != meta["sha256"][name]:
                return None, f"{name} does not match its sha256 in {META_FILE} (modified after the build)"
        return meta, ""

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
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(lock_dir / key, exc) from None
        with FileLock(str(lock_dir / f"{key}.lock")):
            force = self.rebuild and key not in self._rebuilt
            if not force and path.exists():
                hit, why = self._load_hit(backend, request, path, load)
                if hit is not None:
                    return hit
                message = f"cache entry {path} for {label}: {why}; rebuilt it"
                self.notes.append(message)
                warn_safely(message.replace("rebuilt it", "rebuilding"))
            entry = self._build(backend, request, fields, key, path, label)
            self._rebuilt.add(key)
        if not load:
            return entry, None
        try:
            engine = backend.load(path, entry.metadata.get("backend", {}), request)
        except BackendError as exc:
            raise BackendError(f"engine {label} was just built but cannot be loaded: {exc}") from None
        return entry, engine

    def _load_hit(
        self, backend: Backend, request: BuildRequest, path: Path, load: bool
    ) -> tuple[tuple[CacheEntry, Engine | None] | None, str]:
        """The verified (and with *load*, loaded) entry at *path*, or ``None`` and why it can't be used."""
        meta, why = self._read_meta(path)
        if meta is None:
            return None, why
        try:
            if load:
                engine: Engine | None = backend.load(path, meta["backend"], request)
            else:
                backend.verify(path, meta["backend"])
                engine = None
        except BackendError as exc:
            return None, f"the engine is unreadable ({exc})"
        touch_last_used(path)
        return (CacheEntry(str(meta["key"]), path, meta, "hit", float(meta["build_s"])), engine), ""

    def check_usable(self) -> None:
        """Raise :class:`CacheDirError` unless the cache root is (or can be made) a writable directory."""
        from pytest_trtbench.paths import PathProblem, check_writable_dir

        try:
            check_writable_dir(self.root)
        except PathProblem as exc:
            raise CacheDirError(f"engine cache {exc}; pass --trt-cache-dir=A_WRITABLE_DIR") from None

    def clean_stale_tmp(self, max_age_s: float = STALE_TMP_S) -> list[Path]:
        """Remove build directories (``<backend>/.tmp-<key>-*``) of killed builds: older than *max_age_s*
        and with no process holding the key's lock. Returns what was actually removed; each removal, and
        each one that failed (with the reason), is a line in :attr:`notes`."""
        from filelock import FileLock, Timeout

        removed = []
        now = time.time()
        for tmp in sorted(self.root.glob("*/.tmp-*")) if self.root.is_dir() else []:
            try:
                if now - tmp.stat().st_mtime < max_age_s:
                    continue
            except OSError:
                continue
            key = tmp.name.split("-")[1]
            lock = self.root / "locks" / f"{key}.lock"
            try:
                with FileLock(str(lock), timeout=0):
                    if not os.path.lexists(tmp):
                        continue  # another process (an xdist worker) removed it first
                    why = remove_tree(tmp)
            except Timeout:
                continue  # a build of this key is running
            except OSError as exc:
                why = f"its lock {lock} can't be taken: {exc.strerror or exc}"
            if why:
                self.notes.append(f"could not remove {tmp} (left by a build that was killed): {why}; "
                                  "remove it by hand")
                continue
            self.notes.append(f"removed {tmp}: left by a build that was killed (older than an hour, unlocked)")
            removed.append(tmp)
        return removed

    def _build(self, backend: Backend, request: BuildRequest, fields: dict[str, Any], key: str, path: Path, label: str) -> CacheEntry:
        done = threading.Event()
        start = time.perf_counter()
        self._on_build(label, "start", 0.0)
        ticker = threading.Thread(target=self._tick, args=(label, start, done), daemon=True)
        ticker.start()
        try:  # nothing that can be interrupted between creating the temporary directory and the try below
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=path.parent))
        except OSError as exc:
            done.set()
            raise _write_error(path, exc) from None
        except BaseException:
            done.set()
            raise
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
                "sha256": {f: _sha256_file(tmp / f) for f in output.files},
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "backend": output.metadata,
            }
            with open(tmp / META_FILE, "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=2, sort_keys=True, default=str)
            touch_last_used(tmp)
            if path.exists():
                shutil.rmtree(path)
            os.rename(tmp, path)
        except OSError as exc:  # a full disk, a directory made read-only mid-run: no partial entry is left
            shutil.rmtree(tmp, ignore_errors=True)
            raise _write_error(path, exc) from None
        except BackendError as exc:  # a library that writes files itself reports a full disk its own way
            shutil.rmtree(tmp, ignore_errors=True)
            free = shutil.disk_usage(path.parent).free
            if free >= LOW_DISK_BYTES:
                raise
            raise BackendError(f"{exc}; the engine cache under {path.parent} has only {free} bytes free: "
                               "free space there or pass --trt-cache-dir=ANOTHER_DIR") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            done.set()
        self._log_build({"key": key, "backend": backend.name, "label": label, "pid": os.getpid(),
                         "build_s": meta["build_s"], "created": meta["created"]})
        self._on_build(label, "done", build_s)
        return CacheEntry(key, path, meta, "built", build_s)

    def _tick(self, label: str, start: float, done: threading.Event) -> None:
        while not done.wait(PROGRESS_EVERY_S):
            self._on_build(label, "progress", time.perf_counter() - start)


def remove_tree(path: Path) -> str:
    """Remove the directory *path* and everything in it: ``""`` once it is gone, else why it is not (the
    first error, e.g. ``Permission denied: '<path>/x.bin'``); whatever could go is removed either way."""
    try:
        shutil.rmtree(path)
        return ""
    except OSError as exc:
        first = f"{exc.strerror or exc}: {exc.filename!r}" if exc.filename else str(exc)
    shutil.rmtree(path, ignore_errors=True)
    return first if os.path.lexists(path) else ""


def _write_error(path: Path, exc: OSError) -> BackendError:
    return BackendError(f"cannot write the engine cache entry under {path.parent}: {exc.strerror or exc}; "
                        "free space there or pass --trt-cache-dir=ANOTHER_DIR")


_META_TYPES: dict[str, type | tuple[type, ...]] = {
    "key": str, "files": list, "bytes": dict, "sha256": dict, "build_s": (int, float), "backend": dict,
}


def meta_problem(meta: Any) -> str:
    """Why *meta* is not a well-formed ``meta.json`` ("" when it is)."""
    if not isinstance(meta, dict):
        return f"expected a JSON object, got {type(meta).__name__}"
    for name, kind in _META_TYPES.items():
        if name not in meta:
            return f"no {name!r} (written by an older pytest-trtbench?)"
        if not isinstance(meta[name], kind) or isinstance(meta[name], bool):
            return f"{name!r} is {type(meta[name]).__name__} {meta[name]!r}"
    for name in meta["files"]:
        if not isinstance(name, str) or "/" in name or name.startswith("."):
            return f"bad file name {name!r}"
        if not isinstance(meta["bytes"].get(name), int) or not isinstance(meta["sha256"].get(name), str):
            return f"no size or sha256 for {name!r}"
    if not math.isfinite(meta["build_s"]) or meta["build_s"] < 0:
        return f"'build_s' is {meta['build_s']!r}"
    return ""
