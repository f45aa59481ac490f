// The parts of the report's HTML page (report_html.cpp assembles them) and the
// small helpers they share.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moe/charts.hpp"

namespace moe::report_html {

// A JSON scalar as table text; "-" for null, compact JSON for anything else.
inline std::string json_scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return format_number(v.get<double>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_null()) return "-";
  return v.dump();
}

inline std::string td(const std::string& text, const char* cls = nullptr) {
  return cls ? fmt::format("<td class=\"{}\">{}</td>", cls, html_escape(text)) : fmt::format("<td>{}</td>", html_escape(text));
}

inline std::string kv_table(const std::string& id, const std::vector<std::pair<std::string, std::string>>& rows) {
  std::string o = fmt::format("<table id=\"{}\" class=\"kv\">\n", id);
  for (const auto& [k, v] : rows) o += fmt::format("<tr><th>{}</th>{}</tr>\n", html_escape(k), td(v));
  return o + "</table>\n";
}

// The first screen: what passed and failed, and each layer point's distance from
// its floor and from every baseline.
std::string summary_section(const nlohmann::json& rep);
// The ceilings every floor was computed from, per input.
std::string ceilings_table(const nlohmann::json& rep);
// Charts of every benchmark family (at most kMaxChartSeries series each).
std::string bench_charts(const nlohmann::json& rep);
// Ours ÷ each baseline, per point, with geometric means.
std::string baseline_section(const nlohmann::json& rep);
// Every benchmark point as a table row (for the Details section).
std::string bench_points_table(const nlohmann::json& rep);

}  // namespace moe::report_html
