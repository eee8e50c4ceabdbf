"""TensorRT per-layer times through ``IProfiler``, on an execution context of its own.

Written to the documented API (``tensorrt.IProfiler`` / ``tensorrt_rtx.IProfiler``, ``IExecutionContext.profiler``,
``enqueue_emits_profile``, ``report_to_profiler``): a subclass that calls ``IProfiler.__init__`` and overrides
``report_layer_time(layer_name, ms)`` is set as the ``profiler`` of a *new* context (the timed contexts never
carry a profiler, and no CUDA graph is involved); with ``enqueue_emits_profile = False`` each
``execute_async_v3`` only records TensorRT's per-layer CUDA events, and ``report_to_profiler()`` after the
stream is synchronized computes them and calls ``report_layer_time`` once per layer, in execution order
(trtexec's ``--dumpProfile`` does the same). Layer names are the engine's (the builder uses
``ProfilingVerbosity.DETAILED``, so they are the inspector's names, not indices); op types come from the
layer info recorded at build (``layers`` in the cache entry's metadata).

NEVER RUN on a real runtime: TensorRT cannot execute engines on this project's CPU machines and no TensorRT
engine has run on a GPU here. :func:`layer_runs` and ``TensorRTEngine.layer_profile`` are driven only by the
fake runtime of ``tests/fake_trt.py`` (``tests/test_layer_profile.py``), which checks the call order above.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from pytest_trtbench.layer_profile import LayerProfile, LayerProfileError, aggregate

if TYPE_CHECKING:
    from pytest_trtbench.backends.tensorrt.runtime import TensorRTLaunch


def recorder(trt: Any) -> Any:
    """An ``IProfiler`` that appends ``(layer name, µs)`` to ``.current``."""

    class LayerTimeRecorder(trt.IProfiler):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.current: list[tuple[str, float]] = []

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.current.append((str(layer_name), float(ms) * 1000.0))

    return LayerTimeRecorder()


def layer_runs(trt: Any, launch: TensorRTLaunch, context: Any, runs: int) -> list[list[tuple[str, float]]]:
    """*runs* profiled enqueues of *launch* on *context* (a fresh context of the launch's profile), after
    one warm-up enqueue whose report is dropped."""
    profiler = recorder(trt)
    context.profiler = profiler
    context.enqueue_emits_profile = False
    out: list[list[tuple[str, float]]] = []
    for run in range(runs + 1):
        profiler.current = []
        launch.enqueue(context)  # binds the launch's buffers to this context first
        launch.synchronize()
        if not context.report_to_profiler():
            raise LayerProfileError("TensorRT's report_to_profiler() returned False (no profiler, or under capture)")
        if run:
            out.append(list(profiler.current))
    return out


def tensorrt_layer_profile(trt: Any, source: str, launch: TensorRTLaunch, context: Any, runs: int,
                           layer_types: Mapping[str, str]) -> LayerProfile:
    """The profile of *launch* on *context*; op types from *layer_types* (``layer`` where unknown)."""
    per_run = layer_runs(trt, launch, context, runs)
    named = [[(name, layer_types.get(name, "layer"), us) for name, us in run] for run in per_run]
    return aggregate(named, source, "gpu")
