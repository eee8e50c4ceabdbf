"""Per-layer profiles end to end (issue 15) on a knob suite, through pytest: record, change the model, read the
failure text; and the profiling pass's effect on the headline median.

The knob suite is a small transformer encoder (attention + MLP blocks, dim 256) whose case ids never change:

* ``EXTRA_BLOCKS=1`` appends one block: the failure text should name that block's nodes as new layers;
* ``WIDE=8`` makes the second block's MLP 8x wider: the failure text should name that block's MLP nodes.

Steps (each a separate ``python -m pytest`` process on a private copy of the suite, one engine cache):
record baselines (``--trt-update-baselines`` stores the layer profile), run each knob with the latency gate on
(``--trt-latency-gate=on``; with ``--trt-profile-layers``, so the CSV has the layer diff even for a case the
gate passes), then alternate runs of the unchanged model without and with
``--trt-profile-layers`` (the profile is taken after each case's timed blocks; the next case's headline median
shows any effect). Writes ``layer_profiles.md`` (and the raw CSVs / stdout) under ``--out``.

    python benchmarks/layer_profile_check.py --out OUT                  # GPU (--trt-gpu=auto)
    python benchmarks/layer_profile_check.py --cpu --force-slower --out OUT   # CPU check of the script

``--force-slower`` divides the recorded latency by 1000 before the knob runs, so the rule certainly calls the
case slower (for CPU machines, whose timing the gate treats as advisory and where a 2-core VM's noise can hide
a real +50 %); the layer profile compared stays the real recorded one. The GPU run does not use it.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUITE = '''
import torch
from torch import nn
from pytest_trtbench import Input, Suite

EXTRA_BLOCKS = {extra}
WIDE = {wide}


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        x = self.norm1(x + self.proj((att @ v).transpose(1, 2).reshape(b, s, d)))
        return self.norm2(x + self.mlp(x))


class Encoder(nn.Module):
    def __init__(self, dim={dim}, heads=4):
        super().__init__()
        hidden = [4 * dim, 4 * dim * WIDE] + [4 * dim] * EXTRA_BLOCKS
        self.blocks = nn.Sequential(*(Block(dim, heads, h) for h in hidden))

    def forward(self, x):
        return self.blocks(x)


test_knob = Suite(model=Encoder, inputs=[Input("x", shape=("batch", "seq", {dim}))], batch_sizes=[1, 8],
                  dims={{"seq": [{seq}]}}, precisions=["fp32"], output_names=["hidden"])
'''


def write_suite(work: Path, dim: int, seq: int, extra: int = 0, wide: int = 1) -> None:
    (work / "test_knob.py").write_text(SUITE.format(extra=extra, wide=wide, dim=dim, seq=seq), encoding="utf-8")


def pytest_run(work: Path, gpu: str, *args: str, log: Path) -> tuple[int, str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "test_knob.py", f"--trt-gpu={gpu}", "-p", "no:cacheprovider",
                           "--trt-backend=onnxruntime", *args], cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    return done.returncode, done.stdout, wall


def rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


def failure_blocks(stdout: str) -> list[str]:
    """Each failing case's message: from ``test_knob[...]: <status>`` to the update command."""
    out, current = [], []
    for line in stdout.splitlines():
        if line.startswith("test_knob[") and ": " in line and not current:
            current = [line]
        elif current:
            current.append(line)
            if "if this change is intended" in line:
                out.append("\n".join(current))
                current = []
    return out


def force_slower(work: Path, gpu: str) -> None:
    for path in (work / "baselines").rglob("test_knob.json"):
        data = json.loads(path.read_text())
        for entry in data["cases"].values():
            entry["latency"]["median_ms"] /= 1000
            for stored in entry["latency"]["runs"]:
                for block in stored["blocks"]:
                    block["median_ms"] /= 1000
                    block["iqr_ms"] /= 1000
        path.write_text(json.dumps(data))


def knob_section(work: Path, gpu: str, name: str, extra: int, wide: int, args: argparse.Namespace,
                 out: Path, backup: dict[Path, str]) -> list[str]:
    for path, text in backup.items():
        path.write_text(text)
    if args.force_slower:
        force_slower(work, gpu)
    write_suite(work, args.dim, args.seq, extra=extra, wide=wide)
    # --trt-profile-layers: the CSV gets the layer diff even where the gate does not call the case slower
    code, stdout, wall = pytest_run(work, gpu, *args.timing, "--trt-latency-gate=on", "--trt-profile-layers",
                                    f"--trt-report={out / f'{name}.csv'}", log=out / f"{name}.log")
    lines = [f"### {name}: EXTRA_BLOCKS={extra}, WIDE={wide} (exit {code}, {wall:.1f} s)", ""]
    for case_id, r in rows(out / f"{name}.csv").items():
        lines.append(f"- `{case_id}`: **{r['status']}**, median {float(r['latency_ms_median']):.4f} ms, "
                     f"change {r['latency_change_pct'] or '-'} %; `top_layer_deltas`: `{r['top_layer_deltas'] or '-'}`")
    blocks = failure_blocks(stdout)
    lines += ["", "Failure text(s):", "", "```", *(blocks or ["(no failing case: see the log)"]), "```", ""]
    return lines


def headline(work: Path, gpu: str, args: argparse.Namespace, out: Path, backup: dict[Path, str]) -> list[str]:
    for path, text in backup.items():
        path.write_text(text)
    write_suite(work, args.dim, args.seq)
    medians: dict[str, dict[str, list[float]]] = {"without": {}, "with": {}}
    walls: dict[str, list[float]] = {"without": [], "with": []}
    for i in range(args.pairs):
        for label, extra in (("without", []), ("with", ["--trt-profile-layers"])):
            report = out / f"headline-{label}-{i}.csv"
            _, _, wall = pytest_run(work, gpu, *args.timing, "--trt-latency-gate=off", f"--trt-report={report}", *extra,
                                    log=out / f"headline-{label}-{i}.log")
            walls[label].append(wall)
            for case_id, r in rows(report).items():
                medians[label].setdefault(case_id, []).append(float(r["latency_ms_median"]))
    lines = [f"### Headline median with and without profiling ({args.pairs} alternating process pairs)", "",
             "| case | without: median of run medians (min..max) ms | with --trt-profile-layers ms | change |",
             "|---|---|---|---|"]
    for case_id in sorted(medians["without"]):
        a, b = medians["without"][case_id], medians["with"].get(case_id, [])
        if not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        lines.append(f"| `{case_id}` | {ma:.4f} ({min(a):.4f}..{max(a):.4f}) | {mb:.4f} ({min(b):.4f}..{max(b):.4f}) | "
                     f"{100 * (mb / ma - 1):+.2f} % |")
    lines += ["", f"Process wall time per run: without {statistics.median(walls['without']):.1f} s, "
              f"with {statistics.median(walls['with']):.1f} s (median).", ""]
    return lines


def size_lines(backup: dict[Path, str]) -> list[str]:
    lines = ["### Baseline size", ""]
    for path, text in backup.items():
        data = json.loads(text)
        without = {k: {kk: vv for kk, vv in v.items() if kk != "layers"} for k, v in data["cases"].items()}
        full = len(text.encode())
        bare = len(json.dumps({**data, "cases": without}, indent=2, sort_keys=True).encode()) + 1
        counts = [len(v.get("layers", {}).get("layers", [])) for v in data["cases"].values()]
        lines.append(f"- `{path.name}`: {full} bytes with layer profiles, {bare} without (+{100 * (full / bare - 1):.0f} %); "
                     f"stored layers per case: {counts}")
    return lines + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu", action="store_true", help="--trt-gpu=cpu (default: auto, the GPU)")
    parser.add_argument("--force-slower", action="store_true", help="divide the recorded latency by 1000 (CPU check)")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--pairs", type=int, default=3, help="alternating without/with process pairs")
    args = parser.parse_args()
    args.timing = ["--trt-warmup-s=0.2", "--trt-blocks=5", "--trt-min-block-s=0.05", "--trt-energy-s=0"]
    gpu = "cpu" if args.cpu else "auto"
    out = args.out.resolve()
    work = out / "project"
    work.mkdir(parents=True, exist_ok=True)
    write_suite(work, args.dim, args.seq)
    started = time.perf_counter()
    code, stdout, wall = pytest_run(work, gpu, *args.timing, "--trt-update-baselines", f"--trt-report={out / 'record.csv'}",
                                    log=out / "record.log")
    if code != 0:
        print(stdout[-3000:])
        return code
    backup = {p: p.read_text() for p in (work / "baselines").rglob("test_knob.json")}
    device = next(iter(rows(out / "record.csv").values()))["device_name"]
    lines = [f"# Per-layer profiles on {device}", "",
             f"Command: `python benchmarks/layer_profile_check.py {' '.join(sys.argv[1:])}`; date "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; python {platform.python_version()}; "
             f"knob suite: encoder dim {args.dim}, seq {args.seq}, batch 1 and 8, fp32, ONNX Runtime; "
             f"recorded in {wall:.1f} s.", ""]
    lines += size_lines(backup)
    lines += knob_section(work, gpu, "added-block", 1, 1, args, out, backup)
    lines += knob_section(work, gpu, "wider-mlp", 0, 8, args, out, backup)
    lines += headline(work, gpu, args, out, backup)
    lines.append(f"Total {time.perf_counter() - started:.0f} s.")
    (out / "layer_profiles.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
