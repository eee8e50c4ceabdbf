"""What shape fuzzing costs on the CPU: N draws of a correct model through the built engine and the reference.

    python benchmarks/fuzz_shapes.py [--examples 50] [--suites suites/test_mlp.py suites/test_encoder.py]
        [--out benchmarks/results/fuzz_shapes_cpu.md]

For every ONNX Runtime fp32 / int8 fuzz target of the given shipped suites: builds the engine first (the
listed cases' engine; timed apart), then times ``run_fuzz`` with N shapes (each: deterministic inputs,
engine run, PyTorch reference run, comparison) and prints the status, the shapes run, and seconds in all and
per shape. CPU timings on shared VMs swing 2x between runs: the numbers are an order of magnitude, not a gate.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_trtbench import Suite  # noqa: E402
from pytest_trtbench.device import cpu_model, resolve_device  # noqa: E402
from pytest_trtbench.fuzz import fuzz_targets, run_fuzz  # noqa: E402
from pytest_trtbench.report import row  # noqa: E402
from pytest_trtbench.runner import Harness  # noqa: E402
from pytest_trtbench.settings import Settings  # noqa: E402


def load_suites(path: Path) -> list[Suite]:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = []
    for name, value in vars(module).items():
        if name.startswith("test_") and isinstance(value, Suite):
            value.name, value.source_file = name, str(path.relative_to(REPO))
            found.append(value)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--suites", nargs="+", default=["suites/test_mlp.py", "suites/test_encoder.py"])
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    opts = parser.parse_args()
    lines = [
        f"Shape fuzzing on the CPU, N = {opts.examples} shapes per target (ONNX Runtime CPU vs the PyTorch "
        "reference; engine build timed apart).", "",
        "| target | profile | status | shapes run | build s | fuzz s | ms per shape |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(device=resolve_device("cpu"), cache_dir=Path(tmp) / "cache",
                            baseline_dir=Path(tmp) / "baselines")
        harness = Harness(settings)
        for path in opts.suites:
            for suite in load_suites(REPO / path):
                cases = [c for c in suite.cases(["onnxruntime"]) if c.precision in ("fp32", "int8")]
                for target in fuzz_targets(cases, opts.examples):
                    start = time.perf_counter()
                    harness.engine(target.anchors[0])
                    build_s = time.perf_counter() - start
                    start = time.perf_counter()
                    result = row(run_fuzz(harness, target))
                    fuzz_s = time.perf_counter() - start
                    tried = int(result["fuzz_shapes_tried"])
                    per_shape = 1e3 * fuzz_s / tried if tried else float("nan")
                    lines.append(
                        f"| {target.case_id} | {result['shapes']} | {result['status']} | {tried} | {build_s:.2f} "
                        f"| {fuzz_s:.2f} | {per_shape:.1f} |"
                    )
                    print(lines[-1], flush=True)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines += ["", f"- machine: {cpu_model()}, {os.cpu_count()} vCPUs, {platform.machine()}, Python "
              f"{platform.python_version()}; load average at the end {load} (shared machine: timings swing 2x)",
              f"- command: python benchmarks/fuzz_shapes.py --examples {opts.examples} --suites {' '.join(opts.suites)}",
              f"- date: {when}"]
    print("\n".join(lines[-3:]))
    if opts.out:
        opts.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
