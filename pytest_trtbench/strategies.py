"""Hypothesis strategies over a suite's dynamic shapes: every shape an engine's profile admits.

A suite lists the batch sizes and dims it tests; its engines answer for every shape between the profile's
min and max. :func:`shapes` draws from all of them::

    from hypothesis import given
    from pytest_trtbench.strategies import shapes

    @given(draw=shapes(test_encoder))
    def test_any_shape(draw, trtbench, trt_check):
        case = draw.case("onnxruntime", "fp32")
        entry, engine = trtbench.engine(case)  # the listed cases' engine: same profile, no rebuild
        trt_check(engine.run(trtbench.inputs(case)), trtbench.reference(case), case.precision)

Importing this module imports Hypothesis; the plugin itself never imports it (nor this module) unless a
suite fuzzes its shapes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, TypeVar

from hypothesis import strategies as st

from pytest_trtbench.profile import Shape, ShapeProfile
from pytest_trtbench.suite import Case, Suite, SuiteError

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

BATCH = "batch"
T = TypeVar("T")


@dataclass(frozen=True)
class ShapeDraw:
    """One drawn point of a suite's shape space: the named dims, the input shapes they make, the profile."""

    suite: Suite
    dims: tuple[tuple[str, int], ...]
    """Every named dim the inputs use (``batch`` included when used), sorted by name."""
    shapes: tuple[tuple[str, Shape], ...]
    profile: ShapeProfile

    def dim_map(self) -> dict[str, int]:
        return dict(self.dims)

    def shape_map(self) -> dict[str, Shape]:
        return dict(self.shapes)

    @property
    def batch_size(self) -> int:
        """The drawn batch, or the suite's smallest listed batch when no input has a ``batch`` dim."""
        return self.dim_map().get(BATCH, min(int(b) for b in self.suite.batch_sizes))

    def label(self) -> str:
        """``batch=3, seq=17 (input_ids=3x17)``."""
        dims = ", ".join(f"{name}={value}" for name, value in _batch_first(self.dims))
        inputs = ", ".join(f"{name}={'x'.join(map(str, shape))}" for name, shape in self.shapes)
        return f"{dims} ({inputs})" if dims else inputs

    def case(self, backend: str = "onnxruntime", precision: str = "fp32", profile: ShapeProfile | None = None) -> Case:
        """This point as a :class:`Case` of *backend* x *precision*, tied to the profile it was drawn in
        (or *profile*: the suite's own profile when the draw used a narrower one), so the ``trtbench``
        harness hands out the engine the listed cases use."""
        dims = self.dim_map()
        dims.setdefault(BATCH, self.batch_size)
        return Case(
            suite=self.suite, backend=backend, precision=precision, batch_size=self.batch_size,
            dims=tuple(sorted(dims.items())), shapes=self.shapes, profile=profile or self.profile,
        )


def suite_profiles(suite: Suite) -> list[ShapeProfile]:
    """The suite's shape profiles (its explicit ``profiles``, or the one covering every listed case)."""
    return list(dict.fromkeys(case.profile for case in suite.cases(["onnxruntime"])))


def dim_bounds(suite: Suite, profile: ShapeProfile) -> dict[str, tuple[int, int]]:
    """Per named dim, the values every input using it admits inside *profile* (the ranges intersected).

    Raises :class:`SuiteError` when an input has no range in the profile, a rank differs, a fixed size lies
    outside its range, or inputs sharing a dim have ranges that do not overlap."""
    where = f"suite {suite.name or '?'}, profile {profile.label()}"
    bounds: dict[str, tuple[int, int]] = {}
    for spec in suite.inputs:
        if spec.name not in profile.names():
            raise SuiteError(f"{where}: no shape range for input {spec.name!r}; give one per input")
        r = profile[spec.name]
        if len(r.min) != len(spec.shape):
            raise SuiteError(f"{where}: input {spec.name!r} has rank {len(spec.shape)}, its range rank {len(r.min)}")
        for axis, dim in enumerate(spec.shape):
            lo, hi = r.min[axis], r.max[axis]
            if isinstance(dim, str):
                seen_lo, seen_hi = bounds.get(dim, (lo, hi))
                bounds[dim] = (max(seen_lo, lo), min(seen_hi, hi))
            elif not lo <= dim <= hi:
                raise SuiteError(f"{where}: input {spec.name!r} axis {axis} is fixed to {dim}, outside {lo}..{hi}")
    empty = sorted(name for name, (lo, hi) in bounds.items() if lo > hi)
    if empty:
        raise SuiteError(f"{where}: dims {empty} are shared by inputs whose ranges do not overlap; align the ranges")
    return bounds


def draw_at(suite: Suite, profile: ShapeProfile, dims: Mapping[str, int]) -> ShapeDraw:
    """The :class:`ShapeDraw` for given dim values (e.g. to replay a shape a fuzz run reported)."""
    shapes = tuple(sorted((spec.name, spec.resolve(dims)) for spec in suite.inputs))
    return ShapeDraw(suite, tuple(sorted((k, int(v)) for k, v in dims.items())), shapes, profile)


def shapes(suite: Suite, profile: ShapeProfile | None = None) -> SearchStrategy[ShapeDraw]:
    """Every named dim (``batch`` included) drawn inside *profile*'s min..max, one value per dim name
    (inputs sharing a dim get the same value), as :class:`ShapeDraw` values.

    *profile* defaults to the suite's profiles (draws come from each). Hypothesis shrinks a failing draw
    towards each range's minimum: the smallest failing shape."""
    profiles = [profile] if profile is not None else suite_profiles(suite)
    choices = [_within(suite, p) for p in profiles]
    return choices[0] if len(choices) == 1 else st.one_of(choices)


def _within(suite: Suite, profile: ShapeProfile) -> SearchStrategy[ShapeDraw]:
    bounds = dim_bounds(suite, profile)
    ordered = {name: st.integers(lo, hi) for name, (lo, hi) in _batch_first(bounds.items())}
    return st.fixed_dictionaries(ordered).map(lambda dims: draw_at(suite, profile, dims))


def _batch_first(items: Iterable[tuple[str, T]]) -> list[tuple[str, T]]:
    return sorted(items, key=lambda kv: (kv[0] != BATCH, kv[0]))
