"""Model sources and live references.

A suite's model is an ONNX file or a PyTorch module factory. A factory is built with the suite's
seed (so random weights, and therefore the engine cache key, are stable), exported to ONNX, and kept
as the live reference. An ONNX file's reference is ONNX Runtime's CPU provider on the fp32 model.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol

from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.suite import Suite, SuiteError

if TYPE_CHECKING:
    import numpy as np

    from pytest_trtbench.backends.base import Launch

ONNX_OPSET = 17


class TorchUnavailable(SuiteError):
    """A PyTorch-factory suite on a runner where torch can't be imported: its cases are skipped with this."""


class Reference(Protocol):
    name: str

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Launch: ...


@dataclass
class ModelSource:
    onnx_path: Path
    input_names: list[str]
    output_names: list[str]
    reference: Reference | None
    static_input_shapes: dict[str, tuple[int | None, ...]] | None = None
    """Per input, the dims the ONNX file fixes (``None`` where dynamic): used to skip impossible cases."""


def _onnx_io(path: Path) -> tuple[list[str], list[str], dict[str, tuple[int | None, ...]]]:
    """The file's real input names, output names and input dims (``None`` where the size is not fixed)."""
    from pytest_trtbench.onnx_suite import read_signature

    signature = read_signature(path)
    static = {t.name: tuple(d if isinstance(d, int) else None for d in t.dims) for t in signature.inputs}
    return [t.name for t in signature.inputs], signature.output_names, static


def load_model(suite: Suite, work_dir: Path, device: DeviceInfo, exports: Path | None = None) -> ModelSource:
    """Resolve the suite's model to an ONNX file plus a reference. *exports*: where PyTorch-factory exports are
    kept for runs without torch (:mod:`pytest_trtbench.export_cache`)."""
    if suite.is_onnx_file:
        path = suite.onnx_path()
        if not path.is_file():
            raise SuiteError(f"suite {suite.name} ({suite.source_file}): ONNX file {path} does not exist")
        inputs, outputs, static = _onnx_io(path)
        declared = [i.name for i in suite.inputs]
        if sorted(declared) != sorted(inputs):
            raise SuiteError(
                f"suite {suite.name}: declares inputs {declared} but {path.name} has inputs {inputs}; "
                "make the Input names match the model"
            )
        return ModelSource(path, inputs, outputs, OnnxReference(path), static_input_shapes=static)
    try:
        import torch
    except ImportError:
        from pytest_trtbench.export_cache import cached_export

        cached = cached_export(exports, suite, ONNX_OPSET) if exports is not None else None
        if cached is not None:  # no live reference: accuracy against the baseline's golden fingerprints
            return ModelSource(cached[0], [i.name for i in suite.inputs], cached[1], None)
        raise TorchUnavailable(
            f"suite {suite.name} defines its model in PyTorch, which can't be imported here (it is needed to "
            "export the model): pip install 'pytest-trtbench[torch]', give the suite an ONNX file, or run it once "
            "where torch is (its export is then kept in the cache dir)"
        ) from None
    torch.manual_seed(suite.seed)
    module = suite.model()  # type: ignore[operator]
    if not isinstance(module, torch.nn.Module):
        raise SuiteError(f"suite {suite.name}: model factory returned {type(module).__name__}, not a torch.nn.Module")
    module.eval()
    path = work_dir / f"{suite.name}.onnx"
    output_names = export_onnx(suite, module, path)  # on the CPU, before the reference moves to the GPU
    if exports is not None:
        from pytest_trtbench.export_cache import store_export

        store_export(exports, suite, ONNX_OPSET, path, output_names)
    reference = TorchReference(module, [i.name for i in suite.inputs], device)
    reference.output_names = output_names
    return ModelSource(path, [i.name for i in suite.inputs], output_names, reference)


def export_onnx(suite: Suite, module: Any, path: Path) -> list[str]:
    """Export with the TorchScript exporter: fast, stable with dynamic axes, and what TensorRT users feed."""
    import torch

    from pytest_trtbench.inputs import make_feeds

    shapes = suite.cases()[0].shape_map()
    feeds = make_feeds(suite, shapes)
    args = tuple(torch.from_numpy(feeds[i.name]) for i in suite.inputs)
    with torch.no_grad():
        try:
            sample = module(*args)
        except Exception as exc:  # the user's model on the declared inputs: dtype or shape mismatch
            fed = ", ".join(f"{k} {a.dtype}[{'x'.join(map(str, a.shape))}]" for k, a in feeds.items())
            raise SuiteError(
                f"suite {suite.name}: the model fails on the declared inputs ({fed}): {type(exc).__name__}: "
                f"{str(exc)[:200]}; make each Input's dtype and shape what the model expects"
            ) from None
    n_out = len(_flatten_outputs(sample))
    output_names = list(suite.output_names or [f"output_{k}" for k in range(n_out)])
    if len(output_names) != n_out:
        raise SuiteError(f"suite {suite.name}: output_names has {len(output_names)} names, the model returns {n_out} outputs")
    dynamic_axes = {
        i.name: {axis: d for axis, d in enumerate(i.shape) if isinstance(d, str)} for i in suite.inputs
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
        try:
            torch.onnx.export(
                module, args, str(tmp), input_names=[i.name for i in suite.inputs], output_names=output_names,
                dynamic_axes=dynamic_axes, opset_version=ONNX_OPSET, dynamo=False,
            )
        except Exception as exc:
            raise SuiteError(f"suite {suite.name}: torch.onnx.export failed: {type(exc).__name__}: {exc}") from None
    tmp.replace(path)
    return output_names


def _flatten_outputs(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten_outputs(v)]
    if hasattr(value, "to_tuple"):  # transformers ModelOutput
        return [t for v in value.to_tuple() for t in _flatten_outputs(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten_outputs(v)]
    return []


@contextlib.contextmanager
def full_fp32(on_cuda: bool) -> Iterator[None]:
    """The reference is true fp32 on a GPU: TF32 off for matmuls and convolutions inside the block, and the
    process's own settings (a user's test may want TF32) restored after it. Nothing to do on the CPU."""
    if not on_cuda:
        yield
        return
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class TorchReference:
    """The PyTorch module itself, fp32, on the run's device."""

    def __init__(self, module: Any, input_names: list[str], device: DeviceInfo) -> None:
        import torch

        self.torch_device = torch.device("cuda" if device.has_cuda and torch.cuda.is_available() else "cpu")
        self.module = module.to(self.torch_device)
        self.input_names = input_names
        self.output_names: list[str] = []
        self.name = f"torch-{self.torch_device.type}"

    def _args(self, feeds: Mapping[str, np.ndarray]) -> tuple[Any, ...]:
        import torch

        return tuple(torch.from_numpy(feeds[n]).to(self.torch_device) for n in self.input_names)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad(), full_fp32(self.torch_device.type == "cuda"):
            outputs = _flatten_outputs(self.module(*self._args(feeds)))
        return {name: t.detach().float().cpu().numpy() for name, t in zip(self.output_names, outputs)}

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> TorchLaunch:
        return TorchLaunch(self.module, self._args(feeds), self.torch_device)


class TorchLaunch:
    def __init__(self, module: Any, args: tuple[Any, ...], device: Any) -> None:
        import torch

        self.module, self.args = module, args
        self.cuda_stream = torch.cuda.current_stream() if device.type == "cuda" else None
        self._no_grad = torch.no_grad

    def __call__(self) -> None:
        with self._no_grad(), full_fp32(self.cuda_stream is not None):
            self.module(*self.args)

    def synchronize(self) -> None:
        if self.cuda_stream is not None:
            self.cuda_stream.synchronize()

    def capture_graph(self) -> Callable[[], None] | str:
        """Capture one forward into a ``torch.cuda.CUDAGraph``; return its replay, or why not.

        As the torch docs prescribe: warm up on a side stream first (lazy cuBLAS/cuDNN handles and
        autotuning must not be captured), capture on a side stream (``torch.cuda.graph``'s own;
        capture is illegal on the legacy default stream), replay on :attr:`cuda_stream`. The
        replay reuses the captured input and output memory, so the inputs must stay where
        :meth:`TorchReference.prepare` put them (they do: ``self.args`` is kept alive).
        """
        if self.cuda_stream is None:
            return "a CPU launch: CUDA graphs need a CUDA device"
        import torch

        from pytest_trtbench.cuda.torch_layer import TorchCaptureGuard

        stream = self.cuda_stream
        guard = TorchCaptureGuard()
        side = torch.cuda.Stream()
        side.wait_stream(stream)
        try:
            with torch.cuda.stream(side), self._no_grad(), full_fp32(True):
                for _ in range(3):
                    self.module(*self.args)
            stream.wait_stream(side)
            stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with self._no_grad(), full_fp32(True), torch.cuda.graph(graph):  # kernels are chosen at capture
                self._graph_outputs = self.module(*self.args)  # the graph's output memory stays alive
        except RuntimeError as exc:  # e.g. a host sync (.item(), CPU tensors) inside forward
            guard.restore()  # the current stream and the CUDA RNG, or later random ops in the process fail
            torch.cuda.synchronize()
            return f"torch.cuda.graph capture failed: {str(exc).splitlines()[0][:300]}"
        self._graph = graph
        if torch.cuda.current_stream() == stream:
            return graph.replay

        def replay() -> None:
            with torch.cuda.stream(stream):
                graph.replay()

        return replay


class OnnxReference:
    """ONNX Runtime's CPU provider on the original fp32 model: the reference for ONNX-file suites."""

    name = "onnxruntime-cpu-fp32"

    def __init__(self, path: Path) -> None:
        self._path = path
        self._engine: Any = None

    def _session(self) -> Any:
        # created on first use: a build-only run never needs it, and the engine's own parser
        # should be the one to report a broken model
        if self._engine is None:
            from pytest_trtbench.backends.onnxruntime import OnnxRuntimeEngine

            self._engine = OnnxRuntimeEngine(self._path, DeviceInfo(gpu="cpu", device_name="cpu", kind="cpu"),
                                             optimize=False)
        return self._engine

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._session().run(feeds)

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Launch:
        return self._session().prepare(feeds)
