"""Bring your own ONNX: a suite pointed at an existing file rather than a PyTorch factory.

``models/fixed_cnn.onnx`` (made by ``models/make_fixed_cnn.py``) fixes its input to 1x3x32x32, so the
batch-1 cases run and the batch-4 cases are skipped with a reason naming the fixed shape. int8
calibration data is drawn at the shape the file fixes. The reference is ONNX Runtime's CPU provider
on the file itself, in fp32.
"""
from __future__ import annotations

from pytest_trtbench import Input, Suite

test_byo_onnx = Suite(
    model="models/fixed_cnn.onnx",
    inputs=[Input("image", shape=("batch", 3, "hw", "hw"), range=(0.0, 1.0))],
    batch_sizes=[1, 4],
    dims={"hw": [32]},
    precisions=["fp32", "int8"],
    classifier_outputs=["logits"],
)
