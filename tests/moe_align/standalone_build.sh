#!/usr/bin/env bash
# Builds only the moe_align targets (CPU test, GPU test, benchmark) with nvcc/g++
# directly, without Meson: a fallback for the GPU host when another family's
# half-finished sources break the shared libmoe build. Run from the source root
# inside `scripts/gpu_host.sh exec` (which puts the unpacked .debs on the paths).
#
#   tests/moe_align/standalone_build.sh OUTDIR
# Produces OUTDIR/{test_moe_align,gpu_test_moe_align,bench_moe_align}.
set -euo pipefail
out=${1:-build-align-standalone}
mkdir -p "$out/obj"
cuda=${CUDA_HOME:-/usr/local/cuda}
arch=${MOE_NVCC_ARCH:-sm_90}
rev=${MOE_GIT_REVISION:-$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)}
sed "s/@VCS_TAG@/$rev/" harness/git_revision.h.in >"$out/git_revision.h"

cxx_flags=(-std=c++20 -O2 -DMOE_BACKEND_CUDA -isystem "$cuda/include" -Iharness/include -I. -I"$out")
nvcc_flags=(-x cu -std=c++20 -O3 -lineinfo --expt-relaxed-constexpr -Xcompiler -fPIC -DMOE_BACKEND_CUDA
            -arch="$arch" -Iharness/include -I.)
host_srcs=(harness/src/check.cpp harness/src/error.cpp harness/src/device.cpp harness/src/inputs.cpp
           reference/moe_align/moe_align_ref.cpp kernels/moe_align/moe_align_host.cpp harness/src/family_moe_align.cpp
           tests/doctest_main.cpp tests/gpu_main.cpp tests/moe_align/test_moe_align_ref.cpp
           tests/moe_align/test_moe_align_gpu.cpp bench/bench_moe_align.cpp)
kern_srcs=(kernels/common/common_kernels.hip kernels/moe_align/moe_align_launch.hip)

pids=()
for s in "${host_srcs[@]}"; do
  o="$out/obj/$(echo "$s" | tr / _).o"
  g++ "${cxx_flags[@]}" -c "$s" -o "$o" &
  pids+=($!)
done
for s in "${kern_srcs[@]}"; do
  o="$out/obj/$(echo "$s" | tr / _).o"
  "$cuda/bin/nvcc" "${nvcc_flags[@]}" -c "$s" -o "$o" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

o="$out/obj"
lib=("$o/harness_src_check.cpp.o" "$o/harness_src_error.cpp.o" "$o/harness_src_device.cpp.o"
     "$o/harness_src_inputs.cpp.o" "$o/reference_moe_align_moe_align_ref.cpp.o"
     "$o/kernels_moe_align_moe_align_host.cpp.o" "$o/harness_src_family_moe_align.cpp.o"
     "$o/kernels_common_common_kernels.hip.o" "$o/kernels_moe_align_moe_align_launch.hip.o")
# The unpacked .debs first: the host may have other versions of these libraries
# (a newer libbenchmark there has a different ABI from the 1.7.1 headers we compile against).
pfx=${MOE_PREFIX:-/tmp/moe-prefix}/usr/lib/x86_64-linux-gnu
libs=(-L"$pfx" -Wl,-rpath,"$pfx" -L"$cuda/lib64" -Wl,-rpath,"$cuda/lib64" -lcudart -lfmt -lpthread)
g++ -o "$out/test_moe_align" "$o/tests_doctest_main.cpp.o" "$o/tests_moe_align_test_moe_align_ref.cpp.o" "${lib[@]}" "${libs[@]}"
g++ -o "$out/gpu_test_moe_align" "$o/tests_gpu_main.cpp.o" "$o/tests_moe_align_test_moe_align_gpu.cpp.o" "${lib[@]}" "${libs[@]}"
g++ -o "$out/bench_moe_align" "$o/bench_bench_moe_align.cpp.o" "${lib[@]}" -L"$pfx" -lbenchmark "${libs[@]}"
echo "standalone moe_align build in $out ($rev)"
