"""Mutation score per module: how many deliberate bugs (mutmut 3 mutants) the fast unit tests kill.

    python benchmarks/mutation_score.py              # run mutmut (config: setup.cfg [mutmut]), then print scores
    python benchmarks/mutation_score.py --no-run     # print scores of the last run (mutants/ left by mutmut)
    python benchmarks/mutation_score.py --fresh -j 2 # delete mutants/ first: score from scratch, 2 workers
    python benchmarks/mutation_score.py -j 1 --modules cache compare  # re-run and score only these modules

Modules and the test selection are in setup.cfg (``only_mutate``, ``pytest_add_cli_args_test_selection``).
Score = killed / (all mutants - surviving mutants listed as equivalent in ``benchmarks/mutation_equivalent.txt``);
timeouts count as killed (the mutant hangs a test), "no tests" and "survived" as not killed.
``--modules`` re-runs every mutant of the named modules (``pytest_trtbench.<module>.*``; cached results of
other modules are kept) and prints and writes only those modules.
``--survivors FILE`` writes the surviving mutant names (one a line) for review. Names in the equivalent list
that are no longer mutants (mutmut numbers mutants by position, so edits renumber them) are printed: re-review.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EQUIVALENT = REPO / "benchmarks" / "mutation_equivalent.txt"
KILLED = {"killed", "timeout"}


def mutmut(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # mutmut puts mutants/ first on sys.path; PYTHONPATH=$PWD would shadow it
    exe = shutil.which("mutmut") or str(Path(sys.executable).with_name("mutmut"))
    return subprocess.run([exe, *args], cwd=REPO, env=env, text=True, capture_output=True)


def equivalent_mutants() -> dict[str, str]:
    """``name  # reason`` lines of the reviewed-equivalent list."""
    if not EQUIVALENT.exists():
        return {}
    out = {}
    for line in EQUIVALENT.read_text(encoding="utf-8").splitlines():
        name, _, reason = line.partition("#")
        if name.strip():
            out[name.strip()] = reason.strip()
    return out


def results() -> dict[str, str]:
    proc = mutmut("results", "--all", "true")
    if proc.returncode != 0:
        sys.exit(f"mutmut results failed:\n{proc.stderr}")
    out = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*(\S+__mutmut_\d+): (.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def module_of(mutant: str) -> str:
    """``pytest_trtbench.suite.xǁSuiteǁcases__mutmut_6`` / ``pytest_trtbench.cache.x_cache_key__mutmut_2``."""
    m = re.match(r"(.*?)\.x[ǁ_]", mutant)
    return m.group(1) if m else mutant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-run", action="store_true", help="only print the scores of the last run")
    ap.add_argument("--fresh", action="store_true", help="delete mutants/ first (no cached results)")
    ap.add_argument("-j", "--max-children", type=int, default=2, help="parallel mutant workers (default 2)")
    ap.add_argument("--survivors", type=Path, help="write surviving mutant names to this file")
    ap.add_argument("--modules", nargs="+", metavar="MODULE",
                    help="only these modules of pytest_trtbench (e.g. cache compare): run, score and list them")
    args = ap.parse_args()
    wanted = {f"pytest_trtbench.{m.removesuffix('.py')}" for m in args.modules or ()}
    unknown = [m for m in args.modules or () if not (REPO / "pytest_trtbench" / f"{m.removesuffix('.py')}.py").is_file()]
    if unknown:
        ap.error(f"--modules: no pytest_trtbench/{unknown[0]}.py; give module names as in setup.cfg only_mutate")
    if args.fresh:
        shutil.rmtree(REPO / "mutants", ignore_errors=True)
    seconds = None
    if not args.no_run:
        start = time.perf_counter()
        proc = mutmut("run", "--max-children", str(args.max_children), *sorted(f"{m}.*" for m in wanted))
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"mutmut run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    status = {n: s for n, s in results().items() if not wanted or module_of(n) in wanted}
    if not status:
        sys.exit("no mutmut results: run without --no-run first")
    equivalent = equivalent_mutants()
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors = []
    stale = sorted(n for n in set(equivalent) - set(status) if not wanted or module_of(n) in wanted)
    for name, state in sorted(status.items()):
        module = module_of(name)
        if name in equivalent and state not in KILLED:  # a listed mutant that a test kills counts as killed
            per_module[module]["equivalent"] += 1
            continue
        per_module[module][state] += 1
        if state not in KILLED:
            survivors.append(f"{name}: {state}")
    print(f"{'module':<32} {'mutants':>7} {'equiv':>5} {'killed':>6} {'timeout':>7} {'survived':>8} "
          f"{'no tests':>8} {'score':>6}")
    total: Counter[str] = Counter()
    for module, c in sorted(per_module.items()):
        total.update(c)
        print(_line(module, c))
    print(_line("all", total))
    if seconds is not None:
        print(f"mutmut run: {seconds:.0f} s with {args.max_children} workers")
    killed_listed = sorted(n for n in equivalent if status.get(n) in KILLED)
    if stale or killed_listed:
        print(f"equivalent list: {len(stale)} names not among the mutants (code moved: re-review them), "
              f"{len(killed_listed)} listed but killed (counted as killed)")
        for name in stale + killed_listed:
            print(f"  {name}")
    if args.survivors:
        args.survivors.write_text("\n".join(survivors) + "\n", encoding="utf-8")


def _line(module: str, c: Counter[str]) -> str:
    n = sum(c.values())
    counted = n - c["equivalent"]
    killed = c["killed"] + c["timeout"]
    score = 100.0 * killed / counted if counted else float("nan")
    return (f"{module:<32} {n:>7} {c['equivalent']:>5} {c['killed']:>6} {c['timeout']:>7} {c['survived']:>8} "
            f"{c['no tests']:>8} {score:>5.1f}%")


if __name__ == "__main__":
    main()
