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
#      MOE_NVCC_ARCH (default sm_90a: the wgmma tiles of fused_moe need it), MOE_LOG_DIR (logs; default $OUT or ./out),
#      MOE_PYTHON=1: also the Python module moe_harness with its GPU entries (-Dpython=enabled, for the host's
#      python3: its Python.h and NumPy; pybind11 from that python3 when it has one, else from .debs/).
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
# .unpacked lists the .deb files already in the prefix: one added to .debs/ later is unpacked too.
mkdir -p "$prefix"
touch "$prefix/.unpacked"
for f in .debs/*.deb; do
  if ! grep -qxF "${f##*/}" "$prefix/.unpacked"; then
    dpkg -x "$f" "$prefix"
    echo "${f##*/}" >>"$prefix/.unpacked"
  fi
done
export PKG_CONFIG_PATH="$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_SYSROOT_DIR="$prefix"
export LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CPLUS_INCLUDE_PATH="$prefix/usr/include${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}"
export PATH="/usr/local/cuda/bin:$PATH"

python_opt=-Dpython=disabled
[ "${MOE_PYTHON:-0}" = 1 ] && python_opt=-Dpython=enabled
# pybind11 for meson's pkg-config lookup, set up on every run: a build configured
# without the module keeps the PKG_CONFIG_PATH of its first setup when the module
# is switched on later. The host python3's own copy first: it is made for that
# Python and NumPy (bookworm's 2.10 predates pybind11's support for Python 3.12
# and NumPy 2). PKG_CONFIG_SYSROOT_DIR prefixes every include path with $prefix,
# so the .pc names the headers through a link inside $prefix.
pybind11_inc=$(python3 -c 'import pybind11; print(pybind11.get_include())' 2>/dev/null || true)
pybind11_version=$(python3 -c 'import pybind11; print(pybind11.__version__)' 2>/dev/null || true)
if [ -z "$pybind11_inc" ] && [ -f "$prefix/usr/include/pybind11/pybind11.h" ]; then
  pybind11_inc=$prefix/usr/include
  pybind11_version=$(sed -n 's/^#define PYBIND11_VERSION_MAJOR //p;s/^#define PYBIND11_VERSION_MINOR //p' \
    "$pybind11_inc/pybind11/detail/common.h" | paste -sd. -)
fi
if [ -n "$pybind11_inc" ]; then
  mkdir -p "$prefix/pybind11/pkgconfig"
  ln -sfn "$pybind11_inc" "$prefix/pybind11/include"
  printf 'Name: pybind11\nDescription: pybind11 headers (%s)\nVersion: %s\nCflags: -I/pybind11/include\n' \
    "$pybind11_inc" "${pybind11_version:-0}" >"$prefix/pybind11/pkgconfig/pybind11.pc"
  export PKG_CONFIG_PATH="$prefix/pybind11/pkgconfig:$PKG_CONFIG_PATH"
  # Meson takes Python.h's folders from python3's own .pc, whose paths the sysroot
  # also prefixes with $prefix: links there lead back to the real ones.
  for python_inc in $(python3 -c 'import sysconfig; p = sysconfig.get_paths(); print(p["include"], p["platinclude"])'); do
    if [ -d "$python_inc" ] && [ ! -e "$prefix$python_inc" ]; then
      mkdir -p "$(dirname "$prefix$python_inc")"
      ln -s "$python_inc" "$prefix$python_inc"
    fi
  done
fi
if [ "${MOE_PYTHON:-0}" = 1 ]; then
  [ -n "$pybind11_inc" ] ||
    { echo "gpu_host: MOE_PYTHON=1 needs pybind11: python3 has none and .debs/ has no pybind11-dev (scripts/fetch_debs.sh)" >&2; exit 2; }
  echo "gpu_host: pybind11 ${pybind11_version:-?} from $pybind11_inc" >&2
fi

if [ "$step" = exec ]; then
  exec "$@"
fi

if [ "$step" = build ] || [ "$step" = all ] || [ ! -f "$build/build.ninja" ]; then
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dgpu=cuda -Dnvcc_arch="${MOE_NVCC_ARCH:-sm_90a}" "$python_opt" -Dextra_rpath="$prefix/usr/lib/x86_64-linux-gnu" 2>&1 | tee "$logs/meson-setup.log"
  elif [ "${MOE_PYTHON:-0}" = 1 ]; then
    # An existing build (made without the module) keeps its compiled kernels.
    # (pkg_config_path: this run's, with the pybind11 chosen above, not the first setup's)
    meson configure "$build" -Dpython=enabled -Dpkg_config_path="$PKG_CONFIG_PATH" 2>&1 |
      tee "$logs/meson-configure.log" | tail -3
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
