"""ONNX Runtime as an engine under test: CPU provider here, CUDA provider where a GPU is present.

The "engine" is the model ONNX Runtime runs (the fp32 model, the Q/DQ int8 model, or the fp16
conversion) stored in the engine cache, and loaded with graph optimization on. ONNX Runtime's saved
*optimized* model is not kept: it materializes constant-folded tensors (a 4 KB file became a 244 MB
entry) and, for files that list initializers as graph inputs, turned weights into required inputs
("Required inputs ... are missing"). ``benchmarks/ort_engine_storage.py`` measures both ways.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pytest_trtbench.backends.base import BackendError, BuildOption, BuildOutput, BuildRequest
from pytest_trtbench.backends.ort_graph import CudaGraphSession, bind_device_inputs, graph_session
from pytest_trtbench.device import DeviceInfo

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.cuda.layer import CudaLayer, DeviceBuffer, Stream
    from pytest_trtbench.layer_profile import LayerProfile

ENGINE_FILE = "model.onnx"
ENGINE_FORMAT = "source-model-optimized-at-load"
"""Part of the cache identity: entries of the old format (a saved optimized model) are not reused."""


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise BackendError("onnxruntime is not installed: pip install 'pytest-trtbench[onnxruntime]'") from None
    return onnxruntime


def _providers(device: DeviceInfo, precision: str = "fp32", stream: Stream | None = None) -> list[Any]:
    """Providers for a session. On CUDA, TF32 is off unless the precision is ``tf32``: ONNX Runtime's
    CUDA provider enables TF32 by default, which would make an "fp32" engine silently lose precision.
    With *stream* (a CUDA-layer stream), ORT computes on it (``user_compute_stream``), so events recorded
    there bracket its work; the stream is not part of the cache identity."""
    if device.kind != "cuda":
        return ["CPUExecutionProvider"]
    options = {"use_tf32": "1" if precision == "tf32" else "0"}
    if stream is not None:
        options["user_compute_stream"] = str(stream.handle)
    return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]


def _cuda(device: DeviceInfo, requested: str) -> CudaLayer | None:
    """The CUDA layer an engine on *device* uses (``--trt-cuda``), ``None`` on the CPU."""
    if not device.has_cuda:
        return None
    from pytest_trtbench.cuda import CudaLayerError, cuda_layer

    try:
        return cuda_layer(requested)
    except CudaLayerError as exc:
        raise BackendError(str(exc)) from None


def _provider_label(device: DeviceInfo, precision: str) -> str:
    return ",".join(p if isinstance(p, str) else f"{p[0]}{sorted(p[1].items())}" for p in _providers(device, precision))


class OnnxRuntimeBackend:
    name = "onnxruntime"
    build_options: tuple[BuildOption, ...] = ()
    """None: ONNX Runtime's session options are fixed here (graph optimization on), so no build option
    reaches its requests or its cache keys."""

    def unsupported_reason(self, precision: str, device: DeviceInfo) -> str | None:
        try:
            ort = _ort()
        except BackendError as exc:
            return str(exc)
        if device.kind == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            return "onnxruntime has no CUDAExecutionProvider here: pip install onnxruntime-gpu"
        if precision in ("fp16",) and device.kind != "cuda":
            return "fp16 on onnxruntime needs the CUDA provider; the CPU provider lacks fp16 kernels for most ops"
        if precision == "tf32" and device.kind != "cuda":
            return "tf32 is a GPU math mode: it needs the CUDA provider"
        if precision in ("bf16", "fp8"):
            return f"{precision} is not a precision the onnxruntime backend builds (use --trt-backend=tensorrt)"
        return None

    def execution_unavailable_reason(self, device: DeviceInfo) -> str | None:
        if device.target_only:
            return f"{device.gpu} is not present: built, not executed"
        return None

    def cache_identity(self, request: BuildRequest) -> dict[str, str]:
        ort = _ort()
        return {"onnxruntime": ort.__version__, "providers": _provider_label(request.device, request.precision),
                "engine_format": ENGINE_FORMAT}

    def build(self, request: BuildRequest, out_dir: Path, cache_root: Path) -> BuildOutput:
        ort = _ort()
        from pytest_trtbench.precision.prepare import prepare_model

        prepared = prepare_model(request, out_dir)
        engine_file = out_dir / ENGINE_FILE
        if prepared.path.parent == out_dir:
            prepared.path.replace(engine_file)  # the int8 / fp16 copy is the engine: keep one file, not two
        else:
            copy_model(prepared.path, engine_file)
        session = _session(ort, engine_file, request.device, request.precision, source=request.onnx_path)
        _check_inputs(session, engine_file, request.onnx_path)
        files = [p.name for p in out_dir.iterdir() if p.is_file()]
        return BuildOutput(files=files, metadata={**prepared.metadata, "onnxruntime": ort.__version__})

    def verify(self, entry_dir: Path, metadata: Mapping[str, Any]) -> None:
        import onnx

        path = entry_dir / ENGINE_FILE
        try:
            onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # DecodeError, OSError, ...
            raise BackendError(f"cannot parse {path}: {type(exc).__name__}") from None

    def load(self, entry_dir: Path, metadata: Mapping[str, Any], request: BuildRequest) -> OnnxRuntimeEngine:
        return OnnxRuntimeEngine(entry_dir / ENGINE_FILE, request.device, request.precision, cuda=request.cuda)


def copy_model(src: Path, dst: Path) -> None:
    """Copy an ONNX file and the external-data files it names (kept relative to it) into *dst*'s folder."""
    import shutil

    import onnx
    from onnx.external_data_helper import uses_external_data

    model = onnx.load(str(src), load_external_data=False)
    locations = {entry.value for init in model.graph.initializer if uses_external_data(init)
                 for entry in init.external_data if entry.key == "location"}
    shutil.copyfile(src, dst)
    for location in sorted(locations):
        target = dst.parent / location
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.parent / location, target)


def _session(ort: Any, path: Path, device: DeviceInfo, precision: str, *, optimize: bool = True,
             source: Path | None = None, stream: Stream | None = None) -> Any:
    """An inference session on *path*, graph optimization at ORT's extended level unless *optimize* is off."""
    options = ort.SessionOptions()
    level = ort.GraphOptimizationLevel
    options.graph_optimization_level = level.ORT_ENABLE_EXTENDED if optimize else level.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=_providers(device, precision, stream))
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types without a common base
        raise BackendError(f"onnxruntime could not load {source or path}: {type(exc).__name__}: {exc}") from None


def _check_inputs(session: Any, path: Path, source: Path) -> None:
    """Refuse (never cache) an engine whose session requires inputs the model does not declare."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    declared = [i.name for i in graph.input if i.name not in initializers]
    extra = [i.name for i in session.get_inputs() if i.name not in declared]
    if extra:
        raise BackendError(f"onnxruntime session for {source} requires inputs {extra} beyond the model's inputs "
                           f"{declared}; not caching this engine")


class OnnxRuntimeEngine:
    def __init__(self, path: Path, device: DeviceInfo, precision: str = "fp32", *, optimize: bool = True,
                 cuda: str = "auto") -> None:
        """*optimize* off runs the file exactly as given (the ONNX-file reference does); *cuda* is the
        ``--trt-cuda`` choice, used on a GPU for ORT's stream, device buffers and timing events."""
        ort = _ort()
        self.precision = precision
        self.cuda = _cuda(device, cuda)
        self.stream = self.cuda.stream() if self.cuda is not None else None
        self.session = _session(ort, path, device, precision, optimize=optimize, stream=self.stream)
        self.device = device
        self.path = path
        self._graph: CudaGraphSession | None = None
        self._pinned: Path | None = None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        _check_feed_types(self.session, feeds)
        try:
            values = self.session.run(self.output_names, dict(feeds))
        except Exception as exc:
            raise BackendError(f"onnxruntime run failed on {self.path}: {exc}") from None
        return dict(zip(self.output_names, values))

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> OnnxRuntimeLaunch:
        return OnnxRuntimeLaunch(self.session, feeds, self.output_names, self.device, engine=self)

    def layer_profile(self, feeds: Mapping[str, np.ndarray], runs: int) -> LayerProfile:
        """Per-node times from a separate profiled session (never this timed one): ``backends/ort_profile.py``."""
        from pytest_trtbench.backends.ort_profile import ort_layer_profile

        return ort_layer_profile(self.path, _providers(self.device, self.precision), feeds, runs,
                                 isolated=self.device.kind == "cuda")

    def cuda_graph(self, feeds: Mapping[str, np.ndarray]) -> CudaGraphSession | str:
        """A CUDA-graph session for timing at the shapes of *feeds*, or why there is none.

        ONNX Runtime refuses CUDA graphs for a dynamic-shape model (its shape ops run on the CPU
        provider), so the graph session loads a *shape-pinned specialization* of the engine
        (:func:`pin_input_shapes`: the graph inputs get the case's fixed dims, ``value_info`` is
        cleared, and ORT constant-folds the shape arithmetic away) and reports ``cuda-graph-pinned``.
        Where that cannot be captured, the dynamic engine itself is tried (``cuda-graph``); the
        reasons of both are returned when neither works. Accuracy is still judged on the dynamic
        engine (:meth:`run`). A graph needs its own session with inputs and outputs at fixed device
        addresses; the last one is kept (a confirmation re-measurement replays it) and freed before
        the next shape's is made, so at most one extra copy of the weights is on the GPU.
        """
        if self.device.kind != "cuda" or "CUDAExecutionProvider" not in self.session.get_providers():
            return "onnxruntime runs on the CPU provider here: CUDA graphs need the CUDA provider"
        key = tuple(sorted((name, tuple(a.shape), str(a.dtype)) for name, a in feeds.items()))
        if self._graph is not None and self._graph.key == key:
            self._graph.update_inputs(feeds)
            return self._graph
        self.close_graph()  # free the previous graph session (and its pinned file) before the next
        try:
            expected = self.run(feeds)
        except BackendError as exc:
            return str(exc)
        made = graph_session(_ort(), key, self.path, feeds, self.output_names, expected, self._stream, self.precision)
        if isinstance(made, str):
            return made
        self._graph, self._pinned = made
        return self._graph

    def _stream(self) -> Stream:
        if self.stream is None:
            raise BackendError("internal: a CUDA graph session without a CUDA stream")
        return self.stream

    def close_graph(self) -> None:
        self._graph = None
        if self._pinned is not None:
            shutil.rmtree(self._pinned.parent, ignore_errors=True)
            self._pinned = None

    def close(self) -> None:
        self.close_graph()
        del self.session


class OnnxRuntimeLaunch:
    """Inputs bound once with IOBinding. On CUDA they are CUDA-layer device buffers (bound by address),
    ORT computes on the engine's layer stream, and outputs stay on the device."""

    host_synchronous = True
    """``run_with_iobinding`` synchronizes ORT's stream before it returns."""

    def __init__(self, session: Any, feeds: Mapping[str, np.ndarray], output_names: list[str], device: DeviceInfo,
                 engine: OnnxRuntimeEngine | None = None) -> None:
        self.binding = session.io_binding()
        self.session = session
        self.feeds = feeds
        self.engine = engine
        self.cuda_stream: Stream | None = None
        self.buffers: dict[str, DeviceBuffer] = {}
        on_cuda = (device.kind == "cuda" and engine is not None and engine.cuda is not None
                   and "CUDAExecutionProvider" in session.get_providers())
        if on_cuda:
            assert engine is not None and engine.cuda is not None and engine.stream is not None
            self.cuda_stream = engine.stream
            self.buffers = bind_device_inputs(self.binding, engine.cuda, engine.stream, feeds)
        else:
            for name, array in feeds.items():
                self.binding.bind_cpu_input(name, array)
        for name in output_names:
            self.binding.bind_output(name, "cuda" if on_cuda else "cpu")

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.binding)

    def synchronize(self) -> None:
        if self.cuda_stream is not None:
            self.cuda_stream.synchronize()

    def capture_graph(self) -> CudaGraphSession | str:
        """Replay through a CUDA-graph session of the engine (see :meth:`OnnxRuntimeEngine.cuda_graph`)."""
        if self.cuda_stream is None or self.engine is None:
            return "a CPU launch: CUDA graphs need the CUDA provider"
        return self.engine.cuda_graph(self.feeds)


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(int8)": "int8",
              "tensor(uint8)": "uint8", "tensor(bool)": "bool"}


def _check_feed_types(session: Any, feeds: Mapping[str, np.ndarray]) -> None:
    """An input of the wrong dtype is the suite's mistake: name the input and the fix, not ORT's internals."""
    for spec in session.get_inputs():
        arr = feeds.get(spec.name)
        want = _ORT_TYPES.get(spec.type)
        if arr is not None and want is not None and str(arr.dtype) != want:
            raise BackendError(
                f"input {spec.name!r} is {arr.dtype} but the model expects {want}: "
                f"declare Input({spec.name!r}, ..., dtype={want!r}) in the suite"
            )
