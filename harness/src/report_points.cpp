// Benchmark points as the report reads them: name parts, dtype and floor.
#include "moe/report_points.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

namespace moe {
using nlohmann::json;

namespace {

// Google Benchmark's own name suffixes; the benchmark's arguments come before them.
bool starts_gbench_suffix(std::string_view c) {
  return c == "manual_time" || c == "real_time" || c == "process_time" || c.starts_with("iterations:") ||
         c.starts_with("repeats:") || c.starts_with("min_time:") || c.starts_with("min_warmup_time:");
}

bool is_m_component(std::string_view c) {
  if (!c.starts_with("M:") || c.size() == 2) return false;
  int64_t m = 0;
  const auto r = std::from_chars(c.data() + 2, c.data() + c.size(), m);
  return r.ec == std::errc() && r.ptr == c.data() + c.size();
}

double counter(const BenchPoint& p, const char* key) {
  const auto it = p.counters.find(key);
  return it == p.counters.end() ? NAN : it->second;
}

}  // namespace

Peaks Peaks::from_context(const json& context) {
  Peaks p;
  p.read_gbps = context_ceiling(context, "moe_read_gbps");
  p.bf16_tflops = context_ceiling(context, "moe_bf16_tflops");
  p.fp8_tflops = context_ceiling(context, "moe_fp8_tflops");
  p.int8_tops = context_ceiling(context, "moe_int8_tops");
  return p;
}

double Peaks::of_dtype(const std::string& dtype) const {
  if (dtype == "bf16") return bf16_tflops;
  if (dtype == "fp8") return fp8_tflops;
  if (dtype == "int8") return int8_tops;
  return 0;
}

std::string PointShape::params_text() const {
  std::string s;
  for (const auto& [k, v] : params) s += (s.empty() ? "" : " ") + (k.empty() ? v : k + ":" + v);
  return s;
}

PointShape shape_of(const BenchPoint& p, const std::vector<std::string>& model_names) {
  PointShape s;
  s.family = p.kernel;
  std::vector<std::string> comps;
  {
    std::string cur;
    for (char c : p.name) {
      if (c == '/') comps.push_back(cur), cur.clear();
      else cur += c;
    }
    comps.push_back(cur);
  }
  size_t end = 1;
  while (end < comps.size() && !starts_gbench_suffix(comps[end])) ++end;
  s.key = comps[0];
  std::vector<std::string> rest;
  for (size_t i = 1; i < end; ++i) {
    if (is_m_component(comps[i])) continue;
    s.key += "/" + comps[i];
    rest.push_back(comps[i]);
  }
  const bool bm = comps[0].starts_with("BM_");
  s.bench = bm ? comps[0].substr(3) : comps[0];

  const auto label = parse_bench_label(p.label);
  auto take_component = [&](const std::string& v) {
    const auto it = std::find(rest.begin(), rest.end(), v);
    if (it == rest.end()) return false;
    rest.erase(it);
    return true;
  };
  if (auto it = label.find("model"); it != label.end()) {
    s.model = it->second;
    take_component(s.model);
  }
  for (size_t i = 0; s.model.empty() && i < rest.size(); ++i)
    if (std::find(model_names.begin(), model_names.end(), rest[i]) != model_names.end()) {
      s.model = rest[i];
      rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(i));
    }
  if (s.model.empty() && bm) {  // BM_<model>[_<what>]: the longest model name that prefixes the function
    for (const auto& m : model_names)
      if (m.size() > s.model.size() && (s.bench == m || s.bench.starts_with(m + "_"))) s.model = m;
    if (!s.model.empty()) s.bench = (s.family.empty() ? std::string("bench") : s.family) + s.bench.substr(s.model.size());
  }
  if (s.model.empty() && !bm && !p.model.empty() && take_component(p.model)) s.model = p.model;

  if (p.m >= 0) {
    s.x = static_cast<double>(p.m);
    s.x_label = "M (tokens)";
  } else if (const double mib = counter(p, "MiB"); std::isfinite(mib) && mib > 0) {
    s.x = mib;
    s.x_label = "MiB";
    if (mib == std::floor(mib)) take_component(fmt::format("{}", static_cast<int64_t>(mib)));
  }
  for (const auto& c : rest) {
    const auto colon = c.find(':');
    if (colon == std::string::npos) s.params.emplace_back("", c);
    else s.params.emplace_back(c.substr(0, colon), c.substr(colon + 1));
  }

  const double flops = counter(p, "flops");
  if (std::isfinite(flops) && flops > 0) {
    s.dtype = "bf16";
    if (auto it = label.find("dtype"); it != label.end()) {
      s.dtype = it->second;
    } else {
      for (const auto& [k, v] : s.params)
        if (k.empty() && v.starts_with("fp8")) s.dtype = "fp8";
        else if (k.empty() && v.starts_with("int8")) s.dtype = "int8";
    }
  }
  return s;
}

json Floor::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  return {{"bandwidth_us", num(bandwidth_us)}, {"compute_us", num(compute_us)}, {"us", num(us)}, {"bound", bound},
          {"note", note}};
}

Floor floor_of(const BenchPoint& p, const std::string& dtype, const Peaks& peaks) {
  Floor f;
  const double bytes = counter(p, "bytes"), flops = counter(p, "flops");
  std::vector<std::string> notes;
  if (std::isfinite(bytes) && bytes > 0) {
    if (peaks.read_gbps > 0) f.bandwidth_us = bytes / (peaks.read_gbps * 1e3);
    else notes.push_back("no read bandwidth measured");
  }
  if (std::isfinite(flops) && flops > 0 && !dtype.empty()) {
    if (const double peak = peaks.of_dtype(dtype); peak > 0) f.compute_us = flops / (peak * 1e6);
    else notes.push_back(fmt::format("no {} peak measured", dtype));
  }
  if (std::isfinite(f.bandwidth_us) || std::isfinite(f.compute_us)) {
    const bool compute = std::isfinite(f.compute_us) && !(f.bandwidth_us >= f.compute_us);
    f.us = compute ? f.compute_us : f.bandwidth_us;
    f.bound = compute ? "compute" : "bandwidth";
  }
  for (const auto& n : notes) f.note += (f.note.empty() ? "" : "; ") + n;
  return f;
}

}  // namespace moe
