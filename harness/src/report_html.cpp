// The HTML page of a report document: tables, pass/fail matrices and charts.
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "moe/charts.hpp"
#include "moe/report.hpp"
#include "report_html_parts.hpp"

namespace moe {
using nlohmann::json;
using namespace report_html;

namespace {

// "k=v, k=v" of a params object (scalars; nested values as compact JSON).
std::string params_text(const json& p) {
  if (!p.is_object()) return p.is_null() ? "" : p.dump();
  std::string s;
  for (auto it = p.begin(); it != p.end(); ++it) s += fmt::format("{}{}={}", s.empty() ? "" : ", ", it.key(), json_scalar_text(it.value()));
  return s;
}

// Numeric leaves of a metrics object, "path=value", skipping bulky members.
void flatten_metrics(const json& m, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out);

// Error metrics first (rel_l2, max_abs, ...), then the rest in name order.
std::vector<std::pair<std::string, std::string>> metrics_list(const json& m) {
  std::vector<std::pair<std::string, std::string>> v;
  flatten_metrics(m, "", v);
  auto rank = [](const std::string& k) {
    const std::string leaf = k.substr(k.rfind('.') == std::string::npos ? 0 : k.rfind('.') + 1);
    static const char* order[] = {"rel_l2", "max_abs", "max_rel", "n_outside", "n_nonfinite"};
    for (int i = 0; i < 5; ++i)
      if (leaf == order[i]) return i;
    return 5;
  };
  std::stable_sort(v.begin(), v.end(), [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
  return v;
}

void flatten_metrics(const json& m, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  if (!m.is_object()) return;
  for (auto it = m.begin(); it != m.end(); ++it) {
    const std::string k = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it.key() == "first_mismatches" || it.key() == "message" || it.key() == "passed") continue;
    if (it.value().is_object()) flatten_metrics(it.value(), k, out);
    else if (it.value().is_number() || it.value().is_string() || it.value().is_boolean())
      out.emplace_back(k, json_scalar_text(it.value()));
  }
}

const char* kCss = R"CSS(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222; max-width: 1240px; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 28px; }
h3 { font-size: 15px; margin-bottom: 6px; } h4 { font-size: 13px; margin: 10px 0 4px; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { background: #d6e9f5; } .fail { background: #f3cfb3; font-weight: bold; } .skip { background: #eee; color: #666; }
.partial { background: #fbe7c6; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 11px; }
.note { color: #666; font-size: 12px; }
.chart-note { max-width: 520px; align-self: center; }
#failed-cases { font-size: 13px; margin: 4px 0 8px; }
td.msg { max-width: 420px; word-break: break-word; }
p.lead { font-size: 14px; margin: 4px 0 10px; }
.verdict { font-size: 14px; padding: 6px 10px; margin: 6px 0; border-left: 5px solid #0072B2; background: #f4f8fb; }
.verdict.bad { border-left-color: #D55E00; background: #fbf1ea; }
.chip { display: inline-block; font-size: 12px; padding: 1px 6px; margin: 2px; border-radius: 3px; }
.chip.pass { background: #d6e9f5; } .chip.fail { background: #f3cfb3; font-weight: bold; }
#layer-summary td, #layer-summary th { padding: 2px 7px; }
tr.vs td { font-size: 11px; }
tr.vs td:first-child { text-align: right; font-style: italic; }
)CSS";

const char* status_class(const std::string& st) { return st == "pass" ? "pass" : st == "fail" ? "fail" : "skip"; }

}  // namespace

std::string render_report_html(const json& rep) {
  std::string o = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  o += "<meta name=\"generator\" content=\"moe-harness report\">\n<title>moe-harness report</title>\n<style>";
  o += kCss;
  o += "</style>\n</head>\n<body>\n<h1>moe-harness report</h1>\n";
  o += summary_section(rep);
  std::string details;  // long tables, after the charts

  // ---- provenance
  o += "<section id=\"provenance\">\n<h2>Provenance</h2>\n";
  std::vector<std::pair<std::string, std::string>> prov{
      {"generated at", rep.value("generated_at", "")},
      {"git revision at report time", rep.value("git_revision_at_report", "").empty() ? "(not in a git repository)"
                                                                                       : rep.value("git_revision_at_report", "")}};
  o += kv_table("provenance-table", prov);
  o += "<table id=\"inputs\">\n<tr><th>input</th><th>kind</th><th>git revision</th><th>details</th></tr>\n";
  for (const auto& in : rep["inputs"]) {
    std::string details;
    if (in["kind"] == "verify")
      details = fmt::format("{} {}, backend {}, {} cases{}", json_scalar_text(in.value("tool", json(""))),
                            json_scalar_text(in.value("version", json(""))), json_scalar_text(in.value("backend", json(""))),
                            json_scalar_text(in["cases"]),
                            in.contains("shard") ? fmt::format(", shard {}/{}", json_scalar_text(in["shard"]["index"]),
                                                               json_scalar_text(in["shard"]["count"]))
                                                 : "");
    else if (in["kind"] == "baseline")
      details = fmt::format("baseline {}: {} benchmarks", json_scalar_text(in["name"]), json_scalar_text(in["benchmarks"]));
    else
      details = fmt::format("{} benchmarks", json_scalar_text(in["benchmarks"]));
    const std::string rev = in.value("git_revision", "");
    o += fmt::format("<tr>{}{}{}{}</tr>\n", td(in.value("path", ""), "mono"), td(in.value("kind", "")),
                     td(rev.empty() ? "(not recorded)" : rev, "mono"), td(details));
  }
  o += "</table>\n</section>\n";

  // ---- devices
  o += "<section id=\"devices\">\n<h2>Device</h2>\n";
  if (rep["devices"].empty()) {
    o += "<p class=\"note\">No GPU in the verify results (none given, a CPU-only run or a -Dgpu=none build).</p>\n";
  } else {
    o += "<table id=\"device-table\">\n<tr><th>#</th><th>name</th><th>arch</th><th>SMs/CUs</th><th>memory GiB</th>"
         "<th>driver</th><th>runtime</th><th>measured ceilings</th></tr>\n";
    for (const auto& d : rep["devices"]) {
      const double mem = d.contains("total_mem_bytes") && d["total_mem_bytes"].is_number()
                             ? d["total_mem_bytes"].get<double>() / 1073741824.0
                             : NAN;
      o += fmt::format("<tr>{}{}{}{}{}{}{}{}</tr>\n", td(json_scalar_text(d.value("index", json(nullptr))), "num"),
                       td(json_scalar_text(d.value("name", json(nullptr)))), td(json_scalar_text(d.value("arch", json(nullptr)))),
                       td(json_scalar_text(d.value("sm_count", json(nullptr))), "num"), td(format_number(mem), "num"),
                       td(json_scalar_text(d.value("driver_version", json(nullptr)))),
                       td(json_scalar_text(d.value("runtime_version", json(nullptr)))),
                       td(d.contains("ceilings") ? params_text(d["ceilings"]) : "-"));
    }
    o += "</table>\n";
  }
  // The device each benchmark file ran on (bench_common.hpp's custom context).
  {
    std::string rows;
    for (const auto& in : rep["inputs"]) {
      if (in["kind"] != "bench" || !in.contains("context") || !in["context"].contains("moe_device")) continue;
      const auto& cx = in["context"];
      auto f = [&](const char* k) { return cx.contains(k) ? json_scalar_text(cx[k]) : std::string("-"); };
      rows += fmt::format("<tr>{}{}{}{}{}{}{}{}{}</tr>\n", td(in.value("path", ""), "mono"), td(f("moe_device")),
                          td(f("moe_arch")), td(f("moe_sm_count"), "num"), td(f("moe_driver_version")),
                          td(f("moe_runtime_version")), td(f("moe_read_gbps"), "num"), td(f("moe_bf16_tflops"), "num"),
                          td(f("moe_backend")));
    }
    if (!rows.empty())
      o += "<table id=\"bench-devices\">\n<tr><th>benchmark file</th><th>device</th><th>arch</th><th>SMs/CUs</th>"
           "<th>driver</th><th>runtime</th><th>read GB/s</th><th>bf16 TFLOP/s</th><th>backend</th></tr>\n" +
           rows + "</table>\n";
  }
  o += ceilings_table(rep);
  for (const auto& in : rep["inputs"]) {
    if (in["kind"] == "verify" || !in.contains("context") || in["context"].empty()) continue;
    std::vector<std::pair<std::string, std::string>> rows;
    for (auto it = in["context"].begin(); it != in["context"].end(); ++it)
      if (!it.value().is_array() && !it.value().is_object()) rows.emplace_back(it.key(), json_scalar_text(it.value()));
    details += fmt::format("<h3>Benchmark context of {}</h3>\n", html_escape(in.value("path", "")));
    details += kv_table("bench-context", rows);
  }
  o += "</section>\n";

  // ---- configs
  o += "<section id=\"configs\">\n<h2>Configs used</h2>\n";
  const auto& cfg = rep["configs"];
  if (cfg["models"].empty()) {
    o += "<p class=\"note\">No model configs loaded.</p>\n";
  } else {
    o += fmt::format("<p class=\"note\">From {}</p>\n", html_escape(cfg.value("model_configs_path", "")));
    o += "<table id=\"model-table\">\n<tr><th>model</th><th>model_dim</th><th>inter_dim</th><th>experts</th><th>top_k</th>"
         "<th>routing</th><th>shared experts</th><th>source</th></tr>\n";
    for (const auto& m : cfg["models"]) {
      const auto& r = m.value("routing", json::object());
      std::string routing = json_scalar_text(r.value("type", json("")));
      if (r.value("type", "") == "grouped_topk")
        routing += fmt::format(" (groups {}, top groups {})", json_scalar_text(r.value("n_group", json(1))),
                               json_scalar_text(r.value("topk_group", json(1))));
      routing += fmt::format(", {} scoring, scale {}, renormalize {}", json_scalar_text(r.value("scoring", json(""))),
                             json_scalar_text(r.value("routed_scaling_factor", json(1.0))),
                             json_scalar_text(r.value("renormalize", json(false))));
      const auto& sh = m.value("shared_experts", json::object());
      o += fmt::format("<tr>{}{}{}{}{}{}{}{}</tr>\n", td(json_scalar_text(m.value("name", json("")))),
                       td(json_scalar_text(m.value("model_dim", json(nullptr))), "num"),
                       td(json_scalar_text(m.value("inter_dim", json(nullptr))), "num"),
                       td(json_scalar_text(m.value("experts", json(nullptr))), "num"),
                       td(json_scalar_text(m.value("top_k", json(nullptr))), "num"), td(routing),
                       td(fmt::format("{} x {}", json_scalar_text(sh.value("count", json(0))),
                                      json_scalar_text(sh.value("inter_dim", json(0))))),
                       td(json_scalar_text(m.value("source", json(""))), "msg"));
    }
    o += "</table>\n";
  }
  if (cfg["tuned_config"].is_object()) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (auto it = cfg["tuned_config"].begin(); it != cfg["tuned_config"].end(); ++it)
      rows.emplace_back(it.key(), json_scalar_text(it.value()));
    o += "<h4>Tuned config table</h4>\n" + kv_table("tuned-table", rows);
  }
  if (cfg.contains("tuned_tables_used") && !cfg["tuned_tables_used"].empty()) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (const auto& u : cfg["tuned_tables_used"])
      rows.emplace_back(json_scalar_text(u["input"]),
                        fmt::format("{} ({} rows)", json_scalar_text(u["table"].value("file", json(""))),
                                    json_scalar_text(u["table"].value("rows", json(0)))));
    o += "<h4>Tuned tables the inputs used</h4>\n" + kv_table("tuned-used", rows);
  }
  if (cfg.contains("config_sources") && !cfg["config_sources"].empty()) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (const auto& x : cfg["config_sources"])
      rows.emplace_back(x["source"].get<std::string>(),
                        fmt::format("{} verify case(s), {} benchmark(s)", x["verify_cases"].get<int>(),
                                    x["benchmarks"].get<int>()));
    o += "<h4>Fused MoE config source (tuned:exact, tuned:nearest, heuristic)</h4>\n" + kv_table("config-sources", rows);
  }
  o += "</section>\n";

  // ---- verification
  o += "<section id=\"verify\">\n<h2>Verification</h2>\n";
  const auto& v = rep["verify"];
  const auto& vs = v["summary"];
  o += fmt::format("<p>{} passed, {} failed, {} skipped.</p>\n", json_scalar_text(vs["passed"]),
                   json_scalar_text(vs["failed"]), json_scalar_text(vs["skipped"]));
  if (!v["kernels"].empty()) {
    o += "<table id=\"verify-summary\">\n<tr><th>kernel</th><th>passed</th><th>failed</th><th>skipped</th></tr>\n";
    for (const auto& k : v["kernels"]) {
      const bool bad = k["failed"].get<int>() > 0;
      o += fmt::format("<tr>{}{}{}{}</tr>\n", td(k["kernel"].get<std::string>(), bad ? "fail" : "pass"),
                       td(json_scalar_text(k["passed"]), "num"), td(json_scalar_text(k["failed"]), "num"),
                       td(json_scalar_text(k["skipped"]), "num"));
    }
    o += "</table>\n";
  }
  // Pass/fail matrix per kernel: model x M, where the cases' params say so.
  for (const auto& k : v["kernels"]) {
    const std::string kernel = k["kernel"].get<std::string>();
    std::map<std::string, std::map<int64_t, std::array<int, 3>>> grid;
    std::set<int64_t> ms;
    std::map<std::string, std::map<int64_t, std::string>> names;
    for (const auto& c : v["cases"]) {
      if (c["kernel"] != kernel || !c.contains("params") || !c["params"].is_object()) continue;
      const auto& p = c["params"];
      const json* mv = p.contains("M") ? &p["M"] : p.contains("tokens") ? &p["tokens"] : p.contains("m") ? &p["m"] : nullptr;
      if (!p.contains("model") || !mv || !mv->is_number_integer()) continue;
      const std::string model = json_scalar_text(p["model"]);
      const int64_t m = mv->get<int64_t>();
      ms.insert(m);
      const std::string st = c["status"].get<std::string>();
      grid[model][m][st == "pass" ? 0 : st == "fail" ? 1 : 2]++;
      names[model][m] += (names[model][m].empty() ? "" : "\n") + c["name"].get<std::string>() + ": " + st;
    }
    if (grid.empty()) continue;
    o += fmt::format("<h3>{}: pass/fail by model and M</h3>\n<table class=\"matrix\">\n<tr><th>model \\ M</th>",
                     html_escape(kernel));
    for (auto m : ms) o += fmt::format("<th class=\"num\">{}</th>", m);
    o += "</tr>\n";
    for (const auto& [model, row] : grid) {
      o += "<tr><th>" + html_escape(model) + "</th>";
      for (auto m : ms) {
        auto it = row.find(m);
        if (it == row.end()) {
          o += "<td></td>";
          continue;
        }
        const auto& c = it->second;
        const int total = c[0] + c[1] + c[2];
        const char* cls = c[1] > 0 ? "fail" : c[0] == total ? "pass" : c[0] > 0 ? "partial" : "skip";
        o += fmt::format("<td class=\"{} num\" title=\"{}\">{}/{}{}</td>", cls, html_escape(names[model][m]), c[0], total,
                         c[1] > 0 ? fmt::format(" ({} fail)", c[1]) : "");
      }
      o += "</tr>\n";
    }
    o += "</table>\n";
  }
  details += "<h3>All verification cases</h3>\n<table id=\"verify-cases\">\n<tr><th>kernel</th><th>case</th><th>status</th><th>params</th>"
       "<th>error metrics</th><th>message</th><th>s</th></tr>\n";
  for (const auto& c : v["cases"]) {
    const auto mets = c.contains("metrics") ? metrics_list(c["metrics"]) : std::vector<std::pair<std::string, std::string>>{};
    std::string mt;
    for (size_t i = 0; i < mets.size() && i < 12; ++i) mt += fmt::format("{}{}={}", i ? ", " : "", mets[i].first, mets[i].second);
    if (mets.size() > 12) mt += fmt::format(", … ({} more)", mets.size() - 12);
    const std::string st = c["status"].get<std::string>();
    details += fmt::format("<tr>{}{}{}{}{}{}{}</tr>\n", td(c["kernel"].get<std::string>()), td(c["name"].get<std::string>(), "mono"),
                     td(st, status_class(st)), td(params_text(c.value("params", json::object())), "mono"), td(mt, "mono"),
                     td(json_scalar_text(c.value("message", json(""))), "msg"),
                     td(c.contains("seconds") ? format_number(c["seconds"].get<double>()) : "-", "num"));
  }
  details += "</table>\n";
  o += "<p class=\"note\">Every case with its parameters and error metrics: see <em>Details</em> below.</p>\n</section>\n";

  // ---- benchmarks
  o += "<section id=\"bench\">\n<h2>Benchmarks</h2>\n";
  const auto& pts = rep["bench"]["points"];
  if (pts.empty()) o += "<p class=\"note\">No benchmark results given.</p>\n";
  o += bench_charts(rep);
  details += bench_points_table(rep);
  const auto& errs = rep["bench"]["errors"];
  if (!errs.empty()) {
    o += "<h3>Benchmarks that reported an error</h3>\n<table id=\"bench-errors\">\n<tr><th>benchmark</th><th>message</th></tr>\n";
    for (const auto& e : errs)
      o += fmt::format("<tr>{}{}</tr>\n", td(e["name"].get<std::string>(), "mono"),
                       td(e.value("error_message", ""), "fail"));
    o += "</table>\n";
  }
  o += "</section>\n";
  o += baseline_section(rep);
  o += "<section id=\"details\">\n<h2>Details</h2>\n" + details + "</section>\n</body>\n</html>\n";
  return o;
}


}  // namespace moe
