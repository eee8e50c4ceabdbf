"""What verifying an engine's sha256 on a cache hit costs (the check that catches a tampered engine).

    python benchmarks/cache_verify.py [--mb 200] [--repeat 5]

Writes a file of random bytes (an engine of that size), records its size and sha256 the way a build
does, then times the cache's metadata check (:meth:`EngineCache._read_meta`): the first check in a
session hashes the whole file; later checks of the same file version (path, mtime, size) in the same
session are memoized. The file is in the page cache (just written), so this is hashing speed, not disk speed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()

    from pytest_trtbench import cache as C

    with tempfile.TemporaryDirectory() as tmp:
        entry = Path(tmp) / "entry"
        entry.mkdir()
        engine = entry / "engine.plan"
        with open(engine, "wb") as f:
            for _ in range(opts.mb):
                f.write(os.urandom(1 << 20))
        meta = {"key": "k", "files": ["engine.plan"], "bytes": {"engine.plan": engine.stat().st_size},
                "sha256": {"engine.plan": C._sha256_of(str(engine), 0, 0)}, "build_s": 1.0, "backend": {}}
        (entry / C.META_FILE).write_text(json.dumps(meta))
        cache = C.EngineCache(Path(tmp) / "root", "cpu")
        first, again = [], []
        for _ in range(opts.repeat):
            C._sha256_of.cache_clear()  # a new session
            start = time.perf_counter()
            got, why = cache._read_meta(entry)
            first.append(time.perf_counter() - start)
            assert got is not None, why
            start = time.perf_counter()
            cache._read_meta(entry)
            again.append(time.perf_counter() - start)
    size = opts.mb
    med = statistics.median(first)
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"engine file: {size} MiB, {opts.repeat} repeats")
    print(f"first check in a session (sha256 of the whole file): median {med * 1000:.0f} ms "
          f"(min {min(first) * 1000:.0f}, max {max(first) * 1000:.0f}) = {size / med:.0f} MiB/s")
    print(f"later checks of the same file version (memoized): median {statistics.median(again) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
