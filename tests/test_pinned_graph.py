"""Shape-pinned specializations for CUDA-graph timing (backends/ort_graph.py), checked on ORT's CPU
provider: the pinned model computes what the dynamic one computes, and its shape arithmetic folds away.
The CUDA-graph capture itself runs only on a GPU (tests/test_gpu_timing.py, benchmarks/gpu_gate_runs.sh)."""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from pytest_trtbench.backends.base import BackendError  # noqa: E402
from pytest_trtbench.backends.onnxruntime import OnnxRuntimeEngine  # noqa: E402
from pytest_trtbench.backends.ort_graph import pin_input_shapes  # noqa: E402
from pytest_trtbench.device import DeviceInfo  # noqa: E402
from pytest_trtbench.measure import TimingConfig, measure_latency  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def encoder_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped encoder suite's model (attention reshapes: Shape/Gather/Concat chains), dynamic batch x seq."""
    spec = importlib.util.spec_from_file_location("suite_encoder_for_pinning", ROOT / "suites" / "test_encoder.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.Encoder(vocab=100, dim=32, heads=2, layers=1).eval()
    path = tmp_path_factory.mktemp("pin") / "encoder.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 8, dtype=torch.int64),), str(path), input_names=["input_ids"],
                          output_names=["hidden"], dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                                                 "hidden": {0: "batch", 1: "seq"}},
                          opset_version=17, dynamo=False)
    return path


def _optimized(src: Path, dst: Path) -> list[str]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(str(dst)).graph.node]


def test_pinned_model_gives_the_dynamic_models_outputs(encoder_onnx: Path, tmp_path: Path) -> None:
    import numpy as np

    pinned = tmp_path / "pinned.onnx"
    pin_input_shapes(encoder_onnx, pinned, {"input_ids": (3, 8)})
    model = onnx.load(str(pinned))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [3, 8] and len(model.graph.value_info) == 0
    ids = np.random.default_rng(1).integers(0, 100, size=(3, 8)).astype(np.int64)
    dynamic = ort.InferenceSession(str(encoder_onnx), providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids})
    fixed = ort.InferenceSession(str(pinned), providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids})
    np.testing.assert_allclose(fixed[0], dynamic[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="(?i)dimension|shape|invalid"):  # the pinned file accepts only its shape
        ort.InferenceSession(str(pinned), providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids[:2]})


def test_pinning_lets_ort_fold_the_shape_arithmetic(encoder_onnx: Path, tmp_path: Path) -> None:
    pinned = tmp_path / "pinned.onnx"
    pin_input_shapes(encoder_onnx, pinned, {"input_ids": (2, 8)})
    dynamic_ops = _optimized(encoder_onnx, tmp_path / "dyn.opt.onnx")
    pinned_ops = _optimized(pinned, tmp_path / "pin.opt.onnx")
    assert "Shape" in dynamic_ops  # what keeps ORT's CUDA provider from capturing the dynamic model
    assert "Shape" not in pinned_ops and len(pinned_ops) < len(dynamic_ops)


def test_pinning_refuses_shapes_that_do_not_fit(encoder_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="rank 2, shape"):
        pin_input_shapes(encoder_onnx, tmp_path / "x.onnx", {"input_ids": (2, 8, 1)})
    with pytest.raises(BackendError, match="no shape given for input 'input_ids'"):
        pin_input_shapes(encoder_onnx, tmp_path / "x.onnx", {"other": (2, 8)})
    fixed = tmp_path / "fixed.onnx"
    pin_input_shapes(encoder_onnx, fixed, {"input_ids": (2, 8)})
    with pytest.raises(BackendError, match="fixes a dim to 2"):
        pin_input_shapes(fixed, tmp_path / "y.onnx", {"input_ids": (4, 8)})
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(BackendError, match="cannot read"):
        pin_input_shapes(bad, tmp_path / "z.onnx", {"input_ids": (2, 8)})
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.onnx").exists()


def test_without_cuda_the_graph_falls_back_with_the_reason(encoder_onnx: Path) -> None:
    import numpy as np

    engine = OnnxRuntimeEngine(encoder_onnx, DeviceInfo("cpu", "cpu", "cpu"))
    feeds = {"input_ids": np.zeros((2, 8), dtype=np.int64)}
    launch = engine.prepare(feeds)
    assert "CUDA graphs need the CUDA provider" in str(launch.capture_graph())
    assert "CUDA graphs need the CUDA provider" in str(engine.cuda_graph(feeds))
    result = measure_latency(launch, 2, TimingConfig(warmup_s=0.0, blocks=2, min_block_iters=2, min_block_s=0.0))
    assert result.method == "host-clock" and len(result.blocks) == 2
    engine.close()


def test_a_replay_is_the_same_computation_up_to_rounding_only() -> None:
    import numpy as np

    from pytest_trtbench.backends.ort_graph import replay_mismatch

    want = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float16)
    rounded = (want.astype(np.float32) * (1 + 1e-3)).astype(np.float16)
    assert replay_mismatch(rounded, want) == ""
    assert "relative L2" in replay_mismatch(want[::-1].copy(), want)
    assert "shape" in replay_mismatch(want[:2], want)
    nan = want.copy()
    nan[0, 0] = np.nan
    assert replay_mismatch(nan, want) == "NaN in different places" and replay_mismatch(nan, nan) == ""
    assert replay_mismatch(np.zeros(3), np.zeros(3)) == "" and "relative L2" in replay_mismatch(np.ones(3), np.zeros(3))


class _FakeOrtWithoutCudaGraphs:
    """FAKE onnxruntime module: every session refuses to be created, as where no CUDA provider can capture.
    The real capture runs only on a GPU; this drives the pinned-then-dynamic fallback of ort_graph on the CPU."""

    class SessionOptions:
        pass

    class GraphOptimizationLevel:
        ORT_ENABLE_EXTENDED = 2

    @staticmethod
    def InferenceSession(*args: object, **kwargs: object) -> None:  # noqa: N802 (onnxruntime's name)
        raise RuntimeError("no CUDA graph here")


def test_graph_session_tries_the_pinned_model_then_the_dynamic_one_and_says_why(
    encoder_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile
    from types import SimpleNamespace

    import numpy as np

    from pytest_trtbench.backends.ort_graph import graph_session

    made: list[str] = []
    mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda prefix: made.append(mkdtemp(prefix=prefix, dir=tmp_path)) or made[-1])
    stream = SimpleNamespace(handle=0, layer=None)
    feeds = {"input_ids": np.zeros((2, 8), np.int64)}
    why = graph_session(_FakeOrtWithoutCudaGraphs, "key", encoder_onnx, feeds, ["hidden"], {}, lambda: stream, "fp32")
    refused = "onnxruntime CUDA graph unavailable: RuntimeError: no CUDA graph here"
    assert why == f"pinned-shape graph: {refused}; dynamic-shape graph: {refused}"
    assert len(made) == 1 and not Path(made[0]).exists()  # the pinned copy was written, then removed

    why = graph_session(_FakeOrtWithoutCudaGraphs, "key", encoder_onnx, {"other": feeds["input_ids"]}, ["hidden"], {},
                        lambda: stream, "fp32")
    assert why == (f"pinned-shape graph: cannot pin encoder.onnx: no shape given for input 'input_ids'; "
                   f"dynamic-shape graph: {refused}")
