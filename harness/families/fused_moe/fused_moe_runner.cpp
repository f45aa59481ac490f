#include "harness/families/fused_moe/fused_moe_runner.hpp"

#if MOE_HAVE_GPU
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "kernels/common/common_kernels.hpp"
#include "kernels/moe_align/moe_align.hpp"
#include "reference/moe_align/moe_align_ref.hpp"

namespace moe::fused_moe::check {

DeviceLayer::DeviceLayer(const InputSpec& s, Activation act, RouterWeight rw) : spec(s) {
  spec.validate();
  problem = make_problem(spec.shape, spec.dtype, act, rw);
  routing = make_routing(spec);
  hidden = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(spec.hidden_elems()));
  w1 = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(spec.w1_elems()));
  w2 = gpu::DeviceBuffer<uint16_t>(static_cast<size_t>(spec.w2_elems()));
  kernels::fill_normal(hidden.data(), spec.dtype, hidden.size(), spec.seed, rng::Stream::Hidden, 0,
                       spec.scale(rng::Stream::Hidden), nullptr);
  kernels::fill_normal(w1.data(), spec.dtype, w1.size(), spec.seed, rng::Stream::W1, 0, spec.scale(rng::Stream::W1),
                       nullptr);
  kernels::fill_normal(w2.data(), spec.dtype, w2.size(), spec.seed, rng::Stream::W2, 0, spec.scale(rng::Stream::W2),
                       nullptr);
  topk_weights = gpu::DeviceBuffer<float>(routing.topk_weights.size());
  topk_ids = gpu::DeviceBuffer<int32_t>(routing.topk_ids.size());
  topk_weights.upload(routing.topk_weights);
  topk_ids.upload(routing.topk_ids);
  MOE_GPU_CHECK(hipDeviceSynchronize());
}

Tensors DeviceLayer::tensors(void* out) const {
  Tensors t;
  t.hidden = hidden.data();
  t.w1 = w1.data();
  t.w2 = w2.data();
  t.topk_weights = topk_weights.data();
  t.topk_ids = topk_ids.data();
  t.out = out;
  return t;
}

namespace {

void set_view(DeviceAlign& a, int32_t block_size) {
  a.view.sorted_token_ids = a.sorted.data();
  a.view.expert_ids = a.expert_ids.data();
  a.view.num_tokens_post_padded = a.num_post.data();
  a.view.capacity = static_cast<int64_t>(a.sorted.size());
  a.view.block_size = block_size;
}

}  // namespace

DeviceAlign align_on_host(const align::AlignShape& shape, std::span<const int32_t> topk_ids) {
  const auto full = ref::expand_to_capacity(ref::moe_align_block_size(shape, topk_ids), shape);
  DeviceAlign a;
  a.sorted = gpu::DeviceBuffer<int32_t>(full.sorted_token_ids.size());
  a.expert_ids = gpu::DeviceBuffer<int32_t>(std::max<size_t>(1, full.expert_ids.size()));
  a.num_post = gpu::DeviceBuffer<int32_t>(1);
  a.sorted.upload(full.sorted_token_ids);
  a.expert_ids.upload(full.expert_ids);
  a.num_post.upload(&full.num_tokens_post_padded, 1);
  MOE_GPU_CHECK(hipDeviceSynchronize());
  set_view(a, shape.block_size);
  return a;
}

DeviceAlign align_on_host(const DeviceLayer& l, int32_t block_size) {
  return align_on_host(align::AlignShape{l.problem.tokens, l.problem.top_k, l.problem.experts, block_size},
                       l.routing.topk_ids);
}

DeviceAlign align_on_device(const DeviceLayer& l, int32_t block_size, hipStream_t s) {
  const align::AlignShape shape{l.problem.tokens, l.problem.top_k, l.problem.experts, block_size};
  shape.validate();
  DeviceAlign a;
  a.sorted = gpu::DeviceBuffer<int32_t>(static_cast<size_t>(align::align_capacity(shape)));
  a.expert_ids = gpu::DeviceBuffer<int32_t>(static_cast<size_t>(std::max<int64_t>(1, align::align_max_blocks(shape))));
  a.num_post = gpu::DeviceBuffer<int32_t>(1);
  a.sorted.poison(0xFF, s);
  a.expert_ids.poison(0xFF, s);
  a.num_post.poison(0xFF, s);
  align::AlignWorkspace ws;
  align::moe_align_block_size(l.topk_ids.data(), nullptr, shape,
                              align::AlignOutputs{a.sorted.data(), a.expert_ids.data(), a.num_post.data()}, ws, s);
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  // The layer's result is only as good as its routing: check the align kernel
  // against its own CPU reference here, so a failure names the right kernel.
  const auto want = ref::expand_to_capacity(ref::moe_align_block_size(shape, l.routing.topk_ids), shape);
  const auto got_post = a.num_post.download(s);
  const auto chk = ref::compare_align(want, a.sorted.download(s), a.expert_ids.download(s), got_post[0]);
  if (!chk.passed)
    throw Error("moe_align GPU kernel output differs from its CPU reference (not a fused_moe failure): " +
                chk.message);
  set_view(a, block_size);
  return a;
}

RunOutputs run_layer(const DeviceLayer& l, const DeviceAlign& a, const LayerConfig& cfg, hipStream_t s,
                     bool want_intermediate) {
  const Problem& p = l.problem;
  const auto wsb = workspace_bytes(p, cfg);
  gpu::DeviceBuffer<uint16_t> inter(static_cast<size_t>(wsb.intermediate / 2));
  gpu::DeviceBuffer<float> partial(static_cast<size_t>(wsb.partial / 4));
  gpu::DeviceBuffer<uint16_t> out(static_cast<size_t>(p.tokens * p.model_dim));
  inter.poison(0xFF, s);
  partial.poison(0xFF, s);
  out.poison(0xFF, s);
  auto counters = gpu::DeviceBuffer<int32_t>::zeros(kTileCounters);
  Workspace ws{inter.data(), partial.data(), counters.data()};
  fused_moe::fused_moe(p, l.tensors(out.data()), a.view, ws, cfg, s);
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  RunOutputs r;
  auto widen = [&](const std::vector<uint16_t>& bits) {
    std::vector<float> f(bits.size());
    for (size_t i = 0; i < bits.size(); ++i)
      f[i] = p.dtype == DType::BF16 ? bf16_bits_to_f32(bits[i]) : f16_bits_to_f32(bits[i]);
    return f;
  };
  r.out = widen(out.download(s));
  if (want_intermediate) r.intermediate = widen(inter.download(s));
  return r;
}

ref::FusedMoeRefResult reference_for(const DeviceLayer& l, std::span<const int64_t> tokens, bool device_weights) {
  auto in = ref::ref_inputs_from_spec(l.spec, l.routing);
  if (device_weights) {
    const DType dt = l.problem.dtype;
    auto from_device = [dt](const uint16_t* base) {
      return [base, dt](uint64_t off, std::span<float> out) {
        std::vector<uint16_t> tmp(out.size());
        MOE_GPU_CHECK(hipMemcpy(tmp.data(), base + off, out.size() * 2, hipMemcpyDeviceToHost));
        for (size_t i = 0; i < out.size(); ++i)
          out[i] = dt == DType::BF16 ? bf16_bits_to_f32(tmp[i]) : f16_bits_to_f32(tmp[i]);
      };
    };
    in.w1 = from_device(l.w1.data());
    in.w2 = from_device(l.w2.data());
  }
  ref::FusedMoeRefOptions opt;
  opt.inter_dtype = l.problem.dtype;
  return ref::fused_moe_ref(l.problem, in, opt, tokens);
}

CompareResult compare(const DeviceLayer& l, const RunOutputs& got, const ref::FusedMoeRefResult& want) {
  const Problem& p = l.problem;
  const int64_t H = p.model_dim, I = p.inter_dim, k = p.top_k;
  std::vector<float> out_sel, inter_sel, inter_ref;
  out_sel.reserve(want.out.size());
  for (int64_t t : want.tokens)
    out_sel.insert(out_sel.end(), got.out.begin() + t * H, got.out.begin() + (t + 1) * H);
  CompareResult c;
  c.out = check_close(out_sel, want.out, ref::fused_moe_out_tolerance(p, p.dtype, p.dtype, want.out_rms));
  if (!got.intermediate.empty()) {
    // Only slots with a valid expert have an intermediate row.
    for (size_t ti = 0; ti < want.tokens.size(); ++ti)
      for (int64_t j = 0; j < k; ++j) {
        const int64_t slot = want.tokens[ti] * k + j;
        const int32_t e = l.routing.topk_ids[static_cast<size_t>(slot)];
        if (e < 0 || e >= p.experts) continue;
        inter_sel.insert(inter_sel.end(), got.intermediate.begin() + slot * I, got.intermediate.begin() + (slot + 1) * I);
        const auto rb = want.intermediate.begin() + (static_cast<int64_t>(ti) * k + j) * I;
        inter_ref.insert(inter_ref.end(), rb, rb + I);
      }
    c.inter = check_close(inter_sel, inter_ref, ref::fused_moe_inter_tolerance(p, p.dtype, want.inter_rms));
  }
  return c;
}

std::string CompareResult::message() const {
  std::string m = "out " + out.message;
  if (inter.count > 0) m += "; intermediate " + inter.message;
  return m;
}

std::vector<int64_t> pick_tokens(int64_t M, int64_t count, uint64_t seed) {
  std::set<int64_t> s;
  if (count >= M) {
    std::vector<int64_t> all(static_cast<size_t>(M));
    for (int64_t t = 0; t < M; ++t) all[static_cast<size_t>(t)] = t;
    return all;
  }
  s.insert(0);
  s.insert(M - 1);
  uint64_t i = 0;
  while (static_cast<int64_t>(s.size()) < count)
    s.insert(static_cast<int64_t>(rng::bits32(seed, rng::Stream::Test, i++) % static_cast<uint64_t>(M)));
  return {s.begin(), s.end()};
}

}  // namespace moe::fused_moe::check
#endif  // MOE_HAVE_GPU
