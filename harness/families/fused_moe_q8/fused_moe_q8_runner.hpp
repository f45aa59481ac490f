// GPU test/verify/benchmark helpers of the quantized fused MoE family: a layer's
// inputs generated on the device (bf16 normals from moe::kernels::fill_normal,
// weights quantized on the device by kernels/quant in expert chunks), aligned
// routing from the CPU reference, poisoned runs of stage 1 / stage 2 / the whole
// layer, and the staged comparison with the CPU reference (header of
// fused_moe_q8_ref.hpp: intermediate vs stage 1; GPU a1/a2 == ref::quantize bit
// for bit; out vs stage 2 on the GPU's a2).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "harness/families/fused_moe/fused_moe_runner.hpp"
#include "kernels/fused_moe_q8/fused_moe_q8.hpp"
#include "moe/check.hpp"
#include "moe/gpu_runtime.hpp"
#if MOE_HAVE_GPU
#include "moe/gpu.hpp"
#endif
#include "moe/inputs.hpp"
#include "reference/fused_moe_q8/fused_moe_q8_ref.hpp"

namespace moe::fused_moe_q8 {
// The reference options that model tile config `cfg` running stage `stage` (1 or 2)
// of p: the bit-exact Hopper fp8 accumulation for fp8 schemes on wgmma tiles, with
// stage 2's split-K range as the accumulator length.
ref::Q8RefOptions q8_ref_options_for(const Q8Problem& p, const Q8TileConfig& cfg, int stage);
}  // namespace moe::fused_moe_q8

#if MOE_HAVE_GPU
namespace moe::fused_moe_q8::check {

struct Q8DeviceLayer {
  Q8Problem problem;
  InputSpec spec;
  Routing routing;
  gpu::DeviceBuffer<uint16_t> hidden;
  gpu::DeviceBuffer<uint8_t> w1, w2;
  gpu::DeviceBuffer<float> w1_scale, w2_scale;
  gpu::DeviceBuffer<float> topk_weights;
  gpu::DeviceBuffer<int32_t> topk_ids;
  std::vector<float> w1_scale_host, w2_scale_host;

  // spec.shape must match problem.base; values fan-in scaled normals.
  Q8DeviceLayer(const Q8Problem& p, const InputSpec& spec);
  Q8Tensors tensors(void* out) const;
  // Weight sources that read code rows back from the device (threads-safe).
  ref::Q8RefInputs ref_inputs() const;
};

// Generates a weight tensor (E, N, K) as spec.dtype normals of `stream` in chunks of
// experts and quantizes each chunk on the device into q / scales (allocated here).
void make_q8_weight(const quant::QuantProblem& full, const InputSpec& spec, rng::Stream stream,
                    gpu::DeviceBuffer<uint8_t>& q, gpu::DeviceBuffer<float>& scales);

// InputSpec of a problem (fan-in scaled bf16 normals, the given routing and seed).
InputSpec q8_spec(const Q8Problem& p, uint64_t seed, RoutingDist routing = RoutingDist::Softmax);

using Q8Align = fused_moe::check::DeviceAlign;
Q8Align align_on_host(const Q8DeviceLayer& l, int32_t block_size);

enum class Part : int { Stage1 = 1, Stage2 = 2, Layer = 3 };
std::string_view part_name(Part p);

struct Q8CheckResult {
  bool a1_exact = true, a2_exact = true;  // GPU quantized activations == ref::quantize
  CheckResult inter;                      // stage 1 / layer
  CheckResult out;                        // stage 2 / layer
  std::string detail;
  bool passed() const {
    return a1_exact && a2_exact && (inter.count == 0 || inter.passed) && (out.count == 0 || out.passed);
  }
  std::string message() const;
};

// Runs `part` with every output poisoned (NaN bytes) and compares on up to
// max_tokens tokens (first, last, random; all when M <= max_tokens).
Q8CheckResult run_and_check(const Q8DeviceLayer& l, const Q8LayerConfig& cfg, Part part, int64_t max_tokens,
                            hipStream_t s, uint64_t seed = 1);

}  // namespace moe::fused_moe_q8::check
#endif
