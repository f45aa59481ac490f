#!/usr/bin/env bash
# Every correctness check of the GPU host in one device call of about 8 minutes:
# after the build, three lanes share the GPU at once (none of them is timed, and the
# shared GPU is itself a test: no result may depend on timing).
#
#   scripts/gpu_correctness_lanes.sh
#     lane 1  gpu_full_run.sh tests,verify      every GPU test but the big ones, the full verify sweep
#     lane 2  gpu_full_run.sh big,q8            the big fused_moe cases, the q8 tests and big cases
#     lane 3  mutation_suite.py --mutants ''    unmutated fused layers over SEEDS fresh seeds (default 20)
#
# Env: MOE_GIT_REVISION (the device copy has no .git), LANE_TIMEOUT_S (default 400),
# SEEDS. Logs: /tmp/moe-run (lane 1), /tmp/moe-run/big (lane 2), /tmp/moe-run/seeds
# (lane 3), bundled into $OUT/lanes.tar.gz. Exit status 0 when every lane passed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}
run_dir=/tmp/moe-run
limit=${LANE_TIMEOUT_S:-400}
mkdir -p "$out" "$run_dir"
export CPU_TESTS=0

bash scripts/gpu_full_run.sh build > "$out/lanes-build.log" 2>&1 || { tail -40 "$out/lanes-build.log"; exit 1; }
(OUT=/tmp/moe-lane2-out MOE_RUN_DIR="$run_dir/big" Q8_STEPS=gpu,big timeout "$limit" \
  bash scripts/gpu_full_run.sh big,q8 > "$out/lane2.log" 2>&1) &
lane2=$!
(timeout "$limit" bash scripts/gpu_host.sh exec python3 scripts/mutation_suite.py --build build-gpu \
  --out "$run_dir/seeds" --mutants '' --seeds "${SEEDS:-20}" --budget-s $((limit - 40)) > "$out/lane3.log" 2>&1) &
lane3=$!
OUT=/tmp/moe-lane1-out timeout "$limit" bash scripts/gpu_full_run.sh tests,verify > "$out/lane1.log" 2>&1
status=$?
wait $lane2 || status=1
wait $lane3 || status=1
tar -czf "$out/lanes.tar.gz" -C "$run_dir" . 2>/dev/null
grep -E "rc=|verify:|===" "$out/lane1.log" | tail -12
grep -E "rc=|test cases" "$out/lane2.log" | tail -8
tail -3 "$out/lane3.log"
echo "lanes: status $status"
exit $status
