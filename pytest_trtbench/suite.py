"""Declaring a suite and expanding it into cases.

A suite is a value: the model source, its inputs with named dynamic dims, the values to sweep,
the precisions and tolerances. :meth:`Suite.cases` expands it into :class:`Case` values, one per
(backend, precision, batch size, other dim values), each tied to the shape profile whose engine it uses.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from pytest_trtbench.compare import Tolerance
from pytest_trtbench.onnx_suite import complete_onnx_suite
from pytest_trtbench.profile import InputRange, Shape, ShapeProfile
from pytest_trtbench.suite_checks import suite_problems
from pytest_trtbench.suite_types import Dim, Feeds, Input, SuiteError

# Input, SuiteError and the Dim / Feeds aliases live in suite_types (the modules suite.py uses need them too, and
# must not import suite.py back); pytest_trtbench.suite.Input and .SuiteError stay importable from here
__all__ = ["Case", "Dim", "Feeds", "Input", "Suite", "SuiteError"]


@dataclass(frozen=True)
class Case:
    """One test case: everything needed to build (via its profile) and run it."""

    suite: Suite
    backend: str
    precision: str
    batch_size: int
    dims: tuple[tuple[str, int], ...]
    shapes: tuple[tuple[str, Shape], ...]
    profile: ShapeProfile

    @property
    def param_id(self) -> str:
        """``onnxruntime-fp32-b8-seq128``: the part inside the test id's brackets."""
        parts = [self.backend, self.precision, f"b{self.batch_size}"]
        parts += [f"{name}{value}" for name, value in self.dims if name != "batch"]
        return "-".join(parts)

    @property
    def case_id(self) -> str:
        return f"{self.suite.name}[{self.param_id}]"

    def shape_map(self) -> dict[str, Shape]:
        return dict(self.shapes)

    def shapes_label(self) -> str:
        return ";".join(f"{name}={'x'.join(map(str, s))}" for name, s in self.shapes)

    def __str__(self) -> str:
        return self.param_id


@dataclass(eq=False)
class Suite:
    """A model under test and the sweep to run it over.

    ``model`` is an ONNX file path, or a zero-argument factory returning a ``torch.nn.Module``
    (exported to ONNX by the plugin and also used as the live reference).
    ``tolerances`` maps a precision to a :class:`Tolerance`, or to ``{output_name: Tolerance, "*": default}``.
    ``profiles`` gives explicit shape profiles (``{input: (min, opt, max)}``); by default one profile
    covers every case. ``calibration`` returns int8 calibration feeds; by default seeded random feeds
    drawn like the test inputs. ``fp32_ops`` lists op types or node names a reduced-precision build keeps in fp32.
    """

    model: str | os.PathLike[str] | Callable[[], Any]
    inputs: Sequence[Input] = ()
    """Optional for an ONNX file (read from the file, see :mod:`pytest_trtbench.onnx_suite`)."""
    batch_sizes: Sequence[int] = (1,)
    dims: Mapping[str, Sequence[int]] = field(default_factory=dict)
    precisions: Sequence[str] = ("fp32",)
    tolerances: Mapping[str, Tolerance | Mapping[str, Tolerance]] = field(default_factory=dict)
    backends: Sequence[str] | None = None
    profiles: Sequence[Mapping[str, tuple[Shape, Shape, Shape]]] | None = None
    calibration: Callable[[], Iterable[Feeds]] | None = None
    calibration_batches: int = 8
    calibration_method: str = "minmax"
    """int8 calibration: ``minmax``, ``entropy`` or ``percentile`` (ONNX Runtime's calibrators); part of the cache key."""
    data: Any = None
    """Labelled data (:class:`pytest_trtbench.task_data.Dataset`, or ``(inputs, labels)`` batches): int8 calibrates on
    its calibration part, accuracy checks take their inputs from its evaluation part, where ``metric`` is measured."""
    metric: str | Callable[[Any, Any], float] | None = None
    """The task metric on ``data``: ``top1`` (default), ``top5``, ``mean_iou`` or ``callable(outputs, labels) -> float``."""
    output_names: Sequence[str] | None = None
    fp32_ops: Sequence[str] = ()
    classifier_outputs: Sequence[str] = ()
    """Outputs whose last axis holds class scores: top-1 agreement is computed for them."""
    seed: int = 0
    live_reference: bool = True
    """``False``: never run the reference; compare with the golden fingerprint stored in the baseline
    (for runners without the reference's framework, or references too slow to run on every merge)."""
    fuzz_shapes: int = 0
    """Shape fuzzing: per backend x precision, one more test draws this many shapes inside the profile
    (Hypothesis) and compares the built engine with the reference at each (:mod:`pytest_trtbench.fuzz`)."""
    build_options: Mapping[str, Any] = field(default_factory=dict)
    """Engine build options, each accepted by at least one of the suite's backends (TensorRT: ``opt_level``,
    ``workspace_mib``, ``hardware_compat``; see :mod:`pytest_trtbench.build_options`); part of the cache key of
    the backends that accept them. They win over ``--trt-build-option`` / ini ``trt_build_option`` for the same key."""
    name: str = ""
    source_file: str = ""

    def validate(self) -> None:
        """Raise one :class:`SuiteError` listing every problem of the declaration (the checks are in
        :mod:`pytest_trtbench.suite_checks`; extend them there). Called at collection (not at construction),
        so one broken suite does not stop its module's other suites. An ONNX-file suite without ``inputs``
        has them filled from the file first (:func:`pytest_trtbench.onnx_suite.complete_onnx_suite`)."""
        declared = bool(self.inputs)
        problems = suite_problems(self, inputs=False) + (suite_problems(self, inputs=True) if declared else [])
        if problems:
            raise SuiteError("; ".join(problems))
        if self.is_onnx_file:
            complete_onnx_suite(self)
        if not self.inputs:
            raise SuiteError(f"{self.onnx_path().name} has no inputs: nothing to feed the model"
                             if self.is_onnx_file else "a PyTorch suite needs its inputs: inputs=[Input(name, shape), ...]")
        problems = [] if declared else suite_problems(self, inputs=True)  # inputs read from the ONNX file
        if problems:
            raise SuiteError("; ".join(problems))

    @property
    def is_onnx_file(self) -> bool:
        return isinstance(self.model, (str, os.PathLike))

    def onnx_path(self) -> Path:
        path = Path(os.fspath(self.model))  # type: ignore[arg-type]
        if not path.is_absolute() and self.source_file:
            path = Path(self.source_file).parent / path
        return path

    def tolerance_for(self, precision: str, output: str) -> Tolerance:
        given = self.tolerances.get(precision)
        if isinstance(given, Tolerance):
            return given
        if isinstance(given, Mapping):
            tol = given.get(output, given.get("*"))
            if tol is not None:
                return tol
        return Tolerance.default_for(precision)

    def _dim_grid(self) -> list[dict[str, int]]:
        names = sorted(self.dims)
        grid = []
        for batch in self.batch_sizes:
            for values in itertools.product(*(self.dims[n] for n in names)):
                point = {"batch": int(batch)}
                point.update({n: int(v) for n, v in zip(names, values)})
                grid.append(point)
        return grid

    def _profiles(self, all_shapes: list[dict[str, Shape]]) -> list[ShapeProfile]:
        if not self.profiles:
            return [ShapeProfile.covering(all_shapes)]
        out = []
        for given in self.profiles:
            try:
                out.append(
                    ShapeProfile.from_mapping(
                        {name: InputRange(tuple(lo), tuple(opt), tuple(hi)) for name, (lo, opt, hi) in given.items()}
                    )
                )
            except ValueError as exc:
                raise SuiteError(f"suite {self.name or '?'}: bad profile {dict(given)}: {exc}") from None
        return out

    def cases(self, backends: Sequence[str] | None = None) -> list[Case]:
        """Expand into cases. *backends* is used when the suite does not name its own."""
        chosen = list(self.backends or backends or ("onnxruntime",))
        grid = self._dim_grid()
        shapes_per_point = [{i.name: i.resolve(point) for i in self.inputs} for point in grid]
        profiles = self._profiles(shapes_per_point)
        out = []
        for backend in chosen:
            for precision in self.precisions:
                for point, shapes in zip(grid, shapes_per_point):
                    profile = next((p for p in profiles if p.contains(shapes)), None)
                    if profile is None:
                        raise SuiteError(
                            f"suite {self.name}: shapes {shapes} lie in none of its profiles; "
                            "widen a profile or drop that batch size / dim value"
                        )
                    out.append(
                        Case(
                            suite=self,
                            backend=backend,
                            precision=precision,
                            batch_size=point["batch"],
                            dims=tuple(sorted(point.items())),
                            shapes=tuple(sorted(shapes.items())),
                            profile=profile,
                        )
                    )
        return out
