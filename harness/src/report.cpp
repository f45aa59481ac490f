// The report's data: every input folded into one JSON document.
#include "moe/report.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/stats.hpp"

namespace moe {
using nlohmann::json;

std::string git_revision_here() {
  FILE* p = ::popen("git rev-parse HEAD 2>/dev/null", "r");
  if (!p) return "";
  char buf[128] = {0};
  std::string out;
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (rc != 0 || out.size() < 7 || out.find_first_not_of("0123456789abcdef") != std::string::npos) return "";
  return out;
}

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
// ---- report JSON ---------------------------------------------------------------------------

namespace {

std::string first_string(const json& obj, std::initializer_list<const char*> keys) {
  if (!obj.is_object()) return "";
  for (const char* k : keys)
    if (obj.contains(k) && obj[k].is_string()) return obj[k].get<std::string>();
  return "";
}


struct InputPeaks {
  std::string path, device;
  Peaks peaks;
  std::map<std::string, std::string> borrowed;  // ceiling -> the input it came from
  json to_json() const {
    auto num = [](double v) { return v > 0 ? json(v) : json(nullptr); };
    json j{{"device", device},
           {"read_gbps", num(peaks.read_gbps)},
           {"bf16_tflops", num(peaks.bf16_tflops)},
           {"fp8_tflops", num(peaks.fp8_tflops)},
           {"int8_tops", num(peaks.int8_tops)}};
    json from = json::object();
    for (const auto& [k, v] : borrowed) from[k] = v;
    j["from"] = from;
    return j;
  }
};

InputPeaks input_peaks(const std::string& path, const json& doc) {
  const json ctx = doc.is_object() && doc.contains("context") && doc["context"].is_object() ? doc["context"] : json::object();
  return {utf8_sanitized(path), utf8_sanitized(first_string(ctx, {"moe_device"})), Peaks::from_context(ctx), {}};
}

void fill_missing_peaks(std::vector<InputPeaks>& all) {
  const std::pair<const char*, double Peaks::*> fields[] = {{"read_gbps", &Peaks::read_gbps},
                                                            {"bf16_tflops", &Peaks::bf16_tflops},
                                                            {"fp8_tflops", &Peaks::fp8_tflops},
                                                            {"int8_tops", &Peaks::int8_tops}};
  for (auto& a : all)
    for (const auto& [name, field] : fields) {
      if (a.peaks.*field > 0 || a.device.empty()) continue;
      for (const auto& b : all)
        if (&b != &a && b.device == a.device && b.borrowed.count(name) == 0 && b.peaks.*field > 0) {
          a.peaks.*field = b.peaks.*field;
          a.borrowed[name] = b.path;
          break;
        }
    }
}

void add_shape(json& pj, const PointShape& s) {
  pj["family"] = s.family;
  pj["bench"] = utf8_sanitized(s.bench);
  pj["model"] = utf8_sanitized(s.model);
  json params = json::array();
  for (const auto& [k, v] : s.params) params.push_back({utf8_sanitized(k), utf8_sanitized(v)});
  pj["params"] = params;
  pj["params_text"] = utf8_sanitized(s.params_text());
  pj["key"] = utf8_sanitized(s.key);
  pj["x"] = std::isfinite(s.x) ? json(s.x) : json(nullptr);
  pj["x_label"] = s.x_label;
  pj["dtype"] = s.dtype;
}

// Ours / baseline per point, a row per benchmark series (bench, model, params),
// with the geometric mean of each row and of each model.
json ratio_rows(const json& matched) {
  std::vector<std::string> order;
  std::map<std::string, json> rows;
  std::map<std::string, std::vector<double>> row_ratios, model_ratios;
  std::vector<double> all;
  for (const auto& p : matched) {
    const std::string id = p["family"].get<std::string>() + "\t" + p["bench"].get<std::string>() + "\t" +
                           p["model"].get<std::string>() + "\t" + p["params_text"].get<std::string>();
    if (!rows.count(id)) {
      order.push_back(id);
      rows[id] = {{"family", p["family"]}, {"bench", p["bench"]}, {"model", p["model"]}, {"params", p["params_text"]},
                  {"dtype", p["dtype"]}, {"points", json::array()}};
    }
    const double r = p["ratio"].get<double>();  // > 0: points line up only where both times are positive
    rows[id]["points"].push_back({{"M", p["M"]}, {"ours_us", p["ours_us"]}, {"baseline_us", p["us"]}, {"ratio", r}});
    row_ratios[id].push_back(r);
    model_ratios[p["model"].get<std::string>()].push_back(r);
    all.push_back(r);
  }
  json out = json::array();
  for (const auto& id : order) {
    json row = rows[id];
    row["geomean"] = geometric_mean(row_ratios[id]);
    out.push_back(std::move(row));
  }
  json by_model = json::object();
  for (const auto& [m, v] : model_ratios) by_model[m] = geometric_mean(v);
  return {{"rows", out}, {"geomean_by_model", by_model}, {"geomean", all.empty() ? json(nullptr) : json(geometric_mean(all))}};
}

}  // namespace

json build_report_json(const ReportInputs& in) {
  json rep{{"tool", "moe-harness report"},
           {"generated_at", in.generated_at},
           {"git_revision_at_report", in.git_revision_now}};
  json inputs = json::array();
  json devices = json::array();
  std::set<std::string> dev_seen;
  json cases = json::array();
  std::map<std::string, std::array<int, 3>> per_kernel;
  std::vector<std::string> kernel_order;
  int passed = 0, failed = 0, skipped = 0;
  for (const auto& [path, d] : in.verify) {
    validate_verify_doc(d, path);
    json info{{"kind", "verify"},
              {"path", utf8_sanitized(path)},
              {"tool", first_string(d, {"tool"})},
              {"version", first_string(d, {"version"})},
              {"backend", first_string(d, {"backend"})},
              {"git_revision", first_string(d, {"git_revision", "moe_git_revision", "git_rev", "git_commit"})},
              {"cases", d["cases"].size()}};
    if (d.contains("shard")) info["shard"] = d["shard"];
    if (d.contains("shards")) info["shards"] = d["shards"];
    inputs.push_back(info);
    if (d.contains("devices") && d["devices"].is_array())
      for (const auto& dev : d["devices"])
        if (dev_seen.insert(dev.dump()).second) devices.push_back(dev);
    for (auto c : d["cases"]) {
      c["source"] = utf8_sanitized(path);
      const auto k = c["kernel"].get<std::string>(), st = c["status"].get<std::string>();
      if (!per_kernel.count(k)) kernel_order.push_back(k);
      auto& cnt = per_kernel[k];
      const int slot = st == "pass" ? 0 : st == "fail" ? 1 : 2;
      cnt[slot]++;
      (slot == 0 ? passed : slot == 1 ? failed : skipped)++;
      cases.push_back(std::move(c));
    }
  }
  json kernels = json::array();
  for (const auto& k : kernel_order)
    kernels.push_back({{"kernel", k}, {"passed", per_kernel[k][0]}, {"failed", per_kernel[k][1]}, {"skipped", per_kernel[k][2]}});
  // Ceilings: each input's own context; one it lacks comes from another input
  // of the same device (a baseline's script may measure the fp8 peak the
  // benchmarks did not).
  std::vector<InputPeaks> peaks;
  for (const auto& [path, d] : in.bench) peaks.push_back(input_peaks(path, d));
  for (const auto& b : in.baselines) peaks.push_back(input_peaks(b.path, b.doc));
  fill_missing_peaks(peaks);

  json points = json::array(), errors = json::array();
  std::map<std::string, size_t> point_at;  // key \t M -> index in points
  for (size_t f = 0; f < in.bench.size(); ++f) {
    const auto& [path, d] = in.bench[f];
    const auto pts = read_bench_points(d, path);
    json ctx = d.contains("context") && d["context"].is_object() ? d["context"] : json::object();
    inputs.push_back({{"kind", "bench"},
                      {"path", utf8_sanitized(path)},
                      {"git_revision", first_string(ctx, {"git_revision", "moe_git_revision", "git_rev", "git_commit"})},
                      {"benchmarks", pts.size()},
                      {"context", ctx},
                      {"ceilings", peaks[f].to_json()}});
    for (const auto& p : pts) {
      json pj = p.to_json();
      pj["source"] = utf8_sanitized(p.source);
      if (p.error) {
        errors.push_back(std::move(pj));
        continue;
      }
      const PointShape shape = shape_of(p, in.model_names);
      add_shape(pj, shape);
      const Floor floor = floor_of(p, shape.dtype, peaks[f].peaks);
      pj["floor"] = floor.to_json();
      pj["pct_floor"] = std::isfinite(floor.us) && p.us > 0 ? json(100.0 * floor.us / p.us) : json(nullptr);
      point_at.emplace(shape.key + "\t" + std::to_string(p.m), points.size());
      points.push_back(std::move(pj));
    }
  }

  json baselines = json::array();
  for (size_t b = 0; b < in.baselines.size(); ++b) {
    const auto& base = in.baselines[b];
    const auto pts = read_bench_points(base.doc, base.path);
    json ctx = base.doc.contains("context") && base.doc["context"].is_object() ? base.doc["context"] : json::object();
    json matched = json::array(), unmatched = json::array();
    for (const auto& p : pts) {
      if (p.error) continue;
      const PointShape shape = shape_of(p, in.model_names);
      const auto it = point_at.find(shape.key + "\t" + std::to_string(p.m));
      if (it == point_at.end() || !(p.us > 0) || !(points[it->second]["us"].get<double>() > 0)) {
        unmatched.push_back(utf8_sanitized(p.name));
        continue;
      }
      // Drawn where ours is: our point's name parts, floor and x.
      const json& ours = points[it->second];
      json bj = ours;
      bj["name"] = utf8_sanitized(p.name);
      bj["us"] = p.us;
      bj["us_stddev"] = p.us_stddev;
      bj["samples"] = p.samples;
      bj["label"] = utf8_sanitized(p.label);
      bj["source"] = utf8_sanitized(base.path);
      bj.erase("counters");
      bj["ours_us"] = ours["us"];
      bj["ratio"] = ours["us"].get<double>() / p.us;  // ours / baseline: below 1, ours is faster
      const json& fl = ours["floor"]["us"];
      bj["pct_floor"] = fl.is_number() ? json(100.0 * fl.get<double>() / p.us) : json(nullptr);
      matched.push_back(std::move(bj));
    }
    inputs.push_back({{"kind", "baseline"},
                      {"name", utf8_sanitized(base.name)},
                      {"path", utf8_sanitized(base.path)},
                      {"git_revision", first_string(ctx, {"git_revision", "moe_git_revision", "git_rev", "git_commit"})},
                      {"benchmarks", pts.size()},
                      {"context", ctx},
                      {"ceilings", peaks[in.bench.size() + b].to_json()}});
    baselines.push_back({{"name", utf8_sanitized(base.name)},
                         {"path", utf8_sanitized(base.path)},
                         {"points", matched},
                         {"unmatched", unmatched},
                         {"ratios", ratio_rows(matched)}});
  }
  rep["inputs"] = inputs;
  rep["devices"] = devices;
  rep["configs"] = {{"model_configs_path", in.model_configs_path}, {"models", in.models}, {"tuned_config", in.tuned}};
  // Where the fused MoE configs came from (tuned:exact | tuned:nearest |
  // heuristic | sweep): verify case metrics "config_source", bench labels
  // "source=...". And the tuned tables the inputs say they used.
  {
    std::map<std::string, std::pair<int, int>> sources;  // source -> (verify cases, benchmarks)
    for (const auto& c : cases)
      if (c.contains("metrics") && c["metrics"].is_object() && c["metrics"].contains("config_source") &&
          c["metrics"]["config_source"].is_string())
        sources[c["metrics"]["config_source"].get<std::string>()].first++;
    for (const auto& p : points) {
      const auto kv = parse_bench_label(p.value("label", std::string()));
      if (auto it = kv.find("source"); it != kv.end()) sources[it->second].second++;
    }
    json src = json::array();
    for (const auto& [k, n] : sources) src.push_back({{"source", k}, {"verify_cases", n.first}, {"benchmarks", n.second}});
    rep["configs"]["config_sources"] = src;
    json used = json::array();
    for (const auto& [path, d] : in.verify)
      if (d.contains("tuned_config") && d["tuned_config"].is_object())
        used.push_back({{"input", utf8_sanitized(path)}, {"table", d["tuned_config"]}});
    for (const auto& [path, d] : in.bench)
      if (d.contains("moe_bench") && d["moe_bench"].is_object() && d["moe_bench"].contains("tuned_config"))
        used.push_back({{"input", utf8_sanitized(path)}, {"table", d["moe_bench"]["tuned_config"]}});
    rep["configs"]["tuned_tables_used"] = used;
  }
  rep["verify"] = {{"summary", {{"passed", passed}, {"failed", failed}, {"skipped", skipped}}},
                   {"kernels", kernels},
                   {"cases", cases}};
  rep["bench"] = {{"points", points}, {"errors", errors}};
  rep["baselines"] = baselines;
  return rep;
}

}  // namespace moe
