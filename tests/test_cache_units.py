"""The engine cache's promises that the real-backend tests (test_cache.py) can't reach: what a build records
(meta.json, the build log, the layout on disk), what it reports while it runs, and that a build failing half way
leaves nothing behind and says why in one line (issue 18: these survived mutation testing).

``FakeBackend`` below is a FAKE written for these tests: it "builds" by writing a small file and records what
the cache handed it; it can fail the ways real backends and disks fail. The cache, its files, locks and log are
real. The real ONNX Runtime backend goes through the same cache in test_cache.py.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest
from filelock import FileLock

from pytest_trtbench import cache as cache_module
from pytest_trtbench.backends.base import BackendError, BuildOutput, BuildRequest
from pytest_trtbench.cache import (
    LOW_DISK_BYTES,
    CacheDirError,
    CacheWarning,
    EngineCache,
    cache_key,
    calibration_digest,
    key_fields,
    meta_problem,
)
from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.profile import InputRange, ShapeProfile

CPU = DeviceInfo(gpu="cpu", device_name="test-cpu", kind="cpu")


class FakeEngine:
    """FAKE engine: remembers where it was loaded from."""

    def __init__(self, path: Path, metadata: Mapping[str, Any]) -> None:
        self.path, self.metadata = path, dict(metadata)


class FakeBackend:
    """FAKE backend: writes ``engine.bin`` (+ ``extra.txt``), records every call, fails on request."""

    name = "fake"

    def __init__(self, fail: BaseException | None = None, *, load_fails: str | None = None,
                 verify_fails: str | None = None, during_build: Callable[[Path], None] | None = None) -> None:
        self.fail, self.load_fails, self.verify_fails, self.during_build = fail, load_fails, verify_fails, during_build
        self.builds: list[tuple[Path, Path]] = []
        self.loads: list[tuple[Path, dict[str, Any]]] = []
        self.verifies: list[tuple[Path, dict[str, Any]]] = []

    def cache_identity(self, request: BuildRequest) -> dict[str, str]:
        return {"fake": "1.0"}

    def build(self, request: BuildRequest, out_dir: Path, cache_root: Path) -> BuildOutput:
        self.builds.append((out_dir, cache_root))
        (out_dir / "engine.bin").write_bytes(b"\x01engine" * 10)
        (out_dir / "extra.txt").write_text("notes")
        if self.during_build is not None:
            self.during_build(out_dir)
        if self.fail is not None:
            raise self.fail
        return BuildOutput(files=["extra.txt", "engine.bin"], metadata={"engine_precisions": {"fp32": 3}})

    def verify(self, entry_dir: Path, metadata: Mapping[str, Any]) -> None:
        self.verifies.append((entry_dir, dict(metadata)))
        if self.verify_fails:
            raise BackendError(self.verify_fails)

    def load(self, entry_dir: Path, metadata: Mapping[str, Any], request: BuildRequest) -> FakeEngine:
        self.loads.append((entry_dir, dict(metadata)))
        if self.load_fails:
            raise BackendError(self.load_fails)
        return FakeEngine(entry_dir, metadata)


def request(tmp_path: Path, precision: str = "fp32", **kw: Any) -> BuildRequest:
    model = tmp_path / "m.onnx"
    if not model.exists():
        model.write_bytes(b"not really onnx: the fake backend never reads it")
    profile = ShapeProfile.from_mapping({"x": InputRange((1, 4), (8, 4), (8, 4))})
    return BuildRequest(onnx_path=model, precision=precision, profiles=(profile,), device=CPU, **kw)


def no_stray_files(cwd: Path) -> None:
    assert sorted(p.name for p in cwd.iterdir()) == ["cache", "m.onnx"], "something was written outside the cache"


# --- what a build records ---------------------------------------------------------------------------

def test_a_build_writes_the_documented_layout_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    backend = FakeBackend()
    cache = EngineCache(Path("cache"), "cpu")
    entry, engine = cache.get_or_build(backend, request(tmp_path), "m fp32")
    # <root>/<gpu>/<backend>/<key>/ with the backend's files, meta.json and last_used; locks and the log beside
    assert entry.path == Path("cache") / "cpu" / "fake" / entry.key and entry.status == "built"
    assert sorted(p.name for p in (tmp_path / "cache" / "cpu").iterdir()) == ["builds.jsonl", "fake", "locks"]
    assert sorted(p.name for p in (tmp_path / "cache" / "cpu" / "fake").iterdir()) == [entry.key]
    assert sorted(p.name for p in entry.path.iterdir()) == ["engine.bin", "extra.txt", "last_used", "meta.json"]
    no_stray_files(tmp_path)
    # the backend built into a hidden per-key temporary folder next to the entry, the one stale cleanup finds
    (out_dir, cache_root), = backend.builds
    assert cache_root == cache.root and out_dir.parent == entry.path.parent
    assert out_dir.name.startswith(f".tmp-{entry.key}-") and out_dir.name.split("-")[1] == entry.key
    assert isinstance(engine, FakeEngine) and engine.path == entry.path


def test_meta_json_holds_the_key_its_fields_sizes_and_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30: a local time would show
    time.tzset()
    try:
        backend = FakeBackend()
        req = request(tmp_path)
        before = time.time()
        entry, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(backend, req, "m fp32")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    meta = json.loads((entry.path / "meta.json").read_text())
    assert meta == entry.metadata
    assert meta["key"] == entry.key == cache_key(key_fields(backend, req))
    assert meta["key_fields"] == json.loads(json.dumps(key_fields(backend, req)))
    assert sorted(meta["key_fields"]) == ["backend", "backend_identity", "calibration_sha256", "device", "layout",
                                          "model_sha256", "options", "precision", "profiles", "recipe"]
    assert meta["label"] == "m fp32" and meta["backend"] == {"engine_precisions": {"fp32": 3}}
    assert meta["files"] == ["engine.bin", "extra.txt"]  # sorted
    body = (entry.path / "engine.bin").read_bytes()
    assert meta["bytes"] == {"engine.bin": len(body), "extra.txt": 5}
    assert meta["sha256"]["engine.bin"] == hashlib.sha256(body).hexdigest()
    assert meta["sha256"]["extra.txt"] == hashlib.sha256(b"notes").hexdigest()
    assert meta["build_s"] == round(entry.build_s, 4) and 0 <= entry.build_s < time.time() - before + 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["created"])
    created = time.mktime(time.strptime(meta["created"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(created - before) < 120  # UTC, not the local time


def test_every_build_appends_one_record_to_the_build_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cache = EngineCache(Path("cache"), "cpu", rebuild=True)
    first, _ = cache.get_or_build(FakeBackend(), request(tmp_path), "m fp32")
    second, _ = cache.get_or_build(FakeBackend(), request(tmp_path, "fp16"), "m fp16")
    cache.get_or_build(FakeBackend(), request(tmp_path), "m fp32")  # a hit: not logged
    log = EngineCache(Path("cache"), "cpu").build_log()
    assert log == [
        {"key": e.key, "backend": "fake", "label": label, "pid": os.getpid(), "build_s": e.metadata["build_s"],
         "created": e.metadata["created"]} for e, label in ((first, "m fp32"), (second, "m fp16"))]
    lines = (tmp_path / "cache" / "cpu" / "builds.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) in log for line in lines)
    no_stray_files(tmp_path)


def test_a_build_reports_start_and_done_to_the_progress_callback(tmp_path: Path) -> None:
    calls: list[tuple[str, str, float]] = []
    cache = EngineCache(tmp_path / "cache", "cpu", on_build=lambda *a: calls.append(a))
    entry, _ = cache.get_or_build(FakeBackend(), request(tmp_path), "m fp32")
    assert calls == [("m fp32", "start", 0.0), ("m fp32", "done", entry.build_s)]
    assert isinstance(entry.build_s, float) and entry.build_s > 0
    calls.clear()
    cache.get_or_build(FakeBackend(), request(tmp_path), "m fp32")
    assert calls == []  # a hit builds nothing


def test_a_long_build_reports_progress_until_it_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "PROGRESS_EVERY_S", 0.01)
    calls: list[tuple[str, str, float]] = []
    progressed = threading.Event()

    def record(label: str, phase: str, seconds: float) -> None:
        calls.append((label, phase, seconds))
        if [c[1] for c in calls].count("progress") >= 2:
            progressed.set()

    def slow(out_dir: Path) -> None:
        # the build lasts until the ticker has reported twice: a fixed sleep let a loaded machine (the ticker
        # thread not scheduled in time) decide how many progress calls there were
        assert progressed.wait(30), "fewer than two progress calls during the build"

    before = set(threading.enumerate())
    start = time.perf_counter()
    entry, _ = EngineCache(tmp_path / "cache", "cpu", on_build=record).get_or_build(
        FakeBackend(during_build=slow), request(tmp_path), "m fp32")
    elapsed = time.perf_counter() - start
    phases = [phase for _, phase, _ in calls]
    assert phases[0] == "start" and phases[-1] == "done" and phases.count("progress") >= 2
    progress = [s for label, phase, s in calls if phase == "progress"]
    assert all(label == "m fp32" for label, _, _ in calls)
    assert progress == sorted(progress) and 0 < progress[0] and progress[-1] <= elapsed
    time.sleep(0.05)
    n = len(calls)
    time.sleep(0.05)
    assert len(calls) == n and set(threading.enumerate()) <= before  # the ticker stopped with the build


def test_the_progress_period_is_15_seconds() -> None:
    assert cache_module.PROGRESS_EVERY_S == 15.0


# --- hits --------------------------------------------------------------------------------------------

def test_a_hit_loads_the_entry_with_its_stored_metadata(tmp_path: Path) -> None:
    built, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m")
    backend = FakeBackend()
    hit, engine = EngineCache(tmp_path / "cache", "cpu").get_or_build(backend, request(tmp_path), "m")
    assert (hit.status, hit.key, hit.path, hit.metadata, hit.build_s) == (
        "hit", built.key, built.path, built.metadata, built.metadata["build_s"])
    assert isinstance(hit.build_s, float)
    assert backend.loads == [(built.path, {"engine_precisions": {"fp32": 3}})] and backend.verifies == []
    assert isinstance(engine, FakeEngine) and engine.metadata == {"engine_precisions": {"fp32": 3}}


def test_a_build_is_loaded_with_the_metadata_the_backend_wrote(tmp_path: Path) -> None:
    backend = FakeBackend()
    entry, engine = EngineCache(tmp_path / "cache", "cpu").get_or_build(backend, request(tmp_path), "m")
    assert backend.loads == [(entry.path, {"engine_precisions": {"fp32": 3}})]
    assert isinstance(engine, FakeEngine)


def test_without_load_a_hit_is_only_verified(tmp_path: Path) -> None:
    built, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m", load=False)
    backend = FakeBackend()
    hit, engine = EngineCache(tmp_path / "cache", "cpu").get_or_build(backend, request(tmp_path), "m", load=False)
    assert hit.status == "hit" and engine is None and backend.loads == []
    assert backend.verifies == [(built.path, {"engine_precisions": {"fp32": 3}})]


def test_an_engine_that_fails_verification_is_rebuilt_with_a_note(tmp_path: Path) -> None:
    EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m", load=False)
    cache = EngineCache(tmp_path / "cache", "cpu")
    backend = FakeBackend(verify_fails="truncated plan")
    with pytest.warns(CacheWarning) as caught:
        entry, engine = cache.get_or_build(backend, request(tmp_path), "m", load=False)
    assert entry.status == "built" and engine is None and len(backend.builds) == 1
    prefix = f"cache entry {entry.path} for m: the engine is unreadable (truncated plan); "
    assert cache.notes == [prefix + "rebuilt it"]
    assert [str(w.message) for w in caught] == [prefix + "rebuilding"]


@pytest.mark.parametrize(("damage", "why"), [
    (lambda p: (p / "meta.json").unlink(), "meta.json is missing"),
    (lambda p: (p / "meta.json").write_bytes(b"\xff\xfe{"), "meta.json is unreadable (UnicodeDecodeError)"),
    (lambda p: (p / "meta.json").write_text("{"), "meta.json is unreadable (JSONDecodeError)"),
    (lambda p: (p / "meta.json").write_text('{"key": "k"}'),
     "meta.json is malformed: no 'files' (written by an older pytest-trtbench?)"),
    (lambda p: (p / "engine.bin").unlink(), "engine.bin is missing"),
    (lambda p: (p / "extra.txt").write_text("notes, longer"), "extra.txt has 13 bytes, meta.json says 5"),
    (lambda p: (p / "extra.txt").write_text("NOTES"),
     "extra.txt does not match its sha256 in meta.json (modified after the build)"),
])
def test_a_damaged_entry_is_rebuilt_saying_what_was_wrong(tmp_path: Path, damage: Callable[[Path], Any],
                                                          why: str) -> None:
    built, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m")
    damage(built.path)
    cache = EngineCache(tmp_path / "cache", "cpu")
    with pytest.warns(CacheWarning, match=f"^{re.escape(f'cache entry {built.path} for m: {why}; rebuilding')}$"):
        entry, engine = cache.get_or_build(FakeBackend(), request(tmp_path), "m")
    assert cache.notes == [f"cache entry {built.path} for m: {why}; rebuilt it"]
    assert entry.status == "built" and isinstance(engine, FakeEngine)


def test_the_rebuild_warning_survives_warnings_as_errors(tmp_path: Path) -> None:
    built, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m")
    (built.path / "meta.json").unlink()
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        entry, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m")
    assert entry.status == "built" and [w.category for w in caught] == [CacheWarning]


def test_the_rebuild_warning_points_at_the_code_that_asked_for_the_engine(tmp_path: Path) -> None:
    if "MUTANT_UNDER_TEST" in os.environ:  # mutmut's trampolines add stack frames between caller and cache
        pytest.skip("the warning's location can't be checked under mutmut (benchmarks/results/mutation.md)")
    import warnings

    built, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m")
    (built.path / "meta.json").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m")
    # not a line inside cache.py: pytest's warning summary shows the caller (the plugin's runner in a real run)
    assert [(w.category, w.filename) for w in caught] == [(CacheWarning, __file__)]


# --- failures leave nothing behind and say why in one line ------------------------------------------

def leftovers(tmp_path: Path) -> list[str]:
    backend_dir = tmp_path / "cache" / "cpu" / "fake"
    return sorted(p.name for p in backend_dir.iterdir()) if backend_dir.exists() else []


def test_a_full_disk_during_the_build_leaves_no_entry_and_names_the_folder(tmp_path: Path) -> None:
    backend = FakeBackend(OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(BackendError) as exc:
        EngineCache(tmp_path / "cache", "cpu").get_or_build(backend, request(tmp_path), "m")
    folder = tmp_path / "cache" / "cpu" / "fake"
    assert str(exc.value) == (f"cannot write the engine cache entry under {folder}: No space left on device; "
                              "free space there or pass --trt-cache-dir=ANOTHER_DIR")
    assert leftovers(tmp_path) == []


def test_an_os_error_without_strerror_is_shown_as_it_is(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"cache/cpu/fake: quota exceeded; free space there or pass "
                                           r"--trt-cache-dir=ANOTHER_DIR$"):
        EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(OSError("quota exceeded")),
                                                           request(tmp_path), "m")


def test_a_backend_error_is_passed_on_unchanged_when_there_is_disk_space(tmp_path: Path) -> None:
    original = BackendError("parser: unsupported op Foo")
    with pytest.raises(BackendError) as exc:
        EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(original), request(tmp_path), "m")
    assert exc.value is original and leftovers(tmp_path) == []


@pytest.mark.parametrize(("free", "low"), [(LOW_DISK_BYTES - 1, True), (LOW_DISK_BYTES, False), (1234, True)])
def test_a_backend_error_on_a_nearly_full_disk_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        free: int, low: bool) -> None:
    seen: list[Path] = []

    def usage(path: Path) -> Any:
        seen.append(Path(path))
        return shutil._ntuple_diskusage(10**12, 10**12 - free, free)  # type: ignore[attr-defined]

    monkeypatch.setattr(shutil, "disk_usage", usage)
    with pytest.raises(BackendError) as exc:
        EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(BackendError("write failed")),
                                                           request(tmp_path), "m")
    folder = tmp_path / "cache" / "cpu" / "fake"
    assert seen == [folder]
    expected = (f"write failed; the engine cache under {folder} has only {free} bytes free: free space there or "
                "pass --trt-cache-dir=ANOTHER_DIR") if low else "write failed"
    assert str(exc.value) == expected and leftovers(tmp_path) == []


FAILURES = [(KeyboardInterrupt(), KeyboardInterrupt), (OSError(errno.EIO, "I/O error"), BackendError),
            (BackendError("nope"), BackendError)]


@pytest.mark.parametrize(("fail", "raised"), FAILURES)
def test_an_interrupted_build_leaves_no_temporary_folder(tmp_path: Path, fail: BaseException,
                                                         raised: type[BaseException]) -> None:
    with pytest.raises(raised):
        EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(fail), request(tmp_path), "m")
    assert leftovers(tmp_path) == []
    entry, _ = EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m")
    assert entry.status == "built"  # and the next run builds normally


@pytest.mark.parametrize(("fail", "raised"), FAILURES)
def test_the_users_error_shows_even_if_the_backend_removed_its_folder(tmp_path: Path, fail: BaseException,
                                                                      raised: type[BaseException]) -> None:
    """A library that cleans up its own output folder before failing: the cleanup must not hide its error."""
    with pytest.raises(raised) as exc:
        EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(fail, during_build=shutil.rmtree),
                                                           request(tmp_path), "m")
    shown = getattr(fail, "strerror", None) or str(fail)  # OSError: its strerror in our one-line message
    assert shown in str(exc.value)
    assert exc.type is raised and leftovers(tmp_path) == []


def test_an_engine_that_cannot_be_loaded_after_its_build_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"^engine m fp16 was just built but cannot be loaded: bad plan$"):
        EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(load_fails="bad plan"),
                                                           request(tmp_path), "m fp16")


def test_an_unwritable_backend_folder_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "cache" / "cpu").mkdir(parents=True)
    (tmp_path / "cache" / "cpu" / "fake").write_text("a file where the backend's folder goes")
    with pytest.raises(BackendError) as exc:
        EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m")
    assert str(exc.value) == (f"cannot write the engine cache entry under {tmp_path / 'cache' / 'cpu' / 'fake'}: "
                              "File exists; free space there or pass --trt-cache-dir=ANOTHER_DIR")


def test_an_unwritable_lock_folder_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "cache" / "cpu").mkdir(parents=True)
    (tmp_path / "cache" / "cpu" / "locks").write_text("a file where the locks go")
    with pytest.raises(BackendError) as exc:
        EngineCache(tmp_path / "cache", "cpu").get_or_build(FakeBackend(), request(tmp_path), "m")
    assert str(exc.value) == (f"cannot write the engine cache entry under {tmp_path / 'cache' / 'cpu' / 'locks'}: "
                              "File exists; free space there or pass --trt-cache-dir=ANOTHER_DIR")


def test_a_cache_dir_under_a_file_is_refused_with_the_option_to_fix_it(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(CacheDirError, match=rf"^engine cache {re.escape(str(tmp_path / 'f' / 'c' / 'cpu'))}: "
                                            rf"{re.escape(str(tmp_path / 'f'))} is a file, not a directory; "
                                            r"pass --trt-cache-dir=A_WRITABLE_DIR$"):
        EngineCache(tmp_path / "f" / "c", "cpu").check_usable()
    EngineCache(tmp_path / "ok", "cpu").check_usable()  # a missing folder that can be created is fine


# --- stale temporary folders of killed builds ---------------------------------------------------------

def stale(cache: EngineCache, backend: str, key: str, age_s: float, now: float) -> Path:
    tmp = cache.root / backend / f".tmp-{key}-abc123"
    tmp.mkdir(parents=True)
    (tmp / "half.bin").write_bytes(b"x")
    os.utime(tmp, (now - age_s, now - age_s))
    return tmp


def test_stale_build_folders_are_removed_unless_young_or_locked(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    now = 2_000_000_000.0
    cache = EngineCache(tmp_path / "cache", "cpu")
    (cache.root / "a").mkdir(parents=True)
    (cache.root / "a" / ".tmp-k0-gone").symlink_to(tmp_path / "nowhere")  # vanished under us: skipped
    young = stale(cache, "a", "k1", 60, now)  # sorted first: must not stop the scan
    exactly = stale(cache, "a", "k2", 3600, now)
    locked = stale(cache, "b", "k3", 7200, now)
    old = stale(cache, "c", "k4", 7200, now)
    other = stale(cache, "c", "k5", 3 * 86400, now)
    keep_entry = cache.root / "c" / "k4"
    keep_entry.mkdir()
    (cache.root / "locks").mkdir()
    monkeypatch.setattr(time, "time", lambda: now)
    with FileLock(str(cache.root / "locks" / "k3.lock")):  # a build of k3 is running in another process
        removed = cache.clean_stale_tmp()
    assert removed == [exactly, old, other]
    assert young.exists() and locked.exists() and not exactly.exists() and not old.exists() and keep_entry.exists()
    assert cache.clean_stale_tmp(max_age_s=30) == [young, locked]


def test_a_stale_folder_that_cannot_be_removed_is_not_reported_as_removed(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # the session summary says "removed <folder>" for each returned path: only for folders that are gone. As root
    # no permission stops rmtree here; a symlink does (rmtree refuses links), so the failing one is a link to an
    # old folder outside the cache
    now = 2_000_000_000.0
    cache = EngineCache(tmp_path / "cache", "cpu")
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    os.utime(outside, (now - 7200, now - 7200))
    (cache.root / "a").mkdir(parents=True)
    link = cache.root / "a" / ".tmp-k1-link"
    link.symlink_to(outside, target_is_directory=True)
    removable = stale(cache, "b", "k2", 7200, now)
    monkeypatch.setattr(time, "time", lambda: now)
    assert cache.clean_stale_tmp() == [removable]  # the failure does not stop the scan
    assert link.is_symlink() and (outside / "sub").is_dir() and not removable.exists()
    assert cache.notes == [  # the summary names it, with the reason, and what was removed
        f"could not remove {link} (left by a build that was killed): Cannot call rmtree on a symbolic link; "
        "remove it by hand",
        f"removed {removable}: left by a build that was killed (older than an hour, unlocked)",
    ]


CLEAN_READ_ONLY = """
import os, sys, time
from pathlib import Path
from pytest_trtbench.cache import EngineCache

cache = EngineCache(Path(sys.argv[1]), "cpu")
backend = cache.root / "tensorrt"
tmp = backend / ".tmp-k7-abc123"
(tmp / "sub").mkdir(parents=True)
(tmp / "sub" / "engine.bin").write_bytes(b"x")
for path in (tmp / "sub", tmp):
    os.utime(path, (time.time() - 7200, time.time() - 7200))
backend.chmod(0o555)  # the folder holding it is read-only: the folder itself cannot be unlinked
try:
    print(cache.clean_stale_tmp())
    print(cache.notes)
    print(tmp.exists(), (tmp / "sub").exists())
finally:
    backend.chmod(0o755)
"""


def test_a_stale_folder_under_a_read_only_folder_is_not_reported_removed(tmp_path: Path) -> None:
    """The issue's case: a read-only parent. Root ignores file modes, so the check runs without
    CAP_DAC_OVERRIDE (``setpriv``), as a user would."""
    import subprocess
    import sys

    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop CAP_DAC_OVERRIDE")
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", sys.executable, "-c",
                           CLEAN_READ_ONLY, str(tmp_path / "cache")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stderr
    removed, notes, left = done.stdout.splitlines()
    tmp = tmp_path / "cache" / "cpu" / "tensorrt" / ".tmp-k7-abc123"
    assert removed == "[]" and left == "True False"  # its contents went, the folder could not
    assert notes == repr([f"could not remove {tmp} (left by a build that was killed): Permission denied: "
                          f"{str(tmp)!r}; remove it by hand"])


def test_stale_cleanup_of_a_missing_cache_does_nothing(tmp_path: Path) -> None:
    assert EngineCache(tmp_path / "nothing", "cpu").clean_stale_tmp() == []
    (tmp_path / "file").write_text("x")
    assert EngineCache(tmp_path, "file").clean_stale_tmp() == []


# --- the key ------------------------------------------------------------------------------------------

def calibration(values: list[float], name: str = "x", dtype: Any = np.float32) -> Callable[[], list[dict[str, Any]]]:
    return lambda: [{name: np.array(values, dtype=dtype).reshape(1, -1)}, {"y": np.zeros((2,), np.int64)}]


def test_int8_calibration_data_is_in_the_key_and_nothing_else_is_calibrated(tmp_path: Path) -> None:
    base = calibration_digest(request(tmp_path, "int8", calibration=calibration([1, 2, 3, 4])))
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert base == calibration_digest(request(tmp_path, "int8", calibration=calibration([1, 2, 3, 4])))
    for other in (calibration([1, 2, 3, 5]), calibration([1, 2, 3, 4], name="z"),
                  calibration([1, 2, 3, 4], dtype=np.float64), lambda: [{"x": np.array([[1, 2], [3, 4]], np.float32)}]):
        assert calibration_digest(request(tmp_path, "int8", calibration=other)) != base
    assert calibration_digest(request(tmp_path, "fp8", calibration=calibration([1, 2, 3, 4]))) == base
    assert calibration_digest(request(tmp_path, "int8")) == ""
    assert calibration_digest(request(tmp_path, "fp16", calibration=calibration([1, 2, 3, 4]))) == ""
    backend = FakeBackend()
    keys = {cache_key(key_fields(backend, request(tmp_path, "int8", calibration=calibration(v))))
            for v in ([1, 2, 3, 4], [1, 2, 3, 5])}
    assert len(keys) == 2  # new calibration data: a new engine


def test_the_recorded_recipe_names_the_calibration_method_of_each_int8_engine(tmp_path: Path) -> None:
    # README: the calibration method "is in the recipe, so in the cache key"; minmax (the default) adds no option
    from pytest_trtbench.precision import recipe

    cache = EngineCache(tmp_path / "cache", "cpu")
    entries = {method: cache.get_or_build(FakeBackend(), request(
        tmp_path, "int8", options={"calibration_method": method} if method != "minmax" else {}), f"m {method}")[0]
        for method in ("minmax", "entropy", "percentile")}
    for method, entry in entries.items():
        meta = json.loads((entry.path / "meta.json").read_text())
        assert meta["key_fields"]["recipe"] == recipe("int8", method)
        assert meta["key_fields"]["recipe"]["calibration"] == method
    assert len({entry.key for entry in entries.values()}) == 3


def test_the_key_follows_the_model_bytes_even_within_one_session(tmp_path: Path) -> None:
    backend = FakeBackend()
    req = request(tmp_path)
    model = req.onnx_path
    first = cache_key(key_fields(backend, req))
    stat = model.stat()
    model.write_bytes(model.read_bytes().upper())  # same size, new content, new mtime
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = cache_key(key_fields(backend, req))
    assert second != first
    model.write_bytes(model.read_bytes() + b"!")  # new size, mtime set back to the same instant
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert cache_key(key_fields(backend, req)) not in (first, second)


def test_backend_identity_and_options_are_in_the_key(tmp_path: Path) -> None:
    class OtherVersion(FakeBackend):
        def cache_identity(self, request: BuildRequest) -> dict[str, str]:
            return {"fake": "2.0"}

    req = request(tmp_path)
    fields = key_fields(FakeBackend(), req)
    assert fields["backend_identity"] == {"fake": "1.0"} and fields["backend"] == "fake"
    assert cache_key(fields) != cache_key(key_fields(OtherVersion(), req))
    with_opts = key_fields(FakeBackend(), request(tmp_path, options={"opt_level": 3, "workspace_mib": 64}))
    assert list(with_opts["options"]) == ["opt_level", "workspace_mib"]
    assert cache_key(with_opts) == cache_key(
        key_fields(FakeBackend(), request(tmp_path, options={"workspace_mib": 64, "opt_level": 3})))
    assert cache_key(with_opts) != cache_key(fields)


# --- meta.json validation -------------------------------------------------------------------------

GOOD = {"key": "k", "files": ["a.bin"], "bytes": {"a.bin": 3}, "sha256": {"a.bin": "00"}, "build_s": 1.5,
        "backend": {}}


@pytest.mark.parametrize(("change", "problem"), [
    ({}, ""),
    ({"build_s": 0.0}, ""),  # a build faster than the 4-digit rounding
    ({"build_s": 3}, ""),
    ({"build_s": -0.5}, "'build_s' is -0.5"),
    ({"build_s": math.nan}, "'build_s' is nan"),
    ({"build_s": math.inf}, "'build_s' is inf"),
    ({"build_s": True}, "'build_s' is bool True"),
    ({"build_s": "1"}, "'build_s' is str '1'"),
    ({"files": "a.bin"}, "'files' is str 'a.bin'"),
    ({"files": ["../a.bin"]}, "bad file name '../a.bin'"),
    ({"files": ["sub/a.bin"]}, "bad file name 'sub/a.bin'"),
    ({"files": [".hidden"]}, "bad file name '.hidden'"),
    ({"files": [7]}, "bad file name 7"),
    ({"bytes": {}}, "no size or sha256 for 'a.bin'"),
    ({"bytes": {"a.bin": "3"}}, "no size or sha256 for 'a.bin'"),
    ({"sha256": {}}, "no size or sha256 for 'a.bin'"),
    ({"sha256": {"a.bin": 0}}, "no size or sha256 for 'a.bin'"),
])
def test_meta_problem_names_the_first_bad_field(change: dict[str, Any], problem: str) -> None:
    assert meta_problem({**GOOD, **change}) == problem


def test_meta_problem_of_a_missing_field_or_a_non_object() -> None:
    for name in GOOD:
        meta = {k: v for k, v in GOOD.items() if k != name}
        assert meta_problem(meta) == f"no {name!r} (written by an older pytest-trtbench?)"
    assert meta_problem(["k"]) == "expected a JSON object, got list"
    assert meta_problem(None) == "expected a JSON object, got NoneType"
