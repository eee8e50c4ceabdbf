#!/usr/bin/env bash
# The GPU run behind docs/results/ and baselines/<gpu>/: full-size suites on ONNX Runtime's CUDA provider
# and PyTorch, timing fidelity and real block samples. Run from the repository root on a CUDA machine
# with onnxruntime-gpu, torch, transformers, pandas, nvidia-ml-py installed:
#
#   bash benchmarks/gpu_run.sh suites-a OUT   # BERT-base and GPT-2 small
#   bash benchmarks/gpu_run.sh suites-b OUT   # ResNet-50, U-Net segmentation, the small suites
#   bash benchmarks/gpu_run.sh timing OUT     # fidelity, block samples, detection on real samples, GPU tests
#
# Each part stays under 10 minutes on an H100/H200. Results land in OUT (reports, baselines tarball, logs).
set -uo pipefail
part=$1
out=$2
mkdir -p "$out"
export PYTHONUNBUFFERED=1
suites() {
  python -m pytest "$@" --trt-gpu=auto --trt-size=full --trt-backend=onnxruntime,tensorrt \
    --trt-update-baselines -p no:cacheprovider -rs
}
case "$part" in
  suites-a)
    suites suites/test_bert.py suites/test_gpt2.py --trt-report="$out/report_a.csv" 2>&1 | tee "$out/suites_a.log"
    ;;
  suites-b)
    suites suites/test_resnet.py suites/test_segmentation.py suites/test_mlp.py suites/test_cnn.py \
      suites/test_encoder.py suites/test_byo_onnx.py --trt-report="$out/report_b.csv" 2>&1 | tee "$out/suites_b.log"
    ;;
  timing)
    python benchmarks/gpu_fidelity.py --out "$out/fidelity_gpu.md" 2>&1 | tee "$out/fidelity.log"
    python benchmarks/record_gpu_blocks.py --runs 8 --out "$out/samples_gpu.json" 2>&1 | tee "$out/record.log"
    python benchmarks/regression_detection.py --samples "$out/samples_gpu.json" --out "$out/detection_real.md" \
      2>&1 | tee -a "$out/record.log"
    python -m pytest tests/test_gpu_timing.py tests/test_timing_interop.py -q -p no:cacheprovider 2>&1 | tee "$out/tests.log"
    ;;
  *)
    echo "unknown part $part (suites-a, suites-b, timing)" >&2
    exit 2
    ;;
esac
tar czf "$out/baselines.tgz" baselines 2>/dev/null || true
