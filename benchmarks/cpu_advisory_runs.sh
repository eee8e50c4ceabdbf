#!/usr/bin/env bash
# The README's first command, N times in a row on an unchanged checkout, while a busy loop loads one core.
# Each run must exit 0 (CPU latency is advisory by default); the script reports every run's exit code, verdict
# counts, how many cases carried an advisory latency note (a slowdown or, since 4f1926a, a speedup), and the load
# average around each run.
#
#   bash benchmarks/cpu_advisory_runs.sh [N=10] [OUT=benchmarks/results/cpu_advisory_runs.md]
#
# Needs the project's environment active (python -m pytest with the plugin importable).
set -uo pipefail
n=${1:-10}
out=${2:-benchmarks/results/cpu_advisory_runs.md}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
git -C "$repo" archive HEAD | tar x -C "$work"          # an unchanged checkout of this commit
commit=$(git -C "$repo" rev-parse --short HEAD)
python3 -c 'while True: pass' &                           # another process loading a core
loader=$!
trap 'kill "$loader" 2>/dev/null; rm -rf "$work"' EXIT
{
  echo "# \`pytest suites --trt-gpu=cpu --trt-report=report.csv\`, $n consecutive runs, one core loaded"
  echo
  echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $commit;"
  echo "date $(date -u +%Y-%m-%dT%H:%MZ); load: a \`python3 -c 'while True: pass'\` busy loop (pid $loader) for the"
  echo "whole series, on top of whatever else the machine ran (load averages below)."
  echo
  echo "| run | exit | seconds | verdicts | advisory latency notes (slowdowns and speedups) | loadavg before | loadavg after |"
  echo "|---|---|---|---|---|---|---|"
} > "$out"
fails=0
for i in $(seq 1 "$n"); do
  before=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$SECONDS
  (cd "$work" && python -m pytest suites --trt-gpu=cpu --trt-report=report.csv -q -p no:cacheprovider > "run$i.log" 2>&1)
  rc=$?
  secs=$((SECONDS - t0))
  after=$(cut -d' ' -f1-3 /proc/loadavg)
  verdicts=$(grep -h '^verdicts:' "$work/run$i.log" | sed 's/verdicts: //')
  advisory=$(grep -c 'advisory on CPU' "$work/report.csv" 2>/dev/null || echo 0)
  [ "$rc" -eq 0 ] || fails=$((fails + 1))
  echo "| $i | $rc | $secs | $verdicts | $advisory | $before | $after |" >> "$out"
  echo "run $i: exit $rc, $secs s, $verdicts, $advisory advisory"
done
echo >> "$out"
echo "Result: $((n - fails)) of $n runs passed." >> "$out"
cat "$out"
[ "$fails" -eq 0 ]
