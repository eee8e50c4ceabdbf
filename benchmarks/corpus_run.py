"""Run the bring-your-own-model corpus (``tests/corpus_models.py``) and print its results table.

8 ONNX files of different vintages plus 3 PyTorch / transformers models, on ONNX Runtime (CPU) and
TensorRT-RTX (engines built; none can execute without a GPU), fp32 / fp16 / int8. Writes the
markdown table (one row per suite and backend-precision) and the wall time of the run.

    python benchmarks/corpus_run.py [--out benchmarks/results/corpus.md]
"""
from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import corpus_models as C  # noqa: E402

VINTAGE = {
    "test_squeezenet_ir3": "IR 3, opset 7, weights listed as inputs, fixed 1x3x32x32, [N,10,1,1] softmax head",
    "test_mlp_opset9_gemm": "IR 4, opset 9, Gemm, weights listed as inputs, batch dim_param 'N'",
    "test_cnn_opset11_dynamic": "IR 6, opset 11, dynamic batch/height/width, BatchNorm",
    "test_external_data_mlp": "IR 7, opset 13, weights in external data",
    "test_float16_input_mlp": "IR 8, opset 15, float16 input",
    "test_int64_embedding_bag": "IR 6, opset 11, int64 ids [batch, seq], Gather",
    "test_converted_opset10": "IR 3 opset 7 -> opset 10 by onnx.version_converter, depthwise conv, [N,8,1,1] head",
    "test_mixed_constant_opset8": "IR 3, opset 8, weights as Constant nodes, attribute-axes Squeeze/Unsqueeze",
    "test_corpus_distilbert": "transformers DistilBERT (random init from config), int64 ids + mask",
    "test_corpus_vit": "PyTorch tiny ViT (patch conv + 2 encoder layers + class token)",
    "test_corpus_gru": "PyTorch GRU tagger (ONNX GRU op) + Linear",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trtbench-corpus-") as tmp:
        work = Path(tmp)
        C.write_suites(work, ["fp32", "fp16", "int8"])
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--trt-gpu=cpu", "--trt-backend=onnxruntime,tensorrt",
             "--trt-report=report.csv", "-p", "no:cacheprovider", "-q"],
            cwd=work, capture_output=True, text=True, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        )
        wall = time.perf_counter() - start
        with open(work / "report.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    per_suite: dict[str, dict[str, str]] = {}
    notes: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for r in rows:
        cell = per_suite.setdefault(r["suite"], {})
        key = f"{'ort' if r['backend'] == 'onnxruntime' else 'trt-rtx'} {r['precision']}"
        statuses = set(filter(None, cell.get(key, "").split("/"))) | {r["status"]}
        cell[key] = "/".join(sorted(statuses))
        if r["precision"] == "int8" and r.get("model_normalized"):
            notes[r["suite"]] = r["model_normalized"]
        if r["status"] == "skipped":
            reasons[r["reason"]] = r["case_id"]
    columns = ["ort fp32", "ort fp16", "ort int8", "trt-rtx fp32", "trt-rtx fp16", "trt-rtx int8"]
    lines = [
        f"machine: {platform.node()} ({platform.machine()}, no GPU); date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "command: python benchmarks/corpus_run.py --out benchmarks/results/corpus.md",
        f"pytest exit code {proc.returncode}; {len(rows)} cases; wall time {wall:.0f} s (2 shared vCPUs)",
        "",
        "| suite | vintage | " + " | ".join(columns) + " | normalized (int8 copy) |",
        "|---|---|" + "---|" * len(columns) + "---|",
    ]
    for suite, cell in per_suite.items():
        lines.append(f"| {suite} | {VINTAGE.get(suite, '')} | " + " | ".join(cell.get(c, "-") for c in columns)
                     + f" | {notes.get(suite, '') or '(used as is)'} |")
    lines += ["", "Skip reasons:"] + [f"- {reason} (e.g. {case})" for reason, case in reasons.items()]
    lines += ["", "TensorRT-RTX `built`: engine built and cached, realized precision checked; not executed (no GPU)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], file=sys.stderr)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
