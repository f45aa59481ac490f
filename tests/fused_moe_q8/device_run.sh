#!/usr/bin/env bash
# One device session for the quantized fused MoE family, run from the
# repository root on the GPU host after `MOE_NVCC_ARCH=sm_90a scripts/gpu_host.sh build`:
#
#   OUT=/path/to/out bash scripts/gpu_host.sh exec bash tests/fused_moe_q8/device_run.sh [steps]
#   steps: comma list of build,cpu,gpu,sanitize,verify,bench,big (default: build,cpu,gpu,sanitize,verify,bench)
#
# Builds only this family's targets in $MOE_BUILD (default build-gpu), then: CPU
# tests, the GPU tests (all but the "big" ones), compute-sanitizer memcheck on the
# "sanitize:" subset, `moe-harness verify --kernel fused_moe_q8 --quick`, and
# bench_fused_moe_q8 (bf16 side by side) with --benchmark_out JSON. Logs and
# JSON go to $OUT (default out/q8). Each step has a timeout; total <= ~4 min.
# Exit status: 0 when every step run passed, 1 otherwise.
# Env: Q8_BENCH_FILTER (regex for bench_fused_moe_q8).
set -uo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-build,cpu,gpu,sanitize,verify,bench}
out=${OUT:-out/q8}
mkdir -p "$out"
build=${MOE_BUILD:-build-gpu}
has() { [[ ",$steps," == *",$1,"* ]]; }
t0=$(date +%s)
stamp() { echo "[q8 +$(( $(date +%s) - t0 ))s] $*" | tee -a "$out/steps.log"; }
status=0
check() {  # what rc: note a failed step
  echo "$1 rc=$2"
  [ "$2" = 0 ] || status=1
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
# The device tool's copy of the tree may carry an older commit's git metadata: the caller's
# MOE_GIT_REVISION (as the harness's JSON uses) names the tree when set.
if [ -n "${MOE_GIT_REVISION:-}" ]; then
  echo "$MOE_GIT_REVISION" > "$out/git_rev.txt"
else
  git describe --always --dirty --abbrev=12 > "$out/git_rev.txt" 2>/dev/null || echo unknown > "$out/git_rev.txt"
fi

if has build; then
  stamp build
  ninja -C "$build" tests/test_fused_moe_q8 tests/gpu_test_fused_moe_q8 bench/bench_fused_moe_q8 harness/cli/moe-harness \
    > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -40; exit 1; }
fi

if has cpu; then
  stamp cpu tests
  timeout 60 "$build/tests/test_fused_moe_q8" > "$out/test_cpu.log" 2>&1; check "cpu tests" $?
  tail -3 "$out/test_cpu.log"
fi

if has gpu; then
  stamp gpu tests
  timeout 200 "$build/tests/gpu_test_fused_moe_q8" -tce="fused_moe_q8 gpu big*,sanitize:*" -d \
    > "$out/test_gpu.log" 2>&1; check "gpu tests" $?
  grep -E "ERROR|error|test cases|assertions|SKIP" "$out/test_gpu.log" | head -30
fi

if has sanitize; then
  stamp "sanitize subset (memcheck)"
  timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 "$build/tests/gpu_test_fused_moe_q8" \
    -tc="sanitize:*,fused_moe_q8 gpu: validation" > "$out/memcheck.log" 2>&1
  check "memcheck" $?; grep -E "ERROR SUMMARY|test cases" "$out/memcheck.log" | head -5
fi

if has verify; then
  stamp "verify --kernel fused_moe_q8 --quick"
  timeout 40 "$build/harness/cli/moe-harness" verify --kernel fused_moe_q8 --quick --json "$out/verify_fused_moe_q8.json" \
    > "$out/verify.log" 2>&1; check "verify" $?; tail -3 "$out/verify.log"
fi

if has bench; then
  stamp bench
  filt=${Q8_BENCH_FILTER:-BM_(bf16|q8)_layer/}
  timeout 150 "$build/bench/bench_fused_moe_q8" --benchmark_filter="$filt" --benchmark_min_time=0.05 \
    --benchmark_out="$out/bench_fused_moe_q8.json" --benchmark_out_format=json > "$out/bench.log" 2>&1
  check "bench" $?; grep -E "BM_" "$out/bench.log" | head -80
fi

if has big; then
  stamp "big gpu tests (models M 256, 1024)"
  timeout 300 "$build/tests/gpu_test_fused_moe_q8" -tc="fused_moe_q8 gpu big*" -d > "$out/test_gpu_big.log" 2>&1
  check "big gpu tests" $?; grep -E "ERROR|error|test cases|assertions" "$out/test_gpu_big.log" | head -20
fi
stamp "done (status $status)"
exit $status
