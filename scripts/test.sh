#!/usr/bin/env bash
# All the tests, on a fresh Debian/Ubuntu machine: install what is missing
# (scripts/bootstrap.sh), configure (-Dgpu=auto: the backend the machine has),
# build, and run `meson test`. GPU tests report SKIP where there is no GPU.
#
#   scripts/test.sh [meson test options...]        e.g. --suite cpu, core, cli
#
# Env: MOE_BUILD (build folder, default build), MOE_GPU (auto|cuda|hip|none;
# default auto, applied when the folder is first configured or when set).
# Last line: "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
build=${MOE_BUILD:-build}

bash scripts/build.sh  # bootstrap, configure, build
rc=0
meson test -C "$build" --print-errorlogs "$@" || rc=$?
bash scripts/test_summary.sh "$build"
exit "$rc"
