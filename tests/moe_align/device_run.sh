#!/usr/bin/env bash
# One GPU-host session for moe_align: torch golden vectors, standalone build,
# CPU + GPU tests, compute-sanitizer (memcheck, racecheck, synccheck) on the
# 'sanitize:*' subset, and the benchmark. Everything lands in $OUT (few files:
# the device tool returns at most 8). Run from the source root:
#
#   bash scripts/gpu_host.sh exec bash tests/moe_align/device_run.sh [steps]
# steps: any of golden,build,cpu,gpu,memcheck,racecheck,synccheck,initcheck,bench (default all)
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
steps=${1:-golden,build,cpu,gpu,memcheck,racecheck,synccheck,initcheck,bench}
B=build-align-standalone
log="$OUT/summary.log"
t0=$(date +%s)
say() { echo "[$(($(date +%s) - t0))s] $*" | tee -a "$log"; }
want() { [[ ",$steps," == *",$1,"* ]]; }

say "host: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
say "git: $(git describe --always --dirty --abbrev=12 2>/dev/null)"
say "nvcc: $(nvcc --version | tail -1)"

if want golden; then
  rm -rf /tmp/golden_torch && mkdir -p /tmp/golden_torch
  (python3 data/moe_align/make_golden.py --check && python3 data/moe_align/make_golden.py --out /tmp/golden_torch) \
    >>"$log" 2>&1 && say "golden: ok" || say "golden: FAILED"
  tar -C /tmp/golden_torch -czf "$OUT/golden_torch.tar.gz" . 2>>"$log"
fi

if want build; then
  timeout 240 bash tests/moe_align/standalone_build.sh "$B" >"$OUT/build.log" 2>&1
  say "build: rc=$?"
fi

if want cpu; then
  timeout 30 "$B/test_moe_align" >>"$log" 2>&1
  say "cpu tests: rc=$?"
fi

if want gpu; then
  timeout ${T_GPU:-150} "$B/gpu_test_moe_align" --duration=true >"$OUT/gpu_tests.log" 2>&1
  say "gpu tests: rc=$?"
  tail -4 "$OUT/gpu_tests.log" >>"$log"
fi

for tool in memcheck racecheck synccheck initcheck; do
  if want $tool; then
    extra=()
    [ $tool = memcheck ] && extra=(--leak-check full)
    [ $tool = racecheck ] && extra=(--racecheck-report all)
    timeout ${T_SAN:-90} compute-sanitizer --tool $tool "${extra[@]}" --error-exitcode 9 "$B/gpu_test_moe_align" -tc='sanitize:*' \
      >>"$OUT/sanitizer.log" 2>&1
    say "compute-sanitizer $tool: rc=$?"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|test cases:" "$OUT/sanitizer.log" | tail -2 >>"$log"
  fi
done

if want bench; then
  timeout ${T_BENCH:-170} "$B/bench_moe_align" --benchmark_filter="${BENCH_FILTER:-.}" --benchmark_out="$OUT/align.json" --benchmark_out_format=json \
    --benchmark_counters_tabular=true >"$OUT/bench.log" 2>&1
  say "bench: rc=$?"
fi
say "done"
