"""Dynamic-shape profiles: the min/opt/max value type one engine is built for."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

Shape = tuple[int, ...]


@dataclass(frozen=True)
class InputRange:
    """The shapes one input may take inside an engine: min <= opt <= max, element-wise."""

    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self) -> None:
        if not (len(self.min) == len(self.opt) == len(self.max)):
            raise ValueError(f"min/opt/max ranks differ: {self.min} {self.opt} {self.max}")
        for lo, mid, hi in zip(self.min, self.opt, self.max):
            if not lo <= mid <= hi:
                raise ValueError(f"need min <= opt <= max per dim, got {self.min} {self.opt} {self.max}")

    def contains(self, shape: Shape) -> bool:
        return len(shape) == len(self.min) and all(
            lo <= d <= hi for lo, d, hi in zip(self.min, shape, self.max)
        )


@dataclass(frozen=True)
class ShapeProfile:
    """One optimization profile: a shape range per named input (Polygraphy's Profile, as a value)."""

    ranges: tuple[tuple[str, InputRange], ...]

    @classmethod
    def from_mapping(cls, ranges: Mapping[str, InputRange]) -> ShapeProfile:
        return cls(tuple(sorted(ranges.items())))

    @classmethod
    def covering(cls, shapes: Iterable[Mapping[str, Shape]]) -> ShapeProfile:
        """The tightest profile containing every given set of input shapes; opt is the largest."""
        per_input: dict[str, list[Shape]] = {}
        for case_shapes in shapes:
            for name, shape in case_shapes.items():
                per_input.setdefault(name, []).append(tuple(shape))
        if not per_input:
            raise ValueError("cannot derive a shape profile from no shapes")
        ranges = {}
        for name, seen in per_input.items():
            ranks = {len(s) for s in seen}
            if len(ranks) != 1:
                raise ValueError(f"input {name!r} is given with different ranks: {sorted(set(seen))}")
            lo = tuple(min(dims) for dims in zip(*seen))
            hi = tuple(max(dims) for dims in zip(*seen))
            ranges[name] = InputRange(lo, hi, hi)
        return cls.from_mapping(ranges)

    def __getitem__(self, name: str) -> InputRange:
        for key, value in self.ranges:
            if key == name:
                return value
        raise KeyError(name)

    def names(self) -> list[str]:
        return [name for name, _ in self.ranges]

    def contains(self, shapes: Mapping[str, Shape]) -> bool:
        return all(name in self.names() and self[name].contains(tuple(s)) for name, s in shapes.items())

    def as_dict(self) -> dict[str, dict[str, list[int]]]:
        return {
            name: {"min": list(r.min), "opt": list(r.opt), "max": list(r.max)} for name, r in self.ranges
        }

    def label(self) -> str:
        """A short stable label, e.g. ``x:1x16-8x16``."""
        return ",".join(
            f"{name}:{'x'.join(map(str, r.min))}-{'x'.join(map(str, r.max))}" for name, r in self.ranges
        )
