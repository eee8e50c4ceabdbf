"""ONNX Runtime graph timing on a GPU, driven on CPU through a FAKE onnxruntime module and a FAKE CUDA layer.

NOT onnxruntime, NOT CUDA: the fake stands in for the CUDA provider's documented behaviour that the
real code (``pytest_trtbench.backends.ort_graph``, unmodified) relies on, so its contract is checked here:
a run with ``disable_synchronize_execution_providers=1`` enqueues without waiting (capturable); a run
that synchronizes inside a stream capture invalidates it; ``gpu_graph_id=-1`` keeps ORT from capturing
its own graph; ORT's own graph replays synchronize. The real capture ran only on the GPU machine
(``benchmarks/results/``). The model file is real (pinned with onnx).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from fake_cuda import HostMemoryCudaLayer

from pytest_trtbench.backends.ort_graph import CUDA_GRAPH_PINNED, CudaGraphSession, graph_session
from pytest_trtbench.cuda.layer import CudaLayerError, DeviceBuffer, Graph, Stream

onnx = pytest.importorskip("onnx")


class FakeLayer(HostMemoryCudaLayer):
    """FAKE CUDA layer: device buffers are host arrays found by address; a capture records the work that
    the fake session enqueues and replays it; a synchronize during a capture invalidates it (as CUDA does)."""

    def __init__(self) -> None:
        self.by_ptr: dict[int, np.ndarray] = {}
        self.capturing: list[Callable[[], None]] | None = None
        self.invalidated = False
        self.launches = 0

    def alloc(self, nbytes: int) -> DeviceBuffer:
        buffer = super().alloc(nbytes)
        self.by_ptr[buffer.ptr] = buffer.native
        return buffer

    def stream(self) -> Stream:
        return Stream(self, 0x5000, None)

    def stream_synchronize(self, stream: Stream) -> None:
        self.sync()

    def sync(self) -> None:
        if self.capturing is not None:
            self.invalidated = True
            raise RuntimeError("cudaErrorStreamCaptureUnsupported: operation not permitted when stream is capturing")

    def capture(self, stream: Stream, work: Callable[[], Any]) -> Graph:
        self.capturing, self.invalidated = [], False
        try:
            work()
        finally:
            recorded, self.capturing = self.capturing, None
        if self.invalidated or not recorded:
            raise CudaLayerError("fake: stream capture failed: cudaErrorStreamCaptureInvalidated")

        def replay() -> None:
            self.launches += 1
            for step in recorded:
                step()

        return Graph(replay)


class FakeOrt:
    """FAKE onnxruntime module for a model computing ``y = 2 * x`` (float32) on the CUDA provider.

    *staging*: the run needs deferred pinned-host staging buffers, which ORT frees with a stream
    synchronize when ``enable_cuda_graph`` is on. *wrong_replay*: a graph replay computes ``3 * x``."""

    def __init__(self, layer: FakeLayer, staging: bool = False, wrong_replay: bool = False) -> None:
        self.layer, self.staging, self.wrong_replay = layer, staging, wrong_replay
        self.sessions: list[FakeSession] = []

    class SessionOptions:
        pass

    class GraphOptimizationLevel:
        ORT_ENABLE_EXTENDED = 2

    class RunOptions:
        def __init__(self) -> None:
            self.entries: dict[str, str] = {}

        def add_run_config_entry(self, key: str, value: str) -> None:
            self.entries[key] = value

    def InferenceSession(self, path: str, options: Any, providers: list[Any]) -> FakeSession:  # noqa: N802
        (name, provider_options), = providers
        assert name == "CUDAExecutionProvider" and provider_options["enable_cuda_graph"] == "1"
        assert provider_options["user_compute_stream"] == str(0x5000)
        session = FakeSession(self, Path(path))
        self.sessions.append(session)
        return session


class FakeBinding:
    def __init__(self) -> None:
        self.ptrs: dict[str, int] = {}

    def bind_input(self, name: str, device: str, device_id: int, dtype: Any, shape: list[int], ptr: int) -> None:
        assert device == "cuda"
        self.ptrs[name] = ptr

    bind_output = bind_input


class FakeSession:
    """ORT's graph rules: a regular run computes; ``gpu_graph_id=-1`` runs are never captured by ORT;
    otherwise ORT captures its own graph on the 2nd run and replays it after (each replay synchronizes)."""

    def __init__(self, ort: FakeOrt, path: Path) -> None:
        self.ort, self.path = ort, path
        self.regular_runs = 0
        self.ort_graph_replays = 0
        self.run_options_seen: list[dict[str, str]] = []

    def io_binding(self) -> FakeBinding:
        self.binding = FakeBinding()
        return self.binding

    def _compute(self, binding: FakeBinding, factor: float) -> None:
        x = self.ort.layer.by_ptr[binding.ptrs["x"]].view(np.float32)
        y = self.ort.layer.by_ptr[binding.ptrs["y"]].view(np.float32)
        y[:] = factor * x

    def run_with_iobinding(self, binding: FakeBinding, run_options: FakeOrt.RunOptions | None = None) -> None:
        entries = run_options.entries if run_options is not None else {}
        self.run_options_seen.append(dict(entries))
        layer, factor = self.ort.layer, 3.0 if self.ort.wrong_replay else 2.0
        if entries.get("gpu_graph_id") != "-1":  # ORT's own graph: captured once, then replayed and synchronized
            self.regular_runs += 1
            if self.regular_runs > 2:
                self.ort_graph_replays += 1
                self._compute(binding, factor)
                return
        if layer.capturing is not None:
            layer.capturing.append(lambda: self._compute(binding, factor))
        else:
            self._compute(binding, 2.0)
        if self.ort.staging or entries.get("disable_synchronize_execution_providers") != "1":
            layer.sync()


def tiny_model(path: Path) -> Path:
    from onnx import TensorProto, helper

    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"])], "double",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [two])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def make(tmp_path: Path, **fake: bool) -> tuple[FakeOrt, CudaGraphSession | str, dict[str, np.ndarray]]:
    layer = FakeLayer()
    ort = FakeOrt(layer, **fake)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    expected = {"y": 2 * x}
    made = graph_session(ort, "key", tiny_model(tmp_path / "m.onnx"), {"x": x}, ["y"], expected, layer.stream, "fp32")
    if isinstance(made, str):
        return ort, made, expected
    session, pinned = made
    assert pinned is not None and pinned.exists()  # the shape-pinned specialization was captured
    return ort, session, expected


def test_our_capture_of_the_run_is_replayed_without_waiting_for_the_gpu(tmp_path: Path) -> None:
    ort, session, expected = make(tmp_path)
    assert isinstance(session, CudaGraphSession)
    assert session.timing_method == CUDA_GRAPH_PINNED and session.host_synchronous is False and session.note == ""
    (fake,) = ort.sessions
    # warm-up runs asked ORT for no graph of its own; the captured run asked ORT not to synchronize
    assert fake.run_options_seen[:3] == [{"gpu_graph_id": "-1"}] * 3
    assert fake.run_options_seen[3] == {"gpu_graph_id": "-1", "disable_synchronize_execution_providers": "1"}
    launches = ort.layer.launches
    session.update_inputs({"x": np.ones((2, 4), np.float32)})
    session()
    assert ort.layer.launches == launches + 1 and fake.ort_graph_replays == 0  # a graph launch, not an ORT run
    y = ort.layer.download(session.outputs["y"], (2, 4), np.float32, session.stream)
    assert np.array_equal(y, np.full((2, 4), 2.0, np.float32))  # the new inputs went through the graph


def test_a_run_that_must_synchronize_falls_back_to_onnx_runtimes_own_graph_and_says_why(tmp_path: Path) -> None:
    ort, session, _ = make(tmp_path, staging=True)
    assert isinstance(session, CudaGraphSession)
    assert session.timing_method == "ort-cuda-graph-pinned" and session.host_synchronous is True
    assert session.note.startswith("timed ONNX Runtime's own CUDA graph (each replay waits for the GPU): "
                                   "capturing onnxruntime's run into a CUDA graph failed: RuntimeError: "
                                   "cudaErrorStreamCaptureUnsupported")
    own, fallback = ort.sessions  # the failed capture's session is dropped, a fresh one replays ORT's graph
    session()
    assert fallback.ort_graph_replays >= 2 and own.ort_graph_replays == 0


def test_a_replay_that_computes_something_else_is_never_timed(tmp_path: Path) -> None:
    _, why, _ = make(tmp_path, wrong_replay=True)
    assert isinstance(why, str) and why.startswith("pinned-shape graph: capturing onnxruntime's run into a CUDA "
                                                   "graph: the replay gives a different 'y' than a plain run")
    assert "(ONNX Runtime's own graph: onnxruntime's own CUDA graph: the replay gives a different 'y'" in why
    assert "; dynamic-shape graph: " in why
