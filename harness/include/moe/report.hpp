// The report: verify results and benchmark documents folded into one JSON
// document, and that document rendered as one self-contained HTML page
// (inline CSS and SVG, no scripts, no fonts, nothing fetched).
//
// Including this header gives the whole results API (results.hpp,
// bench_names.hpp, compare.hpp, report_points.hpp).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/bench_names.hpp"
#include "moe/compare.hpp"
#include "moe/report_points.hpp"
#include "moe/results.hpp"

namespace moe {

// Another implementation's timings of our benchmark points: a Google Benchmark
// document whose benchmark names are ours (the M and Google Benchmark's own
// suffixes may differ), drawn beside ours and divided into ours.
struct BaselineInput {
  std::string name;  // what the report calls it ("torch")
  std::string path;
  nlohmann::json doc;
};

struct ReportInputs {
  std::vector<std::pair<std::string, nlohmann::json>> verify;  // (path, document)
  std::vector<std::pair<std::string, nlohmann::json>> bench;   // (path, Google Benchmark document)
  std::vector<BaselineInput> baselines;
  std::vector<std::string> model_names;             // every model of the model configs: found in benchmark names
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
