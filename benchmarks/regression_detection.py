"""How often does the latency gate cry wolf, and how often does it catch a slowdown?

Compares ``pytest_trtbench.regression.decide_latency`` (ours) with pytest-benchmark's
``--benchmark-compare-fail=median:5%`` rule on

(a) synthetic runs, noise model below (seeded), for block CoV 1 % and 3 % and K = 1 / 5 stored
    baseline runs;
(b) real block medians from ``--samples FILE`` (``{"device": str, "cases": {case_id: [[block
    medians of run 1], [run 2], ...]}}``): each run in turn is the current run, the others
    (K of them, drawn at random) the history; slowdowns are injected by multiplying the current
    run's block medians.

A false alarm is a ``latency_regression`` verdict on an unchanged comparison; detection is the
``latency_regression`` rate under a +3 / +5 / +10 % slowdown.  "ours + confirm" follows the
harness protocol: a would-be regression is re-measured once (new blocks of the *same* run: same
run offset) and the appended call decides.  pytest-benchmark compares the median of the current
run (median of its block medians, standing in for the median over all iterations) with the median
of the most recent stored run only: it keeps one run, not a history.

Synthetic noise model, per comparison: K + 1 independent runs (the last is current).  On the log
scale, block b of run r has median

    log t_rb = log 10 ms + u_r + s_r + e_rb (+ o_rb)
    u_r  ~ N(0, (cov / 2)^2)               run-to-run jitter: clocks, node, driver state
    s_r  = +-U(1 %, 3 %) with p = 0.05      occasional run-level shift (another node, a throttled GPU)
    e_rb ~ N(0, cov^2)                      block-to-block noise inside a run ("block CoV")
    o_rb = +U(5 %, 15 %) with p = 0.02      a block hit by a co-tenant burst (slow side only)

with 5..10 blocks per run (uniform), n = 200 iterations per block and an iteration-level IQR of
1.349 * 2 * cov * median (iterations are correlated, so this IQR says little about block noise).

    python benchmarks/regression_detection.py --out benchmarks/results/detection_synthetic.md
    python benchmarks/regression_detection.py --samples samples.json --out detection_real.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_benchmark_rule import pytest_benchmark_rule  # noqa: E402  (benchmarks/, next to this script)

from pytest_trtbench.regression import BlockSummary, decide_latency  # noqa: E402

SLOWDOWNS = (0.03, 0.05, 0.10)
TOLERANCE = 0.05


@dataclass(frozen=True)
class NoiseModel:
    cov: float
    run_sigma_factor: float = 0.5
    shift_p: float = 0.05
    shift_range: tuple[float, float] = (0.01, 0.03)
    outlier_p: float = 0.02
    outlier_range: tuple[float, float] = (0.05, 0.15)
    blocks: tuple[int, int] = (5, 10)
    n_iter: int = 200
    base_ms: float = 10.0

    def describe(self) -> str:
        return (
            f"block CoV {self.cov:.0%}, run sigma {self.cov * self.run_sigma_factor:.2%}, "
            f"shifts +-{self.shift_range[0]:.0%}..{self.shift_range[1]:.0%} p={self.shift_p:g}, "
            f"outlier blocks +{self.outlier_range[0]:.0%}..{self.outlier_range[1]:.0%} p={self.outlier_p:g}"
        )

    def run_offset(self, rng: np.random.Generator) -> float:
        off = rng.normal(0.0, self.cov * self.run_sigma_factor)
        if rng.random() < self.shift_p:
            off += rng.choice((-1.0, 1.0)) * rng.uniform(*self.shift_range)
        return float(off)

    def blocks_for(self, rng: np.random.Generator, offset: float, count: int | None = None) -> list[BlockSummary]:
        b = count if count is not None else int(rng.integers(self.blocks[0], self.blocks[1] + 1))
        logs = np.log(self.base_ms) + offset + rng.normal(0.0, self.cov, b)
        hit = rng.random(b) < self.outlier_p
        logs = logs + hit * rng.uniform(*self.outlier_range, b)
        med = np.exp(logs)
        iqr = med * 1.349 * 2 * self.cov
        return [BlockSummary(float(m), float(q), self.n_iter) for m, q in zip(med, iqr)]


def _scaled(run: list[BlockSummary], factor: float) -> list[BlockSummary]:
    return [BlockSummary(b.median_ms * factor, b.iqr_ms * factor, b.n) for b in run]


def _median_of_blocks(run: list[BlockSummary]) -> float:
    return float(np.median([b.median_ms for b in run]))


@dataclass
class Tally:
    """Failure counts per slowdown (0.0 = unchanged) for the three rules."""

    trials: dict[float, int]
    ours: dict[float, int]
    ours_confirmed: dict[float, int]
    pytest_benchmark: dict[float, int]

    @classmethod
    def empty(cls) -> Tally:
        keys = (0.0, *SLOWDOWNS)
        return cls(*({k: 0 for k in keys} for _ in range(4)))


def _judge(
    tally: Tally,
    slowdown: float,
    history: list[list[BlockSummary]],
    current: list[BlockSummary],
    confirm: Callable[[float], list[BlockSummary]] | None,
) -> None:
    factor = 1.0 + slowdown
    cur = _scaled(current, factor)
    tally.trials[slowdown] += 1
    first = decide_latency(history, cur, TOLERANCE)
    failed = first.verdict == "latency_regression"
    tally.ours[slowdown] += failed
    if failed and confirm is not None:
        second = decide_latency(history, cur + confirm(factor), TOLERANCE)
        failed = second.verdict == "latency_regression"
    tally.ours_confirmed[slowdown] += failed
    tally.pytest_benchmark[slowdown] += pytest_benchmark_rule(
        _median_of_blocks(history[-1]), _median_of_blocks(cur), TOLERANCE
    )


def simulate(model: NoiseModel, k: int, comparisons: int, seed: int) -> Tally:
    """``comparisons`` independent histories per slowdown level (unchanged included)."""
    rng = np.random.default_rng(seed)
    tally = Tally.empty()
    for slowdown in (0.0, *SLOWDOWNS):
        for _ in range(comparisons):
            history = [model.blocks_for(rng, model.run_offset(rng)) for _ in range(k)]
            offset = model.run_offset(rng)
            current = model.blocks_for(rng, offset)

            def confirm(factor: float, offset: float = offset) -> list[BlockSummary]:
                return _scaled(model.blocks_for(rng, offset), factor)

            _judge(tally, slowdown, history, current, confirm)
    return tally


def resample_real(cases: dict[str, list[list[float]]], k: int, comparisons: int, seed: int) -> Tally:
    """Leave-one-run-out resampling of real block medians (no IQR known: the floor is off)."""
    rng = np.random.default_rng(seed)
    usable = {c: runs for c, runs in sorted(cases.items()) if len(runs) >= 2}
    if not usable:
        raise SystemExit("--samples: no case has two or more runs")
    names = list(usable)
    tally = Tally.empty()
    for slowdown in (0.0, *SLOWDOWNS):
        for _ in range(comparisons):
            runs = usable[names[int(rng.integers(len(names)))]]
            order = rng.permutation(len(runs))
            cur_i, hist_i = order[0], order[1 : 1 + k]
            to_blocks = lambda meds: [BlockSummary(float(m), 0.0, 1) for m in meds]  # noqa: E731
            history = [to_blocks(runs[i]) for i in sorted(hist_i)]
            _judge(tally, slowdown, history, to_blocks(runs[cur_i]), None)
    return tally


def _pct(count: int, total: int) -> str:
    return f"{100.0 * count / total:.1f} %" if total else "-"


def table_rows(label: str, k: int, tally: Tally, with_confirm: bool) -> list[list[str]]:
    rules = [("ours", tally.ours)]
    if with_confirm:
        rules.append(("ours + confirm", tally.ours_confirmed))
    rules.append(("pytest-benchmark median:5%", tally.pytest_benchmark))
    rows = []
    for name, counts in rules:
        rows.append(
            [label, str(k), name, _pct(counts[0.0], tally.trials[0.0])]
            + [_pct(counts[s], tally.trials[s]) for s in SLOWDOWNS]
        )
    return rows


def render(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(header), sep, *map(fmt, rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, help="real block medians JSON (see module docstring)")
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    parser.add_argument("--comparisons", type=int, default=4000, help="per cell and slowdown (default 4000)")
    parser.add_argument("--seed", type=int, default=20240601, help="RNG seed (default 20240601)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    header = ["data", "K", "rule", "false alarms", *(f"detect +{s:.0%}" for s in SLOWDOWNS)]
    rows: list[list[str]] = []
    notes: list[str] = []
    if args.samples is None:
        for i, cov in enumerate((0.01, 0.03)):
            model = NoiseModel(cov=cov)
            notes.append(f"- synthetic CoV {cov:.0%}: {model.describe()}")
            for j, k in enumerate((1, 5)):
                tally = simulate(model, k, args.comparisons, seed=args.seed + 10 * i + j)
                rows += table_rows(f"synthetic CoV {cov:.0%}", k, tally, with_confirm=True)
    else:
        data = json.loads(args.samples.read_text())
        cases = data["cases"]
        notes.append(f"- real: {args.samples.name}, device {data.get('device', '?')!r}, {len(cases)} case(s)")
        for j, k in enumerate((1, 5)):
            tally = resample_real(cases, k, args.comparisons, seed=args.seed + j)
            rows += table_rows(f"real ({data.get('device', '?')})", k, tally, with_confirm=False)

    elapsed = time.perf_counter() - started
    text = "\n".join(
        [
            f"Latency gate at tolerance {TOLERANCE:.0%}: rate of `latency_regression` verdicts "
            f"({args.comparisons} comparisons per cell; seed {args.seed}; {elapsed:.0f} s).",
            "",
            render(rows, header),
            "",
            *notes,
            "- false alarms: unchanged code; detect +x: current run slowed by x.",
            "- pytest-benchmark: median of current vs median of the latest stored run, fail iff > +5 %.",
        ]
    )
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
