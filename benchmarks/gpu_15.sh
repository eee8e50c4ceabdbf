#!/usr/bin/env bash
# Issue 15 on a GPU: per-layer profiles with ONNX Runtime's CUDA provider (~2 min on an H200).
#
# What it does (benchmarks/layer_profile_check.py): records baselines of a knob suite (encoder, dim 256, seq 128,
# batch 1 and 8, fp32; the layer profile is stored), then runs it with one block added and with one MLP 8x wider
# (latency gate on), keeping the failure texts and the top_layer_deltas column, then alternates runs without and
# with --trt-profile-layers to show the profiling pass's effect on the headline median. Everything goes to
# $OUT/gpu_15/ (layer_profiles.md is the result to commit under benchmarks/results/).
#
# Run on the GPU machine, from the repository root:
#   export PYTHONPATH=/tmp/site                      # onnxruntime-gpu
#   pip install --no-deps --no-build-isolation -e .  # once
#   bash benchmarks/gpu_15.sh                        # writes $OUT/gpu_15/ ($OUT defaults to ./gpu_15_out)
# CPU check of the script (any machine; the recorded latency is divided by 1000 so the gate calls it slower):
#   OUT=/tmp/g15 bash benchmarks/gpu_15.sh --cpu
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_15_out}"
mkdir -p "$OUT/gpu_15"
PY="$(command -v python || command -v python3)"
extra=(--pairs 2)
if [[ "${1:-}" == "--cpu" ]]; then
  extra+=(--cpu --force-slower)
fi
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
} > "$OUT/gpu_15/environment.txt" 2>&1 || true
timeout 600 "$PY" benchmarks/layer_profile_check.py --out "$OUT/gpu_15" "${extra[@]}"
