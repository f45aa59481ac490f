#!/usr/bin/env bash
# The GPU-host job, in steps that can be split over several calls of one warm
# machine (each call of the device tool may run 10 minutes at most):
#
#   scripts/gpu_full_run.sh [STEPS]     STEPS: comma list, default all of
#     build     unpack .debs, configure and build build-gpu (sm_90a) with every target
#     tests     CPU tests (meson test --suite cpu) and every GPU test binary
#               (fused_moe without its M >= 1024 / 40000 cases: step big)
#     sass      scripts/ptxas_check.py: the sm_90a units' registers and spills, and the SASS of
#               every warp-specialized kernel (UTMALDG, HGMMA/QGMMA/IGMMA) through cuobjdump
#     ncu       (only when named) scripts/ncu_layer.py: duration, DRAM and SM throughput, achieved TFLOP/s of the
#               layer's GEMM stages under Nsight Compute (NCU_ARGS, e.g. "--M 16,4096 --layers bf16")
#     stalls    (only when named) scripts/ncu_stalls.py: one launch each of the fp8 stage-1 and stage-2
#               and the bf16 stage-1 ws kernels at Mixtral M = 4096 under ncu, their sampled warp
#               stalls per SASS instruction summarized (STALLS_TIMEOUT per launch, default 150 s;
#               STALLS_POINTS="tag bench filter skip [kernel];..." for other kernels)
#     multigpu  (only when named; a host of several GPUs) scripts/multi_gpu.py --compare-single of
#               verify, the layer bench and a small tune: shards one GPU each against one process
#     big       the big fused_moe cases (M = 1024/4096 subsets, DeepSeek-V3 M = 40000)
#     sanitize  compute-sanitizer memcheck / racecheck on small subsets (align, routing, fused_moe)
#     q8        tests/fused_moe_q8/device_run.sh (tests, memcheck, verify --quick, big cases; Q8_STEPS to choose)
#     tooling   scripts/tooling_device_check.sh (bench, shards, merge, tune, --tuned-config)
#     probe     tests/fused_moe_q8/wgmma_fp8_probe.cu on a fresh seed, its results replayed by the
#               CPU model of Hopper's fp8 accumulation (reference/fused_moe_q8/fp8_mma_accum.hpp)
#     tune      moe-harness tune (default models and M, or TUNE_ARGS="--model m -M 4096") into
#               $run_dir/tuned_fmoe.csv (a log per call: tune.log, tune-2.log, ...), then copied to
#               configs/tuned_fmoe.csv so that the later steps (verify, bench) use the tuned rows
#     verify    moe-harness devices + verify (the full default sweep; VERIFY_ARGS=--quick for less)
#     bench     moe-harness bench per bench_* executable, BENCH_REPETITIONS (default 3) each
#               (fused_moe: the layer benchmarks, not the sweep; BENCHES="bench_a bench_b" for only those)
#     tiles     (only when named) the warp-specialized tiles side by side: the bf16 layer sweep of
#               the wgmma, wgmma_ws and wgmma_ws-c2 tiles at M >= 256 and the q8 tile sweep of
#               the same kinds at M = 1024, 4096 (fp8_tensor, fp8_block, int8_token); 3 repetitions each;
#               and the bf16 layer's parts (align, stage 1, stage 2, reduce) at M = 1024, 4096
#     clusters  (only when named) the ws tile against its 2-block cluster tile, one tile (pair) per block
#               (cluster) and persistent: the cluster GPU tests (bit-equal to the one-block tile), then
#               the bf16 layer sweep and the q8 tile sweep (CLUSTER_SCHEMES, default fp8_tensor) of
#               both tiles both ways at M = 1024, 4096; 3 repetitions each
#     counter   (only when named) claimed tiles against the fixed stride on persistent one-block
#               ws grids: their GPU tests, then the bf16 ws tile sweep (one tile per block and
#               persistent) at M = 256, 1024, 4096 and the q8 layer (COUNTER_Q8_FILTER) under
#               MOE_FUSED_MOE_TILE_COUNTER=0 and =1 into counter0_*.json / counter1_*.json
#     groupm    (only when named) the bf16 layer and its GEMM stages, and the fp8_tensor layer, at
#               M = 1024, 4096 under each MOE_FUSED_MOE_GROUP_M of GROUP_M_SET (default 1 2 4 8 16:
#               m-blocks per group of the fixed-group tile order, MOE_FUSED_MOE_GROUP_BY_EXPERT=0)
#               into groupm_<g>.json and groupm_<g>_q8.json
#     torch     bench/anchors/torch_moe_layer.py on the same card
#     report    moe-harness report over verify + every bench JSON, the torch anchor as baseline "torch"
#     mutation  scripts/mutation_suite.py: kernel mutants must fail verify, fresh seeds must pass
#               (MUTATION_BUDGET_S, default 480 s; MUTANTS, SEEDS to choose)
#
# Logs go to /tmp/moe-run (kept between calls of a warm machine) and are bundled
# after every step into $OUT/results.tar.gz, so a call stopped at its limit still
# returns what it did. Exit status: 0 when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
steps=${1:-build,sass,tests,sanitize,q8,tooling,probe,tune,verify,bench,torch,report,mutation}
out=${OUT:-out}
run_dir=${MOE_RUN_DIR:-/tmp/moe-run}
mkdir -p "$out" "$run_dir"
build=${MOE_BUILD:-build-gpu}
H="$build/harness/cli/moe-harness"
has() { [[ ",$steps," == *",$1,"* ]]; }
status=0
t0=$(date +%s)
step() {
  tar -czf "$out/results.tar.gz" -C "$run_dir" . 2>/dev/null
  echo "=== [+$(( $(date +%s) - t0 ))s $(date +%H:%M:%S)] $*" | tee -a "$run_dir/steps.log"
}
note() { echo "$*" | tee -a "$run_dir/steps.log"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv > "$run_dir/nvidia-smi.csv" 2>&1
# Pass MOE_GIT_REVISION from the machine that holds the commit (MOE_GIT_REVISION=$(git rev-parse
# --short HEAD) written out there): the device's copy of the tree may carry a stale .git, whose
# HEAD then names an older commit than the files measured.
echo "${MOE_GIT_REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}" > "$run_dir/git-revision.txt"

if has build; then
  step build
  MOE_LOG_DIR="$run_dir" bash scripts/gpu_host.sh build > "$run_dir/build-console.log" 2>&1 \
    || { note "build failed"; grep -E "error|FAILED" "$run_dir/build.log" | head -30; step end; exit 1; }
  tail -2 "$run_dir/build.log"
fi

run_test() {  # log-name timeout binary args...
  local name=$1 limit=$2
  shift 2
  timeout "$limit" "$@" > "$run_dir/$name.log" 2>&1
  local rc=$?
  note "$name rc=$rc $(grep -E '^\[doctest\] (test cases|Status)' "$run_dir/$name.log" | tr '\n' ' ')"
  [ $rc = 0 ] || status=1
}

gbench() {  # out-name limit-s bench-binary filter: 3 repetitions into $run_dir/<out-name>.json and .log
  timeout "$2" bash scripts/gpu_host.sh exec "$build/bench/$3" --benchmark_filter="$4" \
    --benchmark_repetitions=3 --benchmark_out="$run_dir/$1.json" --benchmark_out_format=json \
    > "$run_dir/$1.log" 2>&1 || status=1
}

if has tests; then
  if [ "${CPU_TESTS:-1}" != 0 ]; then  # CPU_TESTS=0: leave them to CI, spend the GPU time on the GPU
    step "cpu tests"
    MOE_LOG_DIR="$run_dir" bash scripts/gpu_host.sh exec meson test -C "$build" --suite cpu --num-processes 4 \
      > "$run_dir/cpu-tests.log" 2>&1 || status=1
    grep -E "^(Ok|Fail|Skipped):" "$run_dir/cpu-tests.log" | tr -s ' ' | tr '\n' ' ' | tee -a "$run_dir/steps.log"; echo
  fi
  step "gpu tests"
  for t in "$build"/tests/gpu_test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue   # not the gpu_test_*.p object folders
    n=$(basename "$t")
    case "$n" in
      gpu_test_fused_moe) run_test "$n" 400 "$t" -tce='fused_moe gpu big*' ;;
      gpu_test_fused_moe_q8) ;;  # step q8
      *) run_test "$n" 300 "$t" ;;
    esac
  done
fi

if has sass; then
  step "sass: ptxas and SASS of the sm_90a units"
  PATH="$PATH:/usr/local/cuda/bin" python3 scripts/ptxas_check.py --out "$run_dir/ptxas-check" --sass yes \
    --jobs "$(nproc)" > "$run_dir/ptxas-check.log" 2>&1 || status=1
  tail -1 "$run_dir/ptxas-check.log" | tee -a "$run_dir/steps.log"
fi

if has ncu; then
  step "ncu: the layer's GEMM stages under Nsight Compute (scripts/ncu_layer.py)"
  timeout "${NCU_TIMEOUT:-540}" python3 scripts/ncu_layer.py --build "$build" --out "$run_dir/ncu" ${NCU_ARGS:-} \
    > "$run_dir/ncu.log" 2>&1 || status=1
  grep '^ncu_layer' "$run_dir/ncu.log" | tail -n 14 | tee -a "$run_dir/steps.log"
fi

if has stalls; then
  step "stalls: sampled warp stalls of GEMM kernels (scripts/ncu_stalls.py)"
  mkdir -p "$run_dir/stalls"
  q8_point='^BM_q8_layer/fp8_tensor/mixtral_8x7b/M:4096/'
  # tag, bench binary, benchmark filter, launches of the kernel to skip (the two stages alternate),
  # and the kernel's name where it is not the ws kernel; STALLS_POINTS="tag exe filter skip [kernel];..."
  # for others (the cp.async 8-bit tiles: q8_gemm_kernel)
  points=${STALLS_POINTS:-"fp8s1 bench_fused_moe_q8 $q8_point 2;fp8s2 bench_fused_moe_q8 $q8_point 3;bf16s1 bench_fused_moe ^BM_fused_moe_layer/mixtral_8x7b/M:4096/ 2"}
  IFS=';' read -r -a point_list <<< "$points"
  for point in "${point_list[@]}"; do
    read -r tag exe filter skip kernel <<< "$point"
    python3 scripts/ncu_stalls.py profile --exe "$build/bench/$exe" --filter "$filter" \
      --kernel "${kernel:-grouped_gemm_ws_kernel}" --skip "$skip" --out "$run_dir/stalls" --tag "$tag" \
      --timeout "${STALLS_TIMEOUT:-150}" > "$run_dir/stalls/$tag.stdout" 2>&1 || { status=1; note "stalls $tag failed"; }
    rm -f "$run_dir/stalls/$tag.ncu-rep"  # tens of MB; the CSV pages and the summary stay
    note "stalls $tag: $(sed -n 2p "$run_dir/stalls/$tag.stdout")"
  done
fi

if has multigpu; then
  step "multigpu: sharded verify, bench and tune over the host's GPUs against one process (scripts/multi_gpu.py)"
  for job in "verify" "bench --kernel fused_moe --filter BM_fused_moe_layer/" \
             "tune --model mixtral_8x7b -M 16 -M 1024 --split-k 1 --persistent off"; do
    name=${job%% *}
    # shellcheck disable=SC2086
    timeout 590 python3 scripts/multi_gpu.py --harness "$H" --compare-single --out "$run_dir/multigpu-$name" \
      $name ${job#"$name"} > "$run_dir/multigpu-$name.log" 2>&1 || status=1
    tail -n 3 "$run_dir/multigpu-$name.log" | tee -a "$run_dir/steps.log"
  done
fi

if has big; then
  step "big fused_moe cases"
  run_test gpu_test_fused_moe_big 500 "$build/tests/gpu_test_fused_moe" -tc='fused_moe gpu big*'
fi

if has sanitize; then
  step sanitize
  # Small subsets per binary (the q8 family's memcheck runs in step q8).
  san() {  # tool binary doctest-filter [compute-sanitizer options]; limit: SAN_LIMIT (one call), else SAN_TIMEOUT, else 90 s
    local tool=$1 n=$2 filt=$3 limit=${SAN_LIMIT:-${SAN_TIMEOUT:-90}}
    shift 3
    timeout "$limit" compute-sanitizer --tool "$tool" --error-exitcode 9 "$@" "$build/tests/$n" -tc="$filt" \
      > "$run_dir/sanitizer-$tool-$n.log" 2>&1
    local rc=$?
    note "$tool $n rc=$rc $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$run_dir/sanitizer-$tool-$n.log" | tail -1)"
    [ $rc = 0 ] || status=1
  }
  san memcheck gpu_test_moe_align 'sanitize:*'
  san racecheck gpu_test_moe_align 'sanitize:*'
  san memcheck gpu_test_routing 'sanitize:*'
  san racecheck gpu_test_routing 'sanitize:*'
  san memcheck gpu_test_fused_moe 'fused_moe gpu: validation,fused_moe gpu: seed odd shapes'
  # racecheck of the odd shapes took 125 s on an H200 (reports/h200-807f197/sanitizer)
  SAN_LIMIT=${SAN_TIMEOUT:-300} san racecheck gpu_test_fused_moe 'fused_moe gpu: seed odd shapes'
  san memcheck gpu_test_fused_moe 'sanitize:*'
  san racecheck gpu_test_fused_moe 'sanitize:*'
  san memcheck gpu_test_quant 'quant gpu: kernels equal the reference bit for bit*,quant gpu: explicit block sizes*'
  san racecheck gpu_test_quant 'quant gpu: kernels equal the reference bit for bit*'
  san racecheck gpu_test_fused_moe_q8 'sanitize:*'
  # The core tests provoke API errors on purpose (bad launch, bad device, out of memory).
  san memcheck gpu_test_core '*' --report-api-errors no
fi

if has q8; then
  step "q8 (tests/fused_moe_q8/device_run.sh)"
  # its benchmark runs in step bench with the other bench_* executables
  OUT="$run_dir/q8" MOE_BUILD="$build" timeout 420 bash tests/fused_moe_q8/device_run.sh "${Q8_STEPS:-cpu,gpu,sanitize,verify,big}" \
    > "$run_dir/q8-console.log" 2>&1 || status=1
  tail -40 "$run_dir/q8-console.log"
fi

if has tooling; then
  step "tooling (scripts/tooling_device_check.sh)"
  OUT="$run_dir" MOE_BUILD="$build" timeout 400 bash scripts/gpu_host.sh exec bash scripts/tooling_device_check.sh \
    > "$run_dir/tooling-console.log" 2>&1 || status=1
  grep -E "ok:|FAILED|done:" "$run_dir/tooling/steps.log" 2>/dev/null | tee -a "$run_dir/steps.log"
fi

if has probe; then
  step "probe (Hopper fp8 wgmma accumulation)"
  mkdir -p "$run_dir/probe"
  seed=${PROBE_SEED:-$(date +%s)}
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  if nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -I. -Icore/include \
      tests/fused_moe_q8/wgmma_fp8_probe.cu -o "$run_dir/probe/probe" > "$run_dir/probe/build.log" 2>&1 &&
     "$run_dir/probe/probe" "$run_dir/probe" "$driver" "$seed" > "$run_dir/probe/run.log" 2>&1; then
    rm -f "$run_dir"/probe/*.bin "$run_dir/probe/probe"  # the golden JSON keeps 48 results per experiment
    MOE_FP8_MMA_GOLDEN="$run_dir/probe/hopper_fp8_mma_golden.json" MOE_LOG_DIR="$run_dir" \
      bash scripts/gpu_host.sh exec "$build/tests/test_fused_moe_q8" -tc='hopper fp8 mma model: replays*' \
      > "$run_dir/probe/replay.log" 2>&1 || status=1
    note "probe seed $seed: $(grep -E '^\[doctest\] (test cases|assertions)' "$run_dir/probe/replay.log" | tr '\n' ' ')"
  else
    status=1
    note "probe failed: $(tail -3 "$run_dir/probe/build.log" "$run_dir/probe/run.log")"
  fi
fi

if has tune; then
  step tune
  cp configs/tuned_fmoe.csv "$run_dir/tuned_fmoe.csv"
  tune_log=$run_dir/tune.log n=1
  while [ -e "$tune_log" ]; do n=$((n + 1)); tune_log=$run_dir/tune-$n.log; done
  # shellcheck disable=SC2086  # TUNE_ARGS is a list of options
  timeout ${TUNE_TIMEOUT:-300} "$H" tune --tuned-config "$run_dir/tuned_fmoe.csv" ${TUNE_ARGS:-} > "$tune_log" 2>&1 || status=1
  tail -3 "$tune_log" | tee -a "$run_dir/steps.log"
  cp "$run_dir/tuned_fmoe.csv" configs/tuned_fmoe.csv
fi

if has verify; then
  step verify
  "$H" devices --json "$run_dir/devices.json" > "$run_dir/devices.log" 2>&1
  cat "$run_dir/devices.log"
  timeout 400 "$H" verify ${VERIFY_ARGS:-} --json "$run_dir/verify.json" > "$run_dir/verify.log" 2>&1 || status=1
  tail -3 "$run_dir/verify.log" | tee -a "$run_dir/steps.log"
fi

if has bench; then
  step benchmarks
  # moe-harness bench per family (3 repetitions: mean, median, stddev for compare),
  # so one slow family cannot take the others' results with it.
  for b in "$build"/bench/bench_*; do
    [ -x "$b" ] && [ -f "$b" ] || continue
    n=$(basename "$b")
    [ -n "${BENCHES:-}" ] && [[ " $BENCHES " != *" $n "* ]] && continue
    filter=()
    case "$n" in
      bench_fused_moe) filter=(--filter '^BM_fused_moe_layer/') ;;
      bench_fused_moe_q8) filter=(--filter "${Q8_BENCH_FILTER:-BM_(bf16|q8)_layer/}") ;;
    esac
    t1=$(date +%s)
    timeout 400 "$H" bench --kernel "${n#bench_}" "${filter[@]}" --repetitions "${BENCH_REPETITIONS:-3}" \
      --json "$run_dir/$n.json" > "$run_dir/$n.log" 2>&1 || status=1
    note "$n: $(grep -c '"run_type": "iteration"' "$run_dir/$n.json" 2>/dev/null) runs in $(( $(date +%s) - t1 )) s"
  done
fi

if has tiles; then
  step "tiles: wgmma, wgmma_ws and wgmma_ws-c2 side by side (bf16 layer sweep, q8 tile sweep)"
  tile_re='wgmma(_ws)?(-c2)?/'
  gbench tiles_fused_moe 300 bench_fused_moe "BM_fused_moe_sweep/.*/M:(256|1024|4096)/tile:128x256x64-w8-s4-$tile_re"
  MOE_Q8_TILE_SWEEP=1 MOE_Q8_TILE_SWEEP_M=1024,4096 MOE_Q8_TILE_SWEEP_SCHEMES=fp8_tensor,fp8_block,int8_token \
    gbench tiles_fused_moe_q8 300 bench_fused_moe_q8 "BM_q8_tile/.*/tile:128x(128|192|256)x128-w8-s[456]-${tile_re}split:1/"
  # Where the layer's time goes at large M: align, each GEMM stage and the reduce alone.
  gbench parts_fused_moe 120 bench_fused_moe 'BM_fused_moe_(align|stage1|stage2|reduce)/.*/M:(1024|4096)/'
  note "tiles: $(grep -c '"run_type": "aggregate"' "$run_dir/tiles_fused_moe.json" 2>/dev/null) + $(grep -c '"run_type": "aggregate"' "$run_dir/tiles_fused_moe_q8.json" 2>/dev/null) aggregates"
fi

if has clusters; then
  step "clusters: the ws tile and its 2-block cluster tile, one tile (pair) per block (cluster) and persistent"
  run_test gpu_test_fused_moe_clusters 300 "$build/tests/gpu_test_fused_moe" -tc='*2-block clusters*'
  run_test gpu_test_fused_moe_q8_ws 300 "$build/tests/gpu_test_fused_moe_q8" -tc='*warp-specialized tile*,*tile shapes*'
  gbench clusters_fused_moe 300 bench_fused_moe "BM_fused_moe_sweep/.*/M:(1024|4096)/tile:128x256x64-w8-s4-wgmma_ws(-c2)?/"
  MOE_Q8_TILE_SWEEP=1 MOE_Q8_TILE_SWEEP_M=1024,4096 MOE_Q8_TILE_SWEEP_SCHEMES=${CLUSTER_SCHEMES:-fp8_tensor} \
    gbench clusters_fused_moe_q8 300 bench_fused_moe_q8 "BM_q8_tile/.*/tile:128x128x128-w8-s6-wgmma_ws(-c2)?/split:1/"
  note "clusters: $(grep -c '"aggregate_name": "median"' "$run_dir/clusters_fused_moe.json" 2>/dev/null) + $(grep -c '"aggregate_name": "median"' "$run_dir/clusters_fused_moe_q8.json" 2>/dev/null) medians"
fi

if has counter; then
  step "counter: persistent one-block ws grids with claimed tiles (Workspace::tile_counters) and with the fixed stride"
  run_test gpu_test_fused_moe_counter 300 "$build/tests/gpu_test_fused_moe" -tc='*claimed tiles*,*persistent blocks*'
  run_test gpu_test_fused_moe_q8_counter 300 "$build/tests/gpu_test_fused_moe_q8" -tc='*warp-specialized tile*'
  for mode in 0 1; do
    MOE_FUSED_MOE_TILE_COUNTER=$mode gbench "counter${mode}_fused_moe" 300 bench_fused_moe \
      "BM_fused_moe_sweep/.*/M:(256|1024|4096)/tile:128x256x64-w8-s4-wgmma_ws/"
    MOE_FUSED_MOE_TILE_COUNTER=$mode gbench "counter${mode}_fused_moe_q8" 300 bench_fused_moe_q8 "${COUNTER_Q8_FILTER:-BM_q8_layer/}"
  done
  note "counter: $(grep -c '"aggregate_name": "median"' "$run_dir/counter1_fused_moe.json" 2>/dev/null) + $(grep -c '"aggregate_name": "median"' "$run_dir/counter1_fused_moe_q8.json" 2>/dev/null) medians each way"
fi

if has groupm; then
  step "groupm: the layers at M = 1024, 4096 under each MOE_FUSED_MOE_GROUP_M of GROUP_M_SET"
  for g in ${GROUP_M_SET:-1 2 4 8 16}; do
    MOE_FUSED_MOE_GROUP_BY_EXPERT=0 MOE_FUSED_MOE_GROUP_M=$g gbench "groupm_$g" 150 bench_fused_moe 'BM_fused_moe_(layer|stage1|stage2)/.*/M:(1024|4096)/'
    MOE_FUSED_MOE_GROUP_M=$g gbench "groupm_${g}_q8" 150 bench_fused_moe_q8 'BM_q8_layer/fp8_tensor/.*/M:(1024|4096)/'
    note "groupm $g: $(grep -c '"aggregate_name": "median"' "$run_dir/groupm_${g}.json" 2>/dev/null) + $(grep -c '"aggregate_name": "median"' "$run_dir/groupm_${g}_q8.json" 2>/dev/null) medians"
  done
fi

if has torch && [ -f bench/anchors/torch_moe_layer.py ]; then
  step "torch anchor"
  PYTHONUNBUFFERED=1 timeout 400 python3 bench/anchors/torch_moe_layer.py --json "$run_dir/torch_moe_layer.json" \
    --gbench-json "$run_dir/torch_moe_layer.gbench.json" > "$run_dir/torch_moe_layer.log" 2>&1 || status=1
  tail -25 "$run_dir/torch_moe_layer.log"
fi

if has report; then
  step report
  benches=()
  for j in "$run_dir"/bench_*.json "$run_dir"/q8/bench_*.json; do [ -f "$j" ] && benches+=(--bench "$j"); done
  verify_args=()
  [ -f "$run_dir/verify.json" ] && verify_args=(--verify "$run_dir/verify.json")
  [ -f "$run_dir/torch_moe_layer.gbench.json" ] && benches+=(--baseline "torch=$run_dir/torch_moe_layer.gbench.json")
  "$H" report "${verify_args[@]}" "${benches[@]}" --out "$run_dir/report.html" --json-out "$run_dir/report.json" \
    > "$run_dir/report.log" 2>&1 || { status=1; cat "$run_dir/report.log"; }
fi

if has mutation; then
  step "mutation suite"
  mut_args=(--build "$build" --out "$run_dir/mutation" --budget-s "${MUTATION_BUDGET_S:-480}" --seeds "${SEEDS:-20}")
  [ -n "${MUTANTS:-}" ] && mut_args+=(--mutants "$MUTANTS")
  MOE_LOG_DIR="$run_dir" bash scripts/gpu_host.sh exec python3 scripts/mutation_suite.py "${mut_args[@]}" \
    2>&1 | tee -a "$run_dir/steps.log" || status=1
fi

step "end (status $status)"
exit $status
