"""The int8 recipe: ONNX Runtime static quantization in Q/DQ format.

Q/DQ (QuantizeLinear/DequantizeLinear pairs) is the explicit-quantization form TensorRT consumes,
so the same quantized model serves the ONNX Runtime and the TensorRT backends. Symmetric int8
activations and per-channel symmetric weights, as TensorRT requires.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

if TYPE_CHECKING:
    import numpy as np

# Q/DQ only around the weighted ops (those with a weight initializer), the placement TensorRT's explicit
# quantization expects: quantizing element-wise ops' constants (GELU's sqrt(2), ...) yields constants
# TensorRT refuses to build, and quantizing attention's activation x activation MatMuls (softmax @ V)
# wrecks long sequences (measured on an H200: GPT-2 small at seq 512, cosine 0.93).
QUANTIZED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
RECIPE = {
    "format": "QDQ",
    "activations": "int8-symmetric",
    "weights": "int8-per-channel-symmetric",
    "calibration": "minmax",
    "ops": ",".join(QUANTIZED_OPS),
    "nodes": "with-weights",
    "bias": "float",
}
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
"""ONNX Runtime's calibrators for int8 (``CalibrationMethod.MinMax`` / ``Entropy`` / ``Percentile``; its
``Distribution`` calibrator is for float8 only). ``minmax`` is the default and keeps the recipe, and so the cache
keys, it always had."""
DEFAULT_CALIBRATION = "minmax"


def recipe_for(method: str = DEFAULT_CALIBRATION) -> dict[str, str]:
    """The int8 recipe with *method* as its calibration (part of the engine cache key)."""
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {method!r}; choose from {', '.join(CALIBRATION_METHODS)}")
    extra = {"entropy_bins": f"{ENTROPY_BINS}/{ENTROPY_QUANTIZED_BINS}"} if method == "entropy" else {}
    return {**RECIPE, "calibration": method, **extra}


ENTROPY_BINS, ENTROPY_QUANTIZED_BINS = 2048, 128
"""The entropy calibrator's histogram, as TensorRT's entropy calibrator has it. ``quantize_static`` passes no bin
count to ONNX Runtime's entropy calibrator (it gets 128 and 128, which leaves its KL search a single candidate, the
full range: the same ranges as minmax), so the ranges are computed by ``create_calibrator`` with these counts and
handed to ``quantize_static`` as ``TensorQuantOverrides`` (``rmin`` / ``rmax`` per tensor)."""


class QuantizationError(Exception):
    """Quantization failed; the message names the model and the cause."""


def quantize_qdq(
    src: Path, dst: Path, calibration: Iterable[Mapping[str, np.ndarray]], method: str = DEFAULT_CALIBRATION
) -> None:
    """Write the Q/DQ int8 model of *src* to *dst*, calibrated on *calibration* feeds with *method*
    (:data:`CALIBRATION_METHODS`: ONNX Runtime's calibrator of that name, its default settings: entropy
    128 bins, percentile 99.999 % of 2048 bins; activation ranges made symmetric for every method)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    calibrate_method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                        "percentile": CalibrationMethod.Percentile}.get(method)
    if calibrate_method is None:
        raise QuantizationError(f"{src}: unknown calibration method {method!r}; choose from "
                                f"{', '.join(CALIBRATION_METHODS)}")
    feeds = list(calibration)
    if method != "minmax":
        feeds = uniform_batches(feeds)
    if not feeds:
        raise QuantizationError(f"{src}: int8 needs calibration data, and the suite's calibration gave none")
    prepared = dst.with_name(dst.stem + ".pre.onnx")
    overrides: dict[str, Any] = {}
    try:
        weighted = _preprocess(src, prepared)
        # the entropy / percentile calibrators print their progress to stdout: not in the user's terminal
        with contextlib.redirect_stdout(io.StringIO()):
            if method == "entropy":
                overrides = entropy_ranges(prepared, _feed_reader(feeds))
                calibrate_method = CalibrationMethod.MinMax  # its ranges are replaced by the entropy ones
            quantize_static(
                str(prepared),
                str(dst),
                _feed_reader(feeds),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=list(QUANTIZED_OPS),
                nodes_to_quantize=weighted,
                calibrate_method=calibrate_method,
                # biases stay float: TensorRT parses only 8-bit (and fp8/int4) DequantizeLinear inputs, not int32
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                               **({} if method == "minmax" else {"CalibTensorRangeSymmetric": True}),
                               **({"TensorQuantOverrides": overrides} if overrides else {})},
            )
    except QuantizationError:
        raise
    except Exception as exc:  # onnxruntime raises bare Exceptions of many kinds here
        raise QuantizationError(f"{src}: int8 Q/DQ quantization failed: {type(exc).__name__}: {exc}") from exc
    finally:
        prepared.unlink(missing_ok=True)


def _preprocess(src: Path, prepared: Path) -> list[str]:
    """ONNX Runtime's recommended pre-processing of *src* into *prepared* (symbolic shape inference, graph
    cleanup); the names of the weighted nodes to quantize (none: a :class:`QuantizationError`)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(prepared), auto_merge=True)
    except AssertionError:  # ORT's symbolic shape inference gives up on some Reshapes (a ViT's patch flatten)
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
    _name_unnamed_nodes(prepared)
    weighted: list[str] = weighted_nodes(prepared)
    if not weighted:
        raise QuantizationError(f"{src}: no Conv/MatMul/Gemm with weights to quantize; int8 would change nothing")
    return weighted


def _feed_reader(feeds: list[Mapping[str, np.ndarray]]) -> Any:
    """An ONNX Runtime ``CalibrationDataReader`` over *feeds* (rewindable)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it: Iterator[Mapping[str, np.ndarray]] = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            feed = next(self._it, None)
            return dict(feed) if feed else None

        def rewind(self) -> None:
            self._it = iter(feeds)

    return _Reader()


def entropy_ranges(model: Path, reader: Any) -> dict[str, list[dict[str, Any]]]:
    """Per activation tensor of the weighted ops, the KL-divergence (entropy) range over *reader*'s feeds with
    :data:`ENTROPY_BINS` / :data:`ENTROPY_QUANTIZED_BINS`, as ``TensorQuantOverrides``."""
    import tempfile

    import numpy as np
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    with tempfile.TemporaryDirectory(prefix="trtbench-entropy-") as tmp:
        calibrator = create_calibrator(
            str(model), list(QUANTIZED_OPS), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.Entropy,
            extra_options={"num_bins": ENTROPY_BINS, "num_quantized_bins": ENTROPY_QUANTIZED_BINS, "symmetric": True},
        )
        calibrator.collect_data(reader)
        ranges = calibrator.compute_data()
        del calibrator
    return {name: [{"rmin": np.float32(np.asarray(td.range_value[0]).min()),
                    "rmax": np.float32(np.asarray(td.range_value[1]).max())}]
            for name, td in ranges.data.items()}


def uniform_batches(feeds: list[Mapping[str, np.ndarray]]) -> list[Mapping[str, np.ndarray]]:
    """*feeds* re-cut into batches of one size (the gcd of theirs; no sample dropped): ONNX Runtime's histogram
    calibrators (entropy, percentile) stack every batch's activations into one array, which fails on batches of
    different sizes (256 images in batches of 100 end with 56). Feeds whose samples differ in shape are kept."""
    import math

    import numpy as np

    sizes = {len(next(iter(f.values()))) for f in feeds if f}
    shapes = {tuple((name, a.shape[1:]) for name, a in sorted(f.items())) for f in feeds if f}
    if len(sizes) <= 1 or len(shapes) != 1:
        return feeds
    step = math.gcd(*sizes)
    names = list(feeds[0])
    stacked = {name: np.concatenate([np.asarray(f[name]) for f in feeds]) for name in names}
    total = len(stacked[names[0]])
    return [{name: stacked[name][i:i + step] for name in names} for i in range(0, total, step)]


def _name_unnamed_nodes(path: Path) -> None:
    """Name the nodes of *path* that have no name (optional in ONNX): the quantizer selects nodes by name,
    so an unnamed weighted MatMul would silently stay fp32. Rewrites the file only when a node was unnamed."""
    import onnx

    if all(node.name for node in onnx.load(str(path), load_external_data=False).graph.node):
        return
    model = onnx.load(str(path))
    used = {node.name for node in model.graph.node}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)
    onnx.save(model, str(path))


def weighted_nodes(path: Path) -> list[str]:
    """Names of the Conv/MatMul/Gemm nodes with an initializer (a weight) among their inputs."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    constants = {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    weights = initializers | constants
    return [
        node.name for node in model.graph.node
        if node.op_type in QUANTIZED_OPS and node.name and any(name in weights for name in node.input[:2])
    ]
