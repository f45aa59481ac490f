// `moe-harness run moe_align`: the alignment kernel on a user's topk_ids.
#include <algorithm>
#include <span>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/run_kernel.hpp"
#if MOE_HAVE_GPU
#include "moe/gpu.hpp"
#endif
#include "kernels/moe_align/moe_align.hpp"
#include "reference/moe_align/moe_align_ref.hpp"

namespace moe {
namespace {

align::AlignShape align_shape(const Tensors& in, const Params& p) {
  const auto& ids = in.at("topk_ids");
  MOE_REQUIRE(ids.shape[1] <= align::kMaxTopK, fmt::format("topk_ids has {} columns (top_k <= {})", ids.shape[1], align::kMaxTopK));
  return align::AlignShape{ids.shape[0], static_cast<int32_t>(ids.shape[1]), int_param(p, "num_experts"), int_param(p, "block_size")};
}

// sorted_token_ids: exact for our kernel (the contract orders slots within an
// expert); for an --expect file, the first num_tokens_post_padded entries must
// hold the same multiset per expert segment (other implementations order slots
// within an expert differently, which no consumer depends on); longer arrays
// (another library's capacity) are allowed, entries past the end are ignored.
CheckResult compare_align_output(const std::string& out, const Tensor& got, const Tensor& ref, const Tensors& refs,
                                 const Params& p, bool external) {
  if (!external) return check_exact(got.i, ref.i);
  const int64_t n = ref.numel();
  if (got.numel() < n) {
    CheckResult r;
    r.passed = false;
    r.message = fmt::format("FAIL: {} has {} elements, the reference {}", out, got.numel(), n);
    return r;
  }
  std::vector<int32_t> g(got.i.begin(), got.i.begin() + n), e = ref.i;
  if (out == "sorted_token_ids") {
    const auto& eids = refs.at("expert_ids").i;
    const int64_t bs = int_param(p, "block_size");
    size_t b = 0;
    while (b < eids.size()) {
      size_t b2 = b;
      while (b2 < eids.size() && eids[b2] == eids[b]) ++b2;
      const auto lo = static_cast<int64_t>(b) * bs, hi = static_cast<int64_t>(b2) * bs;
      std::sort(g.begin() + lo, g.begin() + hi);
      std::sort(e.begin() + lo, e.begin() + hi);
      b = b2;
    }
  }
  CheckResult r = check_exact(g, e);
  if (r.passed && out == "sorted_token_ids") r.message += " (as a set per expert segment)";
  return r;
}

Checks check_align(const Tensors& got, const Tensors& ref, const Tensors&, const Params& p, bool external) {
  Checks out;
  for (const auto& [name, t] : got) out.emplace_back(name, compare_align_output(name, t, ref.at(name), ref, p, external));
  return out;
}

}  // namespace

std::vector<RunKernel> moe_align_run_kernels() {
  std::vector<RunKernel> t;
  RunKernel k;
  k.name = "moe_align";
  k.summary = "moe_align_block_size: sort top-k slots by expert, pad each expert to block_size";
  k.inputs = {{"topk_ids", {DType::I32}, 2, false, "(M, top_k) expert of each slot, in [-1, E); int32 or int64"},
              {"expert_map", {DType::I32}, 1, true, "(E,) global -> local expert id or -1"}};
  k.params = {{"num_experts", true, 0, "E, number of (global) experts"},
              {"block_size", false, 128, "power of two in [16, 256]"}};
  k.outputs = {"sorted_token_ids", "expert_ids", "num_tokens_post_padded"};
  k.validate = [](const Tensors& in, const Params& p) {
    const auto& ids = in.at("topk_ids");
    const auto shape = align_shape(in, p);
    shape.validate();
    std::span<const int32_t> map;
    if (in.count("expert_map")) {
      MOE_REQUIRE(in.at("expert_map").shape[0] == shape.num_experts,
                  fmt::format("expert_map has {} entries, num_experts is {}", in.at("expert_map").shape[0],
                              shape.num_experts));
      map = in.at("expert_map").i;
    }
    align::validate_align_ids(shape, ids.i, map);
  };
  k.reference = [](const Tensors& in, const Params& p) {
    const auto shape = align_shape(in, p);
    std::span<const int32_t> map;
    if (in.count("expert_map")) map = in.at("expert_map").i;
    auto r = ref::moe_align_block_size(shape, in.at("topk_ids").i, map);
    Tensors out;
    const auto n = static_cast<int64_t>(r.sorted_token_ids.size()), b = static_cast<int64_t>(r.expert_ids.size());
    out["sorted_token_ids"] = i32_tensor(std::move(r.sorted_token_ids), {n});
    out["expert_ids"] = i32_tensor(std::move(r.expert_ids), {b});
    out["num_tokens_post_padded"] = i32_tensor({r.num_tokens_post_padded}, {1});
    return out;
  };
#if MOE_HAVE_GPU
  k.device = [](const Tensors& in, const Params& p) {
    const auto shape = align_shape(in, p);
    std::span<const int32_t> map;
    if (in.count("expert_map")) map = in.at("expert_map").i;
    auto r = align::run_align_on_device(shape, in.at("topk_ids").i, map);
    // Trim the capacity layout to the valid prefix, like the reference; the
    // tail beyond it must hold the sentinel / -1 (checked here).
    const int32_t n = r.num_tokens_post_padded;
    MOE_REQUIRE(n >= 0 && n <= static_cast<int64_t>(r.sorted_token_ids.size()) && n % shape.block_size == 0,
                fmt::format("GPU kernel returned num_tokens_post_padded = {}", n));
    for (size_t j = n; j < r.sorted_token_ids.size(); ++j)
      if (r.sorted_token_ids[j] != shape.sentinel())
        throw Error(fmt::format("GPU sorted_token_ids[{}] = {} past the end (want sentinel {})", j,
                                r.sorted_token_ids[j], shape.sentinel()));
    for (size_t j = n / shape.block_size; j < r.expert_ids.size(); ++j)
      if (r.expert_ids[j] != -1)
        throw Error(fmt::format("GPU expert_ids[{}] = {} past the end (want -1)", j, r.expert_ids[j]));
    Tensors out;
    out["sorted_token_ids"] = i32_tensor({r.sorted_token_ids.begin(), r.sorted_token_ids.begin() + n}, {n});
    const int64_t nb = n / shape.block_size;
    out["expert_ids"] = i32_tensor({r.expert_ids.begin(), r.expert_ids.begin() + nb}, {nb});
    out["num_tokens_post_padded"] = i32_tensor({n}, {1});
    return out;
  };
#endif
  k.check = check_align;
  t.push_back(std::move(k));
  return t;
}

}  // namespace moe
