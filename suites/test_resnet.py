"""A ResNet with bottleneck blocks (the ResNet-50 design), written out here, over dynamic batch and image size.

Size knob (``--trt-size`` / ini ``trt_size``): ``tiny`` (default, CPU CI) is one bottleneck per stage,
width 8, 10 classes on 64x64 images; ``full`` is ResNet-50 (3-4-6-3 bottlenecks, width 64, 1000 classes,
25.6 M parameters) on 224x224 images at batch 1, 8 and 32.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn

from pytest_trtbench import Input, Suite, Tolerance, model_size
from pytest_trtbench.inputs import make_feeds

FULL = model_size() == "full"
LAYERS = (3, 4, 6, 3) if FULL else (1, 1, 1, 1)
WIDTH = 64 if FULL else 8
CLASSES = 1000 if FULL else 10
IMAGE = 224 if FULL else 64


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4; projection shortcut where the shape changes."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.branch = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, layers: tuple[int, ...] = LAYERS, width: int = WIDTH, classes: int = CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages, cin = [], width
        for i, blocks in enumerate(layers):
            stage_width = width * 2**i
            for j in range(blocks):
                stages.append(Bottleneck(cin, stage_width, stride=2 if i > 0 and j == 0 else 1))
                cin = stage_width * Bottleneck.expansion
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(image)))


def resnet() -> nn.Module:
    """Random weights; BatchNorm statistics taken from one random batch, so activations keep a trained
    network's scale instead of growing block after block under identity BatchNorm."""
    model = ResNet()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one batch sets the statistics outright
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, IMAGE, IMAGE))
    return model.eval()


def calibration() -> Iterator[dict[str, np.ndarray]]:
    """int8 calibration at batch 4 rather than the profile's largest shape: ONNX Runtime's calibrator keeps
    every intermediate tensor of every batch, which at batch 32 runs to tens of GB."""
    for index in range(8):
        yield make_feeds(test_resnet, {"image": (4, 3, IMAGE, IMAGE)}, stream="calibration", index=index)


test_resnet = Suite(
    model=resnet,
    inputs=[Input("image", shape=("batch", 3, "hw", "hw"), range=(0.0, 1.0))],
    batch_sizes=[1, 8, 32] if FULL else [1, 4],
    dims={"hw": [IMAGE]},
    precisions=["fp32", "fp16", "int8"],
    output_names=["logits"],
    classifier_outputs=["logits"],
    tolerances={
        "fp16": Tolerance(atol=None, min_cosine=0.999, min_top1=0.9),
        # measured on CPU: cosine 0.994 tiny, 0.980 ResNet-50 (b1), top-1 agreement 100 % for both
        "int8": Tolerance(atol=None, min_cosine=0.96 if FULL else 0.98, min_top1=0.5),
    },
    calibration=calibration if FULL else None,
)
