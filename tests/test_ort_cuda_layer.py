"""ONNX Runtime on CUDA through each CUDA layer: IOBinding on the layer's device buffers, ORT computing on the
layer's stream, events of that layer timing it. GPU only (the GPU machine runs it: benchmarks/gpu_cuda_layer.sh);
skipped with the reason where onnxruntime has no CUDA provider or the layer is unusable."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_trtbench.cuda.select import LAYERS, unavailable_reason
from pytest_trtbench.device import DeviceInfo

ort = pytest.importorskip("onnxruntime")
if "CUDAExecutionProvider" not in ort.get_available_providers():
    pytest.skip("onnxruntime has no CUDAExecutionProvider here", allow_module_level=True)

GPU = DeviceInfo(gpu="gpu", device_name="cuda device 0", kind="cuda", compute_capability="")


def _mlp(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((64, 256)).astype(np.float32) / 8, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((256, 10)).astype(np.float32) / 16, "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], [w1, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


@pytest.mark.parametrize("name", LAYERS)
def test_ort_runs_binds_and_is_timed_through_the_layer(name: str, tmp_path: Path) -> None:
    why = unavailable_reason(name)
    if why is not None:
        pytest.skip(f"{name} is not usable here: {why}")
    from pytest_trtbench.backends.onnxruntime import OnnxRuntimeEngine
    from pytest_trtbench.measure import TimingConfig, measure_latency

    path = _mlp(tmp_path / "mlp.onnx")
    feeds = {"x": np.random.default_rng(1).standard_normal((32, 64)).astype(np.float32)}
    cpu = OnnxRuntimeEngine(path, DeviceInfo(gpu="cpu", device_name="cpu", kind="cpu")).run(feeds)["y"]
    engine = OnnxRuntimeEngine(path, GPU, cuda=name)
    assert engine.cuda is not None and engine.cuda.name == name and engine.stream is not None
    np.testing.assert_allclose(engine.run(feeds)["y"], cpu, rtol=1e-4, atol=1e-4)

    launch = engine.prepare(feeds)
    assert launch.cuda_stream is engine.stream  # ORT computes on the layer's stream (user_compute_stream)
    assert launch.buffers["x"].ptr != 0  # the input is bound by the layer's device address
    launch()
    launch.synchronize()
    got = launch.binding.copy_outputs_to_cpu()[0]
    np.testing.assert_allclose(got, cpu, rtol=1e-4, atol=1e-4)

    result = measure_latency(launch, 32, TimingConfig(warmup_s=0.02, blocks=3, min_block_s=0.01, energy_s=0))
    assert result.cuda_layer == name
    assert result.method == "cuda-graph-pinned", result.notes
    assert 0 < result.median_ms < 100
    graph = engine.cuda_graph(feeds)
    assert not isinstance(graph, str) and graph.cuda is engine.cuda
    new = {"x": -feeds["x"]}
    graph.update_inputs(new)  # new values into the same device buffers, then replay
    graph.replay()
    engine.stream.synchronize()
    replayed = graph.cuda.download(graph.outputs["y"], cpu.shape, cpu.dtype, engine.stream)
    np.testing.assert_allclose(replayed, OnnxRuntimeEngine(path, DeviceInfo("cpu", "cpu", "cpu")).run(new)["y"],
                               rtol=1e-4, atol=1e-4)
    engine.close()
