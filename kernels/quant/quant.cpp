// Host side of the quantizer kernels: launch-config and launch validation.
#include <fmt/format.h>

#include "kernels/quant/quant.hpp"
#include "kernels/quant/quant_detail.hpp"
#include "moe/error.hpp"

namespace moe::quant {

std::string LaunchConfig::why_invalid() const {
  if (threads != 0 && threads != 64 && threads != 128 && threads != 256 && threads != 512 && threads != 1024)
    return fmt::format("threads {} must be 0 (auto), 64, 128, 256, 512 or 1024", threads);
  return {};
}

}  // namespace moe::quant

namespace moe::quant::detail {

void validate_launch(const QuantProblem& p, const void* x, const void* q, const float* scales,
                     int64_t workspace_max_batch, CheckMode mode, const LaunchConfig& cfg) {
  p.validate();
  const std::string why = cfg.why_invalid();
  MOE_REQUIRE(why.empty(), fmt::format("quantize '{}': invalid launch config: {}", p.name, why));
  MOE_REQUIRE(x != nullptr && q != nullptr && scales != nullptr,
              fmt::format("quantize '{}': null device pointer (x {}, q {}, scales {})", p.name, x, q,
                          static_cast<const void*>(scales)));
  MOE_REQUIRE(mode == CheckMode::Sync || mode == CheckMode::Deferred,
              fmt::format("quantize '{}': invalid check mode {}", p.name, static_cast<int>(mode)));
  if (p.spec.granularity == Granularity::PerTensor) {
    MOE_REQUIRE(p.shape.batch <= workspace_max_batch,
                fmt::format("quantize '{}': batch {} exceeds the workspace's max_batch {}", p.name, p.shape.batch,
                            workspace_max_batch));
  }
}

std::string grid_limit_message(const QuantProblem& p, int64_t blocks) {
  return fmt::format("quantize '{}': {} needs {} thread blocks, above the 2^31-1 grid limit", p.name, p.summary(), blocks);
}

}  // namespace moe::quant::detail
