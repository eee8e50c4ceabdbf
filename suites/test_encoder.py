"""A small transformer encoder (BERT-like block: attention + GELU MLP, post-norm) over dynamic batch × sequence."""
import torch
from torch import nn

from pytest_trtbench import Input, Suite, Tolerance


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        x = self.norm1(x + self.proj((att @ v).transpose(1, 2).reshape(b, s, d)))
        return self.norm2(x + self.mlp(x))


class Encoder(nn.Module):
    def __init__(self, vocab: int = 1000, dim: int = 64, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(512, dim)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(layers)))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        return self.blocks(self.embed(input_ids) + self.pos(positions))


test_encoder = Suite(
    model=Encoder,
    inputs=[Input("input_ids", shape=("batch", "seq"), dtype="int64", range=(0, 1000))],
    batch_sizes=[1, 4],
    dims={"seq": [16, 64]},
    precisions=["fp32", "fp16", "int8"],
    output_names=["hidden"],
    tolerances={"int8": Tolerance(atol=None, min_cosine=0.95)},
    fuzz_shapes=20,  # + test_encoder[fuzz-onnxruntime-fp32] etc.: 20 (batch, seq) pairs inside 1..4 x 16..64
)
