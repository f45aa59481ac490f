#!/usr/bin/env bash
# The whole GPU-host job in one call: build, every test (GPU + CPU), sanitizer
# passes on reduced subsets, `devices`, a verification sweep, every benchmark,
# the torch anchor side by side, and the HTML/JSON report. Logs and results go
# to $MOE_LOG_DIR (default $OUT, else ./out) and are bundled into results.tar.gz.
#
#   scripts/gpu_full_run.sh [--skip-tests] [--skip-sanitizer] [--skip-bench] [--skip-torch]
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${MOE_LOG_DIR:-${OUT:-out}}
mkdir -p "$logs/run"
run_dir="$logs/run"
build=${MOE_BUILD:-build-gpu}
skip_tests=0; skip_san=0; skip_bench=0; skip_torch=0
for a in "$@"; do
  case "$a" in
    --skip-tests) skip_tests=1 ;;
    --skip-sanitizer) skip_san=1 ;;
    --skip-bench) skip_bench=1 ;;
    --skip-torch) skip_torch=1 ;;
    *) echo "gpu_full_run: unknown option $a" >&2; exit 2 ;;
  esac
done
status=0
step() { echo "=== $* ($(date +%H:%M:%S))"; }

step build
MOE_LOG_DIR="$run_dir" bash scripts/gpu_host.sh build || { echo "build failed"; tar -czf "$logs/results.tar.gz" -C "$run_dir" .; exit 1; }
H="$build/harness/cli/moe-harness"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv > "$run_dir/nvidia-smi.csv" 2>&1
git rev-parse HEAD > "$run_dir/git-revision.txt" 2>/dev/null || true

step devices
"$H" devices --json "$run_dir/devices.json" | tee "$run_dir/devices.log"

if [ $skip_tests = 0 ]; then
  step tests
  MOE_LOG_DIR="$run_dir" bash scripts/gpu_host.sh test --num-processes 1 || status=1
  cp "$build/meson-logs/testlog.txt" "$run_dir/testlog.txt" 2>/dev/null
fi

if [ $skip_san = 0 ]; then
  step sanitizer
  # Reduced subsets: each GPU test binary honours MOE_SANITIZER_SUBSET=1 or a doctest filter.
  for t in "$build"/tests/*/gpu_test_* "$build"/tests/gpu_test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    for tool in memcheck racecheck; do
      MOE_SANITIZER_SUBSET=1 timeout 300 compute-sanitizer --tool $tool --error-exitcode 9 "$t" -tce='*large*,*huge*,*40000*' \
        > "$run_dir/sanitizer-$tool-$n.log" 2>&1
      rc=$?
      echo "$tool $n rc=$rc $(grep -E 'ERROR SUMMARY' "$run_dir/sanitizer-$tool-$n.log" | tail -1)"
      [ $rc = 0 ] || status=1
    done
  done
fi

step verify
"$H" verify --json "$run_dir/verify.json" > "$run_dir/verify.log" 2>&1 || status=1
tail -3 "$run_dir/verify.log"

if [ $skip_bench = 0 ]; then
  step benchmarks
  for b in "$build"/bench/bench_*; do
    [ -x "$b" ] && [ -f "$b" ] || continue
    n=$(basename "$b")
    "$b" --benchmark_out="$run_dir/$n.json" --benchmark_out_format=json > "$run_dir/$n.log" 2>&1 || status=1
    echo "$n: $(grep -c '"name"' "$run_dir/$n.json" 2>/dev/null) entries"
  done
fi

if [ $skip_torch = 0 ] && [ -f bench/anchors/torch_moe_layer.py ]; then
  step torch anchor
  PYTHONUNBUFFERED=1 timeout 400 python3 bench/anchors/torch_moe_layer.py > "$run_dir/torch_moe_layer.log" 2>&1 || status=1
  tail -5 "$run_dir/torch_moe_layer.log"
fi

step report
benches=()
for j in "$run_dir"/bench_*.json; do [ -f "$j" ] && benches+=(--bench "$j"); done
"$H" report --verify "$run_dir/verify.json" "${benches[@]}" --out "$run_dir/report.html" --json-out "$run_dir/report.json" \
  > "$run_dir/report.log" 2>&1 || { status=1; cat "$run_dir/report.log"; }

tar -czf "$logs/results.tar.gz" -C "$run_dir" .
echo "gpu_full_run: done, status $status; bundle $logs/results.tar.gz"
exit $status
