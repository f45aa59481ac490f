// The quantization contract: names, validation, scale layouts, scheme constructors.
#include <limits>

#include <fmt/format.h>

#include "moe/contract/quant.hpp"
#include "moe/error.hpp"

namespace moe::quant {

std::string_view qtype_name(QType t) {
  switch (t) {
    case QType::FP8_E4M3FN: return "fp8_e4m3fn";
    case QType::FP8_E4M3FNUZ: return "fp8_e4m3fnuz";
    case QType::INT8: return "int8";
  }
  return "?";
}

QType parse_qtype(std::string_view s) {
  if (s == "fp8_e4m3fn" || s == "e4m3fn" || s == "fp8") return QType::FP8_E4M3FN;
  if (s == "fp8_e4m3fnuz" || s == "e4m3fnuz") return QType::FP8_E4M3FNUZ;
  if (s == "int8" || s == "i8") return QType::INT8;
  throw_input_error(fmt::format("unknown quantized type '{}' (expected fp8_e4m3fn, fp8_e4m3fnuz or int8)", s));
}

float qtype_max(QType t) {
  switch (t) {
    case QType::FP8_E4M3FN: return 448.0f;
    case QType::FP8_E4M3FNUZ: return 240.0f;
    case QType::INT8: return 127.0f;
  }
  return 0.0f;
}

std::string_view granularity_name(Granularity g) {
  switch (g) {
    case Granularity::PerTensor: return "per_tensor";
    case Granularity::PerRow: return "per_row";
    case Granularity::PerGroup: return "per_group";
    case Granularity::PerBlock: return "per_block";
  }
  return "?";
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void QuantProblem::validate() const {
  const auto& sh = shape;
  MOE_REQUIRE(sh.batch >= 1 && sh.rows >= 1 && sh.cols >= 1,
              fmt::format("quantize '{}': shape ({}, {}, {}) must have batch, rows and cols >= 1", name, sh.batch,
                          sh.rows, sh.cols));
  constexpr int64_t kMaxElems = int64_t{1} << 46;  // 64 TiB of codes: far beyond any device
  MOE_REQUIRE(sh.cols <= kMaxElems && sh.rows <= kMaxElems / sh.cols && sh.batch <= kMaxElems / (sh.rows * sh.cols),
              fmt::format("quantize '{}': shape ({}, {}, {}) is too large", name, sh.batch, sh.rows, sh.cols));
  MOE_REQUIRE(in_dtype == DType::F32 || in_dtype == DType::BF16 || in_dtype == DType::F16,
              fmt::format("quantize '{}': input dtype {} is not a float type (expected bf16, fp16 or fp32)", name,
                          dtype_name(in_dtype)));
  const int qt = static_cast<int>(spec.qtype);
  MOE_REQUIRE(qt >= 0 && qt <= 2, fmt::format("quantize '{}': invalid quantized type {}", name, qt));
  const int g = static_cast<int>(spec.granularity);
  MOE_REQUIRE(g >= 0 && g <= 3, fmt::format("quantize '{}': invalid granularity {}", name, g));
  if (spec.granularity == Granularity::PerGroup) {
    MOE_REQUIRE(spec.group >= 1 && spec.group <= (int64_t{1} << 30),
                fmt::format("quantize '{}': group size {} must be in [1, 2^30]", name, spec.group));
  }
  if (spec.granularity == Granularity::PerBlock) {
    MOE_REQUIRE(spec.block_rows >= 1 && spec.block_cols >= 1 && spec.block_rows <= (int64_t{1} << 20) &&
                    spec.block_cols <= (int64_t{1} << 20),
                fmt::format("quantize '{}': block {}x{} must have sides in [1, 2^20]", name, spec.block_rows,
                            spec.block_cols));
  }
  MOE_REQUIRE(spec.group_layout == GroupScaleLayout::RowMajor || spec.granularity == Granularity::PerGroup,
              fmt::format("quantize '{}': a column-major scale layout applies only to per_group", name));
  MOE_REQUIRE(!spec.static_scale || spec.granularity == Granularity::PerTensor,
              fmt::format("quantize '{}': static scales are supported only per_tensor, not {}", name,
                          granularity_name(spec.granularity)));
  // Launch limits: the kernels put segments / tiles on a 1-D grid.
  MOE_REQUIRE(num_scales() < (int64_t{1} << 31),
              fmt::format("quantize '{}': {} scales exceed the 2^31 supported", name, num_scales()));
}

int64_t QuantProblem::groups_per_row() const { return ceil_div(shape.cols, spec.group); }

std::vector<int64_t> QuantProblem::scale_shape() const {
  switch (spec.granularity) {
    case Granularity::PerTensor: return {shape.batch};
    case Granularity::PerRow: return {shape.batch, shape.rows};
    case Granularity::PerGroup:
      if (spec.group_layout == GroupScaleLayout::ColMajor) return {shape.batch, groups_per_row(), shape.rows};
      return {shape.batch, shape.rows, groups_per_row()};
    case Granularity::PerBlock:
      return {shape.batch, ceil_div(shape.rows, spec.block_rows), ceil_div(shape.cols, spec.block_cols)};
  }
  return {};
}

int64_t QuantProblem::num_scales() const {
  int64_t n = 1;
  for (int64_t d : scale_shape()) n *= d;
  return n;
}

int64_t QuantProblem::scale_index(int64_t b, int64_t r, int64_t c) const {
  switch (spec.granularity) {
    case Granularity::PerTensor: return b;
    case Granularity::PerRow: return b * shape.rows + r;
    case Granularity::PerGroup: {
      const int64_t G = groups_per_row(), g = c / spec.group;
      if (spec.group_layout == GroupScaleLayout::ColMajor) return (b * G + g) * shape.rows + r;
      return (b * shape.rows + r) * G + g;
    }
    case Granularity::PerBlock: {
      const int64_t RB = ceil_div(shape.rows, spec.block_rows), CB = ceil_div(shape.cols, spec.block_cols);
      return (b * RB + r / spec.block_rows) * CB + c / spec.block_cols;
    }
  }
  return 0;
}

std::string QuantProblem::describe_segment(int64_t s) const {
  switch (spec.granularity) {
    case Granularity::PerTensor: return fmt::format("batch entry {}", s);
    case Granularity::PerRow: return fmt::format("row {} of batch entry {}", s % shape.rows, s / shape.rows);
    case Granularity::PerGroup: {
      const int64_t G = groups_per_row();
      int64_t b, r, g;
      if (spec.group_layout == GroupScaleLayout::ColMajor) {
        b = s / (G * shape.rows);
        g = (s / shape.rows) % G;
        r = s % shape.rows;
      } else {
        b = s / (shape.rows * G);
        r = (s / G) % shape.rows;
        g = s % G;
      }
      return fmt::format("row {}, columns [{}, {}) of batch entry {}", r, g * spec.group,
                         std::min(shape.cols, (g + 1) * spec.group), b);
    }
    case Granularity::PerBlock: {
      const int64_t RB = ceil_div(shape.rows, spec.block_rows), CB = ceil_div(shape.cols, spec.block_cols);
      const int64_t b = s / (RB * CB), rb = (s / CB) % RB, cb = s % CB;
      return fmt::format("block rows [{}, {}), columns [{}, {}) of batch entry {}", rb * spec.block_rows,
                         std::min(shape.rows, (rb + 1) * spec.block_rows), cb * spec.block_cols,
                         std::min(shape.cols, (cb + 1) * spec.block_cols), b);
    }
  }
  return "?";
}

std::string QuantProblem::nonfinite_message(int64_t s) const {
  if (spec.static_scale) {
    return fmt::format("quantize: tensor '{}' {} contains Inf or NaN, or its static scale is not a finite number >= 0 "
                       "(first in {}); no valid codes were produced",
                       name, fmt::format("({}, {}, {})", shape.batch, shape.rows, shape.cols), describe_segment(s));
  }
  return fmt::format("quantize: tensor '{}' ({}, {}, {}) contains Inf or NaN (first in {}); no valid codes were produced",
                     name, shape.batch, shape.rows, shape.cols, describe_segment(s));
}

std::string QuantProblem::summary() const {
  std::string g(granularity_name(spec.granularity));
  if (spec.granularity == Granularity::PerGroup)
    g += fmt::format("({}{})", spec.group, spec.group_layout == GroupScaleLayout::ColMajor ? ",colmajor" : "");
  if (spec.granularity == Granularity::PerBlock) g += fmt::format("({}x{})", spec.block_rows, spec.block_cols);
  if (spec.static_scale) g += "(static)";
  return fmt::format("{} {} {} ({}, {}, {})", qtype_name(spec.qtype), g, dtype_name(in_dtype), shape.batch,
                     shape.rows, shape.cols);
}

double QuantProblem::min_bytes() const {
  const double n = static_cast<double>(numel());
  // Dynamic scales are written once, static ones read once: 4 bytes each either way.
  return n * static_cast<double>(dtype_size(in_dtype)) + n + 4.0 * static_cast<double>(num_scales());
}

static QuantProblem make(Shape3 sh, DType in, QuantSpec spec, std::string name) {
  QuantProblem p;
  p.shape = sh;
  p.in_dtype = in;
  p.spec = spec;
  p.name = std::move(name);
  p.validate();
  return p;
}

QuantProblem fp8_per_tensor(int64_t M, int64_t K, DType in, Fp8Format f, std::string name) {
  return make({1, M, K}, in, {.qtype = fp8_qtype(f), .granularity = Granularity::PerTensor}, std::move(name));
}
QuantProblem fp8_per_token(int64_t M, int64_t K, DType in, Fp8Format f, std::string name) {
  return make({1, M, K}, in, {.qtype = fp8_qtype(f), .granularity = Granularity::PerRow}, std::move(name));
}
QuantProblem fp8_per_token_group(int64_t M, int64_t K, DType in, Fp8Format f, int64_t group, GroupScaleLayout layout,
                                 std::string name) {
  return make({1, M, K}, in,
              {.qtype = fp8_qtype(f), .granularity = Granularity::PerGroup, .group = group, .group_layout = layout},
              std::move(name));
}
QuantProblem int8_per_token(int64_t M, int64_t K, DType in, std::string name) {
  return make({1, M, K}, in, {.qtype = QType::INT8, .granularity = Granularity::PerRow}, std::move(name));
}
QuantProblem weight_per_expert(int64_t E, int64_t N, int64_t K, DType in, QType q, std::string name) {
  return make({E, N, K}, in, {.qtype = q, .granularity = Granularity::PerTensor}, std::move(name));
}
QuantProblem weight_per_channel(int64_t E, int64_t N, int64_t K, DType in, QType q, std::string name) {
  return make({E, N, K}, in, {.qtype = q, .granularity = Granularity::PerRow}, std::move(name));
}
QuantProblem weight_per_block(int64_t E, int64_t N, int64_t K, DType in, QType q, int64_t block_n, int64_t block_k,
                              std::string name) {
  return make({E, N, K}, in,
              {.qtype = q, .granularity = Granularity::PerBlock, .block_rows = block_n, .block_cols = block_k},
              std::move(name));
}

}  // namespace moe::quant
