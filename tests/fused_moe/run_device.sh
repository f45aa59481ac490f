#!/usr/bin/env bash
# One device call for the fused MoE family: build only its targets, run the GPU
# tests (small first), compute-sanitizer memcheck on a subset, the benchmark and
# the torch anchor side by side, writing logs/JSON under $OUT.
#
#   bash scripts/gpu_host.sh exec bash tests/fused_moe/run_device.sh [steps]
#   steps: comma list of build,cpu,gpu,verify,sanitize,bench,sweep,nopdl,torch,report,big (default: all but sweep, nopdl)
# Env: FMOE_BENCH_FILTER (regex for bench_fused_moe), FMOE_TORCH_ARGS.
set -uo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-build,cpu,gpu,verify,sanitize,bench,torch,report,big}
res=${OUT:-out}          # what comes back: at most 8 files
mkdir -p "$res"
out=/tmp/fmoe_logs       # every log; tarred into $res/logs.tgz after each step
mkdir -p "$out"
build=${MOE_BUILD:-build-fmoe}   # own build dir: sm_90a (wgmma) by default
prefix=${MOE_PREFIX:-/tmp/moe-prefix}
has() { [[ ",$steps," == *",$1,"* ]]; }
t0=$(date +%s)
stamp() {
  tar -C "$out" -czf "$res/logs.tgz" . 2>/dev/null
  for f in bench_fused_moe.json torch_moe_layer.json report.md; do [ -f "$out/$f" ] && cp "$out/$f" "$res/"; done
  echo "[run_device +$(( $(date +%s) - t0 ))s] $*"
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
echo "${FMOE_GIT_REV:-$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)}" | tee "$out/git_rev.txt"

if has build; then
  stamp build
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dgpu=cuda -Dnvcc_arch="${MOE_NVCC_ARCH:-sm_90a}" \
      -Dextra_rpath="$prefix/usr/lib/x86_64-linux-gnu" > "$out/setup.log" 2>&1 || { tail -30 "$out/setup.log"; exit 1; }
  fi
  ninja -C "$build" tests/test_fused_moe tests/gpu_test_fused_moe bench/bench_fused_moe harness/cli/moe-harness \
    > "$out/build.log" 2>&1 \
    || { grep -E "error|FAILED" "$out/build.log" | head -40; exit 1; }
  stamp built
fi

if has cpu; then
  stamp cpu tests
  "$build/tests/test_fused_moe" > "$out/test_cpu.log" 2>&1; echo "cpu tests rc=$?"; tail -3 "$out/test_cpu.log"
fi

gpu_tc="fused_moe gpu: build*,fused_moe gpu: validation,fused_moe gpu: seed odd shapes,fused_moe gpu: tile shapes,fused_moe gpu: routing distributions,fused_moe gpu: full layer*,fused_moe gpu: models small M"
if has gpu; then
  stamp gpu tests
  timeout 200 "$build/tests/gpu_test_fused_moe" -tc="$gpu_tc" > "$out/test_gpu.log" 2>&1; echo "gpu tests rc=$?"
  grep -E "ERROR|error|test cases|assertions" "$out/test_gpu.log" | head -30
fi

if has verify; then
  stamp "verify family (quick)"
  timeout 150 "$build/harness/cli/moe-harness" verify --kernel fused_moe --quick --json "$out/verify_fused_moe.json" \
    > "$out/verify.log" 2>&1; echo "verify rc=$?"; tail -2 "$out/verify.log"
fi

if has sanitize; then
  stamp sanitize
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 "$build/tests/gpu_test_fused_moe" \
    -tc="fused_moe gpu: validation,fused_moe gpu: full layer*,fused_moe gpu: build*" > "$out/memcheck.log" 2>&1
  echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|test cases" "$out/memcheck.log" | head -5
fi

if has bench || has sweep; then
  stamp bench
  filt=${FMOE_BENCH_FILTER:-BM_fused_moe_(layer|align|stage1|stage2|reduce)/}
  if has sweep; then filt=${FMOE_BENCH_FILTER:-BM_fused_moe_}; fi
  timeout 300 "$build/bench/bench_fused_moe" --benchmark_filter="$filt" --benchmark_out="$out/bench_fused_moe.json" \
    --benchmark_out_format=json > "$out/bench.log" 2>&1; echo "bench rc=$?"
  grep -E "layer" "$out/bench.log" | awk '{print $1, $2}' | head -20
fi

if has nopdl; then
  stamp "bench without programmatic dependent launch"
  MOE_FUSED_MOE_PDL=0 timeout 120 "$build/bench/bench_fused_moe" --benchmark_filter='BM_fused_moe_layer/' \
    --benchmark_out="$out/bench_nopdl.json" --benchmark_out_format=json > "$out/bench_nopdl.log" 2>&1; echo "nopdl rc=$?"
fi

if has torch; then
  stamp torch
  PYTHONUNBUFFERED=1 timeout 200 python3 bench/anchors/torch_moe_layer.py ${FMOE_TORCH_ARGS:-} --json "$out/torch_moe_layer.json" \
    > "$out/torch.log" 2>&1; echo "torch rc=$?"; tail -3 "$out/torch.log"
fi

if has report && [ -f "$out/bench_fused_moe.json" ] && [ -f "$out/torch_moe_layer.json" ]; then
  python3 bench/fused_moe_report.py --bench "$out/bench_fused_moe.json" --torch "$out/torch_moe_layer.json" \
    --md "$out/report.md" --json "$out/report.json" | tail -25
fi

if has big; then
  stamp big tests
  timeout 240 "$build/tests/gpu_test_fused_moe" -tc="fused_moe gpu big*" > "$out/test_gpu_big.log" 2>&1; echo "gpu big rc=$?"
  grep -E "ERROR|error|test cases|assertions|skipped" "$out/test_gpu_big.log" | head -20
fi
stamp done
