// Stage 2 instantiations of the quantized tile kernel, variant Fp8Block.
#include "kernels/fused_moe_q8/q8_instances.cuh"

MOE_Q8_TABLE(q8_stage2_block, Variant::Fp8Block, 2)
