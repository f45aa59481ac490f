// Two benchmark runs compared point by point against a noise bar.
#include "moe/compare.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe {
using nlohmann::json;

json CompareResult::to_json() const {
  json rs = json::array();
  for (const auto& r : rows)
    rs.push_back({{"name", r.name},           {"a_us", r.a_us},       {"a_stddev", r.a_sd}, {"a_samples", r.a_n},
                  {"b_us", r.b_us},           {"b_stddev", r.b_sd},   {"b_samples", r.b_n},
                  {"delta_pct", r.delta_pct}, {"noise_pct", r.noise_pct}, {"bar_pct", r.bar_pct},
                  {"verdict", r.verdict}});
  return {{"rows", rs}, {"only_a", only_a}, {"only_b", only_b}, {"regressions", regressions}, {"speedups", speedups}};
}

CompareResult compare_benchmarks(const std::vector<BenchPoint>& a, const std::vector<BenchPoint>& b,
                                 double threshold_pct, double noise_k) {
  MOE_REQUIRE(threshold_pct >= 0 && std::isfinite(threshold_pct), "--threshold must be a non-negative percentage");
  CompareResult r;
  std::map<std::string, const BenchPoint*> bm;
  for (const auto& p : b) bm[p.name] = &p;
  std::set<std::string> in_a;
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
    row.a_us = pa.us, row.a_sd = pa.us_stddev, row.a_n = pa.samples;
    row.b_us = pb.us, row.b_sd = pb.us_stddev, row.b_n = pb.samples;
    if (pa.error || pb.error || !(pa.us > 0) || !std::isfinite(pb.us)) {
      row.verdict = "error";
    } else {
      row.delta_pct = (pb.us - pa.us) / pa.us * 100.0;
      row.noise_pct = noise_k * std::sqrt(pa.us_stddev * pa.us_stddev + pb.us_stddev * pb.us_stddev) / pa.us * 100.0;
      row.bar_pct = std::max(threshold_pct, row.noise_pct);
      if (row.delta_pct > row.bar_pct) row.verdict = "regression", ++r.regressions;
      else if (row.delta_pct < -row.bar_pct) row.verdict = "speedup", ++r.speedups;
      else row.verdict = "same";
    }
    r.rows.push_back(row);
  }
  for (const auto& pb : b)
    if (!in_a.count(pb.name)) r.only_b.push_back(pb.name);
  return r;
}

std::string format_compare_table(const CompareResult& r) {
  size_t w = 9;
  for (const auto& row : r.rows) w = std::max(w, row.name.size());
  w = std::min<size_t>(w, 72);
  std::string s = fmt::format("{:<{}}  {:>11} {:>9}  {:>11} {:>9}  {:>8}  {:>7}  {}\n", "benchmark", w, "A us", "A sd",
                              "B us", "B sd", "delta%", "bar%", "verdict");
  for (const auto& row : r.rows) {
    std::string name = row.name.size() > w ? "..." + row.name.substr(row.name.size() - w + 3) : row.name;
    if (row.verdict == "error")
      s += fmt::format("{:<{}}  {:>11.3f} {:>9.3f}  {:>11.3f} {:>9.3f}  {:>8}  {:>7}  {}\n", name, w, row.a_us, row.a_sd,
                       row.b_us, row.b_sd, "-", "-", "error (a run failed or has no time)");
    else
      s += fmt::format("{:<{}}  {:>11.3f} {:>9.3f}  {:>11.3f} {:>9.3f}  {:>+8.2f}  {:>7.2f}  {}\n", name, w, row.a_us,
                       row.a_sd, row.b_us, row.b_sd, row.delta_pct, row.bar_pct,
                       row.verdict == "regression" ? "REGRESSION" : row.verdict);
  }
  for (const auto& n : r.only_a) s += fmt::format("only in A: {}\n", n);
  for (const auto& n : r.only_b) s += fmt::format("only in B: {}\n", n);
  s += fmt::format("{} compared, {} regression(s), {} speedup(s)\n", r.rows.size(), r.regressions, r.speedups);
  return s;
}

}  // namespace moe
