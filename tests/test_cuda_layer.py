"""The CUDA layer (pytest_trtbench.cuda): selection, the option, its errors; and the layer's own unit tests,
the same for torch, cuda-python and pycuda, run where a CUDA device and the library are present (the GPU
machine: benchmarks/gpu_cuda_layer.sh), skipped with the reason elsewhere."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_trtbench.cuda import CudaLayerError, choose, parse_layer
from pytest_trtbench.cuda.select import LAYERS, unavailable_reason

REPO = Path(__file__).resolve().parents[1]
USABLE = {"torch": None, "cuda-python": None, "pycuda": None}


# --- selection: pure ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("reasons", "want"), [
    (USABLE, "torch"),
    ({**USABLE, "torch": "torch cannot be imported"}, "cuda-python"),
    ({"torch": "no torch", "cuda-python": "not installed", "pycuda": None}, "pycuda"),
])
def test_auto_takes_the_first_usable_in_order(reasons: dict[str, str | None], want: str) -> None:
    assert choose("auto", reasons) == want


def test_a_named_layer_is_used_when_usable_even_if_another_comes_first() -> None:
    assert choose("pycuda", USABLE) == "pycuda"
    assert choose("cuda-python", {**USABLE, "torch": None}) == "cuda-python"


def test_a_named_unusable_layer_is_an_error_naming_the_option_the_reason_and_a_usable_one() -> None:
    with pytest.raises(CudaLayerError) as info:
        choose("pycuda", {**USABLE, "torch": "no torch", "pycuda": "pycuda is not installed"})
    text = str(info.value)
    assert text.startswith("--trt-cuda=pycuda: pycuda is not installed")
    assert "--trt-cuda=cuda-python (usable here)" in text and "\n" not in text


def test_a_named_unusable_layer_with_nothing_else_usable_says_how_to_install_it() -> None:
    reasons = {"torch": "no torch", "cuda-python": "not installed", "pycuda": "pycuda is not installed"}
    with pytest.raises(CudaLayerError, match=r"pip install 'pytest-trtbench\[pycuda\]'"):
        choose("pycuda", reasons)


def test_auto_with_nothing_usable_lists_every_reason_and_the_extras() -> None:
    reasons = {"torch": "torch sees no CUDA device", "cuda-python": "cudaErrorNoDevice", "pycuda": "pycuda is not installed"}
    with pytest.raises(CudaLayerError) as info:
        choose("auto", reasons)
    text = str(info.value)
    for name, why in reasons.items():
        assert f"{name}: {why}" in text
    assert "pytest-trtbench[cuda]" in text and "pytest-trtbench[pycuda]" in text and "\n" not in text


@pytest.mark.parametrize("text", ["auto", "torch", "cuda-python", "pycuda", " PyCUDA "])
def test_option_values(text: str) -> None:
    assert parse_layer(text) == text.strip().lower()


@pytest.mark.parametrize("text", ["", "cupy", "cuda_python", "torch,pycuda"])
def test_bad_option_values(text: str) -> None:
    with pytest.raises(ValueError, match="expected one of auto, torch, cuda-python, pycuda"):
        parse_layer(text)


# --- probing: the real libraries of this machine --------------------------------------------------------

def _has_cuda_device() -> bool:
    return any(unavailable_reason(name) is None for name in LAYERS)


def test_on_a_machine_without_a_gpu_every_layer_says_why_it_is_unusable() -> None:
    if _has_cuda_device():
        pytest.skip("this machine has a CUDA device")
    for name in LAYERS:
        why = unavailable_reason(name)
        assert why and "\n" not in why, name
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    assert "sees no CUDA device" in (unavailable_reason("torch") or "")


def test_a_gpu_run_with_no_usable_layer_is_a_usage_error() -> None:
    if _has_cuda_device():
        pytest.skip("this machine has a CUDA device")
    from pytest_trtbench.device import DeviceInfo
    from pytest_trtbench.options import checked_cuda as _checked_cuda

    gpu = DeviceInfo(gpu="h200", device_name="NVIDIA H200", kind="cuda", compute_capability="9.0")
    with pytest.raises(pytest.UsageError, match=r"^--trt-cuda=auto: no CUDA layer is usable"):
        _checked_cuda("auto", gpu)
    with pytest.raises(pytest.UsageError, match=r"^--trt-cuda=cuda-python: "):
        _checked_cuda("cuda-python", gpu)
    cpu = DeviceInfo(gpu="cpu", device_name="cpu", kind="cpu")
    assert _checked_cuda("pycuda", cpu) == "pycuda"  # a CPU run never uses the layer
    build_only = DeviceInfo(gpu="a10", device_name="a10", kind="cuda", target_only=True)
    assert _checked_cuda("pycuda", build_only) == "pycuda"
    assert _checked_cuda("pycuda", gpu, executes=False) == "pycuda"  # --collect-only, --trt-build-only


def _blocked_torch_python(code: str) -> subprocess.CompletedProcess[str]:
    """*code* in a fresh interpreter where ``import torch`` fails (as on a runner without torch)."""
    prelude = "import sys; sys.modules['torch'] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)


def test_without_torch_the_torch_layer_says_it_cannot_be_imported() -> None:
    done = _blocked_torch_python("""
        from pytest_trtbench.cuda.select import unavailable_reason
        print(unavailable_reason("torch"))
        import pytest_trtbench.plugin, pytest_trtbench.cuda, pytest_trtbench.backends.onnxruntime
        print(sorted(m for m in ("numpy", "onnxruntime", "pandas", "cuda.bindings", "pycuda") if m in sys.modules))
    """)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("torch cannot be imported")
    assert lines[1] == "[]"  # the plugin and the CUDA layer import nothing heavy


# --- the plugin option -----------------------------------------------------------------------------------

SUITE = """
from pytest_trtbench import Input, Suite

test_tiny = Suite(model="tiny.onnx", inputs=[Input("x", ("batch", 4))], batch_sizes=[2], output_names=["y"])
"""


def _tiny_onnx(path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def test_a_bad_trt_cuda_value_is_a_one_line_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SUITE)
    _tiny_onnx(pytester.path / "tiny.onnx")
    result = pytester.runpytest("--trt-gpu=cpu", "--trt-cuda=cupy", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--trt-cuda: expected one of auto, torch, cuda-python, pycuda; got 'cupy'*"])


def test_a_bad_trt_cuda_ini_value_names_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SUITE)
    pytester.makeini("[pytest]\ntrt_cuda = opencl\n")
    _tiny_onnx(pytester.path / "tiny.onnx")
    result = pytester.runpytest("--trt-gpu=cpu", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini trt_cuda: expected one of auto, torch, cuda-python, pycuda; got 'opencl'*"])


def test_on_cpu_the_cuda_layer_column_is_empty_and_any_choice_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SUITE)
    _tiny_onnx(pytester.path / "tiny.onnx")
    result = pytester.runpytest("--trt-gpu=cpu", "--trt-cuda=pycuda", "--trt-report=r.csv", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    import csv

    with open(pytester.path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["cuda_layer"] for r in rows] == [""] and rows[0]["timing_method"] == "host-clock"
    row = rows[0]  # resource metrics: measured on CPU where they apply, empty where they are GPU-only
    assert abs(float(row["engine_file_mib"]) * 2**20 - (pytester.path / "tiny.onnx").stat().st_size) < 1024
    assert 0 < float(row["load_s"]) < float(row["cold_start_s"]) < 60
    assert row["host_rss_growth_mib"] != "" and abs(float(row["host_rss_growth_mib"])) < 4096
    assert row["device_memory_mib"] == row["peak_gpu_memory_mib"] == row["engine_context_memory_mib"] == ""


FACTORY_SUITE = """
from pytest_trtbench import Input, Suite


def mlp():
    from torch import nn
    return nn.Linear(4, 3)


test_factory = Suite(model=mlp, inputs=[Input("x", ("batch", 4))], batch_sizes=[2], output_names=["y"])
"""


def test_without_torch_onnx_file_suites_run_and_pytorch_factory_suites_are_skipped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SUITE, test_f=FACTORY_SUITE)
    pytester.makeconftest("import sys\nsys.modules['torch'] = None  # this runner has no torch\n")
    _tiny_onnx(pytester.path / "tiny.onnx")
    result = pytester.runpytest_subprocess("--trt-gpu=cpu", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*test_factory defines its model in PyTorch, which can't be imported here*"])


TOP_LEVEL_TORCH_SUITE = """
from torch import nn

from pytest_trtbench import Input, Suite


def mlp() -> nn.Module:
    return nn.Linear(4, 3)


test_top = Suite(model=mlp, inputs=[Input("x", ("batch", 4))], batch_sizes=[2], output_names=["y"])
"""


def test_without_torch_a_suite_file_importing_torch_at_the_top_is_skipped_not_a_collection_error(
        pytester: pytest.Pytester) -> None:
    """The README's suite style (``from torch import nn`` at the top) on a runner without torch: the file is
    skipped with the reason and the fix, and the other suites still run (no 'Interrupted: 1 error')."""
    pytester.makepyfile(test_s=SUITE, test_top=TOP_LEVEL_TORCH_SUITE)
    pytester.makepyfile(test_other="from torch import nn\n\ndef test_plain():\n    pass\n",  # not a suite file
                        test_gpu="import pytest\nimport pytest_trtbench\n\npytest.skip('no GPU', allow_module_level=True)\n")
    pytester.makeconftest("import sys\nsys.modules['torch'] = None  # this runner has no torch\n")
    _tiny_onnx(pytester.path / "tiny.onnx")
    result = pytester.runpytest_subprocess("--trt-gpu=cpu", "-p", "no:cacheprovider", "-rs", "-W", "error",
                                           "test_s.py", "test_top.py")
    result.assert_outcomes(passed=1, skipped=1)
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_gpu.py").ret == 5  # a module-level skip stays one
    result.stdout.fnmatch_lines(["*test_top.py:1: test_top.py imports torch at module level and torch can't be "
                                 "imported here: its suites are skipped; to run them from the export a run with "
                                 "torch kept, import torch inside the model factory*"])
    other = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_other.py")
    other.assert_outcomes(errors=1)  # a test module that is not a suite keeps pytest's own collection error


# --- the layer itself: the same tests for every implementation (GPU only) --------------------------------

@pytest.fixture(params=LAYERS)
def layer(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    why = unavailable_reason(request.param)
    if why is not None:
        pytest.skip(f"{request.param} is not usable here: {why}")
    from pytest_trtbench.cuda import cuda_layer

    got = cuda_layer(request.param)
    assert got.name == request.param
    return got


def test_layer_round_trips_arrays_of_every_dtype(layer) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    stream = layer.stream()
    for dtype in ("float32", "float16", "int64", "int32", "int8", "uint8", "bool"):
        host = (np.arange(1000) % 7 - 3).astype(dtype).reshape(10, 100)
        buffer = layer.upload(host, stream)
        assert buffer.ptr != 0 and buffer.nbytes == host.nbytes
        back = layer.download(buffer, host.shape, host.dtype, stream)
        assert back.dtype == host.dtype and np.array_equal(back, host), dtype
    empty = layer.upload(np.zeros((0, 4), np.float32), stream)  # zero-size: a real, non-null address
    assert empty.ptr != 0 and layer.download(empty, (0, 4), np.float32, stream).shape == (0, 4)
    scalar = layer.upload(np.array(2.5, np.float32), stream)
    assert float(layer.download(scalar, (), np.float32, stream)) == 2.5


def test_layer_events_time_work_on_the_stream(layer) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    stream = layer.stream()
    n = 256 << 20
    src, dst = layer.alloc(n), layer.alloc(n)
    begin, end, small = layer.event(), layer.event(), layer.event()
    begin.record(stream)
    layer.copy_device(dst, src, 1024, stream)
    small.record(stream)
    for _ in range(20):
        layer.copy_device(dst, src, n, stream)  # 5 GiB moved: milliseconds on any GPU
    end.record(stream)
    end.synchronize()
    tiny, total = begin.elapsed_ms(small), begin.elapsed_ms(end)
    assert 0 <= tiny < total and 0.05 < total < 10_000 and np.isfinite(total)
    stream.synchronize()


def test_layer_captures_and_replays_a_graph_on_its_stream(layer) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    stream = layer.stream()
    first, second = np.arange(4096, dtype=np.float32), -np.arange(4096, dtype=np.float32)
    src, dst = layer.upload(first, stream), layer.alloc(first.nbytes)
    graph = layer.capture(stream, lambda: layer.copy_device(dst, src, first.nbytes, stream))
    assert not layer.download(dst, first.shape, first.dtype, stream).any()  # captured, not executed
    graph()
    stream.synchronize()
    assert np.array_equal(layer.download(dst, first.shape, first.dtype, stream), first)
    layer.copy_to_device(src, second, stream)  # new values at the same address: the replay copies them
    graph()
    stream.synchronize()
    assert np.array_equal(layer.download(dst, first.shape, first.dtype, stream), second)


def test_layer_a_failed_capture_is_an_error_and_the_stream_still_works(layer) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    stream = layer.stream()
    host = np.ones(64, np.float32)
    buffer = layer.alloc(host.nbytes)
    with pytest.raises(CudaLayerError, match="(?i)captur"):
        layer.capture(stream, lambda: layer.copy_to_device(buffer, host, stream))  # synchronizes: illegal in capture
    layer.copy_to_device(buffer, host * 3, stream)
    assert np.array_equal(layer.download(buffer, host.shape, host.dtype, stream), host * 3)


def test_layer_memory_info_sees_an_allocation(layer) -> None:  # type: ignore[no-untyped-def]
    free, total = layer.mem_info()
    assert 0 < free <= total
    before = layer.used_bytes()
    buffer = layer.alloc(512 << 20)
    grown = layer.used_bytes() - before
    assert grown >= 500 << 20, grown
    del buffer


def test_without_torch_the_machine_identity_reads_the_same_gpu_uuid_text() -> None:
    """machine.py hashes the GPU's UUID; without torch it comes from cuda-python in torch's text, so a
    baseline recorded with torch present is on the same machine for a torch-free run."""
    for name in ("torch", "cuda-python"):
        if unavailable_reason(name) is not None:
            pytest.skip(f"needs {name}: {unavailable_reason(name)}")
    import torch

    from pytest_trtbench.cuda.select import device_uuid

    assert device_uuid() == str(torch.cuda.get_device_properties(0).uuid) != ""


def test_a_confirmation_re_measurement_keeps_the_layer_and_the_peak_memory() -> None:
    """Seen on the H200: a latency regression's re-measured row had lost its cuda_layer."""
    from pytest_trtbench.measure import LatencyResult
    from pytest_trtbench.pipeline import combined

    first = LatencyResult([1.0], [], 1, "cuda-graph", cuda_layer="pycuda", peak_gpu_memory_bytes=5.0)
    again = LatencyResult([1.1], [], 1, "cuda-graph", cuda_layer="pycuda", peak_gpu_memory_bytes=7.0)
    both = combined(first, again)
    assert both.cuda_layer == "pycuda" and both.peak_gpu_memory_bytes == 7.0 and both.samples_ms == [1.0, 1.1]
    cpu = combined(LatencyResult([1.0], [], 1, "host-clock"), LatencyResult([1.0], [], 1, "host-clock"))
    assert cpu.cuda_layer == "" and cpu.peak_gpu_memory_bytes != cpu.peak_gpu_memory_bytes  # NaN: not measured


def test_a_pytorch_factory_suite_runs_without_torch_from_its_cached_export(pytester: pytest.Pytester) -> None:
    """Recorded once where torch is (the export is kept under <cache-dir>/exports), then run with torch not
    importable: the case runs the cached export and is gated against the baseline's golden fingerprint."""
    pytester.makepyfile(test_f=FACTORY_SUITE)
    args = ("--trt-gpu=cpu", "-p", "no:cacheprovider", "--trt-report=r.csv")
    pytester.runpytest_subprocess(*args, "--trt-update-baselines").assert_outcomes(passed=1)
    exports = list((pytester.path / ".trtbench-cache" / "exports").glob("test_factory-*.onnx"))
    assert len(exports) == 1
    sidecar = exports[0].with_suffix(".json")
    day_ago = time.time() - 86400
    for path in (exports[0], sidecar):
        os.utime(path, (day_ago, day_ago))
    pytester.makeconftest("import sys\nsys.modules['torch'] = None  # this runner has no torch\n")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    # the export is a cache entry, and using it counts as its last use (LRU pruning keeps what torch-free runs use)
    from pytest_trtbench.cache_admin import list_entries

    (entry,) = [e for e in list_entries(pytester.path / ".trtbench-cache") if e.gpu == "exports"]
    assert entry.path == exports[0] and entry.label == "test_factory (PyTorch export)"
    assert entry.last_used > day_ago + 3600 and sidecar.stat().st_mtime == entry.last_used  # touched by the use
    import csv

    with open(pytester.path / "r.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "pass" and row["reference_backend"] == "golden-fingerprint"
    exports[0].with_suffix(".json").unlink()  # an incomplete copy is never used: skipped again
    pytester.runpytest_subprocess(*args).assert_outcomes(skipped=1)
