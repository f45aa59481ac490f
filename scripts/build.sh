#!/usr/bin/env bash
# Install what is missing (scripts/bootstrap.sh), configure the build folder with
# the GPU backend the machine has (-Dgpu=auto) and build it; scripts/run.sh and
# scripts/test.sh start with this.
#
# Env: MOE_BUILD (build folder, default build), MOE_GPU (auto|cuda|hip|none;
# default auto, applied when the folder is first configured or when set).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${MOE_BUILD:-build}

bash scripts/bootstrap.sh
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Dgpu="${MOE_GPU:-auto}"
elif [ -n "${MOE_GPU:-}" ]; then
  meson configure "$build" -Dgpu="$MOE_GPU"
fi
ninja -C "$build"
