// MoE routing kernels: softmax top-k, sigmoid top-1 fused with the router GEMM,
// and DeepSeek-V3 grouped top-k. Host API; device code lives in *_kernels.cuh,
// launchers in *_launch.hip. Semantics, parameters and the worked layout example:
// core/include/moe/contract/routing.hpp (shared with the CPU references).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "moe/contract/routing.hpp"
#include "moe/dtype.hpp"
#include "moe/gpu_runtime.hpp"

namespace moe::routing {

// ---------------------------------------------------------------- softmax top-k

// Each token (row) is handled by `lanes_per_row` lanes holding `V` consecutive
// logits each (V = 8, or 16 when E > 8 * lanes_per_row). Compiled
// (lanes, V): (1,8) (1,16) (2,8) (4,8) (8,8) (16,8) (32,8) (32,16).
struct SoftmaxTopkConfig {
  int lanes_per_row = 0;    // 0 = auto (pick())
  int block_threads = 256;  // multiple of 64 in [64, 512]
  static SoftmaxTopkConfig pick(const SoftmaxTopkParams& p);
  // Empty when valid for p, else why not (one line). Auto fields count as valid.
  std::string why_invalid(const SoftmaxTopkParams& p) const;
  // Auto fields resolved (throws InputError when invalid).
  SoftmaxTopkConfig resolved(const SoftmaxTopkParams& p) const;
  int values_per_lane(const SoftmaxTopkParams& p) const;  // of a resolved config
};

// ---------------------------------------------------------------- grouped top-k
struct GroupedTopkConfig {
  int block_threads = 256;  // multiple of 64 in [64, 512]
  std::string why_invalid(const GroupedTopkParams& p) const;
  // True when group scores are reduced in registers (group boundaries fall on
  // lane boundaries with a power-of-two lane count); else through shared memory.
  static bool register_groups(const GroupedTopkParams& p);
  size_t shared_bytes(const GroupedTopkParams& p) const;
};

// ------------------------------------------------ sigmoid top-1 fused with GEMM
enum class Top1Impl : int { Auto = 0, TensorCore = 1, Simt = 2 };
const char* top1_impl_name(Top1Impl i);

struct SigmoidTop1Config {
  Top1Impl impl = Top1Impl::Auto;
  int k_splits = 0;  // 0 = auto; else >= 1 (clamped to the number of 128-wide K chunks)
  std::string why_invalid(const SigmoidTop1Params& p) const;
};

// A resolved launch plan (pure function of params, config and the device's SM
// count / tensor-core support, so it can be computed and tested on a CPU).
struct SigmoidTop1Plan {
  Top1Impl impl = Top1Impl::Simt;
  int bm = 0;            // rows per block
  int bn = 0;            // expert columns per block
  int row_tiles = 0;
  int col_tiles = 0;
  int splits = 1;        // K splits
  int64_t k_chunk = 0;   // K per split (multiple of 128)
  size_t workspace_bytes = 0;  // 0 when splits == 1 and col_tiles == 1
  bool direct() const { return splits == 1 && col_tiles == 1; }
};
SigmoidTop1Plan plan_sigmoid_top1(const SigmoidTop1Params& p, const SigmoidTop1Config& c, int sm_count,
                                  bool tensor_cores);

#if MOE_HAVE_GPU
// logits: (M, E) of p.dtype (fp32 floats or 16-bit bf16/fp16 bits).
// topk_weights, topk_ids: (M, k). Validates everything before launching.
void softmax_topk(const void* logits, float* topk_weights, int32_t* topk_ids, const SoftmaxTopkParams& p,
                  const SoftmaxTopkConfig& cfg = {}, hipStream_t stream = nullptr);

// bias: E fp32 values or nullptr. Outputs (M, top_k).
void grouped_topk(const void* logits, const float* bias, float* topk_weights, int32_t* topk_ids,
                  const GroupedTopkParams& p, const GroupedTopkConfig& cfg = {}, hipStream_t stream = nullptr);

// The plan the launcher will use on the current device.
SigmoidTop1Plan sigmoid_top1_plan(const SigmoidTop1Params& p, const SigmoidTop1Config& cfg = {});
// Bytes of workspace the launch needs (0: none; pass nullptr).
size_t sigmoid_top1_workspace_bytes(const SigmoidTop1Params& p, const SigmoidTop1Config& cfg = {});
// Zero-fills a workspace once after allocation; the kernel leaves it zeroed
// (its split counters reset themselves), so graphs can replay it.
void sigmoid_top1_workspace_init(void* workspace, size_t bytes, hipStream_t stream = nullptr);
// x: (M, K) 16-bit bits of p.dtype, w: (K, E) same dtype, row-major.
// Outputs (M, out_cols). workspace: see above (nullptr when 0 bytes).
void sigmoid_top1(const void* x, const void* w, float* topk_weights, int32_t* topk_ids, void* workspace,
                  size_t workspace_bytes, const SigmoidTop1Params& p, const SigmoidTop1Config& cfg = {},
                  hipStream_t stream = nullptr);
#endif

}  // namespace moe::routing
