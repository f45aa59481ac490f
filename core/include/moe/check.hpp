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
//
// Margins (how close a result is to failing), one vocabulary for every check:
//   bound_i        = atol + rtol |want_i|  (check_within: a given bound per element)
//   element_margin = max_i |got_i - want_i| / bound_i  (0/0 = 0; a difference under
//                    a zero bound, or a non-finite mismatch, is +inf)
//   l2_margin      = rel_l2 / max_rel_l2  (0/0 = 0)
//   margin         = max(element_margin, l2_margin); a finite result passes when
//                    margin <= 1. Exact comparisons have all bounds 0, so their margin
//                    is 0 (equal) or +inf.
//   worst          = the element with the largest element margin (the first of equals).
// Example: atol 0.01, rtol 0.1, want {1, 2}, got {1.05, 2}: bounds {0.11, 0.21},
// element_margin 0.05/0.11 = 0.4545 at worst index 0; rel_l2 = 0.05/sqrt(5).
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

// The element with the largest margin (index -1: none compared).
struct WorstElement {
  int64_t index = -1;
  double got = 0;
  double want = 0;
  double bound = 0;  // allowed |got - want| there
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

  // Margins (header comment). margins_known is false where the producer of this
  // result applied its own bounds and did not measure them (JSON: null).
  Tolerance tolerance;      // the bounds applied (exact comparisons: all 0)
  std::string bound_rule;   // set when the element bound is not atol + rtol |want| (says what it is)
  WorstElement worst;
  double element_margin = 0;
  double l2_margin = 0;
  bool margins_known = true;
  double margin() const { return element_margin > l2_margin ? element_margin : l2_margin; }

  static constexpr size_t kMaxListed = 8;
  // Keys: passed, count, rel_l2, max_abs, max_rel, n_outside, n_nonfinite, message,
  // first_mismatches; tolerance {atol, rtol, max_rel_l2[, bound_rule]}, worst
  // {index, got, want, bound} (null when none), margin, element_margin, l2_margin
  // (null when not known). Non-finite numbers are written as "nan", "inf", "-inf".
  nlohmann::json to_json() const;
};

// Root mean square of v (0 for an empty v): the scale of the relative limits.
double rms(std::span<const float> v);

CheckResult check_close(std::span<const float> out, std::span<const float> ref, const Tolerance& tol);

// Like check_close with a given bound per element (bound.size() == ref.size()):
// |out_i - ref_i| <= bound_i and rel_l2 <= max_rel_l2. `rule` names the bound
// (recorded as tolerance.bound_rule; tolerance.atol/rtol are 0).
CheckResult check_within(std::span<const double> out, std::span<const double> ref, std::span<const double> bound,
                         double max_rel_l2, std::string rule);

CheckResult check_exact(std::span<const int32_t> out, std::span<const int32_t> ref);

// out and ref are split into consecutive groups of `group` elements; each group
// must hold the same multiset of values.
CheckResult check_same_sets(std::span<const int32_t> out, std::span<const int32_t> ref, int64_t group);

}  // namespace moe
