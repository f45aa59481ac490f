#!/usr/bin/env bash
# Run on a networked Debian/Ubuntu machine: downloads the .deb files the build
# needs into .debs/ (git-ignored), for an offline GPU host that has only nvcc,
# Meson and ninja. Copy or carry .debs/ there and run scripts/gpu_host.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# pybind11-dev and libdlpack-dev (header-only): the Python module with its GPU entries
# (scripts/gpu_host.sh with MOE_PYTHON=1).
PKGS=(libeigen3-dev libbenchmark-dev libbenchmark1debian doctest-dev nlohmann-json3-dev libcli11-dev libfmt-dev libfmt9
      pybind11-dev libdlpack-dev)
mkdir -p .debs
cd .debs
have=0
for p in "${PKGS[@]}"; do ls "${p}"_*.deb >/dev/null 2>&1 && have=$((have + 1)); done
if [ "$have" -eq "${#PKGS[@]}" ]; then
  echo "fetch_debs: all ${#PKGS[@]} packages already in .debs/"
  exit 0
fi
[ "$(id -u)" = 0 ] && apt-get update -qq
apt-get download "${PKGS[@]}"
echo "fetch_debs: downloaded into .debs/:"
ls -1 *.deb
