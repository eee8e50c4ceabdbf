"""A corpus of ONNX files of different vintages and of PyTorch / transformers models, made here.

Nothing is downloaded and nothing binary is committed: :func:`write_corpus` builds every file with
``onnx.helper`` (old IR versions and opsets, weights listed as graph inputs the way pre-IR-4 exporters
did, ``[N, C, 1, 1]`` classifier heads, external data, int64 and float16 inputs) or
``onnx.version_converter``, and writes one suite module per model. :data:`TORCH_SUITES` adds three
models no shipped suite uses (a randomly initialised DistilBERT, a small ViT, a GRU tagger).

Used by ``tests/test_corpus.py`` and ``benchmarks/corpus_run.py``.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Callable

SEED = 1234


def _rng() -> Any:
    import numpy as np

    return np.random.default_rng(SEED)


def _weight(name: str, *shape: int, scale: float = 0.2) -> Any:
    from onnx import numpy_helper

    rng = _rng()
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype("float32"), name)


def _model(graph: Any, *, opset: int, ir: int) -> Any:
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="trtbench-corpus")
    model.ir_version = ir
    return model


def _value(name: str, dims: list[Any], elem: int | None = None) -> Any:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT if elem is None else elem, dims)


def squeezenet_ir3(inputs_list_weights: bool = True) -> Any:
    """IR 3, opset 7 (a 2017 exporter): fixed 1x3x32x32 input, fire-like block, a 1x1-conv classifier
    head pooled to ``[N, 10, 1, 1]`` then softmax, every initializer also listed as a graph input."""
    from onnx import helper

    w = [_weight("conv1_w_0", 8, 3, 3, 3), _weight("conv1_b_0", 8), _weight("sq_w_0", 4, 8, 1, 1),
         _weight("sq_b_0", 4), _weight("e1_w_0", 6, 4, 1, 1), _weight("e1_b_0", 6),
         _weight("e3_w_0", 6, 4, 3, 3), _weight("e3_b_0", 6), _weight("cls_w_0", 10, 12, 1, 1),
         _weight("cls_b_0", 10)]
    nodes = [
        helper.make_node("Conv", ["data_0", "conv1_w_0", "conv1_b_0"], ["c1"], name="conv1", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "sq_w_0", "sq_b_0"], ["sq"], name="squeeze1", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["sq"], ["sqr"], name="squeeze1_relu"),
        helper.make_node("Conv", ["sqr", "e1_w_0", "e1_b_0"], ["e1"], name="expand1x1", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["sqr", "e3_w_0", "e3_b_0"], ["e3"], name="expand3x3", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["e1", "e3"], ["fire"], name="concat", axis=1),
        helper.make_node("Relu", ["fire"], ["fr"], name="fire_relu"),
        helper.make_node("Dropout", ["fr"], ["drop"], name="drop", ratio=0.5),
        helper.make_node("Conv", ["drop", "cls_w_0", "cls_b_0"], ["cls"], name="conv10", kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["cls"], ["pool"], name="pool10"),
        helper.make_node("Softmax", ["pool"], ["softmaxout_1"], name="softmax"),
    ]
    graph_inputs = [_value("data_0", [1, 3, 32, 32])]
    if inputs_list_weights:
        graph_inputs += [_value(t.name, list(t.dims)) for t in w]
    graph = helper.make_graph(nodes, "squeezenet_ir3", graph_inputs, [_value("softmaxout_1", [1, 10, 1, 1])], w)
    return _model(graph, opset=7, ir=3)


def mlp_opset9_gemm() -> Any:
    """IR 4, opset 9: Gemm/Relu MLP with a dynamic batch named ``N`` and weights listed as inputs."""
    from onnx import helper

    w = [_weight("fc1_w", 32, 16), _weight("fc1_b", 32), _weight("fc2_w", 5, 32), _weight("fc2_b", 5)]
    nodes = [
        helper.make_node("Gemm", ["x", "fc1_w", "fc1_b"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["hr"], name="relu"),
        helper.make_node("Gemm", ["hr", "fc2_w", "fc2_b"], ["scores"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(nodes, "mlp_opset9", [_value("x", ["N", 16])] + [_value(t.name, list(t.dims)) for t in w],
                              [_value("scores", ["N", 5])], w)
    return _model(graph, opset=9, ir=4)


def cnn_opset11_dynamic() -> Any:
    """IR 6, opset 11: batch and spatial dims dynamic (``batch``, ``height``, ``width``), BatchNorm,
    a Flatten head to ``[batch, 6]``."""
    import numpy as np
    from onnx import helper, numpy_helper

    w = [_weight("w1", 6, 3, 3, 3), _weight("b1", 6),
         numpy_helper.from_array(np.ones(6, "float32"), "bn_scale"), numpy_helper.from_array(np.zeros(6, "float32"), "bn_bias"),
         numpy_helper.from_array(np.zeros(6, "float32"), "bn_mean"), numpy_helper.from_array(np.ones(6, "float32"), "bn_var")]
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["logits"], name="flatten", axis=1),
    ]
    graph = helper.make_graph(nodes, "cnn_opset11", [_value("image", ["batch", 3, "height", "width"])],
                              [_value("logits", ["batch", 6])], w)
    return _model(graph, opset=11, ir=6)


def _matmul_net(name: str, in_name: str, in_dims: list[Any], elem: int, width: int, big: bool) -> Any:
    from onnx import TensorProto, helper

    w = [_weight(f"{name}_w1", 16, width), _weight(f"{name}_w2", width, 4)]
    if big:  # large enough that onnx saves it as external data
        w[0] = _weight(f"{name}_w1", 16, width, scale=0.05)
    nodes = []
    src = in_name
    if elem != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [in_name], ["xf"], name="to_float", to=TensorProto.FLOAT))
        src = "xf"
    nodes += [
        helper.make_node("MatMul", [src, w[0].name], ["h"], name="mm1"),
        helper.make_node("Tanh", ["h"], ["ht"], name="tanh"),
        helper.make_node("MatMul", ["ht", w[1].name], ["y"], name="mm2"),
    ]
    return helper.make_graph(nodes, name, [_value(in_name, in_dims, elem)], [_value("y", [in_dims[0], 4])], w)


def external_data_mlp(directory: Path) -> Path:
    """IR 7, opset 13, weights in a separate ``.data`` file (external data)."""
    import onnx
    from onnx import TensorProto

    model = _model(_matmul_net("ext", "features", ["batch", 16], TensorProto.FLOAT, 512, big=True), opset=13, ir=7)
    path = directory / "external_data_mlp.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="external_data_mlp.onnx.data", size_threshold=1024)
    return path


def float16_input_mlp() -> Any:
    """IR 8, opset 15: a float16 graph input cast to float inside the graph."""
    from onnx import TensorProto

    return _model(_matmul_net("half", "x16", ["batch", 16], TensorProto.FLOAT16, 32, big=False), opset=15, ir=8)


def int64_embedding_bag() -> Any:
    """IR 6, opset 11: int64 token ids ``[batch, seq]`` -> Gather embedding -> mean over seq -> MatMul."""
    from onnx import TensorProto, helper

    w = [_weight("emb", 50, 8), _weight("proj", 8, 3)]
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"], name="embed", axis=0),
        helper.make_node("ReduceMean", ["e"], ["m"], name="mean", axes=[1], keepdims=0),
        helper.make_node("MatMul", ["m", "proj"], ["logits"], name="proj_mm"),
    ]
    graph = helper.make_graph(nodes, "embedding_bag", [_value("ids", ["batch", "seq"], TensorProto.INT64)],
                              [_value("logits", ["batch", 3])], w)
    return _model(graph, opset=11, ir=6)


def converted_opset10() -> Any:
    """An IR-3 / opset-7 model converted to opset 10 with ``onnx.version_converter`` (which cannot convert
    down from current opsets: it has no Relu/Sigmoid adapters below 13), depthwise conv, ``[N, 8, 1, 1]`` head."""
    from onnx import helper, version_converter

    w = [_weight("dw", 4, 1, 3, 3), _weight("pw", 8, 4, 1, 1), _weight("pb", 8)]
    nodes = [
        helper.make_node("Conv", ["img", "dw"], ["d"], name="depthwise", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Relu", ["d"], ["dr"], name="relu"),
        helper.make_node("Conv", ["dr", "pw", "pb"], ["p"], name="pointwise", kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["p"], ["head"], name="gap"),
    ]
    inputs = [_value("img", ["batch", 4, 16, 16])] + [_value(t.name, list(t.dims)) for t in w]  # IR 3 requires it
    graph = helper.make_graph(nodes, "up10", inputs, [_value("head", ["batch", 8, 1, 1])], w)
    return version_converter.convert_version(_model(graph, opset=7, ir=3), 10)


def mixed_constant_opset8() -> Any:
    """IR 3, opset 8: weights as ``Constant`` nodes (an older PyTorch exporter's habit), an Unsqueeze/
    Squeeze pair with attribute axes, a fixed batch of 2 and a dynamic feature-free output name."""
    from onnx import helper

    w1 = _weight("k1", 12, 6)
    nodes = [
        helper.make_node("Constant", [], ["k1c"], name="const_k1", value=w1),
        helper.make_node("Unsqueeze", ["v"], ["v3"], name="unsq", axes=[1]),
        helper.make_node("Squeeze", ["v3"], ["v2"], name="sq", axes=[1]),
        helper.make_node("MatMul", ["v2", "k1c"], ["o"], name="mm"),
        helper.make_node("Sigmoid", ["o"], ["prob"], name="sigmoid"),
    ]
    graph = helper.make_graph(nodes, "const8", [_value("v", [2, 12])], [_value("prob", [2, 6])])
    return _model(graph, opset=8, ir=3)


# name -> (builder, suite keyword arguments beyond model=)
ONNX_MODELS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "squeezenet_ir3": (squeezenet_ir3, {"output_names": ["softmaxout_1"]}),
    "mlp_opset9_gemm": (mlp_opset9_gemm, {"batch_sizes": [1, 4]}),
    "cnn_opset11_dynamic": (cnn_opset11_dynamic, {"batch_sizes": [2], "dims": {"height": [16], "width": [24]}}),
    "external_data_mlp": (external_data_mlp, {"batch_sizes": [3]}),
    "float16_input_mlp": (float16_input_mlp, {"batch_sizes": [2]}),
    "int64_embedding_bag": (int64_embedding_bag, {"batch_sizes": [2], "dims": {"seq": [7]}}),
    "converted_opset10": (converted_opset10, {"batch_sizes": [1, 2]}),
    "mixed_constant_opset8": (mixed_constant_opset8, {"batch_sizes": [2]}),
}


def write_onnx_files(directory: Path) -> dict[str, Path]:
    import onnx

    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (build, _) in ONNX_MODELS.items():
        if build is external_data_mlp:
            out[name] = build(directory)
            continue
        path = directory / f"{name}.onnx"
        onnx.save(build(), str(path))
        out[name] = path
    return out


TORCH_SUITES = '''
import torch

from pytest_trtbench import Input, Suite


def distilbert():
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=64)
    return DistilBertModel(config)


class TinyViT(torch.nn.Module):
    """Patch embedding (a strided conv), two transformer encoder layers, a class token head."""

    def __init__(self, patch=4, dim=32, classes=10):
        super().__init__()
        self.embed = torch.nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = torch.nn.Parameter(torch.zeros(1, 1, dim))
        layer = torch.nn.TransformerEncoderLayer(dim, 2, 64, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, pixels):
        x = self.embed(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return self.head(self.encoder(x)[:, 0])


class GruTagger(torch.nn.Module):
    def __init__(self, features=8, hidden=16, tags=5):
        super().__init__()
        self.gru = torch.nn.GRU(features, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden, tags)

    def forward(self, seq):
        states, _ = self.gru(seq)
        return self.out(states)


test_corpus_distilbert = Suite(
    model=distilbert,
    inputs=[Input("input_ids", ("batch", "seq"), dtype="int64", range=(0, 100)),
            Input("attention_mask", ("batch", "seq"), dtype="int64", range=(1, 2))],
    batch_sizes=[2], dims={"seq": [8]}, output_names=["last_hidden_state"], precisions=PRECISIONS,
)
test_corpus_vit = Suite(
    model=TinyViT,
    inputs=[Input("pixels", ("batch", 3, 16, 16))],
    batch_sizes=[2], output_names=["logits"], classifier_outputs=["logits"], precisions=PRECISIONS,
)
test_corpus_gru = Suite(
    model=GruTagger,
    inputs=[Input("seq", ("batch", "steps", 8))],
    batch_sizes=[2], dims={"steps": [6]}, output_names=["tags"], precisions=PRECISIONS,
)
'''


def write_suites(directory: Path, precisions: list[str]) -> list[Path]:
    """The corpus as suite modules in *directory* (an ONNX-file suite per file, one torch module)."""
    files = write_onnx_files(directory / "models")
    lines = ["from pytest_trtbench import Suite", ""]
    for name, (_, kwargs) in ONNX_MODELS.items():
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        lines.append(f"test_{name} = Suite(model={str(files[name].relative_to(directory))!r}, "
                     f"precisions={precisions!r}, {args})")
    onnx_suites = directory / "test_corpus_onnx.py"
    onnx_suites.write_text("\n".join(lines) + "\n", encoding="utf-8")
    torch_suites = directory / "test_corpus_torch.py"
    torch_suites.write_text(textwrap.dedent(TORCH_SUITES).replace("PRECISIONS", repr(precisions)), encoding="utf-8")
    return [onnx_suites, torch_suites]
