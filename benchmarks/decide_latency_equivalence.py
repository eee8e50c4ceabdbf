"""One-off check: does ``regression.decide_latency`` decide exactly as an older version of the module?

    python benchmarks/decide_latency_equivalence.py --old-commit fac925d [--cases 200000] [--seed 11]

Loads ``pytest_trtbench/regression.py`` as it was at ``--old-commit`` (``git show``) next to the current
package and feeds both the same random inputs: history sizes 0..12, 1..10 blocks per run, block medians
spread over 6 decades with run offsets and shifts, IQRs including 0, iteration counts 1..2000, every
parameter varied (tolerance, warn_fraction, alpha, beta, prior_between_cv, prior_df, machine_var), and a
share of invalid inputs (NaN/inf/0/negative times, n=0, empty runs, parameters out of range).  Every field of
the ``LatencyDecision`` (verdict, ratio, confidence, reason text, needs_confirmation) must be identical --
bit for bit for the floats -- and invalid inputs must raise ``ValueError`` with the same message (any ``ArithmeticError`` alike).  Prints the
counts per verdict and the number of differences; exits 1 on any difference.  Written for the issue-11
``decide_latency`` split (validate / noise model / decide), which must not change a single decision.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_trtbench import regression as new  # noqa: E402


def load_old(commit: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{commit}:pytest_trtbench/regression.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "regression_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("regression_old", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["regression_old"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def bad_float(rng: random.Random) -> float:
    return rng.choice([math.nan, math.inf, -math.inf, 0.0, -1.0])


def random_run(rng: random.Random, level: float, n_blocks: int, bad: bool) -> list[tuple[float, float, int]]:
    cov = rng.choice([0.0, 1e-4, 0.002, 0.01, 0.03, 0.1, 0.3])
    iqr_rel = rng.choice([0.0, 0.0, 0.001, 0.01, 0.05, 0.2, 1.0])
    blocks = []
    for _ in range(n_blocks):
        median = level * math.exp(rng.gauss(0.0, cov))
        if rng.random() < 0.05:  # a co-tenant burst
            median *= rng.uniform(1.1, 3.0)
        iqr = median * iqr_rel * rng.uniform(0.5, 1.5)
        n = rng.choice([1, 2, 5, 30, 200, 2000])
        blocks.append((median, iqr, n))
    if bad and blocks:
        i = rng.randrange(len(blocks))
        m, q, n = blocks[i]
        which = rng.randrange(3)
        blocks[i] = (bad_float(rng), q, n) if which == 0 else (m, bad_float(rng), n) if which == 1 else (m, q, 0)
    return blocks


def random_case(
    rng: random.Random,
) -> tuple[list[list[tuple[float, float, int]]], list[tuple[float, float, int]], dict]:
    invalid = rng.random() < 0.08
    level = 10 ** rng.uniform(-3, 3)
    k = rng.choice([0, 1, 1, 2, 3, 3, 4, 5, 8, 12])
    between = rng.choice([0.0, 0.002, 0.0065, 0.02, 0.1])
    shift = rng.choice([0.0, 0.0, 0.01, -0.01, 0.03, 0.05, -0.05, 0.06, 0.1, -0.2, 0.5]) * rng.uniform(0.5, 1.5)
    bad_run = rng.randrange(k + 1) if invalid and rng.random() < 0.5 else -1
    history = [
        random_run(rng, level * math.exp(rng.gauss(0, between)), rng.randint(1, 10), bad=(i == bad_run))
        for i in range(k)
    ]
    current = random_run(rng, level * math.exp(shift + rng.gauss(0, between)), rng.randint(1, 10), bad=(bad_run == k))
    if invalid and rng.random() < 0.15:
        current = []
    kwargs: dict[str, Any] = {
        "tolerance": rng.choice([0.01, 0.03, 0.05, 0.05, 0.1, 0.3]),
        "warn_fraction": rng.choice([0.3, 0.6, 0.6, 1.0]),
        "alpha": rng.choice([0.001, 0.01, 0.01, 0.05]),
        "beta": rng.choice([0.01, 0.02, 0.02, 0.2]),
        "prior_between_cv": rng.choice([0.0, 0.0065, 0.0065, 0.02]),
        "prior_df": rng.choice([1.0, 5.0, 24.0, 24.0, 100.0]),
        "machine_var": rng.choice([0.0, 0.0, 1e-5, 1e-3]),
    }
    if invalid and bad_run < 0 and current:
        key = rng.choice(sorted(kwargs))
        kwargs[key] = rng.choice([math.nan, math.inf, -0.1, 0.0, 0.5, 1.0, 2.0])
    return history, current, kwargs


def outcome(module: ModuleType, history: list, current: list, kwargs: dict) -> tuple:
    def blocks(run: list[tuple[float, float, int]]) -> list:
        return [module.BlockSummary(m, q, n) for m, q, n in run]

    try:
        d = module.decide_latency([blocks(r) for r in history], blocks(current), **kwargs)
    except (ValueError, ArithmeticError) as exc:  # the same exception, with the same text, is the same outcome
        return (type(exc).__name__, str(exc))
    # repr of the floats: bit-exact, and nan compares equal to nan
    return (d.verdict, repr(d.ratio), repr(d.confidence), d.reason, d.needs_confirmation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-commit", required=True, help="commit whose regression.py is the reference")
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    old = load_old(args.old_commit)
    rng = random.Random(args.seed)
    verdicts: Counter[str] = Counter()
    differences = 0
    for i in range(args.cases):
        history, current, kwargs = random_case(rng)
        a = outcome(old, history, current, kwargs)
        b = outcome(new, history, current, kwargs)
        verdicts[a[0]] += 1
        if a != b:
            differences += 1
            if differences <= 5:
                print(f"case {i}: old {a!r}\n         new {b!r}\n  inputs {history!r} {current!r} {kwargs!r}")
    print(f"old = {args.old_commit}:pytest_trtbench/regression.py, new = working tree, seed {args.seed}")
    print(f"{args.cases} random inputs; outcomes under the old rule: {dict(sorted(verdicts.items()))}")
    print(f"differences (verdict, ratio, confidence, reason, needs_confirmation or ValueError text): {differences}")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
