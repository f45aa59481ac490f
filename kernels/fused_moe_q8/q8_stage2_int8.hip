// Stage 2 instantiations of the quantized tile kernel, variant Int8.
#include "kernels/fused_moe_q8/q8_instances.cuh"

MOE_Q8_TABLE(q8_stage2_int8, Variant::Int8, 2)
