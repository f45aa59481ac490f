// Two benchmark runs compared point by point: U test over the repetitions plus
// a minimum effect; geometric means of the time ratios; the device check.
#include "moe/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/stats.hpp"

namespace moe {
using nlohmann::json;

namespace {

json finite_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

json CompareResult::to_json() const {
  json rs = json::array();
  for (const auto& r : rows)
    rs.push_back({{"name", r.name},
                  {"kernel", r.kernel},
                  {"a_us", r.a_us},
                  {"a_stddev", r.a_sd},
                  {"a_median", r.a_median},
                  {"a_repetitions", r.a_n},
                  {"b_us", r.b_us},
                  {"b_stddev", r.b_sd},
                  {"b_median", r.b_median},
                  {"b_repetitions", r.b_n},
                  {"delta_pct", finite_or_null(r.delta_pct)},
                  {"ratio", finite_or_null(r.ratio)},
                  {"p", r.tested ? json(r.p) : json(nullptr)},
                  {"verdict", r.verdict},
                  {"reason", r.reason}});
  json by_kernel = json::object();
  for (const auto& [k, g] : geomean_by_kernel) by_kernel[k] = {{"ratio", g.ratio}, {"points", g.points}};
  return {{"threshold_pct", options.threshold_pct},
          {"alpha", options.alpha},
          {"min_repetitions", min_repetitions},
          {"warnings", warnings},
          {"rows", rs},
          {"only_a", only_a},
          {"only_b", only_b},
          {"regressions", regressions},
          {"speedups", speedups},
          {"unknown", unknown},
          {"geomean_ratio", timed > 0 ? json(geomean_ratio) : json(nullptr)},
          {"geomean_points", timed},
          {"geomean_ratio_by_kernel", by_kernel}};
}

CompareResult compare_benchmarks(const std::vector<BenchPoint>& a, const std::vector<BenchPoint>& b,
                                 const CompareOptions& opt) {
  MOE_REQUIRE(opt.threshold_pct >= 0 && std::isfinite(opt.threshold_pct),
              "--threshold must be a non-negative percentage");
  MOE_REQUIRE(opt.alpha > 0 && opt.alpha < 1, "--alpha must be in (0, 1)");
  CompareResult r;
  r.options = opt;
  r.min_repetitions = rank_test_min_repetitions(opt.alpha);
  std::map<std::string, const BenchPoint*> bm;
  for (const auto& p : b) bm[p.name] = &p;
  std::set<std::string> in_a;
  std::vector<double> ratios;
  std::map<std::string, std::vector<double>> kernel_ratios;
  int untestable = 0;  // rows whose repetitions can never give p < alpha
  std::pair<int, int> untestable_example{0, 0};
  for (const auto& pa : a) {
    in_a.insert(pa.name);
    auto it = bm.find(pa.name);
    if (it == bm.end()) {
      r.only_a.push_back(pa.name);
      continue;
    }
    const auto& pb = *it->second;
    CompareRow row;
    row.name = pa.name;
    row.kernel = pa.kernel;
    row.a_us = pa.us, row.a_sd = pa.us_stddev, row.a_median = pa.us_median;
    row.b_us = pb.us, row.b_sd = pb.us_stddev, row.b_median = pb.us_median;
    row.a_n = static_cast<int>(pa.rep_us.size()), row.b_n = static_cast<int>(pb.rep_us.size());
    if (pa.error || pb.error || !(pa.us_median > 0) || !(pb.us_median > 0) || !std::isfinite(pa.us_median) ||
        !std::isfinite(pb.us_median)) {
      row.verdict = "error";
      row.reason = "a run failed or has no time";
      row.delta_pct = row.ratio = std::nan("");
      r.rows.push_back(row);
      continue;
    }
    row.ratio = pb.us_median / pa.us_median;
    row.delta_pct = (row.ratio - 1.0) * 100.0;
    ratios.push_back(row.ratio);
    kernel_ratios[row.kernel].push_back(row.ratio);
    // p is shown even where it cannot reach alpha (3 vs 3: 0.1 = as separated as 3 runs can be).
    if (row.a_n >= 2 && row.b_n >= 2) {
      row.p = mann_whitney_u(pa.rep_us, pb.rep_us).p;
      row.tested = true;
    }
    const bool testable = row.tested && rank_test_min_p(row.a_n, row.b_n) < opt.alpha;
    if (!testable && untestable++ == 0) untestable_example = {row.a_n, row.b_n};
    if (std::abs(row.delta_pct) <= opt.threshold_pct) {
      row.verdict = "same";
    } else if (!testable) {
      row.verdict = "unknown";
      row.reason = row.a_n == 0 || row.b_n == 0
                       ? fmt::format("no per-repetition times in {}", row.a_n == 0 ? "A" : "B")
                       : fmt::format("too few repetitions: need {}", r.min_repetitions);
      ++r.unknown;
    } else if (row.p < opt.alpha) {
      row.verdict = row.delta_pct > 0 ? "regression" : "speedup";
      ++(row.delta_pct > 0 ? r.regressions : r.speedups);
    } else {
      row.verdict = "not significant";
    }
    r.rows.push_back(row);
  }
  for (const auto& pb : b)
    if (!in_a.count(pb.name)) r.only_b.push_back(pb.name);
  r.timed = static_cast<int>(ratios.size());
  if (!ratios.empty()) r.geomean_ratio = geometric_mean(ratios);
  for (const auto& [k, v] : kernel_ratios) r.geomean_by_kernel[k] = {geometric_mean(v), static_cast<int>(v.size())};
  if (untestable > 0) {
    const auto [na, nb] = untestable_example;
    r.warnings.push_back(fmt::format(
        "WARNING: {} of {} point(s) have too few repetitions for the U test to reach alpha {} (e.g. {} vs {}: "
        "smallest possible p {:.3g}); a change beyond the threshold there reads 'unknown', never REGRESSION. At "
        "this alpha every point needs {} or more repetitions in each run (moe-harness bench --repetitions {}; "
        "more repetitions let the test tolerate a few overlapping runs)",
        untestable, r.rows.size(), opt.alpha, na, nb, rank_test_min_p(na, nb), r.min_repetitions, r.min_repetitions,
        r.min_repetitions));
  }
  return r;
}

std::string format_compare(const CompareResult& r, const std::string& a_label, const std::string& b_label) {
  std::string s;
  for (const auto& w : r.warnings) s += w + "\n";
  s += fmt::format("A = {}\nB = {}\n", a_label, b_label);
  s += fmt::format(
      "rule: REGRESSION or speedup when the median changes by more than {}% and a two-sided Mann-Whitney U test "
      "over the repetitions gives p < {} (needs {}+ repetitions per run); 'not significant': a larger change the "
      "repetitions do not support\n",
      r.options.threshold_pct, r.options.alpha, r.min_repetitions);
  size_t w = 9;
  for (const auto& row : r.rows) w = std::max(w, row.name.size());
  w = std::min<size_t>(w, 72);
  s += fmt::format("{:<{}}  {:>11} {:>9}  {:>11} {:>9}  {:>7}  {:>8}  {:>7}  {}\n", "benchmark", w, "A med us", "A sd",
                   "B med us", "B sd", "reps", "delta%", "p", "verdict");
  for (const auto& row : r.rows) {
    const std::string name = row.name.size() > w ? "..." + row.name.substr(row.name.size() - w + 3) : row.name;
    const std::string reps = fmt::format("{}/{}", row.a_n, row.b_n);
    const std::string delta = std::isfinite(row.delta_pct) ? fmt::format("{:+.2f}", row.delta_pct) : "-";
    const std::string p = row.tested ? fmt::format("{:.3g}", row.p) : "-";
    std::string verdict = row.verdict == "regression" ? "REGRESSION" : row.verdict;
    if (!row.reason.empty()) verdict += " (" + row.reason + ")";
    s += fmt::format("{:<{}}  {:>11.3f} {:>9.3f}  {:>11.3f} {:>9.3f}  {:>7}  {:>8}  {:>7}  {}\n", name, w, row.a_median,
                     row.a_sd, row.b_median, row.b_sd, reps, delta, p, verdict);
  }
  for (const auto& n : r.only_a) s += fmt::format("only in A: {}\n", n);
  for (const auto& n : r.only_b) s += fmt::format("only in B: {}\n", n);
  int same = 0, insignificant = 0, errors = 0;
  for (const auto& row : r.rows) {
    same += row.verdict == "same";
    insignificant += row.verdict == "not significant";
    errors += row.verdict == "error";
  }
  s += fmt::format("{} compared, {} regression(s), {} speedup(s), {} same, {} not significant, {} unknown, {} error(s)\n",
                   r.rows.size(), r.regressions, r.speedups, same, insignificant, r.unknown, errors);
  if (r.timed == 0) {
    s += "geomean B/A: no point has times in both runs\n";
    return s;
  }
  auto describe = [](double ratio) {
    return ratio > 1 ? fmt::format("B {:.1f}% slower", (ratio - 1) * 100)
                     : ratio < 1 ? fmt::format("B {:.1f}% faster", (1 - ratio) * 100) : std::string("no change");
  };
  s += fmt::format("geomean B/A median time ratio: {:.4f} ({}) over {} point(s)\n", r.geomean_ratio,
                   describe(r.geomean_ratio), r.timed);
  for (const auto& [k, g] : r.geomean_by_kernel)
    s += fmt::format("  {}: {:.4f} ({}) over {} point(s)\n", k, g.ratio, describe(g.ratio), g.points);
  return s;
}

// ---- devices -------------------------------------------------------------------------

namespace {

const char* const kCeilingKeys[] = {"moe_read_gbps", "moe_copy_gbps", "moe_bf16_tflops", "moe_fp8_tflops",
                                     "moe_int8_tops"};

}  // namespace

BenchDevice read_bench_device(const json& doc) {
  std::vector<const json*> ctxs;
  if (doc.contains("context") && doc["context"].is_object()) ctxs.push_back(&doc["context"]);
  if (doc.contains("contexts") && doc["contexts"].is_object())
    for (const auto& c : doc["contexts"])
      if (c.is_object()) ctxs.push_back(&c);
  BenchDevice d;
  std::set<std::string> names;
  for (const json* c : ctxs) {
    if (c->contains("moe_device") && (*c)["moe_device"].is_string() && !(*c)["moe_device"].get<std::string>().empty())
      names.insert((*c)["moe_device"].get<std::string>());
    // Each executable measures its own ceilings; the first context that has one stands for the file.
    for (const char* k : kCeilingKeys)
      if (!d.ceilings.count(k))
        if (const double v = context_ceiling(*c, k); v > 0) d.ceilings[k] = v;
  }
  for (const auto& n : names) d.name += (d.name.empty() ? "" : " + ") + n;
  return d;
}

std::vector<std::string> check_comparable_devices(const BenchDevice& a, const BenchDevice& b,
                                                  const std::string& a_source, const std::string& b_source,
                                                  bool force) {
  std::vector<std::string> warnings;
  auto refuse_or_warn = [&](const std::string& refusal, const std::string& warning) {
    if (!force) throw InputError(utf8_sanitized(refusal + " (--force compares them anyway)"));
    warnings.push_back(utf8_sanitized(warning));
  };
  if (!a.name.empty() && !b.name.empty() && a.name != b.name)
    refuse_or_warn(fmt::format("compare: {} and {} ran on different devices: moe_device '{}' vs '{}'", a_source,
                               b_source, a.name, b.name),
                   fmt::format("WARNING: comparing runs from different devices: A={} B={}", a.name, b.name));
  for (const char* k : kCeilingKeys) {
    const auto ia = a.ceilings.find(k), ib = b.ceilings.find(k);
    if (ia == a.ceilings.end() || ib == b.ceilings.end()) continue;  // not measured in one run
    const double x = ia->second, y = ib->second;
    if (std::abs(x - y) <= kCeilingTolerance * std::max(x, y)) continue;
    refuse_or_warn(fmt::format("compare: {} and {} have different ceilings: {} {} vs {} (more than {:g}% apart)",
                               a_source, b_source, k, x, y, kCeilingTolerance * 100),
                   fmt::format("WARNING: comparing runs with different ceilings: A={} {} B={} {}", k, x, k, y));
  }
  for (const auto& [dev, src] : {std::pair{&a, &a_source}, std::pair{&b, &b_source}})
    if (dev->name.empty())
      warnings.push_back(utf8_sanitized(fmt::format(
          "WARNING: {} records no device (moe_device in its context): cannot check that A and B ran on the same device",
          *src)));
  return warnings;
}

}  // namespace moe
