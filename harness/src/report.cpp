// The report's data: every input folded into one JSON document.
#include "moe/report.hpp"

#include <array>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include <fmt/format.h>

#include "moe/error.hpp"

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
  json points = json::array(), errors = json::array();
  for (const auto& [path, d] : in.bench) {
    const auto pts = read_bench_points(d, path);
    json ctx = d.contains("context") && d["context"].is_object() ? d["context"] : json::object();
    inputs.push_back({{"kind", "bench"},
                      {"path", utf8_sanitized(path)},
                      {"git_revision", first_string(ctx, {"git_revision", "moe_git_revision", "git_rev", "git_commit"})},
                      {"benchmarks", pts.size()},
                      {"context", ctx}});
    for (const auto& p : pts) {
      json pj = p.to_json();
      pj["source"] = utf8_sanitized(p.source);
      (p.error ? errors : points).push_back(std::move(pj));
    }
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
  return rep;
}

}  // namespace moe
