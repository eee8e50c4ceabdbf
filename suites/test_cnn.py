"""A small CNN (conv-bn-relu stages, global pooling, linear head) over dynamic batch and image size."""
from torch import nn

from pytest_trtbench import Input, Suite


def cnn() -> nn.Module:
    def stage(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.MaxPool2d(2))

    return nn.Sequential(stage(3, 16), stage(16, 32), stage(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 10))


test_cnn = Suite(
    model=cnn,
    inputs=[Input("image", shape=("batch", 3, "hw", "hw"), range=(0.0, 1.0))],
    batch_sizes=[1, 8],
    dims={"hw": [32]},
    precisions=["fp32", "fp16", "int8"],
    output_names=["logits"],
    classifier_outputs=["logits"],
)
