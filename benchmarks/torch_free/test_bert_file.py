"""BERT-base as an ONNX file: the torch-free GPU run's full-size suite (benchmarks/gpu_cuda_layer.sh).

The file comes from ``benchmarks/export_bert_file.py`` (where torch is); this suite needs only numpy and
ONNX Runtime, so it runs with torch not importable. ``TRTBENCH_BERT_ONNX`` names the file;
``TRTBENCH_LIVE_REFERENCE=0`` gates accuracy against the golden fingerprints a recording run stored
(no live reference: what a runner without the reference does).
"""
from __future__ import annotations

import os

import numpy as np

from pytest_trtbench import Input, Suite, Tolerance


def padding_mask(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    batch, seq = shape
    lengths = rng.integers(seq // 2, seq + 1, size=batch)
    lengths[0] = seq
    return (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)


def segments(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    batch, seq = shape
    split = rng.integers(1, seq, size=batch)
    return (np.arange(seq)[None, :] >= split[:, None]).astype(np.int64)


test_bert_file = Suite(
    model=os.environ.get("TRTBENCH_BERT_ONNX", "/tmp/bert_file/bert_base.onnx"),
    inputs=[
        Input("input_ids", shape=("batch", "seq"), dtype="int64", range=(0, 30522)),
        Input("attention_mask", shape=("batch", "seq"), dtype="int64", data=padding_mask),
        Input("token_type_ids", shape=("batch", "seq"), dtype="int64", data=segments),
    ],
    batch_sizes=[1, 8],
    dims={"seq": [128]},
    precisions=os.environ.get("TRTBENCH_BERT_PRECISIONS", "fp32,fp16").split(","),
    output_names=["last_hidden_state", "pooler_output"],
    tolerances={"fp16": Tolerance(atol=None, min_cosine=0.999)},
    live_reference=os.environ.get("TRTBENCH_LIVE_REFERENCE", "1") != "0",
)
