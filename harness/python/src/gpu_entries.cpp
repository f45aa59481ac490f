#include "gpu_entries.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "arrays.hpp"
#include "dlpack_tensor.hpp"
#include "gpu_common.hpp"
#include "kernels/fused_moe/fused_moe.hpp"
#include "kernels/moe_align/moe_align.hpp"
#include "layer_shapes.hpp"
#include "moe/error.hpp"
#include "moe/gpu.hpp"

namespace moe::python {

ScratchAlign::ScratchAlign(StreamScratch& scratch, const align::AlignShape& shape)
    : shape_(shape),
      cfg_(align::AlignLaunchConfig::choose(shape, align::AlignDeviceLimits::current())),
      sorted_at_(scratch.reserve(align::align_capacity(shape) * 4)),
      blocks_at_(scratch.reserve(std::max<int64_t>(1, align::align_max_blocks(shape)) * 4)),
      post_at_(scratch.reserve(4)),
      workspace_at_(scratch.reserve(cfg_.workspace_bytes(shape))) {}

fused_moe::AlignedRouting ScratchAlign::run(const StreamScratch& scratch, const int32_t* topk_ids, hipStream_t s) const {
  const align::AlignOutputs routed{scratch.at<int32_t>(sorted_at_), scratch.at<int32_t>(blocks_at_),
                                   scratch.at<int32_t>(post_at_)};
  align::moe_align_block_size(topk_ids, nullptr, shape_, routed, scratch.at<void>(workspace_at_),
                              cfg_.workspace_bytes(shape_), s, cfg_);
  return fused_moe::AlignedRouting{routed.sorted_token_ids, routed.expert_ids, routed.num_tokens_post_padded,
                                   align::align_capacity(shape_), shape_.block_size};
}

uintptr_t stream_handle(const py::object& stream) {
  if (stream.is_none()) return 0;
  if (!py::isinstance<py::int_>(stream) || py::isinstance<py::bool_>(stream))
    throw py::type_error(fmt::format("stream: expected an int stream handle (e.g. torch.cuda.current_stream().cuda_stream) "
                                     "or None, got {}",
                                     py::str(py::type::of(stream)).cast<std::string>()));
  const long long v = stream.cast<long long>();
  if (v < 0) throw py::value_error(fmt::format("stream: expected a handle >= 0, got {}", v));
  return static_cast<uintptr_t>(v);
}

void require_current_device(std::initializer_list<const BorrowedTensor*> tensors) {
  int dev = 0;
  MOE_GPU_CHECK(hipGetDevice(&dev));
  for (const BorrowedTensor* t : tensors)
    if (t->device_id != dev)
      throw py::value_error(fmt::format("{}: on device {} but the current device is {} (select it first, e.g. "
                                        "torch.cuda.set_device({}))",
                                        t->name, t->device_id, dev, t->device_id));
}

void require_same_type(const BorrowedTensor& t, const BorrowedTensor& like) {
  if (t.type != like.type)
    throw py::type_error(fmt::format("{}: dtype {} differs from {}'s {}", t.name, elem_type_name(t.type), like.name,
                                     elem_type_name(like.type)));
}

namespace {

using namespace py::literals;

py::object fused_moe(py::handle hidden, py::handle w1, py::handle w2, py::handle topk_weights, py::handle topk_ids,
                     py::object out, const std::string& activation, const std::string& router_weight, py::object stream) {
  const uintptr_t handle = stream_handle(stream);
  const py::object producer_stream = producer_stream_arg(handle);
  const auto half = {ElemType::BF16, ElemType::F16};
  const BorrowedTensor x = borrow_gpu_tensor(hidden, "hidden", 2, half, producer_stream);
  const BorrowedTensor a = borrow_gpu_tensor(w1, "w1", 3, half, producer_stream);
  const BorrowedTensor b = borrow_gpu_tensor(w2, "w2", 3, half, producer_stream);
  const BorrowedTensor tw = borrow_gpu_tensor(topk_weights, "topk_weights", 2, {ElemType::F32}, producer_stream);
  const BorrowedTensor ids = borrow_gpu_tensor(topk_ids, "topk_ids", 2, {ElemType::I32}, producer_stream);
  const BorrowedTensor o = borrow_gpu_tensor(out, "out", 2, half, producer_stream);
  require_same_type(a, x);
  require_same_type(b, x);
  require_same_type(o, x);
  const fused_moe::Problem p = layer_problem(x.shape, a.shape, b.shape, tw.shape, ids.shape,
                                             x.type == ElemType::BF16 ? DType::BF16 : DType::F16, activation, router_weight);
  if (o.shape != std::vector<int64_t>{p.tokens, p.model_dim})
    throw py::value_error(fmt::format("out: expected shape ({}, {}) (tokens, model_dim of hidden {}), got {}", p.tokens,
                                      p.model_dim, shape_text(x.shape), shape_text(o.shape)));
  require_current_device({&x, &a, &b, &tw, &ids, &o});

  fused_moe::Tensors t;
  t.hidden = x.data;
  t.w1 = a.data;
  t.w2 = b.data;
  t.topk_weights = static_cast<const float*>(tw.data);
  t.topk_ids = static_cast<const int32_t*>(ids.data);
  t.out = o.data;
  {
    py::gil_scoped_release unlocked;
    const auto s = reinterpret_cast<hipStream_t>(handle);
    const fused_moe::LayerConfig cfg = fused_moe::choose_config(p, fused_moe::device_limits());
    const auto wsb = fused_moe::workspace_bytes(p, cfg);
    StreamScratch scratch(s);
    const ScratchAlign aligner(scratch, align::AlignShape{p.tokens, p.top_k, p.experts, cfg.block_size()});
    const size_t inter_at = scratch.reserve(wsb.intermediate);
    const size_t partial_at = scratch.reserve(wsb.partial);
    const ScratchTileCounters counters(scratch);
    scratch.allocate();
    const fused_moe::AlignedRouting view = aligner.run(scratch, t.topk_ids, s);
    const fused_moe::Workspace ws{scratch.at<void>(inter_at), scratch.at<float>(partial_at), counters.zeroed(scratch, s)};
    fused_moe::fused_moe(p, t, view, ws, cfg, s);
  }
  return out;
}

py::tuple moe_align(py::handle topk_ids, py::object sorted_token_ids, py::object expert_ids, py::object num_tokens_post_padded,
                    int32_t num_experts, int32_t block_size, py::object expert_map, py::object stream) {
  const uintptr_t handle = stream_handle(stream);
  const py::object producer_stream = producer_stream_arg(handle);
  const BorrowedTensor ids = borrow_gpu_tensor(topk_ids, "topk_ids", 2, {ElemType::I32}, producer_stream);
  const align::AlignShape shape{ids.shape[0], static_cast<int32_t>(ids.shape[1]), num_experts, block_size};
  shape.validate();
  const int64_t capacity = align::align_capacity(shape), max_blocks = align::align_max_blocks(shape);
  const std::string sizes = fmt::format("M={}, top_k={}, num_experts={}, block_size={}", shape.num_tokens, shape.top_k,
                                        num_experts, block_size);
  const BorrowedTensor sorted = borrow_gpu_tensor(sorted_token_ids, "sorted_token_ids", 1, {ElemType::I32}, producer_stream);
  if (sorted.numel() < capacity)
    throw py::value_error(fmt::format("sorted_token_ids: expected at least {} elements (the capacity for {}), got shape {}",
                                      capacity, sizes, shape_text(sorted.shape)));
  const BorrowedTensor blocks = borrow_gpu_tensor(expert_ids, "expert_ids", 1, {ElemType::I32}, producer_stream);
  if (blocks.numel() < max_blocks)
    throw py::value_error(fmt::format("expert_ids: expected at least {} elements (the most blocks for {}), got shape {}",
                                      max_blocks, sizes, shape_text(blocks.shape)));
  const BorrowedTensor post =
      borrow_gpu_tensor(num_tokens_post_padded, "num_tokens_post_padded", -1, {ElemType::I32}, producer_stream);
  if (post.numel() != 1)
    throw py::value_error(fmt::format("num_tokens_post_padded: expected one element, got shape {}", shape_text(post.shape)));
  BorrowedTensor map;
  if (!expert_map.is_none()) {
    map = borrow_gpu_tensor(expert_map, "expert_map", 1, {ElemType::I32}, producer_stream);
    if (map.shape[0] != num_experts)
      throw py::value_error(fmt::format("expert_map: expected shape ({},) (one entry per expert), got {}", num_experts,
                                        shape_text(map.shape)));
    require_current_device({&map});
  }
  require_current_device({&ids, &sorted, &blocks, &post});
  {
    py::gil_scoped_release unlocked;
    const auto s = reinterpret_cast<hipStream_t>(handle);
    const auto cfg = align::AlignLaunchConfig::choose(shape, align::AlignDeviceLimits::current());
    StreamScratch scratch(s);
    const size_t ws_at = scratch.reserve(cfg.workspace_bytes(shape));
    scratch.allocate();
    align::moe_align_block_size(static_cast<const int32_t*>(ids.data), static_cast<const int32_t*>(map.data), shape,
                                align::AlignOutputs{static_cast<int32_t*>(sorted.data), static_cast<int32_t*>(blocks.data),
                                                    static_cast<int32_t*>(post.data)},
                                scratch.at<void>(ws_at), cfg.workspace_bytes(shape), s, cfg);
  }
  return py::make_tuple(sorted_token_ids, expert_ids, num_tokens_post_padded);
}

py::dict moe_align_sizes(int64_t tokens, int32_t top_k, int32_t num_experts, int32_t block_size) {
  const align::AlignShape shape{tokens, top_k, num_experts, block_size};
  shape.validate();
  return py::dict("capacity"_a = align::align_capacity(shape), "max_blocks"_a = align::align_max_blocks(shape));
}

}  // namespace

void add_gpu_module(py::module_& core) {
  py::module_ m = core.def_submodule("gpu", "Our GPU kernels on DLPack tensors (see moe_harness.gpu).");
  m.def("fused_moe", &fused_moe, "hidden"_a, "w1"_a, "w2"_a, "topk_weights"_a, "topk_ids"_a, "out"_a, py::kw_only(),
        "activation"_a = "silu", "router_weight"_a = "output", "stream"_a = py::none(),
        R"(Our fused MoE layer kernel on GPU tensors (zero copy, DLPack); writes out and returns it.

hidden (M, model_dim), w1 (E, 2*inter, model_dim), w2 (E, model_dim, inter) and out
(M, model_dim): bfloat16 or float16, one dtype; topk_weights (M, top_k) float32;
topk_ids (M, top_k) int32 (ids outside [0, E) contribute nothing; not checked on the
host, which would need a synchronisation). Every tensor row-major contiguous, on the
current device. Enqueued on `stream` (an int handle, e.g.
torch.cuda.current_stream().cuda_stream; None: the legacy default stream 0) without
synchronising; the tile config is the heuristic choose_config. Keep the tensors alive
until that stream has run the work (as for any side stream).)");
  m.def("moe_align", &moe_align, "topk_ids"_a, "sorted_token_ids"_a, "expert_ids"_a, "num_tokens_post_padded"_a,
        py::kw_only(), "num_experts"_a, "block_size"_a, "expert_map"_a = py::none(), "stream"_a = py::none(),
        R"(Our moe_align_block_size kernel on GPU int32 tensors; fills the three outputs and returns them.

topk_ids (M, top_k); sorted_token_ids and expert_ids 1-D with at least
moe_align_sizes(...)['capacity'] and ['max_blocks'] elements (only those are written);
num_tokens_post_padded one element; expert_map None or (num_experts,). Ids outside
[-1, num_experts) are dropped on the device, not reported. Stream as for fused_moe.)");
  m.def("moe_align_sizes", &moe_align_sizes, "tokens"_a, "top_k"_a, "num_experts"_a, "block_size"_a,
        "Lengths the moe_align outputs need: {'capacity', 'max_blocks'} (arithmetic, no GPU call).");
  add_gpu_routing_quant_entries(m);
}

}  // namespace moe::python
