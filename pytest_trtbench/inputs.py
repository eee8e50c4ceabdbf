"""Deterministic inputs: the same suite, shapes and seed give the same arrays on every machine."""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

from pytest_trtbench.profile import Shape

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.suite import Input, Suite

_INT_DTYPES = {"int8", "int16", "int32", "int64", "uint8"}


def _rng(*parts: object) -> np.random.Generator:
    import numpy as np

    digest = hashlib.sha256(repr(parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def make_input(spec: Input, shape: Shape, *, seed: int, stream: str = "test", index: int = 0) -> np.ndarray:
    """One input array. *stream* separates test inputs from calibration data."""
    import numpy as np

    rng = _rng(seed, spec.name, tuple(shape), stream, index)
    if spec.data is not None:
        arr = np.asarray(spec.data(tuple(shape), rng))
        if tuple(arr.shape) != tuple(shape):
            raise ValueError(f"input {spec.name!r}: data() returned shape {arr.shape}, expected {tuple(shape)}")
        return arr.astype(spec.dtype, copy=False)
    low, high = spec.range
    if spec.dtype in _INT_DTYPES:
        return rng.integers(int(low), int(high), size=shape, dtype=spec.dtype)
    if spec.dtype == "bool":
        return rng.random(size=shape) < 0.5
    return rng.uniform(low, high, size=shape).astype(spec.dtype)


def make_feeds(suite: Suite, shapes: Mapping[str, Shape], *, stream: str = "test", index: int = 0) -> dict[str, np.ndarray]:
    return {
        spec.name: make_input(spec, shapes[spec.name], seed=suite.seed, stream=stream, index=index)
        for spec in suite.inputs
    }


def calibration_feeds(suite: Suite, shapes: Mapping[str, Shape]) -> Iterator[Mapping[str, np.ndarray]]:
    """The suite's calibration data, or seeded random feeds at *shapes* (a stream apart from test inputs)."""
    if suite.calibration is not None:
        yield from suite.calibration()
        return
    for index in range(suite.calibration_batches):
        yield make_feeds(suite, shapes, stream="calibration", index=index)


def fingerprint(array: np.ndarray, *, samples: int = 64, seed: int = 0) -> dict[str, object]:
    """A compact golden-output fingerprint: a seeded sample of elements plus summary statistics."""
    import numpy as np

    flat = np.asarray(array, dtype=np.float64).ravel()
    rng = _rng("fingerprint", seed, tuple(array.shape))
    count = min(samples, flat.size)
    indices = np.sort(rng.choice(flat.size, size=count, replace=False)) if count else np.array([], dtype=np.int64)
    return {
        "shape": [int(d) for d in array.shape],
        "indices": [int(i) for i in indices],
        "values": [float(flat[i]) for i in indices],
        "mean": float(flat.mean()) if flat.size else 0.0,
        "std": float(flat.std()) if flat.size else 0.0,
        "min": float(flat.min()) if flat.size else 0.0,
        "max": float(flat.max()) if flat.size else 0.0,
    }


def sample_at(array: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    import numpy as np

    return np.asarray(array, dtype=np.float64).ravel()[list(indices)]
