"""The TensorRT IProfiler path (``backends/tensorrt/profiler.py``) driven through the FAKE runtime of tests/fake_trt.py.

NOT TensorRT: no engine executes here, and the layer names and times below are invented (labelled FAKE). What this
proves is the documented call order on the real ``TensorRTEngine.layer_profile`` code: the profiler is an
``IProfiler`` subclass set on a *new* context (never a timed one), ``enqueue_emits_profile`` is off, and
``report_to_profiler()`` follows each enqueue, once; the first (warm-up) report is dropped.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

fake_trt = pytest.importorskip("fake_trt")  # skips without tensorrt-rtx

from fake_trt import FakeContext, FakeRuntime  # noqa: E402
from test_trt_runtime_contract import feeds, load, models, rt, specs  # noqa: E402, F401  (fixtures)

FAKE_LAYERS = [("FAKE mm1 + add1 + relu1", 0.010), ("FAKE mm2", 0.004), ("FAKE softmax", 0.001)]


class ProfilingContext(FakeContext):
    """FAKE ``IExecutionContext`` with the profiler members (``profiler``, ``enqueue_emits_profile``,
    ``report_to_profiler``) as NvInferRuntime.h documents them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profiler: Any = None
        self.enqueue_emits_profile = True
        self.pending = False
        self.reports = 0

    def execute_async_v3(self, stream: int) -> bool:
        done = super().execute_async_v3(stream)
        if done and self.profiler is not None:
            if self.enqueue_emits_profile:
                self.report_to_profiler()
            else:
                self.pending = True  # CUDA events recorded; report_to_profiler computes them
        return done

    def report_to_profiler(self) -> bool:
        if self.profiler is None:
            return False  # documented: False when no profiler is provided
        if not self.pending and not self.enqueue_emits_profile:
            self.rt.violation("report_to_profiler() without an enqueue since the last report")
            return False
        for name, ms in FAKE_LAYERS:
            self.profiler.report_layer_time(name, ms)
        self.pending = False
        self.reports += 1
        return True


def test_iprofiler_runs_on_a_context_of_its_own_and_reports_once_per_enqueue(
        rt: FakeRuntime, specs: dict, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811  (fixtures)
    import tensorrt_rtx as trt

    monkeypatch.setattr(fake_trt, "FakeContext", ProfilingContext)
    engine, fake = load(rt, specs["mlp"])
    engine.layer_types = {"FAKE mm2": "CaskGemmMatrixMultiply"}
    timed = list(fake.contexts)
    profile = engine.layer_profile(feeds(4), 3)
    assert rt.violations == []
    profiled = [c for c in fake.contexts if c not in timed]
    assert len(profiled) == 1 and all(c.profiler is None and c.reports == 0 for c in timed)
    context = profiled[0]
    assert isinstance(context.profiler, trt.IProfiler) and context.enqueue_emits_profile is False
    assert (context.enqueues, context.reports) == (4, 4)  # one warm-up + 3 profiled runs
    assert profile.runs == 3 and profile.clock == "gpu" and profile.source.endswith(" IProfiler")
    assert [(x.name, x.op, x.us) for x in profile.layers] == [
        ("FAKE mm1 + add1 + relu1", "layer", pytest.approx(10.0)), ("FAKE mm2", "CaskGemmMatrixMultiply", pytest.approx(4.0)),
        ("FAKE softmax", "layer", pytest.approx(1.0))]
    assert id(context) not in engine.bound  # the profiled context's binding is dropped
    # the timed path is untouched: a normal run still uses the timed context
    launch = engine.prepare(feeds(4))
    launch()
    assert rt.violations == [] and context.enqueues == 4


def test_a_failed_report_is_a_layer_profile_error_not_a_crash(
        rt: FakeRuntime, specs: dict, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811  (fixtures)
    from pytest_trtbench.layer_profile import LayerProfileError

    class Refusing(ProfilingContext):
        def report_to_profiler(self) -> bool:
            return False

    monkeypatch.setattr(fake_trt, "FakeContext", Refusing)
    engine, _ = load(rt, specs["mlp"])
    with pytest.raises(LayerProfileError, match="report_to_profiler"):
        engine.layer_profile({"x": np.ones((4, 16), np.float32)}, 2)
