#!/usr/bin/env bash
# The quantization family's one device session (run through scripts/gpu_host.sh exec,
# which puts the unpacked prefix on the paths): build the quant targets, run the CPU
# and GPU tests, compute-sanitizer memcheck on a subset, verify --kernel quant, the
# benchmark (JSON to $OUT/quant.json), and the PyTorch cross-check of the golden data.
# Everything lands in $OUT/quant_run.log plus the JSON/log files named below.
set -u
out=${OUT:-out}
mkdir -p "$out"
log="$out/quant_run.log"
build=${MOE_BUILD:-build-gpu}
prefix=${MOE_PREFIX:-/tmp/moe-prefix}
step() { echo "== $* ($(date +%T))" | tee -a "$log"; }
step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$log" 2>&1
git rev-parse HEAD >>"$log" 2>&1; git status --short | head -30 >>"$log" 2>&1
step "setup + build"
[ -f "$build/build.ninja" ] || meson setup "$build" -Dgpu=cuda -Dnvcc_arch=sm_90 -Dextra_rpath="$prefix/usr/lib/x86_64-linux-gnu" >"$out/build.log" 2>&1
ninja -C "$build" tests/gpu_test_quant tests/test_quant bench/bench_quant >>"$out/build.log" 2>&1 || { tail -40 "$out/build.log" | tee -a "$log"; exit 1; }
tail -2 "$out/build.log" >>"$log"
step "cpu tests"
"$build/tests/test_quant" 2>&1 | tail -4 | tee -a "$log"
step "gpu tests"
"$build/tests/gpu_test_quant" -s >"$out/test_gpu.log" 2>&1; echo "rc=$?" | tee -a "$log"
grep -E "MESSAGE|comparisons|kernels' encoder|test cases|assertions|Status|ERROR|FAILED" "$out/test_gpu.log" | head -40 | tee -a "$log"
step "memcheck subset"
compute-sanitizer --tool memcheck --error-exitcode 9 "$build/tests/gpu_test_quant" -tc='*sanitizer subset*' >"$out/memcheck.log" 2>&1
echo "memcheck rc=$?" | tee -a "$log"; tail -4 "$out/memcheck.log" | tee -a "$log"
step "bench"
"$build/bench/bench_quant" --benchmark_out="$out/quant.json" --benchmark_out_format=json --benchmark_min_time=0.1 >"$out/bench.log" 2>&1
echo "bench rc=$?" | tee -a "$log"
step "torch cross-check"
python3 scripts/quant_golden_torch.py 2>&1 | tail -22 | tee -a "$log"
step "verify (CLI)"
if ninja -C "$build" harness/cli/moe-harness >>"$out/build.log" 2>&1; then
  "$build/harness/cli/moe-harness" verify --kernel quant --json "$out/verify_quant.json" 2>&1 | tail -4 | tee -a "$log"
else
  echo "moe-harness did not build (see build.log)" | tee -a "$log"
fi
step "done"
