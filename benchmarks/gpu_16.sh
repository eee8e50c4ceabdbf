#!/usr/bin/env bash
# Issue #16 on a GPU runner: the shipped real-data suite (suites/test_digits.py: a digits classifier trained at
# setup, fp32 + int8 calibrated on real images, gated on top-1 with a 1 % relative budget) with ONNX Runtime CUDA,
# and random-vs-real int8 calibration measured with the CUDA provider. About a minute on an H200.
#
#   OUT=/some/dir PYTHONPATH=/tmp/site bash benchmarks/gpu_16.sh          # onnxruntime-gpu on PYTHONPATH
#   OUT=/tmp/x TRTBENCH_GPU=cpu PROVIDER=cpu bash benchmarks/gpu_16.sh    # the same steps on a CPU (a dry run)
#
# Writes under $OUT: digits_record.csv (run 1: records baselines into $OUT/baselines), digits_gate.csv (run 2:
# gated against them), calibration_sources.md, pytest_*.log, gpu_16.md (summary: device, versions, commands, tables)
# and baselines/<gpu>/test_digits.json (to commit as baselines/<gpu>/ if wanted).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the results}
GPU=${TRTBENCH_GPU:-auto}
PROVIDER=${PROVIDER:-cuda}
mkdir -p "$OUT"
cache=$(mktemp -d)
started=$(date +%s)

python - "$PROVIDER" <<'PY' | tee "$OUT/environment.txt"
import sys
import onnxruntime as ort
import torch
providers = ort.get_available_providers()
print(f"onnxruntime {ort.__version__} ({ort.__file__}), providers {providers}")
print(f"torch {torch.__version__}, cuda available {torch.cuda.is_available()}"
      + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
if sys.argv[1] == "cuda" and "CUDAExecutionProvider" not in providers:
    sys.exit("CUDAExecutionProvider is not available: put onnxruntime-gpu on PYTHONPATH (e.g. /tmp/site)")
PY

common=(suites/test_digits.py "--trt-gpu=$GPU" --trt-backend=onnxruntime "--trt-cache-dir=$cache"
        "--trt-baseline-dir=$OUT/baselines" -p no:cacheprovider -rA)
set +e
python -m pytest "${common[@]}" --trt-update-baselines "--trt-report=$OUT/digits_record.csv" > "$OUT/pytest_record.log" 2>&1
rc_record=$?
python -m pytest "${common[@]}" "--trt-report=$OUT/digits_gate.csv" > "$OUT/pytest_gate.log" 2>&1
rc_gate=$?
# entropy (a 2048-bin KL search in Python, ~8 s per model on the CPU) is left to the CPU results: time budget
python benchmarks/calibration_sources.py --provider "$PROVIDER" --methods minmax percentile \
  --out "$OUT/calibration_sources.md" \
  > "$OUT/calibration_sources.log" 2>&1
rc_calib=$?
set -e
tail -n 8 "$OUT/pytest_record.log" "$OUT/pytest_gate.log"

python - "$OUT" "$GPU" "$PROVIDER" "$rc_record" "$rc_gate" "$rc_calib" "$(( $(date +%s) - started ))" <<'PY'
import datetime
import sys
from pathlib import Path

import pandas as pd

out, gpu, provider, rc_record, rc_gate, rc_calib, seconds = sys.argv[1:]
out = Path(out)
cols = ["case_id", "status", "task_metric", "task_metric_reference", "task_metric_engine",
        "task_metric_relative_loss", "top1_agreement", "cosine_similarity", "latency_ms_median", "timing_method",
        "reference_backend", "device_name"]
lines = [f"# Issue #16 on a GPU runner: the digits suite with ONNX Runtime ({provider})", "",
         f"- date (UTC): {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}; {seconds} s in all",
         f"- command: `OUT=... bash benchmarks/gpu_16.sh` (--trt-gpu={gpu} --trt-backend=onnxruntime)",
         *[f"- {line}" for line in (out / "environment.txt").read_text().splitlines()],
         f"- exit codes: record {rc_record}, gate {rc_gate}, calibration_sources {rc_calib}", ""]
for name, title in (("digits_record.csv", "run 1: --trt-update-baselines (fresh baselines)"),
                    ("digits_gate.csv", "run 2: gated against run 1's baselines")):
    path = out / name
    lines.append(f"## {title}")
    if path.exists():
        frame = pd.read_csv(path)
        shown = [c for c in cols if c in frame]
        cell = lambda v: "" if pd.isna(v) else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
        lines += ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame[shown].itertuples(index=False)]
    else:
        lines.append(f"(no {name}: see pytest_*.log)")
    lines.append("")
calib = out / "calibration_sources.md"
lines += [calib.read_text() if calib.exists() else "(no calibration_sources.md: see calibration_sources.log)"]
(out / "gpu_16.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
rm -rf "$cache"
[ "$rc_record" -eq 0 ] && [ "$rc_gate" -eq 0 ] && [ "$rc_calib" -eq 0 ]
