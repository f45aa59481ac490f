#!/usr/bin/env bash
# A/B of one benchmark binary between an older revision and this tree, in one call of
# one machine (timings compare only within one run on one card).
#
#   here:      scripts/ab_bench.sh prepare REV                # build-ab-patch/: REV -> this tree
#   GPU host:  scripts/ab_bench.sh run BENCH FILTER [ROUNDS]  # carry .debs and build-ab-patch
#              scripts/ab_bench.sh unpack                     # (run does it) build-ab-src/ = REV
#
# or, one binary (this tree's build) under two environment settings:
#   GPU host:  scripts/ab_bench.sh env OLD NEW BENCH FILTER [ROUNDS]
#              OLD / NEW: NAME=VALUE (NAME= runs with NAME unset), e.g.
#              env MOE_FUSED_MOE_GROUP_BY_EXPERT=0 MOE_FUSED_MOE_GROUP_BY_EXPERT= bench_fused_moe '...'
#
# `prepare` writes the difference from REV to this working tree (tracked files, reports/
# left out) as a patch, small enough to carry (the tree with a whole second copy passes the
# device tool's 64 MiB). `unpack` copies this tree without reports/, build*/, .git and .debs
# into build-ab-src and applies the patch in reverse, which gives REV's files (untracked files
# of this tree stay as they are; binary differences are refused by `prepare`).
# `run` configures and builds only BENCH (e.g. bench_fused_moe_q8) of build-ab-src into
# build-ab-old, needs this tree's build-gpu (scripts/gpu_full_run.sh build), and runs the two
# binaries alternately (old, new) ROUNDS times (default 2), 3 repetitions each, with the Google
# Benchmark FILTER (`env` the same, one binary). JSON and logs under $MOE_RUN_DIR/ab (default /tmp/moe-run/ab): old_<i>.json,
# new_<i>.json, steps.log. The old binary records REV as its revision; this tree's build records
# $MOE_GIT_REVISION (give it the commit from here: the device's .git may be stale).
# Binary files that differ (test corpora, images) are left out of the patch, so the old tree
# keeps this tree's copies of them; `prepare` names them.
# AB_NAME=<name> keeps a second A/B apart (build-ab-patch-<name>, build-ab-src-<name>,
# build-ab-old-<name>, $MOE_RUN_DIR/ab-<name>); give the same AB_NAME to prepare and run.
# Exit status 2 for bad arguments, 1 when a build or a run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
[[ ${AB_NAME:-} =~ ^[A-Za-z0-9_.]*$ ]] || { echo "ab_bench: AB_NAME must be letters, digits, '_' or '.', got '$AB_NAME'" >&2; exit 2; }
sfx=${AB_NAME:+-$AB_NAME}
src=build-ab-src$sfx
patch_dir=build-ab-patch$sfx
old_build=build-ab-old$sfx
usage() { echo "usage: $0 prepare REV | unpack | run BENCH FILTER [ROUNDS] | env OLD NEW BENCH FILTER [ROUNDS]" >&2; exit 2; }
# Runs the rounds: old and new alternately, each with `old_cmd` / `new_cmd` (arrays of the command
# before the bench binary's arguments), into $out/{old,new}_<i>.json.
alternate() {
  local status=0 i v
  for ((i = 1; i <= rounds; i++)); do
    for v in old new; do
      local cmd=("${old_cmd[@]}")
      [ $v = new ] && cmd=("${new_cmd[@]}")
      log "$v round $i"
      "${cmd[@]}" --benchmark_filter="$filter" --benchmark_repetitions=3 \
        --benchmark_out="$out/${v}_$i.json" --benchmark_out_format=json > "$out/${v}_$i.log" 2>&1 || { log "$v failed"; status=1; }
    done
  done
  log "done (status $status)"
  return $status
}
log() { echo "[ab +${SECONDS}s] $*" | tee -a "$out/steps.log"; }
unpack() {
  [ -f "$patch_dir/old.patch" ] && [ -f "$patch_dir/revision" ] ||
    { echo "ab_bench: no $patch_dir (run '$0 prepare REV' here first)" >&2; exit 2; }
  rm -rf "$src" && mkdir -p "$src" || exit 1
  tar -c --exclude=./reports --exclude='./build*' --exclude=./.git --exclude=./.debs . | tar -x -C "$src" || exit 1
  (cd "$src" && patch -p1 -R -s -f < "../$patch_dir/old.patch") ||
    { echo "ab_bench: $patch_dir/old.patch does not apply in reverse to this tree (prepared from another one?)" >&2; exit 1; }
  cp "$patch_dir/revision" "$src/.ab-revision"
}
[ $# -ge 1 ] || usage
case $1 in
  prepare)
    [ $# = 2 ] || usage
    git rev-parse --verify -q "$2^{commit}" >/dev/null || { echo "ab_bench: no commit $2" >&2; exit 2; }
    mkdir -p "$patch_dir" || exit 1
    # numstat marks a binary file "-<TAB>-" (-z: paths unquoted).
    mapfile -t binaries < <(git diff --numstat -z --no-renames "$2" -- . ':(exclude)reports' |
                            tr '\0' '\n' | awk -F'\t' '$1 == "-" && $2 == "-" {print $3}')
    excludes=(':(exclude)reports')
    for f in "${binaries[@]}"; do excludes+=(":(exclude,literal)$f"); done
    git diff --binary --no-renames "$2" -- . "${excludes[@]}" > "$patch_dir/old.patch.tmp" || exit 1
    if grep -q '^GIT binary patch' "$patch_dir/old.patch.tmp"; then
      rm -f "$patch_dir/old.patch.tmp"
      echo "ab_bench: binary files differ between $2 and this tree and were not left out" >&2; exit 1
    fi
    mv "$patch_dir/old.patch.tmp" "$patch_dir/old.patch" && git rev-parse --short "$2" > "$patch_dir/revision" || exit 1
    [ ${#binaries[@]} = 0 ] ||
      echo "ab_bench: ${#binaries[@]} binary files differ and keep this tree's copies in the old tree: ${binaries[*]:0:3}${binaries[3]:+ ...}"
    echo "ab_bench: $2 -> this tree as $patch_dir/old.patch ($(du -sh "$patch_dir/old.patch" | cut -f1)); carry .debs and $patch_dir"
    ;;
  unpack)
    [ $# = 1 ] || usage
    unpack
    echo "ab_bench: $(cat "$src/.ab-revision") in $src"
    ;;
  run)
    [ $# -ge 3 ] && [ $# -le 4 ] || usage
    bench=$2; filter=$3; rounds=${4:-2}
    [[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "ab_bench: ROUNDS must be 1-99, got '$rounds'" >&2; exit 2; }
    # A fresh copy from the carried patch (its build in build-ab-old stays incremental).
    if [ -f "$patch_dir/old.patch" ] || [ ! -f "$src/.ab-revision" ]; then unpack; fi
    new_bin=${MOE_BUILD:-build-gpu}/bench/$bench
    [ -x "$new_bin" ] || { echo "ab_bench: no $new_bin (scripts/gpu_full_run.sh build first)" >&2; exit 2; }
    out=${MOE_RUN_DIR:-/tmp/moe-run}/ab$sfx
    mkdir -p "$out"
    old_rev=$(cat "$src/.ab-revision")
    log "old $old_rev: configure and build $bench"
    # The old binaries carry the old revision (read when meson configures), whatever this shell exports.
    if [ ! -f "$old_build/build.ninja" ]; then
      # Only the options the old tree declares (older trees have no 'python'; meson refuses unknown ones).
      opts=(-Dgpu=cuda -Dnvcc_arch="${MOE_NVCC_ARCH:-sm_90a}")
      for o in python mpi; do
        grep -q "option('$o'" "$src/meson_options.txt" && opts+=("-D$o=disabled")
      done
      MOE_GIT_REVISION=$old_rev bash scripts/gpu_host.sh exec meson setup "$old_build" "$src" "${opts[@]}" > "$out/old-setup.log" 2>&1 ||
        { log "old configure failed"; tail -3 "$out/old-setup.log"; exit 1; }
    fi
    MOE_GIT_REVISION=$old_rev bash scripts/gpu_host.sh exec ninja -C "$old_build" "bench/$bench" > "$out/old-build.log" 2>&1 ||
      { log "old build failed"; tail -5 "$out/old-build.log"; exit 1; }
    old_cmd=(bash scripts/gpu_host.sh exec "$old_build/bench/$bench")
    new_cmd=(bash scripts/gpu_host.sh exec "$new_bin")
    alternate
    exit $?
    ;;
  env)
    [ $# -ge 5 ] && [ $# -le 6 ] || usage
    bench=$4; filter=$5; rounds=${6:-2}
    [[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "ab_bench: ROUNDS must be 1-99, got '$rounds'" >&2; exit 2; }
    for setting in "$2" "$3"; do
      [[ $setting =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] ||
        { echo "ab_bench: a setting must be NAME=VALUE (NAME= for unset), got '$setting'" >&2; exit 2; }
    done
    new_bin=${MOE_BUILD:-build-gpu}/bench/$bench
    [ -x "$new_bin" ] || { echo "ab_bench: no $new_bin (scripts/gpu_full_run.sh build first)" >&2; exit 2; }
    # `env -u NAME` where the value is empty, else `env NAME=VALUE`.
    env_args() { local -n args=$2; if [ -z "${1#*=}" ]; then args=(-u "${1%%=*}"); else args=("$1"); fi; }
    out=${MOE_RUN_DIR:-/tmp/moe-run}/ab$sfx
    mkdir -p "$out"
    log "env A/B of $bench: old '$2', new '$3'"
    env_args "$2" old_env
    env_args "$3" new_env
    old_cmd=(env "${old_env[@]}" bash scripts/gpu_host.sh exec "$new_bin")
    new_cmd=(env "${new_env[@]}" bash scripts/gpu_host.sh exec "$new_bin")
    alternate
    exit $?
    ;;
  *) usage ;;
esac
