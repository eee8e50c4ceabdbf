#!/usr/bin/env bash
# The CUDA layer on a GPU (issue #13): the layer's unit tests for torch, cuda-python and pycuda and ONNX Runtime
# through each; baselines recorded with torch present (timed through the torch layer); then torch blocked (a
# sitecustomize makes `import torch` fail, verified) and the same ONNX-file suites gated against those
# baselines through cuda-python (auto) and pycuda; per-case timing agreement with the torch run.
# Run from the repository root on a CUDA machine with onnxruntime-gpu, torch, transformers, cuda-bindings and
# pycuda importable:
#
#   bash benchmarks/gpu_cuda_layer.sh OUT [SECONDS]
#
# Writes OUT/*.log, OUT/*.csv, OUT/baselines/ and OUT/agreement.md. About 4 minutes on an H200; a second torch
# run (run-to-run spread of one layer) is added only if it fits in SECONDS (default 300).
set -uo pipefail
out=$1
budget=${2:-300}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
stamp() { date -u +"$1 %Y-%m-%dT%H:%M:%SZ (+${SECONDS} s)" | tee -a "$out/times.log"; }
stamp start
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$out/gpu.txt"

# 1. the layer's unit tests (all three layers) and ONNX Runtime through each layer, torch present
timeout 150 $PY -m pytest tests/test_cuda_layer.py tests/test_ort_cuda_layer.py -q -p no:cacheprovider -rs \
  > "$out/unit_tests.log" 2>&1
tail -25 "$out/unit_tests.log"
stamp "unit tests done"

# 2. a full-size ONNX-file suite: BERT-base exported to a file (torch is needed for this step only)
export TRTBENCH_BERT_ONNX=/tmp/bert_file/bert_base.onnx
export TRTBENCH_BERT_PRECISIONS=${TRTBENCH_BERT_PRECISIONS:-fp32}  # fp16 too: another ~20 s per run
timeout 120 $PY benchmarks/export_bert_file.py "$TRTBENCH_BERT_ONNX" > "$out/export.log" 2>&1
tail -2 "$out/export.log"
SUITES="suites/test_byo_onnx.py benchmarks/torch_free/test_bert_file.py"
common=(--trt-gpu=auto --trt-backend=onnxruntime --trt-cache-dir=/tmp/trtcache --trt-baseline-dir="$out/baselines"
        --trt-energy-s=0 -p no:cacheprovider -q -rs)
suite_run() {  # suite_run NAME SECONDS [args]: one pytest process over the suites, report NAME.csv, log NAME.log
  local name=$1 limit=$2; shift 2
  timeout "$limit" $PY -m pytest $SUITES "${common[@]}" --trt-report="$out/$name.csv" "$@" > "$out/$name.log" 2>&1
  echo "== $name rc=$? =="; grep -E "^(test_|verdicts|engines)" "$out/$name.log" | tail -12
  stamp "$name done"
}

# 3. baselines with torch present: live references (golden fingerprints recorded), timed through torch
suite_run record_torch 150 --trt-cuda=torch --trt-update-baselines

# 4. torch blocked; accuracy against the golden fingerprints, latency against the recorded baselines
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
export TRTBENCH_LIVE_REFERENCE=0
(
  export PYTHONPATH=/tmp/notorch:${PYTHONPATH:-}
  $PY -c "import torch" > "$out/torch_blocked.log" 2>&1 && echo "TORCH NOT BLOCKED" >> "$out/torch_blocked.log"
  tail -1 "$out/torch_blocked.log"
  timeout 90 $PY -m pytest tests/test_cuda_layer.py tests/test_ort_cuda_layer.py -q -p no:cacheprovider -rs \
    > "$out/notorch_unit_tests.log" 2>&1
  tail -4 "$out/notorch_unit_tests.log"
  suite_run notorch_auto 90 --trt-cuda=auto
  suite_run notorch_pycuda 90 --trt-cuda=pycuda
)
# 5. run-to-run spread of one layer: torch again, golden fingerprints, if it fits
if (( SECONDS + 45 < budget )); then suite_run again_torch 60 --trt-cuda=torch; fi

$PY benchmarks/cuda_layer_agreement.py torch="$out/record_torch.csv" notorch-cuda-python="$out/notorch_auto.csv" \
  notorch-pycuda="$out/notorch_pycuda.csv" --out "$out/agreement.md" | tail -12
if [ -f "$out/again_torch.csv" ]; then
  $PY benchmarks/cuda_layer_agreement.py torch="$out/record_torch.csv" torch-again="$out/again_torch.csv" \
    --out "$out/agreement_torch_again.md" | tail -8
fi
stamp end
# one archive (the lent machine returns a limited number of files), the tables beside it
(cd "$out" && tar czf results.tgz --exclude=results.tgz -- * && find . -type f ! -name results.tgz ! -name 'agreement*.md' -delete)
