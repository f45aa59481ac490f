#!/usr/bin/env bash
# The main job with defaults, on a fresh Debian/Ubuntu machine:
#   install what is missing (scripts/bootstrap.sh), configure with the GPU
#   backend the machine has (-Dgpu=auto), build, and run `moe-harness verify`:
#   every kernel against its CPU reference. Without a GPU it says so and checks
#   the CPU references against the golden vectors in data/.
#
#   scripts/run.sh [moe-harness verify options...]     e.g. --quick, --kernel moe_align
#
# Env: MOE_BUILD (build folder, default build), MOE_GPU (auto|cuda|hip|none;
# default auto, applied when the folder is first configured or when set).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${MOE_BUILD:-build}

bash scripts/build.sh  # bootstrap, configure, build
"$build/harness/cli/moe-harness" devices --no-measure
exec "$build/harness/cli/moe-harness" verify "$@"
