#!/usr/bin/env bash
# Installs what moe-harness needs to build and test on Debian/Ubuntu, through
# apt, and says what it did. Idempotent: packages already installed are left
# alone, and `apt-get update` runs only when something is missing.
#
#   scripts/bootstrap.sh [--with-hip] [--with-chromium] [--with-mpi] [--with-clang] [--check]
#
#   --with-hip       also hipcc, libamdhip64-dev and rocm-device-libs (the -Dgpu=hip
#                    backend; Debian bookworm's HIP 5.2 compiles for gfx90a)
#   --with-chromium  also chromium (for viewing HTML reports headless)
#   --with-mpi       also OpenMPI (libopenmpi-dev, openmpi-bin): meson -Dmpi=auto finds
#                    it, and `mpirun moe-harness verify|bench` shards over ranks
#   --with-clang     also clang and its sanitizer/libFuzzer runtimes (scripts/sanitize.sh)
#   --check          only report what is missing; exit 1 if anything is
#
# Works as root, or as a user with sudo. CUDA (nvcc) is not installed here: use
# NVIDIA's toolkit, or a GPU host prepared with scripts/fetch_debs.sh.
set -euo pipefail

pkgs=(meson ninja-build pkg-config g++ libeigen3-dev libbenchmark-dev doctest-dev nlohmann-json3-dev
      libcli11-dev libfmt-dev python3 python3-dev python3-numpy python3-pytest pybind11-dev libdlpack-dev)
check_only=0
for arg in "$@"; do
  case "$arg" in
    --with-hip) pkgs+=(hipcc libamdhip64-dev rocm-device-libs) ;;
    --with-chromium) pkgs+=(chromium) ;;
    --with-mpi) pkgs+=(libopenmpi-dev openmpi-bin) ;;
    --with-clang) pkgs+=(clang libclang-rt-dev) ;;
    --check) check_only=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: this is not a Debian/Ubuntu system (no dpkg/apt-get); install by hand: ${pkgs[*]}" >&2
  exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

present=()
missing=()
for p in "${pkgs[@]}"; do
  if installed "$p"; then present+=("$p"); else missing+=("$p"); fi
done

[ ${#present[@]} -gt 0 ] && echo "bootstrap: already present: ${present[*]}"
if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: nothing to install"
  exit 0
fi
if [ "$check_only" = 1 ]; then
  echo "bootstrap: missing: ${missing[*]}"
  exit 1
fi

if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "bootstrap: missing ${missing[*]}, and not root and no sudo: run as root" >&2
  exit 1
fi

echo "bootstrap: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

still=()
for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
if [ ${#still[@]} -gt 0 ]; then
  echo "bootstrap: failed to install: ${still[*]}" >&2
  exit 1
fi
echo "bootstrap: installed: ${missing[*]}"

# Meson >= 1.0 is required (Debian 12 and Ubuntu 24.04 have it; Ubuntu 22.04's 0.61 is too old).
mv=$(meson --version 2>/dev/null || echo 0)
if [ "${mv%%.*}" -lt 1 ]; then
  echo "bootstrap: warning: meson $mv is older than 1.0, which moe-harness needs" >&2
fi
