// Host API of the shared utility kernels (RNG fills, ceiling probes).
//
// Layout example: fill a bf16 w1 of E=8, 2*inter=28672, model_dim=4096 in place:
//   fill_normal(w1.data(), DType::BF16, 8ull*28672*4096, spec.seed, rng::Stream::W1,
//               /*offset=*/0, spec.scale(rng::Stream::W1), stream);
// Element i then equals moe::fill_host(spec, Stream::W1, i, ...) bit for bit.
#pragma once
#include <cstdint>

#include "moe/dtype.hpp"
#include "moe/gpu_runtime.hpp"
#include "moe/rng.hpp"

#if MOE_HAVE_GPU
namespace moe::kernels {

// dst[i] = round_to(dtype, normal(seed, stream, offset + i) * scale), i < n.
// dtype F32 writes float, BF16/F16 write 16-bit bits.
void fill_normal(void* dst, DType dtype, uint64_t n, uint64_t seed, rng::Stream stream, uint64_t offset,
                 float scale, hipStream_t s);

// Reads `bytes` (multiple of 16) from src with 16-byte loads and writes one
// word per block to sink (so the loads cannot be elided).
void read_probe(const void* src, uint64_t bytes, uint32_t* sink, int blocks, hipStream_t s);

}  // namespace moe::kernels
#endif
