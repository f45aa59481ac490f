// Google Benchmark entries as BenchPoints: the name, label and counter
// conventions of bench/bench_common.hpp.
#include "moe/bench_names.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/results.hpp"
#include "moe/stats.hpp"

namespace moe {
using nlohmann::json;

// ---- benchmark documents -------------------------------------------------------------

json BenchPoint::to_json() const {
  json j{{"name", name},   {"kernel", kernel},     {"model", model},    {"variant", variant},
         {"M", m},         {"us", us},             {"us_stddev", us_stddev}, {"samples", samples},
         {"us_median", us_median}, {"us_repetitions", rep_us}, {"label", label}, {"source", source}};
  json c = json::object();
  for (const auto& [k, v] : counters) c[k] = std::isfinite(v) ? json(v) : json(nullptr);
  j["counters"] = c;
  if (error) {
    j["error"] = true;
    j["error_message"] = error_message;
  }
  return j;
}

double context_ceiling(const json& context, const char* key) {
  if (!context.is_object() || !context.contains(key)) return 0;
  const json& v = context[key];
  double d = 0;
  if (v.is_number()) {
    d = v.get<double>();
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    char* end = nullptr;
    d = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size()) return 0;
  }
  return std::isfinite(d) && d > 0 ? d : 0;
}

namespace {

double unit_to_us(const std::string& unit, const std::string& source, const std::string& name) {
  if (unit == "ns") return 1e-3;
  if (unit == "us") return 1.0;
  if (unit == "ms") return 1e3;
  if (unit == "s") return 1e6;
  throw InputError(fmt::format("{}: benchmark '{}': unknown time_unit '{}'", source, name, unit));
}

bool is_gbench_component(std::string_view c) {
  return c == "manual_time" || c == "real_time" || c == "process_time" || c.starts_with("iterations:") ||
         c.starts_with("repeats:") || c.starts_with("min_time:") || c.starts_with("min_warmup_time:") ||
         c.starts_with("threads:");
}

const std::set<std::string>& gbench_numeric_keys() {
  static const std::set<std::string> k{"family_index", "per_family_instance_index", "repetitions", "repetition_index",
                                       "threads",      "iterations",                "real_time",   "cpu_time",
                                       "moe_index"};
  return k;
}

double entry_us(const json& e, const std::string& source, const std::string& name) {
  if (e.contains("us") && e["us"].is_number()) return e["us"].get<double>();
  if (!e.contains("real_time") || !e["real_time"].is_number())
    throw InputError(fmt::format("{}: benchmark '{}': no real_time and no 'us' counter", source, name));
  return e["real_time"].get<double>() * unit_to_us(e.value("time_unit", std::string("ns")), source, name);
}

std::map<std::string, double> entry_counters(const json& e) {
  std::map<std::string, double> c;
  for (auto it = e.begin(); it != e.end(); ++it)
    if (it.value().is_number() && !gbench_numeric_keys().count(it.key())) c[it.key()] = it.value().get<double>();
  return c;
}

}  // namespace

std::map<std::string, std::string> parse_bench_label(const std::string& label) {
  std::map<std::string, std::string> kv;
  std::string tok;
  auto flush = [&] {
    const auto eq = tok.find('=');
    if (eq != std::string::npos && eq > 0) kv[tok.substr(0, eq)] = tok.substr(eq + 1);
    tok.clear();
  };
  for (char c : label) {
    if (c == ' ' || c == ',' || c == ';' || c == '\t') flush();
    else tok += c;
  }
  flush();
  return kv;
}

std::vector<BenchPoint> read_bench_points(const json& doc, const std::string& source) {
  validate_bench_doc(doc, source);
  struct Group {
    std::vector<const json*> iters;
    const json* mean = nullptr;
    const json* median = nullptr;
    const json* stddev = nullptr;
    const json* error = nullptr;
  };
  std::vector<std::string> order;
  std::map<std::string, Group> groups;
  const auto& arr = doc["benchmarks"];
  for (size_t i = 0; i < arr.size(); ++i) {
    const auto& e = arr[i];
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
      throw InputError(fmt::format("{}: benchmarks[{}]: missing 'name'", source, i));
    // Grouped per family too: a merged `moe-harness bench` document holds several executables.
    const std::string rn = bench_entry_family(doc, e) + "\t" +
                           (e.contains("run_name") && e["run_name"].is_string() ? e["run_name"].get<std::string>()
                                                                                : e["name"].get<std::string>());
    if (!groups.count(rn)) order.push_back(rn);
    auto& g = groups[rn];
    if (e.value("error_occurred", false)) {
      g.error = &e;
      continue;
    }
    const std::string rt = e.value("run_type", std::string("iteration"));
    if (rt == "aggregate") {
      const std::string an = e.value("aggregate_name", std::string());
      if (an == "mean") g.mean = &e;
      else if (an == "median") g.median = &e;
      else if (an == "stddev") g.stddev = &e;
    } else {
      g.iters.push_back(&e);
    }
  }
  std::vector<BenchPoint> out;
  for (const auto& key : order) {
    const auto& g = groups[key];
    const std::string rn = key.substr(key.find('\t') + 1);
    BenchPoint p;
    p.name = rn;
    p.source = source;
    const json* any = g.mean ? g.mean : !g.iters.empty() ? g.iters[0] : g.error;
    if (!any) continue;  // only cv/median aggregates: nothing to use
    p.label = any->value("label", std::string());
    const std::string exe_family = bench_entry_family(doc, *any);
    if (g.error) {
      p.error = true;
      p.error_message = g.error->value("error_message", std::string("error"));
    } else {
      for (const json* it : g.iters) p.rep_us.push_back(entry_us(*it, source, rn));
      if (g.mean) {
        p.counters = entry_counters(*g.mean);
        p.us = entry_us(*g.mean, source, rn);
        p.samples = g.mean->value("repetitions", static_cast<int>(std::max<size_t>(g.iters.size(), 1)));
        if (g.stddev) p.us_stddev = entry_us(*g.stddev, source, rn);
      } else {
        // Average repeated iteration entries ourselves.
        const size_t n = p.rep_us.size();
        for (const json* it : g.iters)
          for (const auto& [key, v] : entry_counters(*it)) p.counters[key] += v / double(n);
        double mean = 0;
        for (double v : p.rep_us) mean += v / double(n);
        double var = 0;
        for (double v : p.rep_us) var += (v - mean) * (v - mean);
        p.us = mean;
        p.us_stddev = n > 1 ? std::sqrt(var / double(n - 1)) : 0.0;
        p.samples = static_cast<int>(n);
      }
      p.us_median = g.median ? entry_us(*g.median, source, rn) : p.rep_us.empty() ? p.us : median(p.rep_us);
    }
    // Name components.
    std::vector<std::string> comps;
    {
      std::string cur;
      for (char c : rn) {
        if (c == '/') comps.push_back(cur), cur.clear();
        else cur += c;
      }
      comps.push_back(cur);
    }
    const auto kv = parse_bench_label(p.label);
    p.kernel = comps[0];
    std::vector<std::string> rest;
    // Plain Google Benchmark function names ("BM_deepseek_v3/M:64"): the kernel
    // family comes from the executable (bench_<family>), the rest of the
    // function name stands where the model would.
    if (p.kernel.starts_with("BM_")) {
      rest.push_back(p.kernel.substr(3));
      p.kernel = exe_family.empty() ? p.kernel.substr(3) : exe_family;
      if (exe_family.empty()) rest.clear();
    }
    for (size_t k = 1; k < comps.size(); ++k) {
      const auto& c = comps[k];
      if (is_gbench_component(c)) continue;
      if (c.starts_with("M:")) {
        int64_t m = -1;
        const auto r = std::from_chars(c.data() + 2, c.data() + c.size(), m);
        if (r.ec == std::errc() && r.ptr == c.data() + c.size()) {
          p.m = m;
          continue;
        }
      }
      rest.push_back(c);
    }
    if (auto it = kv.find("model"); it != kv.end()) {
      p.model = it->second;
      if (!rest.empty() && rest[0] == p.model) rest.erase(rest.begin());
    } else if (!rest.empty() && rest[0].find(':') == std::string::npos) {
      p.model = rest[0];
      rest.erase(rest.begin());
    }
    if (auto it = p.counters.find("M"); it != p.counters.end() && std::isfinite(it->second))
      p.m = static_cast<int64_t>(std::llround(it->second));
    for (size_t k = 0; k < rest.size(); ++k) p.variant += (k ? "/" : "") + rest[k];
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace moe
