"""Write fixed_cnn.onnx: a small random-weight CNN exported with a FIXED input shape (1x3x32x32, no dynamic axes).

It stands in for a model someone brings as an ONNX file; test_byo_onnx.py points a suite at it.
Regenerate with ``python suites/models/make_fixed_cnn.py`` (deterministic: seed 0).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

OUT = Path(__file__).with_name("fixed_cnn.onnx")


def fixed_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(64, 10),
    )


def main() -> None:
    torch.manual_seed(0)
    model = fixed_cnn().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.rand(1, 3, 32, 32),), str(OUT), input_names=["image"],
                          output_names=["logits"], opset_version=17, dynamo=False)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
