#include "moe/check.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace moe {

nlohmann::json CheckResult::to_json() const {
  nlohmann::json j{{"passed", passed},       {"count", count},       {"rel_l2", rel_l2},
                   {"max_abs", max_abs},     {"max_rel", max_rel},   {"n_outside", n_outside},
                   {"n_nonfinite", n_nonfinite}, {"message", message}};
  auto& mm = j["first_mismatches"] = nlohmann::json::array();
  for (const auto& m : first_mismatches) {
    // JSON has no NaN: write non-finite values as strings.
    auto num = [](double v) -> nlohmann::json {
      if (std::isfinite(v)) return v;
      return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
    };
    mm.push_back({{"index", m.index}, {"got", num(m.got)}, {"expected", num(m.expected)}});
  }
  return j;
}

static void note(CheckResult& r, int64_t i, double got, double exp) {
  if (r.first_mismatches.size() < CheckResult::kMaxListed) r.first_mismatches.push_back({i, got, exp});
}

static std::string list_mismatches(const CheckResult& r) {
  std::string s;
  for (const auto& m : r.first_mismatches) s += fmt::format(" [{}] got {} want {};", m.index, m.got, m.expected);
  return s;
}

CheckResult check_close(std::span<const float> out, std::span<const float> ref, const Tolerance& tol) {
  CheckResult r;
  r.count = static_cast<int64_t>(ref.size());
  if (out.size() != ref.size()) {
    r.passed = false;
    r.message = fmt::format("size mismatch: output has {} elements, reference {}", out.size(), ref.size());
    return r;
  }
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double o = out[i], e = ref[i];
    if (!std::isfinite(e)) {
      const bool same_class = (std::isnan(e) && std::isnan(o)) || (std::isinf(e) && o == e);
      if (!same_class) {
        ++r.n_nonfinite;
        note(r, static_cast<int64_t>(i), o, e);
      }
      continue;
    }
    if (!std::isfinite(o)) {
      ++r.n_nonfinite;
      note(r, static_cast<int64_t>(i), o, e);
      continue;
    }
    const double d = std::abs(o - e);
    err2 += d * d;
    ref2 += e * e;
    r.max_abs = std::max(r.max_abs, d);
    if (e != 0) r.max_rel = std::max(r.max_rel, d / std::abs(e));
    if (d > tol.atol + tol.rtol * std::abs(e)) {
      ++r.n_outside;
      note(r, static_cast<int64_t>(i), o, e);
    }
  }
  r.rel_l2 = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  const bool l2_ok = r.rel_l2 <= tol.max_rel_l2;
  r.passed = r.n_nonfinite == 0 && r.n_outside == 0 && l2_ok;
  if (r.passed) {
    r.message = fmt::format("ok: rel_l2 {:.3e}, max_abs {:.3e}", r.rel_l2, r.max_abs);
  } else {
    r.message = fmt::format("FAIL: {} non-finite, {} of {} outside atol {:.1e} + rtol {:.1e}, rel_l2 {:.3e} (limit {:.1e});{}",
                            r.n_nonfinite, r.n_outside, r.count, tol.atol, tol.rtol, r.rel_l2, tol.max_rel_l2,
                            list_mismatches(r));
  }
  return r;
}

CheckResult check_exact(std::span<const int32_t> out, std::span<const int32_t> ref) {
  CheckResult r;
  r.count = static_cast<int64_t>(ref.size());
  if (out.size() != ref.size()) {
    r.passed = false;
    r.message = fmt::format("size mismatch: output has {} elements, reference {}", out.size(), ref.size());
    return r;
  }
  for (size_t i = 0; i < ref.size(); ++i) {
    if (out[i] != ref[i]) {
      ++r.n_outside;
      note(r, static_cast<int64_t>(i), out[i], ref[i]);
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
      note(r, static_cast<int64_t>(g + static_cast<size_t>(it.first - a.begin())), *it.first, *it.second);
    }
  }
  r.passed = r.n_outside == 0;
  r.message = r.passed ? std::string("ok: same sets")
                       : fmt::format("FAIL: {} groups of {} differ as sets;{}", r.n_outside, group, list_mismatches(r));
  return r;
}

}  // namespace moe
