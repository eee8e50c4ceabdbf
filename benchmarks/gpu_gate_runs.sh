#!/usr/bin/env bash
# The latency gate on real GPUs (issue 9's "Measure" list) on one host with 4 GPUs (nvidia-h200-x4); every
# GPU is "a machine" (their UUIDs differ, so the machine hashes differ). Every run is a separate pytest
# process on ONNX Runtime CUDA at full size and writes a JSON report (--trt-report=RUN.json: rows, timed
# blocks, the gate's check), which benchmarks/gate_analysis.py reads.
#
#   bash benchmarks/gpu_gate_runs.sh main SECONDS   # the schedule below, stopped at SECONDS
#   bash benchmarks/gpu_gate_runs.sh nauto SECONDS  # after "main" on the same machine: one -n auto run over
#                                                   # GPUs 2 and 3 (one worker per GPU) against main's records
#   GPUS=2 bash benchmarks/gpu_gate_runs.sh main SECONDS  # a 2-GPU host: fewer groups (see "main")
#   GATE_DRY=1 bash benchmarks/gpu_gate_runs.sh main 120   # CPU dry run (--trt-gpu=cpu, tiny subset)
#
# The full-size cases are split in four groups (B: BERT, G5 / G1: GPT-2 at seq 512 / 128, R: the rest).
# "main": each group is recorded once (--trt-update-baselines, K = 1) on one GPU and gated there 4 more
# times (5 processes of every case on one GPU: the stability target; within-machine false alarms): B on
# GPU 0, G5 on GPU 1, G1 then R on GPU 2. GPU 3 records the depth-knob samples (record_knob_blocks.py).
# Each group is then gated once from another GPU (out of sample: cross-machine false alarms): G1 and R
# on GPU 0, B on GPU 1, G5 on GPU 3. A job starts only if
# it can end before SECONDS; each runs under `timeout`, so results come back even when cut.
# Results: $RES (default /tmp/gate-res): RUN.json, RUN.log, knob_samples.json, nvidia_smi_*.csv.
set -uo pipefail
part=$1
budget=${2:-540}
RES=${RES:-/tmp/gate-res}
CACHE=${CACHE:-/tmp/trtcache}
BL=${BL:-/tmp/bl-gate}
mkdir -p "$RES"
export PYTHONUNBUFFERED=1
declare -A GROUP EST
if [[ -n "${GATE_DRY:-}" ]]; then  # CPU: the schedule's plumbing on two tiny suites
  GROUP=([B]="suites/test_mlp.py" [G5]="suites/test_cnn.py -k b8" [G1]="suites/test_cnn.py -k b1"
         [R]="suites/test_byo_onnx.py")
  EST=([B]=15 [G5]=15 [G1]=15 [R]=15)
  COMMON=(--trt-gpu=cpu --trt-latency-gate=on)
  KNOB=(--smoke --runs 2)
else
  GROUP=([B]="suites/test_bert.py" [G5]="suites/test_gpt2.py -k seq512" [G1]="suites/test_gpt2.py -k seq128"
         [R]="suites/test_resnet.py suites/test_segmentation.py suites/test_mlp.py suites/test_cnn.py suites/test_encoder.py suites/test_byo_onnx.py")
  EST=([B]=85 [G5]=95 [G1]=55 [R]=55)  # seconds per process on an H200 (junit times of the x2 runs + start)
  COMMON=(--trt-gpu=h200 --trt-size=full --trt-energy-s=0)
  KNOB=(--runs 40)
fi
COMMON+=(--trt-backend=onnxruntime --trt-cache-dir="$CACHE" --trt-baseline-dir="$BL" -p no:cacheprovider -q)
PLUGIN=()  # the device has no installed entry point: load the plugin by name there
python3 -c "import importlib.metadata as m, sys; sys.exit(any(e.name == 'trtbench' for e in m.entry_points(group='pytest11')))" \
  && PLUGIN=(-p pytest_trtbench.plugin)

job() {  # job GPU(S) NAME GROUP [pytest args...]: one pytest process, if it can end in time
  local gpus=$1 name=$2 group=$3; shift 3
  local left=$(( budget - SECONDS ))
  if (( left < ${EST[$group]:-60} + 5 )); then echo "$name: skipped ($left s left)"; return 1; fi
  local t0=$SECONDS
  # shellcheck disable=SC2086  # GROUP holds several words on purpose
  CUDA_VISIBLE_DEVICES=$gpus timeout "$left" python3 -m pytest "${PLUGIN[@]}" ${GROUP[$group]} "${COMMON[@]}" \
    --trt-report="$RES/$name.json" "$@" > "$RES/$name.log" 2>&1
  echo "$name rc=$? $((SECONDS - t0)) s (t=$SECONDS) $(tail -n 1 "$RES/$name.log")"
}

wait_for() {  # wait_for GROUP: until its record run has finished
  while [[ ! -e "$RES/.recorded_$1" ]] && (( SECONDS < budget )); do sleep 2; done
}

stab() {  # stab GPU GROUP: record GROUP here (K = 1), then gate it 4 more times here
  local gpu=$1 group=$2
  job "$gpu" "rec_${group}_gpu$gpu" "$group" --trt-update-baselines
  touch "$RES/.recorded_$group"
  for i in 2 3 4 5; do job "$gpu" "${group}_gpu${gpu}_r$i" "$group" || break; done
}

cross() {  # cross GPU GROUP...: gate each GROUP here once its record (on another GPU) exists
  local gpu=$1; shift
  for other in "$@"; do wait_for "$other"; job "$gpu" "${other}_gpu${gpu}_x" "$other"; done
}

knob() {  # knob GPU UNTIL: depth-knob samples until second UNTIL (the script saves after every run)
  local left=$(( $2 - SECONDS - 5 ))
  (( left > 60 )) || { echo "knob: skipped ($left s left)"; return; }
  CUDA_VISIBLE_DEVICES=$1 timeout "$left" python3 benchmarks/record_knob_blocks.py "${KNOB[@]}" \
    --out "$RES/knob_samples.json" > "$RES/knob.log" 2>&1
  echo "knob rc=$? $(tail -n 1 "$RES/knob.log")"
}

nvidia-smi --query-gpu=index,name,uuid,driver_version,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu \
  --format=csv > "$RES/nvidia_smi_$part.csv" 2>&1
case "$part" in
  main)
    rm -rf "$BL" "$RES"/.recorded_*
    if [[ "${GPUS:-4}" == 2 ]]; then  # a 2-GPU host: B, G1 and R only, no knob, no G5
      { stab 0 B; cross 0 G1 R; } &
      { stab 1 G1; stab 1 R; } &
      wait
      ls "$RES"
      exit 0
    fi
    { stab 0 B; cross 0 G1 R; } &
    { stab 1 G5; cross 1 B; } &
    { stab 2 G1; stab 2 R; } &
    { knob 3 $(( budget - EST[G5] - 10 )); cross 3 G5; } &
    wait
    ;;
  more)  # after "main" on the same machine: what main had no time for, and -n auto over GPUs 0 and 3
    for g in B G5 G1 R; do touch "$RES/.recorded_$g"; done
    GROUP[ALL]="${GROUP[B]} ${GROUP[R]} suites/test_gpt2.py"
    EST[ALL]=150
    job 0,3 nauto_gpu0+3 ALL -n 2 -p no:benchmark &
    { job 1 G5_gpu1_r5 G5; cross 1 B G1; } &
    { for i in 2 3 4 5; do job 2 "R_gpu2_r$i" R || break; done; } &
    wait
    ;;
  nauto)  # after "main" on the same machine: baselines in $BL, engines in $CACHE
    for g in B G5 G1 R; do touch "$RES/.recorded_$g"; done
    EST[ALL]=$(( EST[B] + EST[G5] + EST[G1] + EST[R] ))
    GROUP[ALL]="${GROUP[B]} ${GROUP[R]} suites/test_gpt2.py"
    EST[ALL]=$(( EST[ALL] / 2 + 20 ))
    job 2,3 nauto_gpu2+3 ALL -n 2 -p no:benchmark
    ;;
  *)
    echo "unknown part $part (main, nauto)" >&2
    exit 2
    ;;
esac
ls "$RES"
