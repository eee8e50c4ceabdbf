"""Export BERT-base (the ``--trt-size=full`` BERT suite's model, random weights from seed 0) to an ONNX file,
for the torch-free suite ``benchmarks/torch_free/test_bert_file.py``. Needs torch and transformers.

    python benchmarks/export_bert_file.py /tmp/bert_file/bert_base.onnx [--tiny]

``--tiny`` exports the tiny BERT (2 layers, hidden 64, the vocabulary kept) instead: a quick check on CPU.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path


def main(out: Path, tiny: bool = False) -> None:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256) if tiny else \
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    config = BertConfig(vocab_size=30522, attn_implementation="eager", **size)

    class Bert(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel(config)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            return_dict=False)
            return out[0], out[1]

    model = Bert().eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    args = tuple(torch.ones((2, 16), dtype=torch.int64) for _ in names)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(out), input_names=names, output_names=["last_hidden_state", "pooler_output"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in names}, opset_version=17, dynamo=False)
    print(f"exported {out} ({out.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]), tiny="--tiny" in sys.argv[2:])
