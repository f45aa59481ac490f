#!/usr/bin/env python3
"""scripts/ptxas_check.py's parsing and its occupancy rule for the 8-bit cp.async / wgmma
kernels, on a ptxas -v log written here (no nvcc needed; run by `meson test` from the source root).
"""
import os
import sys

from checks import check, finish

sys.path.insert(0, "scripts")
import ptxas_check  # noqa: E402

KERNEL = "void moe::fused_moe_q8::dev::q8_gemm_kernel<false, 16, 128, 256, 1, 8, 3, 1, false, true, 2>(moe::fused_moe_q8::detail::Q8GemmParams)"
LOG = """ptxas info    : Compiling entry function '_Z1kv' for 'sm_90a'
ptxas info    : Function properties for _Z1kv
    40 bytes stack frame, 36 bytes spill stores, 44 bytes spill loads
ptxas info    : Used 128 registers, used 1 barriers, 40 bytes cumulative stack size, 256 bytes smem
"""

props = ptxas_check.parse_ptxas(LOG)
check("parse_ptxas: registers and spills of the kernel",
      props.get("_Z1kv") == {"stack": 40, "spill_stores": 36, "spill_loads": 44, "registers": 128, "static_smem": 256}, props)
# 16x128x256, 3 stages, 8 warps: 110592 bytes of ring + the 256 static bytes ptxas reports, two blocks per SM.
check("8-warp decode tile at 128 registers: 2 blocks by registers, 2 by shared memory",
      ptxas_check.q8_blocks_per_sm(KERNEL, 128, 256) == (2, 2), ptxas_check.q8_blocks_per_sm(KERNEL, 128, 256))
check("at 171 registers (rounded to 176 per thread): 1 block by registers, the failure the rule catches",
      ptxas_check.q8_blocks_per_sm(KERNEL, 171, 256) == (1, 2), ptxas_check.q8_blocks_per_sm(KERNEL, 171, 256))
four_warps = KERNEL.replace("16, 128, 256, 1, 8, 3", "16, 128, 128, 1, 4, 4")
check("4-warp 16x128x128 tile at 168 registers: 3 and 3",
      ptxas_check.q8_blocks_per_sm(four_warps, 168, 256) == (3, 3), ptxas_check.q8_blocks_per_sm(four_warps, 168, 256))
wgmma = "void moe::fused_moe_q8::dev::q8_gemm_kernel<true, 128, 128, 128, 8, 1, 4, 2, true, false, 0>(x)"
check("wgmma tile: its 1 KiB of alignment counted, 1 and 1",
      ptxas_check.q8_blocks_per_sm(wgmma, 150, 2048) == (1, 1), ptxas_check.q8_blocks_per_sm(wgmma, 150, 2048))
check("other kernels are not judged",
      ptxas_check.q8_blocks_per_sm("grouped_gemm_ws_kernel<x>(p)", 168, 0) is None
      and ptxas_check.q8_blocks_per_sm(KERNEL, None, 0) is None)
finish("ptxas_check")
