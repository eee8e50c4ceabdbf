"""Shape fuzzing: per backend x precision, one test that draws shapes inside the profile and compares.

A suite's cases test the batch sizes and dims it lists; its dynamic-shape engines answer for every shape
between the profile's min and max, and that is where engines break (tactics chosen for the opt shape, odd
sequence lengths, padding paths). A :class:`FuzzTarget` draws ``examples`` shapes with Hypothesis
(:func:`pytest_trtbench.strategies.shapes`), runs the engine the listed cases use (same profile: built once,
never per shape) and the live reference at each, and compares them with the precision's tolerance. Latency is
not gated. A failing shape is shrunk (Hypothesis, then a per-dim sweep below it) to the smallest shape that
still fails; :mod:`pytest_trtbench.fuzz_report` turns the outcome into the report row and the failure text.

Reproducible by default: the Hypothesis seed derives from the suite's name and ``seed``, the backend and the
precision; ``--trt-fuzz-seed`` mixes in another number to explore. Hypothesis keeps no example database, and
its other files go under the engine cache (nothing is written into the user's repository); it has no deadline
and skips its too-slow health checks (an engine run is slow by Hypothesis' standards). Hypothesis is imported
only when a fuzz test runs.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from pytest_trtbench.suite import Case, Suite, SuiteError

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from pytest_trtbench.backends.base import Engine
    from pytest_trtbench.compare import OutputComparison
    from pytest_trtbench.outcome import CaseOutcome
    from pytest_trtbench.profile import ShapeProfile
    from pytest_trtbench.runner import Harness
    from pytest_trtbench.strategies import ShapeDraw
    from pytest_trtbench.verdict import Verdict

EXAMPLES_PER_SHAPE = 3
"""Hypothesis examples allowed per requested shape: it may draw a shape twice (the Prober runs each once)."""
HYPOTHESIS_DIR = "hypothesis"
"""Hypothesis' storage during a fuzz run: ``<cache-dir>/hypothesis``, never the user's working directory."""
FUZZ_PREFIX = "fuzz"
"""Fuzz test ids are ``<suite>[fuzz-<backend>-<precision>]``: a case id always has a ``-b<batch>`` part
after its precision, so the two can never collide."""


@dataclass(frozen=True)
class FuzzTarget:
    """Shape fuzzing for one backend x precision of a suite: ``examples`` draws over its profiles."""

    anchors: tuple[Case, ...]
    """The first listed case per profile: its engine is the one the draws inside that profile run."""
    examples: int

    @property
    def suite(self) -> Suite:
        return self.anchors[0].suite

    @property
    def backend(self) -> str:
        return self.anchors[0].backend

    @property
    def precision(self) -> str:
        return self.anchors[0].precision

    @property
    def param_id(self) -> str:
        return f"{FUZZ_PREFIX}-{self.backend}-{self.precision}"

    @property
    def case_id(self) -> str:
        return f"{self.suite.name}[{self.param_id}]"

    def __str__(self) -> str:
        return self.param_id


def fuzz_targets(cases: Sequence[Case], examples: int) -> list[FuzzTarget]:
    """One target per backend x precision of *cases* (in their order), ``[]`` when *examples* is 0."""
    if examples <= 0:
        return []
    groups: dict[tuple[str, str], dict[ShapeProfile, Case]] = {}
    for case in cases:
        groups.setdefault((case.backend, case.precision), {}).setdefault(case.profile, case)
    return [FuzzTarget(tuple(by_profile.values()), examples) for by_profile in groups.values()]


def fuzz_seed(target: FuzzTarget, explore: int | None = None) -> int:
    """The Hypothesis seed: fixed per suite (name, ``seed``), backend and precision; *explore* changes it."""
    suite = target.suite
    parts = ("trtbench-fuzz", suite.name, suite.seed, target.backend, target.precision, explore)
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


@dataclass
class Probe:
    """The engine vs the reference at one drawn shape."""

    draw: ShapeDraw
    comparisons: list[OutputComparison] = field(default_factory=list)
    error: str = ""
    """Set when the engine or the reference raised at this shape (a shape inside the profile must run)."""

    @property
    def failed(self) -> bool:
        return bool(self.error) or any(not c.passed for c in self.comparisons)

    def size(self) -> tuple[int, tuple[int, ...]]:
        """Ordering for "smallest": input elements in all, then the dims (batch first)."""
        elements = 0
        for _, shape in self.draw.shapes:
            count = 1
            for d in shape:
                count *= d
            elements += count
        dims = sorted(self.draw.dims, key=lambda kv: (kv[0] != "batch", kv[0]))
        return elements, tuple(v for _, v in dims)


@dataclass
class FuzzOutcome:
    """What a fuzz run found: every distinct shape it ran, and the smallest failing one (if any)."""

    probes: list[Probe]
    failure: Probe | None
    seed: int
    profiles: list[ShapeProfile]
    """The profiles drawn from: the engines' (dims the ONNX file fixes are pinned)."""
    minimal: bool = True
    """``False`` when the per-dim sweep below the failing shape ran out of its budget."""


class _ShapeFailed(Exception):
    def __init__(self, probe: Probe) -> None:
        super().__init__(probe.draw.label())
        self.probe = probe


class Prober:
    """Runs a check once per distinct shape (Hypothesis replays shapes while shrinking and may draw one
    twice). Until something fails, at most *limit* distinct shapes are run; later new draws pass unrun, so
    ``--trt-fuzz=N`` means N distinct shapes (or every shape of a smaller profile)."""

    def __init__(self, check: Callable[[ShapeDraw], Probe], limit: int | None = None) -> None:
        self._check = check
        self._limit = limit
        self.seen: dict[tuple[Any, ...], Probe] = {}
        self.failed = False

    def __call__(self, draw: ShapeDraw) -> Probe:
        key = (draw.profile, draw.dims)
        if key not in self.seen:
            if self._limit is not None and len(self.seen) >= self._limit and not self.failed:
                return Probe(draw)  # over the budget: not run, not counted
            self.seen[key] = self._check(draw)
            self.failed = self.failed or self.seen[key].failed
        return self.seen[key]


def search(prober: Prober, strategy: SearchStrategy[ShapeDraw], examples: int, seed: int,
           storage: Path | None = None) -> Probe | None:
    """Draw shapes from *strategy* with Hypothesis (seeded, no database, no deadline) until *prober* ran
    *examples* distinct ones; return the shrunk failing probe, or ``None`` when every draw passed.

    With *storage*, Hypothesis' own files (it caches the constants of local modules, whatever the
    database setting) go there for the duration instead of ``.hypothesis/`` in the working directory."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as seeded

    def probe(draw: ShapeDraw) -> None:
        got = prober(draw)
        if got.failed:
            raise _ShapeFailed(got)

    configured = settings(
        max_examples=EXAMPLES_PER_SHAPE * examples, deadline=None, database=None, derandomize=False,
        phases=(Phase.generate, Phase.shrink), verbosity=Verbosity.quiet, report_multiple_bugs=False,
        print_blob=False,
        suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.large_base_example),
    )
    test = seeded(seed)(configured(given(strategy)(probe)))
    with _hypothesis_home(storage):
        try:
            test()
        except _ShapeFailed as failed:
            return failed.probe
    return None


@contextmanager
def _hypothesis_home(directory: Path | None) -> Iterator[None]:
    """Point Hypothesis' storage directory at *directory* for the block, then back where it was
    (so the user's own Hypothesis tests keep theirs)."""
    if directory is None:
        yield
        return
    from hypothesis import configuration

    current: Any = configuration.storage_directory()  # a Path in older Hypothesis, a StorageDirectory in newer
    previous = Path(getattr(current, "path", current))
    configuration.set_hypothesis_home_dir(directory)
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(previous)


def sweep_below(prober: Prober, failing: Probe, bounds: dict[ShapeProfile, dict[str, tuple[int, int]]],
                budget: int) -> tuple[Probe, bool]:
    """Lower each dim of *failing* (batch first) to the smallest value that still fails with the other dims
    held, until nothing moves. Hypothesis' shrinker can stop at a local minimum when failures are not
    monotonic in a dim (``seq % 7 == 3``); this sweep cannot. Returns the probe and whether it finished
    within *budget* extra runs."""
    from pytest_trtbench.strategies import draw_at

    best, spent, moved = failing, 0, True
    while moved:
        moved = False
        for name, value in sorted(best.draw.dims, key=lambda kv: (kv[0] != "batch", kv[0])):
            lo = bounds[best.draw.profile][name][0]
            for smaller in range(lo, value):
                if spent >= budget:
                    return best, False
                spent += 1
                probe = prober(draw_at(best.draw.suite, best.draw.profile, {**best.draw.dim_map(), name: smaller}))
                if probe.failed:
                    best, moved = probe, True
                    break
    return best, True


def fuzz_engines(harness: Harness, target: FuzzTarget) -> Callable[[ShapeDraw], Probe]:
    """The check one draw gets: the engine of the draw's profile (loaded once, as the listed cases use it)
    and the live reference on the same deterministic inputs, compared with the precision's tolerance."""
    from pytest_trtbench.compare import compare_outputs

    suite, precision = target.suite, target.precision
    reference = harness.model(suite).reference
    if reference is None:
        raise SuiteError(f"suite {suite.name}: shape fuzzing needs a live reference")
    engines: dict[ShapeProfile, tuple[Case, Engine]] = {}
    for anchor in target.anchors:
        engines[harness.engine_profile(anchor)] = (anchor, harness.engine(anchor)[1])

    def check(draw: ShapeDraw) -> Probe:
        anchor, engine = engines[draw.profile]
        case = draw.case(target.backend, precision, profile=anchor.profile)
        feeds = harness.inputs(case)
        try:
            outputs = engine.run(feeds)
            expected = reference.run(feeds)  # not memoized: dozens of shapes, each seen once
        except Exception as exc:  # a shape inside the profile that does not run is a finding, not a crash
            return Probe(draw, error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        tolerance = lambda name: suite.tolerance_for(precision, name)  # noqa: E731
        return Probe(draw, compare_outputs(outputs, expected, tolerance, list(suite.classifier_outputs)))

    return check


def fuzz(harness: Harness, target: FuzzTarget, explore_seed: int | None = None) -> FuzzOutcome:
    """Run the search for *target* on the harness' engines; the engines must be executable here."""
    from pytest_trtbench.strategies import dim_bounds, shapes

    seed = fuzz_seed(target, explore_seed)
    profiles = [harness.engine_profile(anchor) for anchor in target.anchors]
    bounds = {profile: dim_bounds(target.suite, profile) for profile in profiles}
    prober = Prober(fuzz_engines(harness, target), limit=target.examples)
    strategies = [shapes(target.suite, profile) for profile in profiles]
    strategy = strategies[0] if len(strategies) == 1 else _one_of(strategies)
    failing = search(prober, strategy, target.examples, seed, harness.settings.cache_dir / HYPOTHESIS_DIR)
    minimal = True
    if failing is not None:
        failing = min((p for p in prober.seen.values() if p.failed), key=Probe.size)
        failing, minimal = sweep_below(prober, failing, bounds, budget=max(target.examples, 16))
    return FuzzOutcome(list(prober.seen.values()), failing, seed, profiles, minimal)


def run_fuzz(harness: Harness, target: FuzzTarget, explore_seed: int | None = None) -> CaseOutcome:
    """The fuzz test's result, shaped like a case's: an outcome (one report row) and, on failure, the text.

    ``skipped`` where the backend can't build the precision or there is no live reference (golden
    fingerprints exist only for listed shapes), ``built`` where the engine can't run here (as for cases),
    else ``pass``, ``accuracy_fail`` (the smallest failing shape) or ``error`` (a shape that did not run)."""
    from pytest_trtbench.backends.base import BackendError
    from pytest_trtbench.fuzz_report import failure_text, fuzz_result, fuzz_start
    from pytest_trtbench.pipeline import innermost_frame

    outcome = fuzz_start(harness, target, fuzz_seed(target, explore_seed))
    try:
        outcome, gated = _not_fuzzed(harness, target, outcome)
        if gated is not None:
            return replace(outcome, verdict=gated)
        found = fuzz(harness, target, explore_seed)
        outcome = fuzz_result(outcome, found)
        if found.failure is not None:
            outcome = replace(outcome, message=failure_text(target, found, harness.settings.device.gpu, explore_seed))
    except (BackendError, SuiteError) as exc:
        return outcome.with_error(str(exc))
    except Exception as exc:  # a library failing deep inside: this test's error, not a traceback
        return outcome.with_error(f"{type(exc).__name__}: {exc} (in {innermost_frame(exc)})")
    return outcome


def _not_fuzzed(harness: Harness, target: FuzzTarget, outcome: CaseOutcome) -> tuple[CaseOutcome, Verdict | None]:
    """The outcome with the reference and the engines filled in, and the verdict when the target is
    skipped or only built (``None`` when it is to be fuzzed)."""
    from pytest_trtbench import verdict as V
    from pytest_trtbench.outcome import EngineInfo

    settings, suite = harness.settings, target.suite
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise SuiteError(f"suite {suite.name} fuzzes shapes (fuzz_shapes / --trt-fuzz), which needs Hypothesis: "
                         "pip install 'pytest-trtbench[fuzz]' (or --trt-fuzz=0)") from None
    backend = harness.backend(target.anchors[0])
    reason = backend.unsupported_reason(target.precision, settings.device)
    if reason:
        return outcome, V.Verdict(V.SKIPPED, reason)
    model = harness.model(suite)
    if model.reference is None or not suite.live_reference:
        return outcome, V.Verdict(V.SKIPPED, "shape fuzzing needs a live reference (live_reference=True): golden "
                                  "fingerprints exist only for the listed shapes")
    shapes = " | ".join(harness.engine_profile(anchor).label() for anchor in target.anchors)
    outcome = replace(outcome, reference_backend=model.reference.name, case=replace(outcome.case, shapes=shapes))
    not_here = backend.execution_unavailable_reason(settings.device)
    execute = not (settings.build_only or not_here)
    # the listed cases' engines (same memo, same cache entries): one per profile, never one per shape
    entries = [harness.engine_entry(anchor, load=execute)[0] for anchor in target.anchors]
    precisions = entries[0].metadata.get("backend", {}).get("engine_precisions") or {}
    outcome = replace(outcome, engine=EngineInfo(
        cache="built" if any(e.status == "built" for e in entries) else entries[0].status,
        build_s=sum(e.build_s for e in entries), key=",".join(e.key for e in entries), precisions=dict(precisions),
    ))
    if not execute:
        return outcome, V.Verdict(V.BUILT, not_here or "--trt-build-only: built, not executed")
    return outcome, None


def _one_of(strategies: list[SearchStrategy[ShapeDraw]]) -> SearchStrategy[ShapeDraw]:
    from hypothesis import strategies as st

    return st.one_of(strategies)
