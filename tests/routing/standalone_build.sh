#!/usr/bin/env bash
# Builds only the routing targets (CPU test, GPU test, benchmark) with nvcc/g++
# directly, without Meson, so a GPU-host run does not depend on other families'
# in-progress sources. Run from the source root inside `scripts/gpu_host.sh exec`
# (which puts the unpacked .debs on the include and library paths).
#
#   tests/routing/standalone_build.sh OUTDIR
# Produces OUTDIR/{test_routing,gpu_test_routing,bench_routing}.
set -euo pipefail
out=${1:-build-routing-standalone}
mkdir -p "$out/obj"
cuda=${CUDA_HOME:-/usr/local/cuda}
arch=${MOE_NVCC_ARCH:-sm_90}
rev=${MOE_GIT_REV:-$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)}
sed "s/@VCS_TAG@/$rev/" harness/git_revision.h.in >"$out/git_revision.h"

defs=(-DMOE_BACKEND_CUDA)
cublas=()
if [ -f "$cuda/lib64/libcublas.so" ]; then
  defs+=(-DMOE_HAVE_CUBLAS)
  cublas=(-lcublas)
fi
pfx_root=${MOE_PREFIX:-/tmp/moe-prefix}
eigen=$(pkg-config --cflags eigen3 2>/dev/null || true)
[ -n "$eigen" ] || eigen="-isystem $pfx_root/usr/include/eigen3 -isystem /usr/include/eigen3"
# shellcheck disable=SC2206
cxx_flags=(-std=c++20 -O2 "${defs[@]}" -isystem "$cuda/include" $eigen -Iharness/include -I. -I"$out")
nvcc_flags=(-x cu -std=c++20 -O3 -lineinfo --expt-relaxed-constexpr -Xcompiler -fPIC "${defs[@]}"
            -arch="$arch" -Iharness/include -I.)
host_srcs=(harness/src/check.cpp harness/src/error.cpp harness/src/device.cpp
           kernels/routing/routing_host.cpp reference/routing/routing_ref.cpp reference/routing/routing_runner.cpp
           harness/src/family_routing.cpp
           tests/doctest_main.cpp tests/gpu_main.cpp tests/routing/test_routing_ref.cpp
           tests/routing/test_routing_gpu.cpp bench/bench_routing.cpp)
kern_srcs=(kernels/common/common_kernels.hip kernels/routing/topk_launch.hip kernels/routing/top1_launch.hip)

pids=()
for s in "${kern_srcs[@]}"; do
  o="$out/obj/$(echo "$s" | tr / _).o"
  "$cuda/bin/nvcc" "${nvcc_flags[@]}" -c "$s" -o "$o" &
  pids+=($!)
done
for s in "${host_srcs[@]}"; do
  o="$out/obj/$(echo "$s" | tr / _).o"
  g++ "${cxx_flags[@]}" -c "$s" -o "$o" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
[ $rc = 0 ] || { echo "standalone routing build: compile FAILED"; exit 1; }

o="$out/obj"
lib=("$o/harness_src_check.cpp.o" "$o/harness_src_error.cpp.o" "$o/harness_src_device.cpp.o"
     "$o/kernels_routing_routing_host.cpp.o" "$o/reference_routing_routing_ref.cpp.o"
     "$o/reference_routing_routing_runner.cpp.o" "$o/harness_src_family_routing.cpp.o"
     "$o/kernels_common_common_kernels.hip.o" "$o/kernels_routing_topk_launch.hip.o"
     "$o/kernels_routing_top1_launch.hip.o")
# The unpacked .debs first: the host may have other versions of these libraries.
pfx=${MOE_PREFIX:-/tmp/moe-prefix}/usr/lib/x86_64-linux-gnu
libs=(-L"$pfx" -Wl,-rpath,"$pfx" -L"$cuda/lib64" -Wl,-rpath,"$cuda/lib64" -lcudart "${cublas[@]}" -lfmt -lpthread)
g++ -o "$out/test_routing" "$o/tests_doctest_main.cpp.o" "$o/tests_routing_test_routing_ref.cpp.o" "${lib[@]}" "${libs[@]}"
g++ -o "$out/gpu_test_routing" "$o/tests_gpu_main.cpp.o" "$o/tests_routing_test_routing_gpu.cpp.o" "${lib[@]}" "${libs[@]}"
g++ -o "$out/bench_routing" "$o/bench_bench_routing.cpp.o" "${lib[@]}" -L"$pfx" -lbenchmark "${libs[@]}"
echo "standalone routing build in $out ($rev)"
