"""How much a stored layer profile adds to baselines, on the full-size shipped suites (issue 15).

Records baselines of one case per full-size suite (``--trt-size=full``, ONNX Runtime on this machine's CPU,
fp32, the smallest batch; the profile's layer count and names do not depend on the batch) into a private
directory, then counts, per case, the bytes of its entry with and without ``layers`` (as ``baseline.dumps``
writes them) and how many layers were stored (the slowest covering 95 % of the time, at most 60) of how many
the engine ran. Counting needs no GPU; the times in the profiles are CPU times.

    python benchmarks/layer_profile_size.py --out benchmarks/results/layer_profile_size_cpu.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_trtbench.baseline import dumps  # noqa: E402

CASES = "onnxruntime-fp32-b1 and not fuzz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--suites", default="suites", help="the suites directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trtbench-size-"))
    command = [sys.executable, "-m", "pytest", args.suites, "--trt-gpu=cpu", "--trt-size=full", "--trt-backend=onnxruntime",
               "--trt-update-baselines", f"--trt-baseline-dir={work / 'baselines'}", "-k", CASES, "-p", "no:cacheprovider",
               "--trt-warmup-s=0.01", "--trt-blocks=2", "--trt-min-block-iters=1", "--trt-min-block-s=0.001", "-q"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = ["# Layer profiles in baselines: size on the full-size suites", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared); date "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; pytest exit {done.returncode}, {wall:.0f} s.", "",
             "Command: `python benchmarks/layer_profile_size.py --out ...`, which runs `" +
             " ".join(["pytest", *command[3:]]).replace(str(work), "TMP") + "`.", "",
             "| case | entry bytes without `layers` | with | growth | layers stored / run (tail) |", "|---|---|---|---|---|"]
    total_without = total_with = 0
    for path in sorted((work / "baselines").rglob("*.json")):
        data = json.loads(path.read_text())
        for case_id, entry in sorted(data["cases"].items()):
            without = len(dumps({k: v for k, v in entry.items() if k != "layers"}))
            with_ = len(dumps(entry))
            layers = entry.get("layers") or {}
            stored = len(layers.get("layers", []))
            tail = (layers.get("tail") or {}).get("count", 0)
            total_without += without
            total_with += with_
            lines.append(f"| `{data['suite']}[{case_id}]` | {without} | {with_} | {100 * (with_ / without - 1):+.0f} % "
                         f"({with_ - without} bytes) | {stored} / {stored + tail} ({tail}) |")
    if total_without:
        lines += ["", f"All cases: {total_without} -> {total_with} bytes ({100 * (total_with / total_without - 1):+.0f} %)."]
    else:
        lines += ["", "No baseline was written:", "", "```", done.stdout[-3000:], done.stderr[-2000:], "```"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
