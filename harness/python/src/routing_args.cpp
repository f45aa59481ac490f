#include "routing_args.hpp"

#include <algorithm>
#include <limits>

namespace moe::python {

int32_t dim32(int64_t d) { return static_cast<int32_t>(std::min<int64_t>(d, std::numeric_limits<int32_t>::max())); }

routing::SoftmaxTopkParams softmax_topk_params(int64_t tokens, int64_t experts, int32_t top_k, bool renormalize,
                                               DType dtype) {
  routing::SoftmaxTopkParams p;
  p.tokens = tokens;
  p.experts = dim32(experts);
  p.top_k = top_k;
  p.dtype = dtype;
  p.renormalize = renormalize;
  p.validate();
  return p;
}

routing::GroupedTopkParams grouped_topk_params(int64_t tokens, int64_t experts, int32_t top_k, int32_t n_group,
                                               int32_t topk_group, const std::string& scoring, bool renormalize,
                                               float routed_scaling_factor, DType dtype) {
  routing::GroupedTopkParams p;
  p.tokens = tokens;
  p.experts = dim32(experts);
  p.n_group = n_group;
  p.topk_group = topk_group;
  p.top_k = top_k;
  p.scoring = routing::parse_scoring(scoring);
  p.renormalize = renormalize;
  p.routed_scaling_factor = routed_scaling_factor;
  p.dtype = dtype;
  p.validate();
  return p;
}

routing::SigmoidTop1Params sigmoid_top1_params(int64_t tokens, int64_t hidden, int64_t experts, DType dtype,
                                               bool shared_expert) {
  routing::SigmoidTop1Params p;
  p.tokens = tokens;
  p.hidden = hidden;
  p.experts = dim32(experts);
  p.dtype = dtype;
  p.shared_expert = shared_expert;
  p.validate();
  return p;
}

}  // namespace moe::python
