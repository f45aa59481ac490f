#include "reference/fused_moe_q8/fp8_mma_accum.hpp"

#include <algorithm>
#include <climits>
#include <cmath>

#include "moe/error.hpp"

namespace moe::ref {

namespace {

constexpr int kFractionBits = 13;

int exponent_of(double x) {  // floor(log2|x|), x != 0
  int e = 0;
  std::frexp(x, &e);
  return e - 1;
}

double truncate_to(double x, int quantum_exp) {  // toward zero, to a multiple of 2^quantum_exp
  return std::ldexp(std::trunc(std::ldexp(x, -quantum_exp)), quantum_exp);
}

}  // namespace

double fp8_mma_k32_step(double c, const double* a, const double* b, int n) {
  MOE_REQUIRE(n >= 0 && n <= 32, "fp8_mma_k32_step: at most 32 products per step");
  int e_max = c != 0 ? exponent_of(c) : INT_MIN;
  for (int j = 0; j < n; ++j)
    if (a[j] != 0 && b[j] != 0) e_max = std::max(e_max, exponent_of(a[j]) + exponent_of(b[j]));
  if (e_max == INT_MIN) return 0.0;
  const int q = e_max - kFractionBits;
  double sum = truncate_to(c, q);  // exact: every term is a multiple of 2^q well inside 53 bits
  for (int j = 0; j < n; ++j) sum += truncate_to(a[j] * b[j], q);
  return sum == 0 ? 0.0 : truncate_to(sum, exponent_of(sum) - kFractionBits);
}

void fp8_mma_dot(const double* a, const double* b, int64_t K, int64_t segment, double* partials) {
  MOE_REQUIRE(K >= 0, "fp8_mma_dot: K must be >= 0");
  if (segment <= 0) segment = std::max<int64_t>(K, 1);
  MOE_REQUIRE(segment % 32 == 0 || segment >= K, "fp8_mma_dot: segment must be a multiple of 32");
  const int64_t segments = (K + segment - 1) / segment;
  for (int64_t s = 0; s < segments; ++s) {
    double acc = 0.0;
    const int64_t end = std::min(K, (s + 1) * segment);
    for (int64_t k = s * segment; k < end; k += 32)
      acc = fp8_mma_k32_step(acc, a + k, b + k, static_cast<int>(std::min<int64_t>(32, end - k)));
    partials[s] = acc;
  }
}

}  // namespace moe::ref
