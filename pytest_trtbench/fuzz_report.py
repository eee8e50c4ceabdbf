"""A fuzz run as the report sees it: one row per fuzz test, and the failure text with the line that pins
the failing shape as a listed case. Pure formatting over :class:`pytest_trtbench.fuzz.FuzzOutcome`, into the
fuzz test's :class:`~pytest_trtbench.outcome.CaseOutcome` (whose row :mod:`pytest_trtbench.report` makes)."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pytest_trtbench import verdict as V

if TYPE_CHECKING:
    from pytest_trtbench.compare import OutputComparison
    from pytest_trtbench.fuzz import FuzzOutcome, FuzzTarget, Probe
    from pytest_trtbench.outcome import CaseOutcome
    from pytest_trtbench.runner import Harness
    from pytest_trtbench.strategies import ShapeDraw

def fuzz_start(harness: Harness, target: FuzzTarget, seed: int) -> CaseOutcome:
    """The fuzz test's outcome before it runs: the first listed case's identity with the fuzz test's id, no
    batch size, the profiles drawn from as ``shapes``, and the fuzz columns (see
    :data:`pytest_trtbench.report.COLUMNS`): distinct shapes run, the smallest failing shape
    (``batch=1, seq=10 (input_ids=1x10)``), the Hypothesis seed."""
    from pytest_trtbench.outcome import CaseOutcome, FuzzSummary
    from pytest_trtbench.pipeline import case_info

    anchor = target.anchors[0]
    info = replace(
        case_info(anchor, harness.settings), case_id=target.case_id, param_id=target.param_id, batch_size=None,
        shapes=" | ".join(a.profile.label() for a in target.anchors),
    )
    return CaseOutcome(info, str(harness.baseline_file(anchor)), fuzz=FuzzSummary(seed))


def fuzz_result(outcome: CaseOutcome, found: FuzzOutcome) -> CaseOutcome:
    """Verdict, reason, shapes tried, the failing shape, and every shape's comparisons (the row shows the
    worst metric over them)."""
    assert outcome.fuzz is not None
    comparisons = tuple(c for p in found.probes for c in p.comparisons)
    summary = replace(outcome.fuzz, shapes_tried=len(found.probes))
    failure = found.failure
    if failure is None:
        verdict = V.Verdict(V.PASS, f"{_shapes(len(found.probes))} inside the profile, all within tolerance")
    else:
        summary = replace(summary, failing_shape=failure.draw.label())
        verdict = V.Verdict(V.ERROR if failure.error else V.ACCURACY_FAIL,
                            f"fails at {failure.draw.label()}: " + "; ".join(_failures(failure)))
    return replace(outcome, verdict=verdict, comparisons=comparisons, fuzz=summary)


def failure_text(target: FuzzTarget, outcome: FuzzOutcome, gpu: str, explore_seed: int | None) -> str:
    """What a failing fuzz test prints: the shape, its metrics, the pinning line, the commands."""
    failure = outcome.failure
    assert failure is not None
    suite = target.suite
    failed = sum(1 for p in outcome.probes if p.failed)
    status = V.ERROR if failure.error else V.ACCURACY_FAIL
    where = " | ".join(profile.label() for profile in outcome.profiles)
    lines = [
        f"{target.case_id}: {status}",
        f"  shape fuzzing: {_shapes(len(outcome.probes))} run inside {where} (Hypothesis seed {outcome.seed}), "
        f"{failed} failed",
        f"  smallest failing shape: {failure.draw.label()}"
        + ("" if outcome.minimal else " (the sweep for a smaller one stopped at its budget)"),
    ]
    if failure.error:
        lines.append(f"  the engine or the reference raised: {failure.error}")
    lines += [f"  {_metrics_line(c)}" for c in failure.comparisons]
    source = suite.source_file or "<suite file>"
    listed = failure.draw.case(target.backend, target.precision)
    pin = pin_line(failure.draw)
    if pin:
        lines.append(f"  pin it as a listed case: in {source}, {suite.name} = Suite(..., {pin})")
    lines.append(f"  run it as a case: pytest {source} --trt-gpu={gpu} -k '{listed.param_id}'")
    explore = "" if explore_seed is None else f" --trt-fuzz-seed={explore_seed}"
    lines.append(f"  repeat this search: pytest {source} --trt-gpu={gpu}{explore} -k '{target.param_id}'")
    return "\n".join(lines)


def pin_line(draw: ShapeDraw) -> str:
    """The suite arguments that list *draw* as a case, e.g. ``dims={'seq': [10, 16, 64]}``
    (``""`` when its batch size and every dim value are listed already)."""
    suite = draw.suite
    parts = []
    values = draw.dim_map()
    batch = values.pop("batch", None)
    if batch is not None and batch not in [int(b) for b in suite.batch_sizes]:
        parts.append(f"batch_sizes={sorted({*map(int, suite.batch_sizes), batch})}")
    dims = {name: sorted(map(int, listed)) for name, listed in suite.dims.items()}
    changed = False
    for name, value in sorted(values.items()):
        if value not in dims.get(name, []):
            dims[name] = sorted({*dims.get(name, []), value})
            changed = True
    if changed:
        parts.append(f"dims={dims!r}")
    return ", ".join(parts)


def _shapes(count: int) -> str:
    return f"{count} shape{'' if count == 1 else 's'}"


def _failures(probe: Probe) -> list[str]:
    if probe.error:
        return [probe.error]
    return [f"{c.name}: {msg}" for c in probe.comparisons for msg in c.failures]


def _metrics_line(c: OutputComparison) -> str:
    top1 = "" if c.top1_agreement is None else f", top-1 {100 * c.top1_agreement:.2f} %"
    state = "FAILS: " + "; ".join(c.failures) if c.failures else "within tolerance"
    return (
        f"output {c.name}: max abs err {c.max_abs_err:.4g}, max rel err {c.max_rel_err:.4g}, "
        f"mean abs err {c.mean_abs_err:.4g}, cosine {c.cosine_similarity:.6f}{top1}, "
        f"mismatches {c.mismatches} / {c.total}, non-finite {c.nonfinite} -- {state}"
    )
