#!/usr/bin/env bash
# GPU-host check of the tooling commands: bench (small filter, two
# families, --shard 0/2 and 1/2, merge, compare, report), tune (one model, one
# M, into a temporary CSV), then verify and bench with --tuned-config on it.
# Run from the repository root after `scripts/gpu_host.sh build`:
#
#   OUT=/path/to/out scripts/gpu_host.sh exec bash scripts/tooling_device_check.sh
#
# Env: MOE_BUILD (default build-gpu). Logs, JSON, CSV and the HTML report go to
# $OUT/tooling (default out/tooling); summary lines in $OUT/tooling/steps.log.
# About 2 minutes on an H100. Exit 0 when every step did what it should.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${MOE_BUILD:-build-gpu}
out=${OUT:-out}/tooling
mkdir -p "$out"
H="$build/harness/cli/moe-harness"
t0=$(date +%s)
fails=0
stamp() { echo "[tooling +$(( $(date +%s) - t0 ))s] $*" | tee -a "$out/steps.log"; }
step() {  # name timeout cmd...   (output in $out/<name>.log)
  local name=$1 limit=$2
  shift 2
  stamp "$name: $*"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  stamp "$name: exit $rc ($(tail -n 1 "$out/$name.log"))"
  return $rc
}
expect() {  # description, command (a test)
  if eval "$2"; then stamp "ok: $1"; else stamp "FAILED: $1"; fails=$((fails + 1)); fi
}
# JSON checks (python3): checks.py MODE FILES...
cat > "$out/checks.py" <<'PY'
import json, sys
mode, files = sys.argv[1], sys.argv[2:]
d = [json.load(open(f)) for f in files]
names = lambda doc: [x["name"] for x in doc["benchmarks"]]
if mode == "same_names":
    print(len(names(d[0])), names(d[0])[:3]); assert names(d[0]) == names(d[1]) and names(d[0])
elif mode == "no_errors":
    e = [x["name"] + ": " + x.get("error_message", "") for x in d[0]["benchmarks"] if x.get("error_occurred")]
    print(e); assert not e
elif mode == "verify_sources":
    s = [c.get("metrics", {}).get("config_source") for c in d[0]["cases"] if c["name"].startswith("gpu/")]
    print(d[0]["summary"], s); assert d[0]["summary"]["failed"] == 0 and s and all(s) and any(x.startswith("tuned:") for x in s)
elif mode == "bench_exact":
    l = [x.get("label", "") for x in d[0]["benchmarks"]]
    print(l); assert l and all("source=tuned:exact" in x for x in l)
elif mode == "balanced":  # the routing recorded; Qwen3 M = 64 balanced: 4 rows for each of the 128 experts
    h = [x["experts_hit"] for x in d[0]["benchmarks"]]
    print(d[0]["context"].get("moe_routing"), h)
    assert d[0]["context"].get("moe_routing") == "balanced" and h and all(a == 128 for a in h)
PY
chk() { python3 "$out/checks.py" "$@" >> "$out/checks.log" 2>&1; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
git describe --always --dirty --abbrev=12 > "$out/git_rev.txt" 2>/dev/null || echo unknown > "$out/git_rev.txt"
step build 900 ninja -C "$build" harness/cli/moe-harness bench/bench_fused_moe bench/bench_moe_align
expect "build" "[ -x '$H' ] && [ -x '$build/bench/bench_fused_moe' ]"
step devices 60 "$H" devices --no-measure --json "$out/devices.json"

# ---- bench: two families, a small filter -------------------------------------------
F='^(BM_fused_moe_layer/qwen3_235b/M:(1|64|256)/|BM_align/M:(1|4096)/E:256/k:8/)'
common=(--kernel fused_moe --kernel moe_align --filter "$F" --no-ceilings)
step bench_list 60 "$H" bench "${common[@]}" --list
expect "bench --list selects benchmarks of both families" \
  "grep -q ' fused_moe ' '$out/bench_list.log' && grep -q ' moe_align ' '$out/bench_list.log'"
step bench_full 120 "$H" bench "${common[@]}" --json "$out/bench_full.json"
expect "bench (unsharded): exit 0 and JSON" "[ -s '$out/bench_full.json' ]"
step bench_s0 120 "$H" bench "${common[@]}" --shard 0/2 --json "$out/bench_s0.json"
step bench_s1 120 "$H" bench "${common[@]}" --shard 1/2 --json "$out/bench_s1.json"
step merge 30 "$H" merge "$out/bench_s1.json" "$out/bench_s0.json" --out "$out/bench_merged.json"
expect "merged shards hold the same benchmarks in the same order as the unsharded run" \
  "chk same_names '$out/bench_full.json' '$out/bench_merged.json'"
expect "no benchmark reported an error" "chk no_errors '$out/bench_merged.json'"
step compare 30 "$H" compare "$out/bench_full.json" "$out/bench_merged.json" --json "$out/compare.json"
stamp "compare exit code is informative only (two runs of the same code; noise may flag a point)"

# ---- tune: one model, one M, into a temporary CSV ----------------------------------
rm -f "$out/tuned.csv"
step tune_dry 30 "$H" tune --dry-run --model qwen3_235b -M 64 --tuned-config "$out/tuned.csv"
step tune 240 "$H" tune --model qwen3_235b -M 64 --split-k 1 --split-k 2 --iters 10 --tuned-config "$out/tuned.csv"
expect "tune wrote one row for qwen3_235b M=64" \
  "[ \"\$(grep -c ',64,4096,1536,128,8,SiLu,bf16,' '$out/tuned.csv')\" = 1 ]"
cp "$out/tuned.csv" "$out/tuned_after_tune.csv" 2>/dev/null || true

# ---- verify and bench with the tuned table ------------------------------------------
step verify 300 "$H" verify --quick --kernel fused_moe --tuned-config "$out/tuned.csv" --json "$out/verify.json"
expect "verify --tuned-config: no failure, the fused_moe GPU cases record their config source (some tuned:)" \
  "chk verify_sources '$out/verify.json'"
step bench_tuned 120 "$H" bench --kernel fused_moe --filter '^BM_fused_moe_layer/qwen3_235b/M:64/' --no-ceilings \
  --tuned-config "$out/tuned.csv" --json "$out/bench_tuned.json"
expect "bench --tuned-config: the layer's label says tuned:exact" "chk bench_exact '$out/bench_tuned.json'"

# ---- the benchmarks' routing from MOE_BENCH_ROUTING ----------------------------------
Q='--benchmark_filter=^BM_fused_moe_layer/qwen3_235b/M:64/'
step bench_bad_routing 60 env MOE_BENCH_ROUTING=bogus "$build/bench/bench_fused_moe" "$Q"
rc=$?
expect "MOE_BENCH_ROUTING=bogus: exit 2 with the one-line error" \
  "[ $rc = 2 ] && grep -q 'MOE_BENCH_ROUTING: unknown routing distribution' '$out/bench_bad_routing.log'"
step bench_balanced 120 env MOE_BENCH_ROUTING=balanced MOE_BENCH_NO_CEILINGS=1 "$build/bench/bench_fused_moe" "$Q" \
  --benchmark_out="$out/bench_balanced.json" --benchmark_out_format=json
expect "MOE_BENCH_ROUTING=balanced: recorded, and Qwen3 M = 64 hits all 128 experts" "chk balanced '$out/bench_balanced.json'"

# ---- report -------------------------------------------------------------------------
step report 60 "$H" report --verify "$out/verify.json" --bench "$out/bench_merged.json" --bench "$out/bench_tuned.json" \
  --tuned-config "$out/tuned.csv" --out "$out/report.html"
expect "report written" "[ -s '$out/report.html' ] && [ -s '$out/report.json' ]"

stamp "done: $fails failed check(s)"
[ "$fails" = 0 ]
