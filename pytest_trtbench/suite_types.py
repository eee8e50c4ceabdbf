"""The small value types of a suite declaration: :class:`Input`, :class:`SuiteError` and the ``Dim`` /
``Feeds`` aliases.

They live apart from :mod:`pytest_trtbench.suite` because the modules that :class:`~pytest_trtbench.suite.Suite`
itself uses (its checks in :mod:`~pytest_trtbench.suite_checks` and :mod:`~pytest_trtbench.task_checks`, the ONNX
signature in :mod:`~pytest_trtbench.onnx_suite`, the task data and metrics) need them too: they import them from
here, so none of them imports ``suite.py`` back. Users import them from the package (``from pytest_trtbench import
Input, SuiteError``); ``pytest_trtbench.suite`` re-exports them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pytest_trtbench.profile import Shape

if TYPE_CHECKING:
    import numpy as np

Dim = int | str
Feeds = Mapping[str, "np.ndarray"]


class SuiteError(ValueError):
    """A suite declaration is invalid; the message names the suite and the fix."""


@dataclass(frozen=True)
class Input:
    """One model input: ``shape`` mixes fixed sizes and named dims (``("batch", "seq")``).

    Values are drawn deterministically from ``range`` ([low, high) for ints, [low, high] for floats),
    or produced by ``data(shape, rng)`` when given (user-supplied arrays).
    """

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"
    range: tuple[float, float] = (-1.0, 1.0)
    data: Callable[[Shape, Any], Any] | None = None

    def resolve(self, dims: Mapping[str, int]) -> Shape:
        out = []
        for d in self.shape:
            if isinstance(d, str):
                if d not in dims:
                    raise SuiteError(f"input {self.name!r} uses dim {d!r} but the suite gives no values for it; "
                                     f"add dims={{{d!r}: [...]}}")
                out.append(int(dims[d]))
            else:
                out.append(int(d))
        return tuple(out)
