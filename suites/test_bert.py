"""A BERT encoder (``transformers.BertModel`` from a config, random weights) over dynamic batch × sequence.

Size knob (``--trt-size`` / ini ``trt_size``): ``tiny`` (default, CPU CI) is 2 layers, hidden 64;
``full`` is BERT-base (12 layers, hidden 768, 12 heads, vocab 30522, 110 M parameters) at sequence
128 and 384, batch 1, 8 and 32. Needs ``transformers`` (``pip install 'pytest-trtbench[models]'``).

Inputs are what a tokenizer gives: ``input_ids``, ``attention_mask`` (right padding, so the mask
matters) and ``token_type_ids`` (two segments).
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from pytest_trtbench import Input, Suite, SuiteError, Tolerance, model_size
from pytest_trtbench.inputs import make_feeds

FULL = model_size() == "full"
CONFIG: dict[str, Any] = (
    dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    if FULL else
    dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
)


class Bert(nn.Module):
    """``BertModel`` returning plain tensors ``(last_hidden_state, pooler_output)``, as the ONNX exporter wants."""

    def __init__(self) -> None:
        super().__init__()
        try:
            from transformers import BertConfig, BertModel
        except ImportError:
            raise SuiteError("test_bert needs transformers: pip install 'pytest-trtbench[models]'") from None
        # eager attention: the traced graph is plain MatMul/Softmax, which every backend takes
        self.bert = BertModel(BertConfig(**{**CONFIG, "attn_implementation": "eager"}))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        return_dict=False)
        return out[0], out[1]


def padding_mask(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Right padding: the first sequence is full length, the others keep at least half their tokens."""
    batch, seq = shape
    lengths = rng.integers(seq // 2, seq + 1, size=batch)
    lengths[0] = seq
    return (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)


def segments(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Sentence A (type 0) then sentence B (type 1), split at a random position."""
    batch, seq = shape
    split = rng.integers(1, seq, size=batch)
    return (np.arange(seq)[None, :] >= split[:, None]).astype(np.int64)


def calibration() -> Iterator[dict[str, np.ndarray]]:
    """int8 calibration at batch 4 × seq 128 rather than the profile's largest shape: ONNX Runtime's
    calibrator keeps every intermediate tensor of every batch, which at 32 × 384 runs to tens of GB."""
    for index in range(8):
        yield make_feeds(test_bert, {i.name: (4, 128) for i in test_bert.inputs}, stream="calibration", index=index)


test_bert = Suite(
    model=Bert,
    inputs=[
        Input("input_ids", shape=("batch", "seq"), dtype="int64", range=(0, CONFIG["vocab_size"])),
        Input("attention_mask", shape=("batch", "seq"), dtype="int64", data=padding_mask),
        Input("token_type_ids", shape=("batch", "seq"), dtype="int64", data=segments),
    ],
    batch_sizes=[1, 8, 32] if FULL else [1, 4],
    dims={"seq": [128, 384] if FULL else [16, 64]},
    precisions=["fp32", "fp16", "int8"],
    output_names=["last_hidden_state", "pooler_output"],
    tolerances={
        "fp16": Tolerance(atol=None, min_cosine=0.999),
        # measured on CPU: cosine 0.9996 tiny, 0.9962 BERT-base (b1, seq 128)
        "int8": Tolerance(atol=None, min_cosine=0.98 if FULL else 0.99),
    },
    calibration=calibration if FULL else None,
)
