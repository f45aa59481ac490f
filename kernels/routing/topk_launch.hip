// Host launchers of softmax top-k and grouped top-k (kernels in topk_kernels.cuh).
#include <string>

// No fmt here: fmt 9 does not compile under nvcc.
#include "kernels/routing/routing.hpp"
#include "kernels/routing/topk_kernels.cuh"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

namespace moe::routing {

namespace {

template <int G, int V, typename Tag>
void launch_softmax(const void* logits, float* w, int32_t* ids, const SoftmaxTopkParams& p, int threads,
                    hipStream_t s) {
  const int rows_per_block = threads / G;
  const int64_t blocks = (p.tokens + rows_per_block - 1) / rows_per_block;
  MOE_REQUIRE(blocks <= 0x7fffffff, "softmax_topk: too many tokens for one launch");
  hipLaunchKernelGGL((dev::softmax_topk_kernel<G, V, Tag>), dim3(static_cast<unsigned>(blocks)), dim3(threads), 0, s,
                     static_cast<const typename Tag::storage*>(logits), w, ids, p.tokens, p.experts, p.top_k,
                     p.renormalize ? 1 : 0);
  MOE_GPU_CHECK(hipGetLastError());
}

template <typename Tag>
void dispatch_softmax(int lanes, int v, const void* logits, float* w, int32_t* ids, const SoftmaxTopkParams& p,
                      int threads, hipStream_t s) {
  switch (lanes * 100 + v) {
    case 108: return launch_softmax<1, 8, Tag>(logits, w, ids, p, threads, s);
    case 116: return launch_softmax<1, 16, Tag>(logits, w, ids, p, threads, s);
    case 208: return launch_softmax<2, 8, Tag>(logits, w, ids, p, threads, s);
    case 408: return launch_softmax<4, 8, Tag>(logits, w, ids, p, threads, s);
    case 808: return launch_softmax<8, 8, Tag>(logits, w, ids, p, threads, s);
    case 1608: return launch_softmax<16, 8, Tag>(logits, w, ids, p, threads, s);
    case 3208: return launch_softmax<32, 8, Tag>(logits, w, ids, p, threads, s);
    case 3216: return launch_softmax<32, 16, Tag>(logits, w, ids, p, threads, s);
    default: throw_input_error("softmax_topk: no kernel compiled for " + std::to_string(lanes) + " lanes x " + std::to_string(v) + " values");
  }
}

template <int V, typename Tag>
void launch_grouped(const void* logits, const float* bias, float* w, int32_t* ids, const GroupedTopkParams& p,
                    const GroupedTopkConfig& c, hipStream_t s) {
  const int rows_per_block = c.block_threads / 32;
  const int64_t blocks = (p.tokens + rows_per_block - 1) / rows_per_block;
  MOE_REQUIRE(blocks <= 0x7fffffff, "grouped_topk: too many tokens for one launch");
  dev::GroupedArgs a{p.tokens,
                     p.experts,
                     p.n_group,
                     p.topk_group,
                     p.top_k,
                     p.group_size(),
                     p.scoring == Scoring::Sigmoid ? 1 : 0,
                     p.renormalize ? 1 : 0,
                     p.routed_scaling_factor,
                     GroupedTopkConfig::register_groups(p) ? 1 : 0};
  hipLaunchKernelGGL((dev::grouped_topk_kernel<V, Tag>), dim3(static_cast<unsigned>(blocks)), dim3(c.block_threads),
                     c.shared_bytes(p), s, static_cast<const typename Tag::storage*>(logits), bias, w, ids, a);
  MOE_GPU_CHECK(hipGetLastError());
}

template <typename Tag>
void dispatch_grouped(const void* logits, const float* bias, float* w, int32_t* ids, const GroupedTopkParams& p,
                      const GroupedTopkConfig& c, hipStream_t s) {
  switch (p.values_per_lane()) {
    case 1: return launch_grouped<1, Tag>(logits, bias, w, ids, p, c, s);
    case 2: return launch_grouped<2, Tag>(logits, bias, w, ids, p, c, s);
    case 4: return launch_grouped<4, Tag>(logits, bias, w, ids, p, c, s);
    case 8: return launch_grouped<8, Tag>(logits, bias, w, ids, p, c, s);
    case 16: return launch_grouped<16, Tag>(logits, bias, w, ids, p, c, s);
    default: throw_input_error("grouped_topk: unsupported number of experts");
  }
}

}  // namespace

void softmax_topk(const void* logits, float* topk_weights, int32_t* topk_ids, const SoftmaxTopkParams& p,
                  const SoftmaxTopkConfig& cfg, hipStream_t stream) {
  p.validate();
  const SoftmaxTopkConfig c = cfg.resolved(p);
  if (p.tokens == 0) return;
  MOE_REQUIRE(logits != nullptr && topk_weights != nullptr && topk_ids != nullptr,
              "softmax_topk: null device pointer");
  const int v = c.values_per_lane(p);
  switch (p.dtype) {
    case DType::F32:
      return dispatch_softmax<dev::F32In>(c.lanes_per_row, v, logits, topk_weights, topk_ids, p, c.block_threads,
                                          stream);
    case DType::BF16:
      return dispatch_softmax<dev::Bf16In>(c.lanes_per_row, v, logits, topk_weights, topk_ids, p, c.block_threads,
                                           stream);
    default:
      return dispatch_softmax<dev::F16In>(c.lanes_per_row, v, logits, topk_weights, topk_ids, p, c.block_threads,
                                          stream);
  }
}

void grouped_topk(const void* logits, const float* bias, float* topk_weights, int32_t* topk_ids,
                  const GroupedTopkParams& p, const GroupedTopkConfig& cfg, hipStream_t stream) {
  p.validate();
  const std::string why = cfg.why_invalid(p);
  MOE_REQUIRE(why.empty(), why);
  if (p.tokens == 0) return;
  MOE_REQUIRE(logits != nullptr && topk_weights != nullptr && topk_ids != nullptr,
              "grouped_topk: null device pointer");
  switch (p.dtype) {
    case DType::F32: return dispatch_grouped<dev::F32In>(logits, bias, topk_weights, topk_ids, p, cfg, stream);
    case DType::BF16: return dispatch_grouped<dev::Bf16In>(logits, bias, topk_weights, topk_ids, p, cfg, stream);
    default: return dispatch_grouped<dev::F16In>(logits, bias, topk_weights, topk_ids, p, cfg, stream);
  }
}

}  // namespace moe::routing
