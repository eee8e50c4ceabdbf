"""A U-Net for semantic segmentation, written out here, over dynamic batch and image size.

Encoder of conv-BN-ReLU pairs with max-pool downsampling, decoder of 2x2 transposed convolutions and
skip concatenations, a 1x1 head giving per-pixel class logits (NCHW, as segmentation models export them).

Size knob (``--trt-size`` / ini ``trt_size``): ``tiny`` (default, CPU CI) is 2 levels, width 8,
4 classes on 64x64 images; ``full`` is 4 levels, width 32, 21 classes (7.8 M parameters) on 512x512
images at batch 1 and 4.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn

from pytest_trtbench import Input, Suite, Tolerance, model_size
from pytest_trtbench.inputs import make_feeds

FULL = model_size() == "full"
LEVELS = 4 if FULL else 2
WIDTH = 32 if FULL else 8
CLASSES = 21 if FULL else 4
IMAGE = 512 if FULL else 64


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, levels: int = LEVELS, width: int = WIDTH, classes: int = CLASSES) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(levels + 1)]
        self.down = nn.ModuleList([double_conv(3, widths[0])])
        self.down.extend(double_conv(widths[i], widths[i + 1]) for i in range(levels))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(levels)))
        self.merge = nn.ModuleList(double_conv(2 * widths[i], widths[i]) for i in reversed(range(levels)))
        self.head = nn.Conv2d(widths[0], classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        skips = []
        x = image
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def unet() -> nn.Module:
    """Random weights; BatchNorm statistics taken from one random batch, so activations keep a trained
    network's scale."""
    model = UNet()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one batch sets the statistics outright
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, IMAGE, IMAGE))
    return model.eval()


def calibration() -> Iterator[dict[str, np.ndarray]]:
    """int8 calibration at batch 1: ONNX Runtime's calibrator keeps every intermediate tensor of every batch."""
    for index in range(8):
        yield make_feeds(test_segmentation, {"image": (1, 3, IMAGE, IMAGE)}, stream="calibration", index=index)


test_segmentation = Suite(
    model=unet,
    inputs=[Input("image", shape=("batch", 3, "hw", "hw"), range=(0.0, 1.0))],
    batch_sizes=[1, 4] if FULL else [1, 2],
    dims={"hw": [IMAGE]},
    precisions=["fp32", "fp16", "int8"],
    output_names=["logits"],
    tolerances={
        "fp16": Tolerance(atol=None, min_cosine=0.999),
        # measured on CPU: cosine 0.9977 tiny, 0.9958 full (b1)
        "int8": Tolerance(atol=None, min_cosine=0.98),
    },
    calibration=calibration if FULL else None,
)
