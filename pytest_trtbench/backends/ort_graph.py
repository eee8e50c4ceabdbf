"""ONNX Runtime CUDA graphs for timing: the graph session, its shape-pinned model, and the replay check.

ONNX Runtime refuses CUDA graphs for a dynamic-shape model (its shape ops run on the CPU provider), so
:func:`graph_session` first loads a *shape-pinned specialization* of the engine (:func:`pin_input_shapes`)
and reports ``cuda-graph-pinned``, then falls back to the dynamic engine itself (``cuda-graph``). Each is
captured by the CUDA layer (replays queue back to back) or, where that fails, replayed through ONNX
Runtime's own graph (``ort-cuda-graph[-pinned]``, host-synchronous: :class:`CudaGraphSession`).
A replay that computes something else than a plain run is refused (:func:`replay_mismatch`).
Used by :meth:`pytest_trtbench.backends.onnxruntime.OnnxRuntimeEngine.cuda_graph`, which hands in the
``onnxruntime`` module: this module imports neither onnxruntime nor the backend.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pytest_trtbench.backends.base import BackendError

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.cuda.layer import CudaLayer, DeviceBuffer, Stream

PINNED_FILE = "model.onnx"
CUDA_GRAPH, ORT_CUDA_GRAPH, PINNED = "cuda-graph", "ort-cuda-graph", "-pinned"
"""Timing methods: ``cuda-graph`` (ORT's run captured into a graph of the CUDA layer and replayed back to back,
as ``trtexec --useCudaGraph`` times), ``ort-cuda-graph`` (ONNX Runtime's own graph, whose every replay waits
for the GPU: the fallback); ``-pinned`` when the shape-pinned specialization was captured."""
CUDA_GRAPH_PINNED = CUDA_GRAPH + PINNED


def graph_session(
    ort: Any,
    key: Any,
    path: Path,
    feeds: Mapping[str, np.ndarray],
    output_names: list[str],
    expected: Mapping[str, np.ndarray],
    stream: Callable[[], Stream],
    precision: str,
) -> tuple[CudaGraphSession, Path | None] | str:
    """A graph session of the engine at *path* for the shapes of *feeds*, with the pinned model's path (to
    delete when the session is dropped; ``None`` for the dynamic engine), or the reasons none was captured.

    Tried in order: the pinned model captured by us, the pinned model with ONNX Runtime's own graph,
    then the dynamic engine the same two ways."""
    tf32 = "1" if precision == "tf32" else "0"
    reasons = []
    pinned = Path(tempfile.mkdtemp(prefix="trtbench-pinned-")) / PINNED_FILE
    try:
        pin_input_shapes(path, pinned, {name: tuple(a.shape) for name, a in feeds.items()})
    except BackendError as exc:
        reasons.append(f"pinned-shape graph: {exc}")
    else:
        made = _first_capture(ort, pinned, key, feeds, output_names, expected, stream, tf32, PINNED)
        if not isinstance(made, str):
            return made, pinned
        reasons.append(f"pinned-shape graph: {made}")
    shutil.rmtree(pinned.parent, ignore_errors=True)
    made = _first_capture(ort, path, key, feeds, output_names, expected, stream, tf32, "")
    if not isinstance(made, str):
        return made, None
    reasons.append(f"dynamic-shape graph: {made}")
    return "; ".join(reasons)


def _first_capture(ort: Any, path: Path, key: Any, feeds: Mapping[str, np.ndarray], output_names: list[str],
                   expected: Mapping[str, np.ndarray], stream: Callable[[], Stream], tf32: str,
                   suffix: str) -> CudaGraphSession | str:
    """Our capture of ORT's run, else ORT's own graph; or why neither (one reason when both said the same)."""
    reasons: list[str] = []
    for own in (True, False):
        try:
            session = CudaGraphSession(ort, path, key, feeds, output_names, expected, stream(), use_tf32=tf32,
                                       own_capture=own, pinned=bool(suffix))
        except BackendError as exc:
            reasons.append(str(exc))
            continue
        if reasons:
            session.note = (f"timed ONNX Runtime's own CUDA graph (each replay waits for the GPU): "
                            f"{reasons[0]}")
        return session
    own_reason, ort_reason = reasons
    return own_reason if own_reason == ort_reason else f"{own_reason} (ONNX Runtime's own graph: {ort_reason})"


def bind_device_inputs(binding: Any, cuda: CudaLayer, stream: Stream,
                       feeds: Mapping[str, np.ndarray]) -> dict[str, DeviceBuffer]:
    """Copy each feed into a device buffer of the CUDA layer and bind it by address (IOBinding's
    ``bind_input(..., buffer_ptr)``); the buffers are returned to be kept alive as long as the binding."""
    import numpy as np

    buffers = {}
    for name, array in feeds.items():
        host = np.ascontiguousarray(array)
        buffers[name] = cuda.upload(host, stream)
        binding.bind_input(name, "cuda", 0, host.dtype.type, list(host.shape), buffers[name].ptr)
    return buffers


class CudaGraphSession:
    """An ONNX Runtime session with ``enable_cuda_graph``, its inputs and outputs bound on the device.

    Inputs and pre-allocated outputs sit at fixed device addresses bound with IOBinding (a graph bakes
    the addresses in); the buffers are the CUDA layer's, on the engine's stream (ORT's
    ``user_compute_stream``); new input values are copied into the same buffers.

    *own_capture* (``cuda-graph``): regular runs (run option ``gpu_graph_id=-1``: ORT captures nothing)
    warm up, then one run with ``disable_synchronize_execution_providers=1`` is captured by the CUDA
    layer into its own graph (thread-local capture mode), and a replay is one ``cudaGraphLaunch``: replays
    queue back to back with no host wait, so host wake-ups are not in the timing. With
    ``enable_cuda_graph`` on, ORT frees its deferred pinned-host staging buffers with a stream
    synchronize, which invalidates the capture: a run that needs them is refused, never replayed
    with freed memory. Otherwise (``ort-cuda-graph``) ORT's own recipe: its graph is captured on the
    first runs and ``run_with_iobinding`` replays it, synchronizing the stream on every call
    (``host_synchronous``). ORT refuses (and we report why) models with control flow or with nodes
    outside the CUDA provider. A replay that computes something else than a plain run is refused.
    """

    WARMUP_RUNS = 3  # regular runs first: memory arena grown, kernels chosen (and ORT's own graph captured)

    def __init__(self, ort: Any, path: Path, key: Any, feeds: Mapping[str, np.ndarray], output_names: list[str],
                 expected: Mapping[str, np.ndarray], stream: Stream, use_tf32: str = "0", *,
                 own_capture: bool = True, pinned: bool = False) -> None:
        """*ort* is the ``onnxruntime`` module (the backend imports it, with its install hint)."""
        self.key = key
        self.stream = stream
        self.cuda = stream.layer
        self.own_capture = own_capture
        self.timing_method = (CUDA_GRAPH if own_capture else ORT_CUDA_GRAPH) + (PINNED if pinned else "")
        """What :func:`pytest_trtbench.measure.measure_latency` reports as the timing method."""
        self.host_synchronous = not own_capture
        """ORT's own replay waits for the GPU in every call; ours only enqueues."""
        self._graph: Callable[[], None] | None = None
        self.note = ""
        """Why this replay is a fallback (read by :func:`pytest_trtbench.measure.measure_latency`), or ``""``."""
        options = ort.SessionOptions()
        # a pinned model is re-optimized so that ORT folds the now-constant shape arithmetic
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # as the engine loads
        options.log_severity_level = 3
        providers = [("CUDAExecutionProvider", {"device_id": 0, "enable_cuda_graph": "1", "use_tf32": use_tf32,
                                                "user_compute_stream": str(stream.handle)})]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
            self.binding = self.session.io_binding()
            self.inputs = bind_device_inputs(self.binding, self.cuda, stream, feeds)
            self.outputs = {}
            for name in output_names:
                want = expected[name]
                self.outputs[name] = self.cuda.alloc(want.nbytes)
                self.binding.bind_output(name, "cuda", 0, want.dtype.type, list(want.shape), self.outputs[name].ptr)
        except Exception as exc:  # onnxruntime's Fail / InvalidArgument / RuntimeException have no common base
            raise BackendError(f"onnxruntime CUDA graph unavailable: {_said(exc)}") from None
        what = "capturing onnxruntime's run into a CUDA graph" if own_capture else "onnxruntime's own CUDA graph"
        try:
            if own_capture:
                self._graph = self._capture(ort)
            else:
                for _ in range(self.WARMUP_RUNS):
                    self.session.run_with_iobinding(self.binding)
            self.replay()
            replayed = {n: self.cuda.download(self.outputs[n], expected[n].shape, expected[n].dtype, stream)
                        for n in output_names}
        except Exception as exc:  # as above, plus the CUDA layer's CudaLayerError
            raise BackendError(f"{what} failed: {_said(exc)}") from None
        for name, want in expected.items():
            why = replay_mismatch(replayed[name], want)
            if why:
                raise BackendError(f"{what}: the replay gives a different {name!r} than a plain run "
                                   f"({why}); not timing it")

    def _capture(self, ort: Any) -> Callable[[], None]:
        regular = ort.RunOptions()
        regular.add_run_config_entry("gpu_graph_id", "-1")  # ORT captures no graph of its own
        for _ in range(self.WARMUP_RUNS):
            self.session.run_with_iobinding(self.binding, regular)
        self.stream.synchronize()
        queued = ort.RunOptions()
        queued.add_run_config_entry("gpu_graph_id", "-1")
        queued.add_run_config_entry("disable_synchronize_execution_providers", "1")
        return self.cuda.capture(self.stream, lambda: self.session.run_with_iobinding(self.binding, queued))

    def update_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        import numpy as np

        for name, array in feeds.items():
            self.cuda.copy_to_device(self.inputs[name], np.ascontiguousarray(array), self.stream)

    def replay(self) -> None:
        if self._graph is not None:
            self._graph()
        else:
            self.session.run_with_iobinding(self.binding)

    __call__ = replay


def _said(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


#: Largest relative L2 difference between a graph replay's output and the plain run's that still
#: counts as "the same computation". The replayed session may fuse differently (a pinned model is
#: re-optimized), so low-precision outputs differ by rounding: on an H200, fp16 BERT-base outputs of
#: a pinned replay failed an elementwise rtol 1e-2 / atol 1e-3 check. Accuracy itself is judged on
#: the dynamic engine; this only guards against timing a graph that computes something else.
REPLAY_MAX_REL_L2 = 2e-2


def replay_mismatch(got: np.ndarray, want: np.ndarray) -> str:
    """Why *got* (a replay's output) is not the computation that gave *want*, or ``""``."""
    import numpy as np

    if got.shape != want.shape:
        return f"shape {got.shape} vs {want.shape}"
    g, w = got.astype(np.float64), want.astype(np.float64)
    if not np.array_equal(np.isnan(g), np.isnan(w)):
        return "NaN in different places"
    finite = np.isfinite(w)
    if not np.array_equal(g[~finite], w[~finite], equal_nan=True):
        return "infinities differ"
    scale = float(np.linalg.norm(w[finite]))
    rel = float(np.linalg.norm(g[finite] - w[finite])) / scale if scale > 0 else float(np.abs(g[finite]).max(initial=0))
    return "" if rel <= REPLAY_MAX_REL_L2 else f"relative L2 difference {rel:.2e} > {REPLAY_MAX_REL_L2:g}"


def pin_input_shapes(src: Path, dst: Path, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Write *src* with its graph inputs' dims fixed to *shapes* and ``value_info`` cleared.

    With every input dim a ``dim_value``, ONNX Runtime's optimizer folds ``Shape`` / ``Gather`` /
    ``Concat`` chains into constants, so no node is left for the CPU provider and the CUDA provider
    can capture the whole graph. Symbolic output dims are cleared too (ORT infers them). The pinned
    model computes what the dynamic one computes at these shapes. BackendError when an input is
    missing, has another rank, or a fixed dim of the file disagrees.
    """
    import onnx

    try:
        model = onnx.load(str(src))
    except Exception as exc:  # DecodeError, OSError
        raise BackendError(f"cannot read {src} to pin its shapes: {type(exc).__name__}: {exc}") from None
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    for value in graph.input:
        if value.name in initializers:
            continue
        if value.name not in shapes:
            raise BackendError(f"cannot pin {src.name}: no shape given for input {value.name!r}")
        dims = value.type.tensor_type.shape.dim
        want = shapes[value.name]
        if len(dims) != len(want):
            raise BackendError(f"cannot pin {src.name}: input {value.name!r} has rank {len(dims)}, shape {want} given")
        for dim, size in zip(dims, want):
            if dim.HasField("dim_value") and dim.dim_value != size:
                raise BackendError(f"cannot pin {src.name}: input {value.name!r} fixes a dim to {dim.dim_value}, "
                                   f"shape {want} given")
            dim.Clear()
            dim.dim_value = int(size)
    del graph.value_info[:]
    for value in graph.output:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.Clear()
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
