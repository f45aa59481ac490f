#!/usr/bin/env bash
# On the offline GPU host (PyTorch with CUDA, .debs/ from scripts/fetch_debs.sh):
# builds the GPU build with the Python module (scripts/gpu_host.sh build with
# MOE_PYTHON=1; an existing build keeps its compiled kernels) and runs every test
# of tests/python against it with that host's python3, the torch tests of
# test_gpu_dlpack.py included (moe_harness.gpu on torch CUDA tensors).
#
#   tests/python/gpu_pytest.sh [pytest options...]
#
# Env: MOE_BUILD (default build-gpu), MOE_PREFIX, MOE_NVCC_ARCH as scripts/gpu_host.sh;
#      logs in $MOE_LOG_DIR, else $OUT, else ./out: meson-setup.log / build.log, gpu-pytest.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${MOE_BUILD:-build-gpu}
logs=${MOE_LOG_DIR:-${OUT:-out}}
mkdir -p "$logs"
export MOE_BUILD=$build MOE_LOG_DIR=$logs MOE_PYTHON=1

scripts/gpu_host.sh build
{ python3 -c 'import torch; print("gpu_pytest: torch", torch.__version__, "CUDA device:", torch.cuda.is_available())' 2>/dev/null ||
  echo "gpu_pytest: python3 cannot import torch: the torch tests will skip"; } | tee "$logs/gpu-pytest.log"
# Through gpu_host.sh exec: the unpacked prefix's libraries on the path.
case $build in /*) build_dir=$build ;; *) build_dir=$PWD/$build ;; esac
PYTHONPATH="$build_dir/harness/python" PYTHONDONTWRITEBYTECODE=1 \
  scripts/gpu_host.sh exec python3 -m pytest -q -rs -p no:cacheprovider "$@" tests/python 2>&1 |
  tee -a "$logs/gpu-pytest.log"
