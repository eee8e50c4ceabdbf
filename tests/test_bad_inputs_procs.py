"""The bad-input matrix, part two: kinds that need another process or the machine's help: an interrupted
build (SIGINT, SIGKILL) then a rerun, read-only paths (capabilities dropped with ``setpriv``, since root
ignores file modes), a full disk (a 1 MiB tmpfs), two processes updating one baseline file, xdist with
pytest-benchmark under warnings-as-errors, and damaged reports given to ``merge``."""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from badinputs import (
    FAST,
    REPO,
    SUITE,
    Env,
    Outcome,
    Primed,
    check_invariants,
    env_with_repo,
    expect,
    prime,
    record,
    report_status,
    run_subprocess,
)

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

PROCESS_KINDS = [
    "sigint-during-build-then-rerun", "sigkill-during-build-then-rerun", "cache-dir-read-only",
    "baseline-dir-read-only", "report-dir-read-only", "two-processes-100-updates-each", "disk-full-cache",
    "disk-full-report-at-end", "xdist-pytest-benchmark-installed", "xdist-pytest-benchmark-5.2",
    "xdist-cache-dir-is-a-file", "merge-report-truncated", "merge-report-garbage", "merge-report-zero-bytes", "merge-report-missing-columns",
]
NO_CAPS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
SLOW_SUITE = '''
from torch import nn
from pytest_trtbench import Input, Suite

def wide():
    return nn.Sequential(*[nn.Linear(256, 256) for _ in range(4)])

test_tiny = Suite(model=wide, inputs=[Input("x", shape=("batch", 256))], batch_sizes=[2], precisions=["int8"],
                  calibration_batches=4)
'''


@pytest.fixture(scope="module")
def primed(tmp_path_factory: pytest.TempPathFactory) -> Primed:
    return prime(tmp_path_factory.mktemp("primed"))


@pytest.fixture
def env(pytester: pytest.Pytester, primed: Primed) -> Env:
    e = Env(pytester, primed)
    e.suite()
    return e


def finish(kind: str, env: Env, out: Outcome, rc: int, lines: list[str], status: str | None) -> None:
    record(kind, "W-error", out, lines)
    expect(out, rc, lines, status)
    check_invariants(env, out)


# --- interrupted builds -----------------------------------------------------------------------------

def interrupt_build(env: Env, sig: int) -> Outcome:
    """Start a run, send *sig* as soon as the engine build starts (the progress line, shown without -s)."""
    env.suite(SLOW_SUITE)
    env.cache = env.root / "cache"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *env.args("W-error")], cwd=env.root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env_with_repo())
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "[trtbench] building engine" in line:
            proc.send_signal(sig)
            break
    rest, _ = proc.communicate(timeout=600)
    return Outcome(proc.returncode, "".join(seen) + rest, report_status(env.report))


def tmp_dirs(env: Env) -> list[Path]:
    return sorted((env.cache / "cpu").glob("*/.tmp-*"))


def test_sigint_during_build_then_rerun(env: Env) -> None:
    out = interrupt_build(env, signal.SIGINT)
    assert "[trtbench] building engine test_tiny onnxruntime-int8" in out.output  # progress without -s
    finish("sigint-during-build-then-rerun", env, out, 2, ["*KeyboardInterrupt*"], "")
    assert tmp_dirs(env) == [], "an interrupted build left its temporary directory"
    again = run_subprocess(env, "W-error", [])
    expect(again, 0, ["verdicts: new 1"], None)
    check_invariants(env, again)


def test_sigkill_during_build_then_rerun(env: Env) -> None:
    out = interrupt_build(env, signal.SIGKILL)
    finish("sigkill-during-build-then-rerun", env, out, -signal.SIGKILL, ["*[[]trtbench[]] building engine*"], "")
    (env.cache / "cpu" / "onnxruntime" / ".tmp-0123456789abcdef-planted").mkdir(parents=True, exist_ok=True)
    old = time.time() - 7200
    for tmp in tmp_dirs(env):  # what the killed build left (if the kill came before its rename), plus one planted
        os.utime(tmp, (old, old))
    again = run_subprocess(env, "W-error", [])
    expect(again, 0, ["trtbench: removed *.tmp-0123456789abcdef-planted: left by a build that was killed*",
                      "verdicts: new 1"], None)
    assert tmp_dirs(env) == []
    check_invariants(env, again)


# --- read-only paths (root keeps its file modes only without CAP_DAC_OVERRIDE) -----------------------

@pytest.fixture
def read_only(env: Env) -> Iterator[Path]:
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop CAP_DAC_OVERRIDE")
    folder = env.root / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_cache_dir_read_only(env: Env, read_only: Path) -> None:
    env.cache = read_only / "cache"
    out = run_subprocess(env, "W-error", [], prefix=NO_CAPS)
    lines = ["ERROR: --trt-cache-dir: engine cache *ro/cache/cpu (its existing parent *ro) is not writable: "
             "Permission denied; pass --trt-cache-dir=A_WRITABLE_DIR"]
    finish("cache-dir-read-only", env, out, 4, lines, "")


def test_baseline_dir_read_only(env: Env, read_only: Path) -> None:
    out = run_subprocess(env, "W-error", ["--trt-baseline-dir=ro", "--trt-update-baselines"], prefix=NO_CAPS)
    lines = ["ERROR: --trt-baseline-dir (written by --trt-update-baselines): *ro is not writable: Permission denied*"]
    finish("baseline-dir-read-only", env, out, 4, lines, "")


def test_report_dir_read_only(env: Env, read_only: Path) -> None:
    env.report = read_only / "r.csv"
    out = run_subprocess(env, "W-error", [], prefix=NO_CAPS)
    finish("report-dir-read-only", env, out, 4, ["ERROR: --trt-report: *ro is not writable: Permission denied*"], "")


# --- concurrent baseline updates ------------------------------------------------------------------

UPDATER = '''
import sys
from pathlib import Path
from pytest_trtbench.baseline import update_baselines

for i in range(100):
    update_baselines(Path(sys.argv[1]), "s", {f"{sys.argv[2]}-{i}": {"i": i}})
'''


def test_two_processes_update_one_baseline_file(tmp_path: Path) -> None:
    path = tmp_path / "baselines" / "cpu" / "s.json"
    procs = [subprocess.Popen([sys.executable, "-c", UPDATER, str(path), tag], env=env_with_repo(),
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    cases = json.loads(path.read_text())["cases"]
    out = Outcome(0, f"{len(cases)} of 200 entries kept", "")
    record("two-processes-100-updates-each", "W-error", out, ["*entries kept"])
    assert len(cases) == 200 and sorted(cases) == sorted(f"{t}-{i}" for t in "ab" for i in range(100))
    assert [p.name for p in path.parent.iterdir()] == ["s.json"]


# --- disk full ------------------------------------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, filled: creating an empty file works (the start-up probe), writing data fails."""
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with open(mount / "filler", "wb") as f:
            try:
                f.write(b"\0" * (2 << 20))
            except OSError:
                pass
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_cache(env: Env, full_disk: Path) -> None:
    env.cache = full_disk / "cache"
    out = run_subprocess(env, "W-error", [])
    lines = ["*engine cache* under *full/cache/cpu/onnxruntime*free space there or pass --trt-cache-dir=ANOTHER_DIR*"]
    finish("disk-full-cache", env, out, 1, lines, "error")
    assert list((env.cache / "cpu" / "onnxruntime").iterdir()) == [], "a partial cache entry was left"


def test_disk_full_report_at_end(env: Env, full_disk: Path) -> None:
    env.report = full_disk / "r.csv"
    out = run_subprocess(env, "W-error", ["--trt-update-baselines"])
    lines = ["trtbench error: report not written to *full/r.csv: [[]Errno 28[]] No space left on device*"]
    finish("disk-full-report-at-end", env, out, 1, lines, "")
    written = json.loads((env.root / "baselines" / "cpu" / "test_tiny.json").read_text())
    assert list(written["cases"]) == ["onnxruntime-fp32-b2"]  # everything else was still written
    assert "1 passed" in out.output and not env.report.exists()


# --- xdist and pytest-benchmark under warnings-as-errors --------------------------------------------

def run_repo_suite_n2(tmp_path: Path, **extra_env: str) -> Outcome:
    """The README's multi-worker command on the repo's own config (``filterwarnings = error``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/test_mlp.py", "-n", "2", "--trt-gpu=cpu", "--trt-build-only",
         "-k", "fp32", f"--trt-cache-dir={tmp_path / 'cache'}", "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=env_with_repo(**extra_env),
    )
    return Outcome(proc.returncode, proc.stdout + proc.stderr, "")


def test_xdist_with_installed_pytest_benchmark(tmp_path: Path) -> None:
    out = run_repo_suite_n2(tmp_path)
    record("xdist-pytest-benchmark-installed", "W-error", out, ["*passed*", "*skipped*"])
    assert out.rc == 0 and "INTERNALERROR" not in out.output, out.output[-3000:]


def test_xdist_with_pytest_benchmark_52(tmp_path: Path) -> None:
    """Set TRTBENCH_PYTEST_BENCHMARK_52 to a folder holding pytest-benchmark 5.2.x
    (``pip install --target DIR --no-deps pytest-benchmark==5.2.3``): it is put first on the path."""
    site = os.environ.get("TRTBENCH_PYTEST_BENCHMARK_52", "")
    if not site or not Path(site, "pytest_benchmark").is_dir():
        pytest.skip("TRTBENCH_PYTEST_BENCHMARK_52 does not name a folder with pytest-benchmark 5.2")
    out = run_repo_suite_n2(tmp_path, PYTHONPATH=os.pathsep.join([site, str(REPO)]))
    record("xdist-pytest-benchmark-5.2", "W-error", out, ["*passed*", "*skipped*"])
    assert "benchmark: 5.2" in out.output or "benchmark-5.2" in out.output, out.output[-2000:]
    assert out.rc == 0 and "INTERNALERROR" not in out.output, out.output[-3000:]


def test_xdist_worker_usage_error_fails_the_cases(env: Env) -> None:
    """A usage error found by an xdist worker (it collects, the controller doesn't) can't be raised there
    (xdist turns it into an INTERNALERROR): every case fails with the one-line message instead."""
    env.cache = env.root / "cachefile"
    env.cache.write_text("not a directory")
    out = run_subprocess(env, "W-error", ["-n", "2"])
    lines = ["*usage error: --trt-cache-dir: engine cache *cachefile*is a file, not a directory*"]
    finish("xdist-cache-dir-is-a-file", env, out, 1, lines, "")


# --- reports given to merge -------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "content", "message"), [
    ("merge-report-truncated", "case_id,suite,status\ntest_a[x],test_a", "*r.csv: *"),
    ("merge-report-garbage", "\x00\x01\x02garbage\xff", "*r.csv: *"),
    ("merge-report-zero-bytes", "", "*r.csv: empty file, not a report (no header row)*"),
    ("merge-report-missing-columns", "a,b\n1,2\n", "*r.csv: *"),
])
def test_merge_refuses_damaged_reports(tmp_path: Path, kind: str, content: str, message: str) -> None:
    from pytest_trtbench.__main__ import main

    path = tmp_path / "r.csv"
    path.write_text(content, encoding="latin-1")
    out_text, err = io.StringIO(), io.StringIO()
    rc = main(["merge", str(path), "-o", str(tmp_path / "merged.csv")], out_text, err)
    out = Outcome(rc, err.getvalue(), "")
    record(kind, "W-error", out, [message])
    assert rc == 2 and len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
    expect(out, 2, [message, "*merge: error: *"], None)
    assert not (tmp_path / "merged.csv").exists()


def test_suite_source_is_the_shared_one() -> None:
    assert "test_tiny = Suite(" in SUITE and FAST[0] == "--trt-gpu=cpu"
