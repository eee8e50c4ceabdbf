"""A small MLP classifier: the quickest end-to-end check of the harness."""
from torch import nn

from pytest_trtbench import Input, Suite, Tolerance


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 10))


test_mlp = Suite(
    model=mlp,
    inputs=[Input("x", shape=("batch", 64), dtype="float32", range=(-1.0, 1.0))],
    batch_sizes=[1, 32],
    precisions=["fp32", "fp16", "int8"],
    output_names=["logits"],
    classifier_outputs=["logits"],
    tolerances={"int8": Tolerance(atol=None, min_cosine=0.98, min_top1=0.9)},
)
