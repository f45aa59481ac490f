#!/usr/bin/env bash
# Build and test on an offline x86-64 Linux host with an NVIDIA GPU that has only
# nvcc, Meson and ninja. Uses the .deb files fetched beforehand by
# scripts/fetch_debs.sh, unpacked into a private prefix (nothing is installed
# system-wide, nothing is downloaded).
#
#   scripts/gpu_host.sh [build|test|verify|all] [extra meson test args...]
#   scripts/gpu_host.sh exec CMD [ARGS...]   run CMD with the prefix's libraries on the path
#                                            (e.g. exec build-gpu/bench/bench_memory)
#
# Env: MOE_PREFIX (default /tmp/moe-prefix), MOE_BUILD (default build-gpu),
#      MOE_NVCC_ARCH (default sm_90a: the wgmma tiles of fused_moe need it), MOE_LOG_DIR (logs; default $OUT or ./out).
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:-all}
shift || true
prefix=${MOE_PREFIX:-/tmp/moe-prefix}
build=${MOE_BUILD:-build-gpu}
logs=${MOE_LOG_DIR:-${OUT:-out}}
mkdir -p "$logs"

if ! ls .debs/*.deb >/dev/null 2>&1; then
  echo "gpu_host: no .debs/ folder: run scripts/fetch_debs.sh on a networked machine first" >&2
  exit 2
fi
if [ ! -f "$prefix/.unpacked" ]; then
  mkdir -p "$prefix"
  for f in .debs/*.deb; do dpkg -x "$f" "$prefix"; done
  touch "$prefix/.unpacked"
fi
export PKG_CONFIG_PATH="$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_SYSROOT_DIR="$prefix"
export LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CPLUS_INCLUDE_PATH="$prefix/usr/include${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}"
export PATH="/usr/local/cuda/bin:$PATH"

if [ "$step" = exec ]; then
  exec "$@"
fi

if [ "$step" = build ] || [ "$step" = all ] || [ ! -f "$build/build.ninja" ]; then
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dgpu=cuda -Dnvcc_arch="${MOE_NVCC_ARCH:-sm_90a}" -Dpython=disabled -Dextra_rpath="$prefix/usr/lib/x86_64-linux-gnu" 2>&1 | tee "$logs/meson-setup.log"
  fi
  ninja -C "$build" 2>&1 | tee "$logs/build.log" | tail -3
fi
if [ "$step" = test ] || [ "$step" = all ]; then
  meson test -C "$build" --print-errorlogs "$@" 2>&1 | tee "$logs/test.log" | tail -25
fi
if [ "$step" = verify ] || [ "$step" = all ]; then
  "$build/harness/cli/moe-harness" devices --json "$logs/devices.json" 2>&1 | tee "$logs/devices.log"
  "$build/harness/cli/moe-harness" verify --quick --json "$logs/verify-quick.json" 2>&1 | tail -30 | tee "$logs/verify.log"
fi
