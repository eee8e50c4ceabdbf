"""How much an installed pytest-trtbench costs an unrelated pytest run (target: < 50 ms).

    python benchmarks/import_overhead.py [--repeat 15]

Times `pytest --co -q` on an empty test file with the plugin loaded and with `-p no:trtbench`,
in fresh interpreters, and prints the medians and their difference; also lists heavy modules the
plugin import pulled in (should be none).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=False, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_nothing.py"]
        on, off = [], []
        for _ in range(opts.repeat):  # interleave so drift hits both equally
            on.append(_time(base, cwd))
            off.append(_time(base + ["-p", "no:trtbench"], cwd))
        heavy = subprocess.run(
            [sys.executable, "-c", "import sys, pytest_trtbench.plugin; print(sorted(m for m in "
             "('numpy','torch','onnxruntime','onnx','tensorrt','tensorrt_rtx','pandas','pynvml') if m in sys.modules))"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        plugin_us = []
        for _ in range(opts.repeat):  # the import itself, without process start: far less noisy
            importtime = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", "import pytest; import pytest_trtbench.plugin"],
                capture_output=True, text=True, check=True,
            ).stderr
            plugin_us.append(max(
                int(line.split("|")[1]) for line in importtime.splitlines()
                if line.rstrip().endswith("pytest_trtbench.plugin")
            ))
    with_ms, without_ms = 1e3 * statistics.median(on), 1e3 * statistics.median(off)
    print(f"pytest run with plugin:    {with_ms:7.1f} ms (median of {opts.repeat})")
    print(f"pytest run without plugin: {without_ms:7.1f} ms")
    print(f"difference:                {with_ms - without_ms:7.1f} ms (target < 50 ms; noisy: whole-process timing)")
    print(f"plugin module import time:  {statistics.median(plugin_us) / 1e3:7.1f} ms (-X importtime, cumulative, "
          f"after pytest; median of {opts.repeat}, min {min(plugin_us) / 1e3:.1f} ms)")
    print(f"heavy modules imported by the plugin: {heavy}")


if __name__ == "__main__":
    main()
