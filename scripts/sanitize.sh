#!/usr/bin/env bash
# The CPU tests under AddressSanitizer + UndefinedBehaviorSanitizer, then libFuzzer
# over every input parser (tests/fuzz/fuzz_*.cpp), from one clang build:
#   BUILD (clang++, -Dgpu=none, -Db_sanitize=address,undefined plus
#   float-cast-overflow, no recovery: the first report fails; everything also
#   carries libFuzzer's coverage instrumentation, -fsanitize=fuzzer-no-link):
#   1. the targets the cpu suite runs, then `meson test --suite cpu`;
#   2. each fuzz target linked against BUILD/libmoe.a with -fsanitize=fuzzer,
#      replaying tests/fuzz/corpus/<target>/ (the committed seeds), then fuzzing
#      for FUZZ_SECONDS. New inputs go to BUILD/fuzz/corpus-<target>/, a crashing
#      input to BUILD/fuzz/crash-<target>-*, the log beside it.
# The Python module is not built here (an ASan extension cannot load into an
# uninstrumented interpreter). Any finding or test failure fails the script (exit 1).
#
#   scripts/sanitize.sh [BUILD]   default build-asan; env FUZZ_SECONDS (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-asan}
fuzz_seconds=${FUZZ_SECONDS:-30}
t0=$SECONDS
say() { echo "--- [sanitize $((SECONDS - t0))s] $*"; }
failed=()

san_flags=(-fsanitize=float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer)
if [ ! -f "$build/build.ninja" ]; then
  say "configure $build (clang++)"
  CXX=clang++ meson setup "$build" -Dgpu=none -Dmpi=disabled -Dpython=disabled -Dbuildtype=plain \
    -Db_sanitize=address,undefined -Dcpp_args="-O1 ${san_flags[*]} -fsanitize=fuzzer-no-link" \
    -Dcpp_link_args="${san_flags[*]}"
fi

# ---- 1. CPU tests -------------------------------------------------------------
cpu_tests() {
  # Only what the cpu suite runs (not the benchmarks), and the library the fuzz targets link.
  local targets
  mapfile -t targets < <(python3 - "$build" <<'PY'
import json, os, subprocess, sys
build = sys.argv[1]
intro = lambda what: json.loads(subprocess.check_output(["meson", "introspect", what, build]))
by_id = {t["id"]: t for t in intro("--targets")}
outputs = {f for t in by_id.values() for f in t["filename"]}
want = {f for t in by_id.values() if t["name"] == "moe" for f in t["filename"]}
for test in intro("--tests"):
    if any(s.split(":")[-1] == "cpu" for s in test["suite"]):
        want.update(f for d in test["depends"] if d in by_id for f in by_id[d]["filename"])
        want.update(a for a in test["cmd"] if a in outputs)
for f in sorted(want):
    print(os.path.relpath(f, build))
PY
  )
  say "build ${#targets[@]} targets in $build"
  ninja -C "$build" "${targets[@]}" || return 1
  say "CPU tests"
  meson test -C "$build" --suite cpu --print-errorlogs --no-rebuild
}
cpu_tests || failed+=("cpu tests")

# ---- 2. fuzzing -------------------------------------------------------------
fuzz() {
  [ -f "$build/libmoe.a" ] || { say "no $build/libmoe.a"; return 1; }
  local out=$build/fuzz src target seeds log
  mkdir -p "$out"
  for src in tests/fuzz/fuzz_*.cpp; do
    target=$(basename "$src" .cpp)
    target=${target#fuzz_}
    seeds=tests/fuzz/corpus/$target
    log=$out/$target.log
    clang++ -std=c++20 -O1 -g "${san_flags[@]}" -fsanitize=fuzzer,address,undefined \
      -Icore/include -Iharness/include -Iharness -I. "$src" "$build/libmoe.a" -lfmt -pthread -o "$out/$target" ||
      { failed+=("fuzz build $target"); continue; }
    # A fixed seed: the same inputs come first on every run, so a CI result repeats.
    local opts=(-seed=1 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/crash-$target-")
    if ! "$out/$target" -runs=0 "${opts[@]}" "$seeds" >"$log" 2>&1; then
      say "$target: corpus replay FAILED ($log)"
      tail -n 40 "$log"
      failed+=("fuzz replay $target")
      continue
    fi
    mkdir -p "$out/corpus-$target"
    if ! "$out/$target" -max_total_time="$fuzz_seconds" -max_len=16384 -print_final_stats=1 "${opts[@]}" \
        "$out/corpus-$target" "$seeds" >"$log" 2>&1; then
      say "$target: fuzzing found a problem ($log)"
      tail -n 40 "$log"
      failed+=("fuzz $target")
      continue
    fi
    say "$target: $(ls "$seeds" | wc -l) seeds replayed, $(sed -n 's/^stat::number_of_executed_units: *//p' "$log") runs, no finding"
  done
}
fuzz || failed+=("fuzzing")

say "done"
if [ ${#failed[@]} -gt 0 ]; then
  echo "sanitize: FAILED: ${failed[*]}"
  exit 1
fi
echo "sanitize: CPU tests and fuzzing clean"
