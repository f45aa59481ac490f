#include "moe/check.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace moe {

namespace {

// JSON has no NaN: non-finite values as strings.
nlohmann::json num(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

constexpr double kInf = std::numeric_limits<double>::infinity();

// |d| / bound with 0/0 = 0 and d/0 = inf.
double ratio(double d, double bound) {
  if (d == 0) return 0;
  return bound > 0 ? d / bound : kInf;
}

}  // namespace

nlohmann::json CheckResult::to_json() const {
  nlohmann::json j{{"passed", passed},       {"count", count},       {"rel_l2", num(rel_l2)},
                   {"max_abs", num(max_abs)}, {"max_rel", num(max_rel)}, {"n_outside", n_outside},
                   {"n_nonfinite", n_nonfinite}, {"message", message}};
  auto& mm = j["first_mismatches"] = nlohmann::json::array();
  for (const auto& m : first_mismatches)
    mm.push_back({{"index", m.index}, {"got", num(m.got)}, {"expected", num(m.expected)}});
  j["tolerance"] = {{"atol", num(tolerance.atol)}, {"rtol", num(tolerance.rtol)}, {"max_rel_l2", num(tolerance.max_rel_l2)}};
  if (!bound_rule.empty()) j["tolerance"]["bound_rule"] = bound_rule;
  if (margins_known) {
    j["margin"] = num(margin());
    j["element_margin"] = num(element_margin);
    j["l2_margin"] = num(l2_margin);
  } else {
    j["margin"] = j["element_margin"] = j["l2_margin"] = nullptr;
  }
  if (worst.index >= 0)
    j["worst"] = {{"index", worst.index}, {"got", num(worst.got)}, {"want", num(worst.want)}, {"bound", num(worst.bound)}};
  else
    j["worst"] = nullptr;
  return j;
}

static void note(CheckResult& r, int64_t i, double got, double exp) {
  if (r.first_mismatches.size() < CheckResult::kMaxListed) r.first_mismatches.push_back({i, got, exp});
}

// Records element i's margin; keeps the first element of the largest margin.
static void track(CheckResult& r, int64_t i, double got, double want, double bound, double m) {
  if (r.worst.index < 0 || m > r.element_margin) {
    r.element_margin = m;
    r.worst = {i, got, want, bound};
  }
}

static std::string list_mismatches(const CheckResult& r) {
  std::string s;
  for (const auto& m : r.first_mismatches) s += fmt::format(" [{}] got {} want {};", m.index, m.got, m.expected);
  return s;
}

// The float comparison of check_close / check_within; bound_of(i, want) is the
// element bound.
template <typename T, typename BoundFn>
static CheckResult compare_floats(std::span<const T> out, std::span<const T> ref, double max_rel_l2, BoundFn bound_of) {
  CheckResult r;
  r.count = static_cast<int64_t>(ref.size());
  r.tolerance.max_rel_l2 = max_rel_l2;
  if (out.size() != ref.size()) {
    r.passed = false;
    r.element_margin = kInf;
    r.message = fmt::format("size mismatch: output has {} elements, reference {}", out.size(), ref.size());
    return r;
  }
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double o = out[i], e = ref[i];
    const auto idx = static_cast<int64_t>(i);
    if (!std::isfinite(e)) {
      const bool same_class = (std::isnan(e) && std::isnan(o)) || (std::isinf(e) && o == e);
      if (!same_class) {
        ++r.n_nonfinite;
        note(r, idx, o, e);
        track(r, idx, o, e, 0, kInf);
      }
      continue;
    }
    const double b = bound_of(i, e);
    if (!std::isfinite(o)) {
      ++r.n_nonfinite;
      note(r, idx, o, e);
      track(r, idx, o, e, b, kInf);
      continue;
    }
    const double d = std::abs(o - e);
    err2 += d * d;
    ref2 += e * e;
    r.max_abs = std::max(r.max_abs, d);
    if (e != 0) r.max_rel = std::max(r.max_rel, d / std::abs(e));
    track(r, idx, o, e, b, ratio(d, b));
    if (d > b) {
      ++r.n_outside;
      note(r, idx, o, e);
    }
  }
  r.rel_l2 = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  r.l2_margin = ratio(r.rel_l2, max_rel_l2);
  const bool l2_ok = r.rel_l2 <= max_rel_l2;
  r.passed = r.n_nonfinite == 0 && r.n_outside == 0 && l2_ok;
  return r;
}

double rms(std::span<const float> v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return v.empty() ? 0.0 : std::sqrt(s / static_cast<double>(v.size()));
}

CheckResult check_close(std::span<const float> out, std::span<const float> ref, const Tolerance& tol) {
  CheckResult r = compare_floats(out, ref, tol.max_rel_l2, [&](size_t, double e) { return tol.atol + tol.rtol * std::abs(e); });
  r.tolerance = tol;
  if (r.passed) {
    r.message = fmt::format("ok: rel_l2 {:.3e}, max_abs {:.3e}", r.rel_l2, r.max_abs);
  } else if (r.message.empty()) {
    r.message = fmt::format("FAIL: {} non-finite, {} of {} outside atol {:.1e} + rtol {:.1e}, rel_l2 {:.3e} (limit {:.1e});{}",
                            r.n_nonfinite, r.n_outside, r.count, tol.atol, tol.rtol, r.rel_l2, tol.max_rel_l2,
                            list_mismatches(r));
  }
  return r;
}

CheckResult check_within(std::span<const double> out, std::span<const double> ref, std::span<const double> bound,
                         double max_rel_l2, std::string rule) {
  CheckResult r;
  if (bound.size() != ref.size()) {
    r.passed = false;
    r.element_margin = kInf;
    r.message = fmt::format("check_within: {} bounds for {} elements", bound.size(), ref.size());
  } else {
    r = compare_floats(out, ref, max_rel_l2, [&](size_t i, double) { return bound[i]; });
  }
  r.bound_rule = std::move(rule);
  if (r.passed) {
    r.message = fmt::format("ok: rel_l2 {:.3e}, max_abs {:.3e}, margin {:.3g} ({})", r.rel_l2, r.max_abs, r.margin(), r.bound_rule);
  } else if (r.message.empty()) {
    r.message = fmt::format("FAIL: {} non-finite, {} of {} outside {}, rel_l2 {:.3e} (limit {:.1e});{}", r.n_nonfinite,
                            r.n_outside, r.count, r.bound_rule, r.rel_l2, max_rel_l2, list_mismatches(r));
  }
  return r;
}

CheckResult check_exact(std::span<const int32_t> out, std::span<const int32_t> ref) {
  CheckResult r;
  r.count = static_cast<int64_t>(ref.size());
  if (out.size() != ref.size()) {
    r.passed = false;
    r.element_margin = kInf;
    r.message = fmt::format("size mismatch: output has {} elements, reference {}", out.size(), ref.size());
    return r;
  }
  for (size_t i = 0; i < ref.size(); ++i) {
    const auto idx = static_cast<int64_t>(i);
    if (out[i] != ref[i]) {
      ++r.n_outside;
      note(r, idx, out[i], ref[i]);
      track(r, idx, out[i], ref[i], 0, kInf);
    } else if (r.worst.index < 0) {
      track(r, idx, out[i], ref[i], 0, 0);
    }
  }
  r.passed = r.n_outside == 0;
  r.message = r.passed ? std::string("ok: exact")
                       : fmt::format("FAIL: {} of {} differ;{}", r.n_outside, r.count, list_mismatches(r));
  return r;
}

CheckResult check_same_sets(std::span<const int32_t> out, std::span<const int32_t> ref, int64_t group) {
  CheckResult r;
  r.count = static_cast<int64_t>(ref.size());
  if (out.size() != ref.size() || group <= 0 || ref.size() % static_cast<size_t>(group) != 0) {
    r.passed = false;
    r.element_margin = kInf;
    r.message = fmt::format("size mismatch: output {}, reference {}, group {}", out.size(), ref.size(), group);
    return r;
  }
  std::vector<int32_t> a(static_cast<size_t>(group)), b(static_cast<size_t>(group));
  for (size_t g = 0; g < ref.size(); g += static_cast<size_t>(group)) {
    std::copy_n(out.begin() + static_cast<std::ptrdiff_t>(g), group, a.begin());
    std::copy_n(ref.begin() + static_cast<std::ptrdiff_t>(g), group, b.begin());
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) {
      ++r.n_outside;
      // Report the first slot of the group where the sorted sets part.
      auto it = std::mismatch(a.begin(), a.end(), b.begin());
      const auto idx = static_cast<int64_t>(g + static_cast<size_t>(it.first - a.begin()));
      note(r, idx, *it.first, *it.second);
      track(r, idx, *it.first, *it.second, 0, kInf);
    }
  }
  r.passed = r.n_outside == 0;
  r.message = r.passed ? std::string("ok: same sets")
                       : fmt::format("FAIL: {} groups of {} differ as sets;{}", r.n_outside, group, list_mismatches(r));
  return r;
}

}  // namespace moe
