// The quantization contract: FP8 (e4m3fn / e4m3fnuz) and symmetric INT8 quantizers
// for MoE activations and weights, shared by the kernels (kernels/quant/quant.hpp)
// and the CPU reference (reference/quant/quant_ref.hpp). The arithmetic (rounding,
// saturation, scale rules) is defined once in moe/fp8.hpp; this header defines the
// granularities and the tensor and scale layouts.
//
// ---- What is quantized -------------------------------------------------------------
// An input x of shape (batch, rows, cols), contiguous row-major, dtype bf16 / fp16 /
// fp32, becomes codes q of the same shape (1 byte each: an e4m3 code or an int8) and
// fp32 scales, so that  x[b, r, c] ~= decode(q[b, r, c]) * scales[scale_index(b, r, c)].
//
//   Granularity   scale shape (row-major)                 used for
//   PerTensor     (batch)                                 aiter's quantize_fp8; batch=E: per-expert weights
//   PerRow        (batch, rows)                           per-token activations (a1/a2_scale);
//                                                         per-output-channel weights (w1_scale (E, 2*inter, 1))
//   PerGroup      (batch, rows, ceil(cols/group))  or     DeepSeek-V3 activations: 1 x 128 groups along K
//                 (batch, ceil(cols/group), rows) with GroupScaleLayout::ColMajor (DeepGEMM's layout)
//   PerBlock      (batch, ceil(rows/br), ceil(cols/bc))   DeepSeek-V3 weights: 128 x 128 blocks
// The last group/block of a row/column may be partial (it covers what is left).
// Every segment (set of elements sharing a scale) gets scale = amax/qmax with the
// rules of fp8.hpp (amax 0 -> scale 0 and codes 0; tiny amax -> scale FLT_MIN).
// PerTensor can also use a static scale (QuantSpec::static_scale): scales[b] are read,
// not written, and values beyond +-qmax * scale saturate to +-qmax.
//
// ---- Worked layout example (DeepSeek-V3 activation, per-token-group) ---------------
//   hidden (M=2, K=256) bf16, spec {FP8_E4M3FN, PerGroup, group=128}:
//   q      (2, 256) uint8, row-major (same indexing as hidden)
//   scales (2, 2) fp32, row-major: scales[r*2 + g] covers hidden[r, 128g .. 128g+127]
//   If hidden[0, 0:128] has amax 3.5 then scales[0] = 3.5/448 = 2^-7, inv = 128, and
//     hidden[0, c] =  1.0  -> 128.0 -> q = 0x70 (E=14, M=0)
//     hidden[0, c] = -0.3  -> -38.4 -> RNE to -40 = -2^5*1.25 -> q = 0xE2
//     hidden[0, c] =  3.5  -> 448   -> q = 0x7E (the max code)
//   With GroupScaleLayout::ColMajor the scale of (r, g) is scales[g*2 + r] instead.
//   (tests/quant/test_quant_ref.cpp reproduces this example.)
//
// ---- Inf / NaN inputs ----------------------------------------------------------------
// A segment containing Inf or NaN gets scale NaN (its codes: NaN codes for fp8, 0 for
// int8) and the kernel records it in the Workspace's status word. With
// CheckMode::Sync the launcher then synchronizes and throws InputError naming the
// tensor (QuantProblem::name) and the first bad segment; with CheckMode::Deferred
// (graph capture, benchmarks) call Workspace::check() later.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "moe/dtype.hpp"
#include "moe/fp8.hpp"

namespace moe::quant {

// Element type of the codes.
enum class QType : int { FP8_E4M3FN = 0, FP8_E4M3FNUZ = 1, INT8 = 2 };

std::string_view qtype_name(QType t);    // "fp8_e4m3fn" | "fp8_e4m3fnuz" | "int8"
QType parse_qtype(std::string_view s);   // accepts the names above, "e4m3fn", "e4m3fnuz"
float qtype_max(QType t);                // 448, 240, 127
inline bool is_fp8(QType t) { return t != QType::INT8; }
inline Fp8Format fp8_format_of(QType t) { return t == QType::FP8_E4M3FNUZ ? Fp8Format::E4M3FNUZ : Fp8Format::E4M3FN; }
inline QType fp8_qtype(Fp8Format f) { return f == Fp8Format::E4M3FNUZ ? QType::FP8_E4M3FNUZ : QType::FP8_E4M3FN; }
// The FP8 code type for a GPU arch (fp8_format_for_arch).
inline QType fp8_qtype_for_arch(std::string_view arch) { return fp8_qtype(fp8_format_for_arch(arch)); }

enum class Granularity : int { PerTensor = 0, PerRow = 1, PerGroup = 2, PerBlock = 3 };
std::string_view granularity_name(Granularity g);  // "per_tensor" | "per_row" | "per_group" | "per_block"

enum class GroupScaleLayout : int { RowMajor = 0, ColMajor = 1 };

struct Shape3 {
  int64_t batch = 1;
  int64_t rows = 0;
  int64_t cols = 0;
};

struct QuantSpec {
  QType qtype = QType::FP8_E4M3FN;
  Granularity granularity = Granularity::PerRow;
  int64_t group = 128;                                     // PerGroup: elements per group along cols
  GroupScaleLayout group_layout = GroupScaleLayout::RowMajor;  // PerGroup only
  int64_t block_rows = 128;                                // PerBlock
  int64_t block_cols = 128;                                // PerBlock
  bool static_scale = false;                               // PerTensor only: scales are inputs
};

struct QuantProblem {
  Shape3 shape;
  DType in_dtype = DType::BF16;  // F32, BF16 or F16
  QuantSpec spec;
  std::string name = "input";    // tensor name for error messages

  // Throws InputError naming the first bad field.
  void validate() const;
  int64_t numel() const { return shape.batch * shape.rows * shape.cols; }
  int64_t groups_per_row() const;       // PerGroup: ceil(cols/group)
  int64_t num_scales() const;           // product of scale_shape()
  std::vector<int64_t> scale_shape() const;
  // Index into scales of the scale that covers element (b, r, c).
  int64_t scale_index(int64_t b, int64_t r, int64_t c) const;
  // Human-readable place of segment (scale element) `s`: "row 17 (batch 0)", ...
  std::string describe_segment(int64_t s) const;
  // InputError text for a non-finite input whose first bad segment is `s`.
  std::string nonfinite_message(int64_t s) const;
  // One line: "fp8_e4m3fn per_group(128) bf16 (1, 37, 1000)".
  std::string summary() const;
  // Minimal bytes a kernel must move: read x once, write q and (dynamic) scales once.
  double min_bytes() const;
};

// ---- constructors of the common schemes -----------------------------------------------
// Activations (M, K):
QuantProblem fp8_per_tensor(int64_t M, int64_t K, DType in, Fp8Format f, std::string name = "hidden");
QuantProblem fp8_per_token(int64_t M, int64_t K, DType in, Fp8Format f, std::string name = "hidden");
QuantProblem fp8_per_token_group(int64_t M, int64_t K, DType in, Fp8Format f, int64_t group = 128,
                                 GroupScaleLayout layout = GroupScaleLayout::RowMajor, std::string name = "hidden");
QuantProblem int8_per_token(int64_t M, int64_t K, DType in, std::string name = "hidden");
// Weights (E, N, K) (w1: N = 2*inter, K = model_dim; w2: N = model_dim, K = inter):
QuantProblem weight_per_expert(int64_t E, int64_t N, int64_t K, DType in, QType q, std::string name = "w");
QuantProblem weight_per_channel(int64_t E, int64_t N, int64_t K, DType in, QType q, std::string name = "w");
QuantProblem weight_per_block(int64_t E, int64_t N, int64_t K, DType in, QType q, int64_t block_n = 128,
                              int64_t block_k = 128, std::string name = "w");

}  // namespace moe::quant
