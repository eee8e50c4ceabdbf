"""A real-data suite: a small classifier of 8x8 handwritten digits, trained at suite setup, gated on top-1 accuracy.

The data is ``suites/data/digits.csv.gz`` (1797 labelled images, attribution in ``suites/data/README.md``), read
with numpy, shuffled with a fixed seed and split: 1197 images train the model (the first 256 of them also
calibrate int8), the other 600 evaluate it. Training is deterministic (the plugin seeds torch before calling the
factory; full-batch Adam, one thread) and takes a few seconds on a CPU; the trained model is exported once per
session like any factory's, and its engines are cached by the exported bytes.
"""
from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np
from torch import nn

from pytest_trtbench import Dataset, Input, Suite, Tolerance

DATA = Path(__file__).parent / "data" / "digits.csv.gz"
TRAIN, CALIBRATION, BATCH = 1197, 256, 100


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 ``[1797, 64]`` in [0, 1] (pixel counts 0..16 / 16) and labels ``[1797]``, shuffled (seed 0)."""
    with gzip.open(DATA, "rt") as f:
        raw = np.loadtxt(f, delimiter=",", dtype=np.float32)
    order = np.random.default_rng(0).permutation(len(raw))
    return raw[order, :64] / 16.0, raw[order, 64].astype(np.int64)


def batches(start: int, stop: int) -> list[tuple[np.ndarray, np.ndarray]]:
    images, labels = digits()
    return [(images[i:min(i + BATCH, stop)], labels[i:min(i + BATCH, stop)]) for i in range(start, stop, BATCH)]


def digits_classifier() -> nn.Module:
    """A 64-128-64-10 MLP trained on the training split (~97 % top-1 on the evaluation split)."""
    import torch

    images, labels = digits()
    x, y = torch.from_numpy(images[:TRAIN]), torch.from_numpy(labels[:TRAIN])
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float summation order on every machine: the same weights, the same cache key
    try:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(150):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model


test_digits = Suite(
    model=digits_classifier,
    inputs=[Input("image", shape=("batch", 64), range=(0.0, 1.0))],
    batch_sizes=[1, 32],
    precisions=["fp32", "int8"],
    output_names=["logits"],
    classifier_outputs=["logits"],
    data=Dataset(evaluation=lambda: batches(TRAIN, len(digits()[0])), calibration=lambda: batches(0, CALIBRATION)),
    metric="top1",
    tolerances={"int8": Tolerance(atol=None, rtol=0.0, min_cosine=0.98, max_relative_metric_loss=0.01)},
)
