"""Shape strategies and the fuzz search as plain Python: profile bounds (property tests), shared dims,
shrinking to the smallest failing shape, seeds, ids, the pin line. The plugin side is tests/test_fuzz_plugin.py."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from pytest_trtbench import Input, InputRange, ShapeProfile, Suite, SuiteError
from pytest_trtbench.fuzz import FUZZ_PREFIX, Probe, Prober, fuzz_seed, fuzz_targets, search, sweep_below
from pytest_trtbench.fuzz_report import pin_line
from pytest_trtbench.strategies import ShapeDraw, dim_bounds, draw_at, shapes, suite_profiles


def two_input_suite(**kwargs: object) -> Suite:
    """Two inputs sharing ``batch`` and ``seq`` (``mask`` has no feature axis)."""
    suite = Suite(
        model="unused.onnx",
        inputs=[Input("x", shape=("batch", "seq", 8)), Input("mask", shape=("batch", "seq"), dtype="int64")],
        batch_sizes=[1, 4], dims={"seq": [16, 64]}, **kwargs,  # type: ignore[arg-type]
    )
    suite.name = "test_two"
    return suite


def profile_of(**ranges: tuple[tuple[int, ...], tuple[int, ...]]) -> ShapeProfile:
    return ShapeProfile.from_mapping({name: InputRange(lo, hi, hi) for name, (lo, hi) in ranges.items()})


@st.composite
def suites_with_profiles(draw: st.DrawFn) -> tuple[Suite, ShapeProfile]:
    """A suite whose two inputs share ``batch`` and ``seq``, with an explicit profile whose ranges per input
    may differ (the shared dims' ranges then intersect) and may not even overlap."""
    def axis() -> tuple[int, int]:
        lo = draw(st.integers(1, 40))
        return lo, draw(st.integers(lo, lo + 40))

    (b0, b1), (s0, s1), (c0, c1), (d0, d1) = axis(), axis(), axis(), axis()
    suite = two_input_suite()
    profile = profile_of(x=((b0, s0, 8), (b1, s1, 8)), mask=((c0, d0), (c1, d1)))
    return suite, profile


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_draws_lie_inside_the_profile_and_shared_dims_agree(data: st.DataObject) -> None:
    suite, profile = data.draw(suites_with_profiles())
    x, mask = profile["x"], profile["mask"]
    if any(x.min[a] > mask.max[a] or mask.min[a] > x.max[a] for a in (0, 1)):
        with pytest.raises(SuiteError, match="shared by inputs whose ranges do not overlap"):
            dim_bounds(suite, profile)
        return
    bounds = dim_bounds(suite, profile)
    point = data.draw(shapes(suite, profile))
    assert point.profile == profile and profile.contains(point.shape_map())
    got = point.shape_map()
    assert got["x"][:2] == got["mask"] and got["x"][2] == 8  # same dim name, same value; fixed axes fixed
    assert point.dim_map() == {"batch": got["x"][0], "seq": got["x"][1]}
    for name, value in point.dims:
        assert bounds[name][0] <= value <= bounds[name][1]


def test_every_dim_reaches_both_ends_of_its_range() -> None:
    suite = two_input_suite()
    profile = profile_of(x=((2, 5, 8), (6, 30, 8)), mask=((1, 9), (7, 40)))  # seq: 9..30, batch: 2..6
    strategy = shapes(suite, profile)
    quiet = settings(database=None, max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    smallest = find(strategy, lambda d: True, settings=quiet)
    assert smallest.dim_map() == {"batch": 2, "seq": 9}  # Hypothesis shrinks towards the profile's minimum
    assert find(strategy, lambda d: d.dim_map()["seq"] == 30, settings=quiet).dim_map()["seq"] == 30
    assert find(strategy, lambda d: d.dim_map()["batch"] == 6, settings=quiet).dim_map()["batch"] == 6


def test_default_profile_is_the_one_covering_the_listed_cases() -> None:
    suite = two_input_suite()
    (profile,) = suite_profiles(suite)
    assert dim_bounds(suite, profile) == {"batch": (1, 4), "seq": (16, 64)}
    quiet = settings(database=None, max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    assert find(shapes(suite), lambda d: True, settings=quiet).label() == "batch=1, seq=16 (mask=1x16, x=1x16x8)"


def test_several_profiles_are_each_drawn_from() -> None:
    suite = two_input_suite(profiles=[
        {"x": ((1, 16, 8), (1, 16, 8), (1, 64, 8)), "mask": ((1, 16), (1, 16), (1, 64))},
        {"x": ((2, 16, 8), (4, 64, 8), (4, 64, 8)), "mask": ((2, 16), (4, 64), (4, 64))},
    ])
    first, second = suite_profiles(suite)
    quiet = settings(database=None, max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    assert find(shapes(suite), lambda d: d.dim_map()["batch"] == 1, settings=quiet).profile == first
    assert find(shapes(suite), lambda d: d.dim_map()["batch"] == 3, settings=quiet).profile == second


@pytest.mark.parametrize(("ranges", "message"), [
    ({"x": ((1, 1, 8), (4, 64, 8))}, "no shape range for input 'mask'"),
    ({"x": ((1, 1, 9), (4, 64, 9)), "mask": ((1, 1), (4, 64))}, "axis 2 is fixed to 8, outside 9..9"),
    ({"x": ((1, 1), (4, 64)), "mask": ((1, 1), (4, 64))}, "input 'x' has rank 3, its range rank 2"),
])
def test_profiles_that_cannot_hold_the_inputs_are_named(ranges: dict, message: str) -> None:
    suite = two_input_suite()
    with pytest.raises(SuiteError, match="suite test_two, profile .*" + message.replace("(", r"\(")):
        shapes(suite, profile_of(**ranges))


def test_a_draw_becomes_a_case_on_the_listed_cases_engine() -> None:
    suite = two_input_suite()
    (profile,) = suite_profiles(suite)
    case = draw_at(suite, profile, {"batch": 3, "seq": 17}).case("onnxruntime", "int8")
    assert case.param_id == "onnxruntime-int8-b3-seq17"
    assert case.profile == profile and case.shape_map() == {"x": (3, 17, 8), "mask": (3, 17)}


def test_fuzz_ids_never_collide_with_case_ids() -> None:
    suite = two_input_suite(precisions=["fp32", "fp16", "int8"])
    cases = suite.cases(["onnxruntime", "tensorrt"])
    targets = fuzz_targets(cases, 10)
    assert [t.param_id for t in targets] == [f"{FUZZ_PREFIX}-{b}-{p}" for b in ("onnxruntime", "tensorrt")
                                             for p in ("fp32", "fp16", "int8")]
    assert not {t.case_id for t in targets} & {c.case_id for c in cases}
    assert fuzz_targets(cases, 0) == []


def test_seed_is_fixed_per_suite_and_changes_when_exploring() -> None:
    suite = two_input_suite()
    target = fuzz_targets(suite.cases(), 5)[0]
    assert fuzz_seed(target) == fuzz_seed(fuzz_targets(two_input_suite().cases(), 5)[0])
    assert fuzz_seed(target) != fuzz_seed(target, 1) != fuzz_seed(target, 2)
    reseeded = two_input_suite(seed=1)
    assert fuzz_seed(fuzz_targets(reseeded.cases(), 5)[0]) != fuzz_seed(target)


def fake_check(fails: object, limit: int | None = None) -> tuple[Prober, list[ShapeDraw]]:
    """A FAKE engine check (no engine runs): a draw fails when ``fails(dims)`` is true."""
    order: list[ShapeDraw] = []

    def check(draw: ShapeDraw) -> Probe:
        order.append(draw)
        return Probe(draw, error="fake failure" if fails(draw.dim_map()) else "")  # type: ignore[operator]

    return Prober(check, limit), order


def test_search_repeats_with_a_seed_and_explores_with_another() -> None:
    suite = two_input_suite()
    runs = []
    for seed in (11, 11, 12):
        prober, order = fake_check(lambda dims: False, limit=25)
        assert search(prober, shapes(suite), 25, seed) is None
        runs.append([d.dims for d in order])
    assert len(runs[0]) == 25 and len(set(runs[0])) == 25  # distinct shapes, each run once
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_shrinks_to_the_smallest_failing_shape_even_when_failures_are_not_monotonic() -> None:
    suite = two_input_suite()
    (profile,) = suite_profiles(suite)
    bounds = {profile: dim_bounds(suite, profile)}
    fails = lambda dims: dims["seq"] % 7 == 3 and dims["batch"] >= 2  # noqa: E731  (seq 17, 24, ..., 59)
    for seed in range(5):
        prober, _ = fake_check(fails, limit=40)
        found = search(prober, shapes(suite), 40, seed)
        assert found is not None
        best, complete = sweep_below(prober, found, bounds, budget=200)
        assert complete and best.draw.dim_map() == {"batch": 2, "seq": 17}, seed
    # from a far failing shape, the sweep alone reaches the smallest one; a tiny budget says it stopped
    prober, _ = fake_check(fails)
    start = prober(draw_at(suite, profile, {"batch": 4, "seq": 59}))
    assert sweep_below(prober, start, bounds, budget=200)[0].draw.dim_map() == {"batch": 2, "seq": 17}
    prober, _ = fake_check(fails)
    start = prober(draw_at(suite, profile, {"batch": 4, "seq": 59}))
    assert sweep_below(prober, start, bounds, budget=3) == (prober.seen[(profile, (("batch", 2), ("seq", 59)))], False)


def test_pin_line_lists_only_what_is_not_listed_yet() -> None:
    suite = two_input_suite()
    (profile,) = suite_profiles(suite)
    assert pin_line(draw_at(suite, profile, {"batch": 1, "seq": 17})) == "dims={'seq': [16, 17, 64]}"
    assert pin_line(draw_at(suite, profile, {"batch": 3, "seq": 17})) == (
        "batch_sizes=[1, 3, 4], dims={'seq': [16, 17, 64]}")
    assert pin_line(draw_at(suite, profile, {"batch": 3, "seq": 64})) == "batch_sizes=[1, 3, 4]"
    assert pin_line(draw_at(suite, profile, {"batch": 4, "seq": 16})) == ""


@pytest.mark.parametrize("bad", [-1, 2.5, True, "10"])
def test_fuzz_shapes_must_be_a_count(bad: object) -> None:
    with pytest.raises(SuiteError, match="fuzz_shapes must be an integer >= 0"):
        two_input_suite(fuzz_shapes=bad).validate()  # at collection, per suite


def test_a_small_profile_is_run_whole_once() -> None:
    suite = two_input_suite()
    profile = profile_of(x=((1, 3, 8), (2, 4, 8)), mask=((1, 3), (2, 4)))
    prober, order = fake_check(lambda dims: False, limit=50)
    assert search(prober, shapes(suite, profile), 50, seed=0) is None
    assert sorted(d.dims for d in order) == [(("batch", b), ("seq", s)) for b in (1, 2) for s in (3, 4)]
