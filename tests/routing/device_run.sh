#!/usr/bin/env bash
# One GPU-host session for the routing family: standalone build, PyTorch golden
# vectors, CPU + GPU tests, compute-sanitizer on the 'sanitize:*' subset, the
# benchmark and the PyTorch side-by-side. Everything lands in $OUT (at most 8
# files come back from the device tool). Run from the source root:
#
#   bash scripts/gpu_host.sh exec bash tests/routing/device_run.sh [steps]
# steps: any of build,golden,cpu,gpu,bench,torch,memcheck,racecheck (default all, in this order)
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
steps=${1:-build,golden,cpu,gpu,memcheck,racecheck,bench,torch}
B=build-routing-standalone
log="$OUT/summary.log"
t0=$(date +%s)
say() { echo "[$(($(date +%s) - t0))s] $*" | tee -a "$log"; }
want() { [[ ",$steps," == *",$1,"* ]]; }

say "host: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1)"
say "git: ${MOE_GIT_REV:-$(git describe --always --dirty --abbrev=12 2>/dev/null)}"
say "nvcc: $(nvcc --version | tail -1); torch: $(python3 -c 'import torch; print(torch.__version__)' 2>&1 | tail -1)"

if want build; then
  timeout 300 bash tests/routing/standalone_build.sh "$B" >"$OUT/build.log" 2>&1
  say "build: rc=$?"
  tail -3 "$OUT/build.log" >>"$log"
fi

if want golden; then
  # Regenerate into /tmp and compare with the committed file (same seed, same torch: identical bytes).
  timeout 60 python3 data/routing/make_golden.py --out /tmp/golden_routing.json >>"$log" 2>&1
  say "golden: rc=$?"
  if cmp -s /tmp/golden_routing.json data/routing/golden_routing.json; then
    say "golden: regenerated file identical to the committed one"
  else
    say "golden: regenerated file DIFFERS from the committed one (copied to OUT)"
    cp /tmp/golden_routing.json "$OUT/golden_routing.json"
  fi
fi

if want cpu; then
  timeout 60 "$B/test_routing" >>"$log" 2>&1
  say "cpu tests: rc=$?"
fi

if want gpu; then
  timeout 150 "$B/gpu_test_routing" --duration=true >"$OUT/gpu_tests.log" 2>&1
  say "gpu tests: rc=$?"
  grep -E "test cases:|assertions:|routing GPU runs" "$OUT/gpu_tests.log" >>"$log"
  grep -B2 -A6 "ERROR" "$OUT/gpu_tests.log" | head -60 >>"$log"
fi

if want bench; then
  timeout 120 "$B/bench_routing" --benchmark_out="$OUT/routing.json" --benchmark_out_format=json \
    --benchmark_counters_tabular=true >"$OUT/bench.log" 2>&1
  say "bench: rc=$?"
fi

if want torch; then
  timeout 120 python3 bench/torch_routing.py --out "$OUT/torch_routing.json" --ours "$OUT/routing.json" \
    --md /tmp/side_by_side.md >>"$OUT/bench.log" 2>&1
  say "torch side-by-side: rc=$?"
  cat /tmp/side_by_side.md >>"$log" 2>/dev/null
fi
for tool in memcheck racecheck; do
  if want $tool; then
    extra=()
    [ $tool = memcheck ] && extra=(--leak-check full)
    [ $tool = racecheck ] && extra=(--racecheck-report all)
    timeout 60 compute-sanitizer --tool $tool "${extra[@]}" --error-exitcode 9 "$B/gpu_test_routing" -tc='sanitize:*' \
      >>"$OUT/sanitizer.log" 2>&1
    say "compute-sanitizer $tool: rc=$?"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|test cases:" "$OUT/sanitizer.log" | tail -2 >>"$log"
  fi
done

say "done"
