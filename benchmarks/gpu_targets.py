"""Models and launches shared by ``gpu_fidelity.py`` and ``record_gpu_blocks.py``.

The model is the BERT-like ``Encoder`` of ``suites/test_encoder.py`` at a chosen size; a target is
that module in PyTorch (``torch``) or its ONNX export run by ONNX Runtime (``onnxruntime``, the CUDA
provider on a GPU), built the way the harness builds it (:class:`OnnxRuntimeBackend`), and
launched through the harness's own ``Launch`` objects.
"""
from __future__ import annotations

import importlib.util
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: the package is in the repository
    sys.path.insert(0, str(ROOT))

from pytest_trtbench.backends.onnxruntime import ENGINE_FILE as ORT_ENGINE_FILE  # noqa: E402
from pytest_trtbench.device import DeviceInfo, short_gpu_name  # noqa: E402


@dataclass(frozen=True)
class EncoderSize:
    label: str
    dim: int
    heads: int
    layers: int
    vocab: int
    batch: int
    seq: int


#: BERT-base: 12 layers, hidden 768, 12 heads, 30522-token vocabulary; batch 8 x sequence 128.
BERT_BASE = EncoderSize("bert-base", 768, 12, 12, 30522, 8, 128)
#: A quarter-width, 4-layer variant: a case that is short on the GPU (launch overhead matters).
BERT_SMALL = EncoderSize("bert-small", 256, 4, 4, 30522, 8, 128)
#: CPU smoke-test size.
TINY = EncoderSize("tiny", 32, 2, 1, 100, 2, 8)

SEED = 20240601


def encoder_class() -> type:
    spec = importlib.util.spec_from_file_location("trtbench_suite_encoder", ROOT / "suites" / "test_encoder.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Encoder  # type: ignore[no-any-return]


def current_device(force_cpu: bool = False) -> DeviceInfo:
    import torch

    if force_cpu or not torch.cuda.is_available():
        return DeviceInfo(gpu="cpu", device_name="cpu", kind="cpu")
    name = torch.cuda.get_device_name()
    major, minor = torch.cuda.get_device_capability()
    return DeviceInfo(gpu=short_gpu_name(name), device_name=name, kind="cuda", compute_capability=f"{major}.{minor}")


def make_module(size: EncoderSize) -> Any:
    """The encoder with seeded weights (fp32, CPU, eval mode): the same weights in every process."""
    import torch

    torch.manual_seed(SEED)
    return encoder_class()(vocab=size.vocab, dim=size.dim, heads=size.heads, layers=size.layers).eval()


def make_input_ids(size: EncoderSize) -> Any:
    import numpy as np

    return np.random.default_rng(SEED).integers(0, size.vocab, size=(size.batch, size.seq), dtype=np.int64)


def torch_launch(size: EncoderSize, precision: str, device: DeviceInfo) -> Any:
    """The harness's :class:`TorchLaunch` of the module (``.half()`` for fp16)."""
    import torch

    from pytest_trtbench.model import TorchLaunch

    torch_device = torch.device("cuda" if device.has_cuda else "cpu")
    module = make_module(size).to(torch_device)
    if precision == "fp16":
        module = module.half()
    args = (torch.from_numpy(make_input_ids(size)).to(torch_device),)
    return TorchLaunch(module, args, torch_device)


def build_onnxruntime(size: EncoderSize, precision: str, device: DeviceInfo, work: Path) -> Path:
    """Export the module and build the ONNX Runtime engine as the harness does; returns the entry dir."""
    import torch

    from pytest_trtbench.backends.base import BuildRequest
    from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend

    entry = work / f"ort-{size.label}-{precision}"
    if (entry / ORT_ENGINE_FILE).is_file():
        return entry
    entry.mkdir(parents=True, exist_ok=True)
    src = work / f"{size.label}.onnx"
    if not src.is_file():
        ids = torch.from_numpy(make_input_ids(size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(make_module(size), (ids,), str(src), input_names=["input_ids"], output_names=["hidden"],
                              opset_version=17, dynamo=False)
    request = BuildRequest(onnx_path=src, precision=precision, profiles=(), device=device)
    OnnxRuntimeBackend().build(request, entry, work)
    return entry


def onnxruntime_engine(entry: Path, device: DeviceInfo) -> Any:
    from pytest_trtbench.backends.onnxruntime import ENGINE_FILE, OnnxRuntimeEngine

    return OnnxRuntimeEngine(entry / ENGINE_FILE, device)


def onnxruntime_unavailable(device: DeviceInfo, precision: str) -> str | None:
    from pytest_trtbench.backends.onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend().unsupported_reason(precision, device)
