// Comparing kernel outputs with reference outputs.
//
// Float outputs pass when
//   (1) every element with a finite reference is finite, and
//   (2) |out - ref| <= atol + rtol * |ref| for every element, and
//   (3) ||out - ref||_2 / ||ref||_2 <= max_rel_l2.
// A NaN in the output where the reference is finite always fails, so outputs
// poisoned with NaN before a kernel runs expose any element it never writes.
// Where the reference itself is NaN/Inf the output must match it (same class).
//
// Index outputs: exact equality, or equality of the multiset within each group
// (for kernels whose order within a group is not defined).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

struct Tolerance {
  double atol = 0;
  double rtol = 0;
  double max_rel_l2 = 0;
};

struct Mismatch {
  int64_t index;
  double got;
  double expected;
};

struct CheckResult {
  bool passed = true;
  int64_t count = 0;
  double rel_l2 = 0;       // ||out - ref|| / ||ref|| over finite reference elements
  double max_abs = 0;      // max |out - ref|
  double max_rel = 0;      // max |out - ref| / |ref| over |ref| > 0
  int64_t n_outside = 0;   // elements outside atol + rtol*|ref|
  int64_t n_nonfinite = 0; // non-finite outputs where the reference is finite (or class mismatch)
  std::vector<Mismatch> first_mismatches;  // at most kMaxListed, in index order
  std::string message;     // one line: "ok" or what failed

  static constexpr size_t kMaxListed = 8;
  nlohmann::json to_json() const;
};

CheckResult check_close(std::span<const float> out, std::span<const float> ref, const Tolerance& tol);

CheckResult check_exact(std::span<const int32_t> out, std::span<const int32_t> ref);

// out and ref are split into consecutive groups of `group` elements; each group
// must hold the same multiset of values.
CheckResult check_same_sets(std::span<const int32_t> out, std::span<const int32_t> ref, int64_t group);

}  // namespace moe
