// The report: verify results and benchmark documents folded into one JSON
// document, and that document rendered as one self-contained HTML page
// (inline CSS and SVG, no scripts, no fonts, nothing fetched).
//
// Including this header gives the whole results API (results.hpp,
// bench_names.hpp, compare.hpp).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/bench_names.hpp"
#include "moe/compare.hpp"
#include "moe/results.hpp"

namespace moe {

struct ReportInputs {
  std::vector<std::pair<std::string, nlohmann::json>> verify;  // (path, document)
  std::vector<std::pair<std::string, nlohmann::json>> bench;   // (path, Google Benchmark document)
  nlohmann::json models = nlohmann::json::array();  // ModelConfig::to_json() of the configs used
  std::string model_configs_path;
  nlohmann::json tuned = nullptr;                  // TunedTable summary, or null
  std::string git_revision_now;                    // `git rev-parse HEAD` at report time, or ""
  std::string generated_at;                        // UTC ISO-8601
};

// Everything the report shows, as one JSON document (written with --json-out).
nlohmann::json build_report_json(const ReportInputs& in);
// The HTML page for a document from build_report_json.
std::string render_report_html(const nlohmann::json& report);

// `git rev-parse HEAD` in the current folder, "" when not in a repository.
std::string git_revision_here();
// Current UTC time as "2026-01-02T03:04:05Z".
std::string utc_now_iso();

}  // namespace moe
