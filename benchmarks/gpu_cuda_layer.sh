#!/usr/bin/env bash
# The CUDA layer on a GPU (issue #13): the layer's unit tests for torch, cuda-python and pycuda; ONNX Runtime
# through each layer; a torch-blocked run of ONNX-file suites against baselines recorded with torch present;
# per-case timing agreement of the three layers. Run from the repository root on a CUDA machine with
# onnxruntime-gpu, torch, transformers, cuda-bindings and pycuda importable:
#
#   bash benchmarks/gpu_cuda_layer.sh OUT
#
# Writes OUT/*.log, OUT/*.csv, OUT/baselines/ and OUT/agreement.md. About 3-4 minutes on an H200.
set -uo pipefail
out=$1
mkdir -p "$out"
export PYTHONUNBUFFERED=1
date -u +"start %Y-%m-%dT%H:%M:%SZ" | tee "$out/times.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$out/gpu.txt"

# 1. the layer's unit tests (all three layers) and ONNX Runtime through each layer
timeout 180 python -m pytest tests/test_cuda_layer.py tests/test_ort_cuda_layer.py -q -p no:cacheprovider -rs \
  2>&1 | tee "$out/unit_tests.log" | tail -25
date -u +"unit tests done %H:%M:%S" | tee -a "$out/times.log"

# 2. a full-size ONNX-file suite: BERT-base exported to a file (torch needed here only)
export TRTBENCH_BERT_ONNX=/tmp/bert_file/bert_base.onnx
timeout 120 python benchmarks/export_bert_file.py "$TRTBENCH_BERT_ONNX" 2>&1 | tail -3 | tee "$out/export.log"
SUITES="suites/test_byo_onnx.py benchmarks/torch_free/test_bert_file.py"
common=(--trt-gpu=auto --trt-backend=onnxruntime --trt-cache-dir=/tmp/trtcache --trt-baseline-dir="$out/baselines"
        --trt-energy-s=0 -p no:cacheprovider -q -rs)

# 3. baselines with torch present (live references: golden fingerprints recorded), timed through torch
timeout 240 python -m pytest $SUITES "${common[@]}" --trt-cuda=torch --trt-update-baselines \
  --trt-report="$out/record_torch.csv" 2>&1 | tail -20 | tee "$out/record.log"
date -u +"recorded %H:%M:%S" | tee -a "$out/times.log"

# 4. the same cases timed through each layer (no live reference: golden fingerprints), torch present
export TRTBENCH_LIVE_REFERENCE=0
for layer in torch cuda-python pycuda; do
  timeout 120 python -m pytest $SUITES "${common[@]}" --trt-cuda=$layer --trt-report="$out/layer_$layer.csv" \
    2>&1 | tail -12 | tee "$out/layer_$layer.log"
done
date -u +"layer runs done %H:%M:%S" | tee -a "$out/times.log"

# 5. torch blocked: a sitecustomize makes `import torch` fail; verified before the run
mkdir -p /tmp/notorch
cat > /tmp/notorch/sitecustomize.py <<'PY'
import sys


class _NoTorch:
    """This runner has no PyTorch: importing it fails (benchmarks/gpu_cuda_layer.sh)."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked on this runner")
        return None


sys.meta_path.insert(0, _NoTorch())
PY
export PYTHONPATH=/tmp/notorch:${PYTHONPATH:-}
python -c "import torch" > "$out/torch_blocked.log" 2>&1 && echo "TORCH NOT BLOCKED" | tee -a "$out/torch_blocked.log"
tail -1 "$out/torch_blocked.log"
timeout 120 python -m pytest tests/test_cuda_layer.py tests/test_ort_cuda_layer.py -q -p no:cacheprovider -rs \
  2>&1 | tail -12 | tee "$out/notorch_unit_tests.log"
# auto (= cuda-python here) with the live ONNX Runtime CPU reference; pycuda against the golden fingerprints
for layer in auto pycuda; do
  if [ $layer = auto ]; then unset TRTBENCH_LIVE_REFERENCE; else export TRTBENCH_LIVE_REFERENCE=0; fi
  timeout 150 python -m pytest $SUITES "${common[@]}" --trt-cuda=$layer --trt-report="$out/notorch_$layer.csv" \
    2>&1 | tail -25 | tee "$out/notorch_$layer.log"
done
date -u +"torch-free runs done %H:%M:%S" | tee -a "$out/times.log"

python benchmarks/cuda_layer_agreement.py torch="$out/layer_torch.csv" cuda-python="$out/layer_cuda-python.csv" \
  pycuda="$out/layer_pycuda.csv" --out "$out/agreement.md" | tail -15
python benchmarks/cuda_layer_agreement.py torch="$out/layer_torch.csv" notorch-auto="$out/notorch_auto.csv" \
  notorch-pycuda="$out/notorch_pycuda.csv" --out "$out/agreement_notorch.md" | tail -3
date -u +"end %H:%M:%S" | tee -a "$out/times.log"
