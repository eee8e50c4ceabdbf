"""A third-party backend, living outside ``pytest_trtbench``: the proof that one file plus one entry point
adds a backend (docs/architecture.md, "Adding a backend").

It runs models with ``onnx.reference.ReferenceEvaluator``, onnx's pure-Python evaluator: slow, but a
real execution of the model the shared precision step prepared (fp32 source, fp16 conversion, int8
Q/DQ). The tests register it through a throwaway ``.dist-info`` whose ``entry_points.txt`` says::

    [pytest_trtbench.backends]
    onnx-reference = onnx_reference_backend:OnnxReferenceBackend

Nothing here is imported by the package; it uses only the documented contract.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pytest_trtbench.backends.base import BackendError, BuildOption, BuildOutput, BuildRequest
from pytest_trtbench.build_options import int_in
from pytest_trtbench.device import DeviceInfo
from pytest_trtbench.precision.prepare import prepare_model

ENGINE_FILE = "engine.onnx"
COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
QDQ_OPSET = 19
"""The oldest opset whose Q/DQ the reference evaluator implements; quantized models are converted up to it."""


class OnnxReferenceBackend:
    name = "onnx-reference"
    build_options = (
        BuildOption("min_opset", int_in(1, 23), None, "convert the model up to at least this ONNX opset"),
    )

    def unsupported_reason(self, precision: str, device: DeviceInfo) -> str | None:
        if precision not in ("fp32", "fp16", "int8"):
            return f"{precision} is not a precision the onnx-reference backend builds"
        return None

    def execution_unavailable_reason(self, device: DeviceInfo) -> str | None:
        return f"{device.gpu} is not present: built, not executed" if device.target_only else None

    def cache_identity(self, request: BuildRequest) -> dict[str, str]:
        import onnx

        return {"onnx": onnx.__version__}

    def build(self, request: BuildRequest, out_dir: Path, cache_root: Path) -> BuildOutput:
        import onnx

        prepared = prepare_model(request, out_dir)
        model = onnx.load(str(prepared.path))
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        target = max(opset, int(request.options.get("min_opset", 0)))  # the declared build option, parsed
        if any(n.op_type == "DequantizeLinear" for n in model.graph.node):
            target = max(target, QDQ_OPSET)
        if target > opset:
            from onnx import version_converter

            model = version_converter.convert_version(model, target)
        onnx.save(model, str(out_dir / ENGINE_FILE))
        metadata = {**prepared.metadata, "engine_precisions": engine_precisions(model), "opset": target}
        return BuildOutput(files=[*prepared.files, ENGINE_FILE], metadata=metadata)

    def verify(self, entry_dir: Path, metadata: Mapping[str, Any]) -> None:
        import onnx

        try:
            onnx.load(str(entry_dir / ENGINE_FILE), load_external_data=False)
        except Exception as exc:  # DecodeError, OSError
            raise BackendError(f"cannot parse {entry_dir / ENGINE_FILE}: {type(exc).__name__}") from None

    def load(self, entry_dir: Path, metadata: Mapping[str, Any], request: BuildRequest) -> ReferenceEngine:
        self.verify(entry_dir, metadata)
        return ReferenceEngine(entry_dir / ENGINE_FILE)


def engine_precisions(model: Any) -> dict[str, int]:
    """Compute nodes per precision: ``int8`` when fed by a DequantizeLinear, ``fp16`` when a weight is
    float16, else ``fp32`` (the ``engine_precisions`` metadata key of the backend contract)."""
    from onnx import TensorProto

    dequantized = {out for node in model.graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    half = {init.name for init in model.graph.initializer if init.data_type == TensorProto.FLOAT16}
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in COMPUTE_OPS:
            kind = "int8" if set(node.input) & dequantized else "fp16" if set(node.input) & half else "fp32"
            counts[kind] = counts.get(kind, 0) + 1
    return counts


class ReferenceEngine:
    def __init__(self, path: Path) -> None:
        from onnx.reference import ReferenceEvaluator

        self._session = ReferenceEvaluator(str(path))
        self.input_names = list(self._session.input_names)
        self.output_names = list(self._session.output_names)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._session.run(None, {name: feeds[name] for name in self.input_names})
        return dict(zip(self.output_names, (np.asarray(v) for v in values)))

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> ReferenceLaunch:
        return ReferenceLaunch(self, {name: feeds[name] for name in self.input_names})

    def close(self) -> None:
        pass


class ReferenceLaunch:
    """A host launch: the call runs synchronously, there is no CUDA stream."""

    cuda_stream = None

    def __init__(self, engine: ReferenceEngine, feeds: dict[str, np.ndarray]) -> None:
        self._engine, self._feeds = engine, feeds

    def __call__(self) -> None:
        self._engine.run(self._feeds)

    def synchronize(self) -> None:
        pass
