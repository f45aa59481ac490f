// Result documents: reading verify and Google Benchmark JSON, merging verify
// shards, comparing two benchmark runs, and rendering one self-contained HTML
// report (inline CSS and SVG, no scripts, no fonts, nothing fetched).
//
// Benchmark naming the report understands (set by bench/bench_common.hpp):
//   name  "<kernel>/<model>/<variant parts...>/M:<tokens>[/manual_time]"
//   label "model=<name> [key=value ...]"   (model from the label wins)
//   user counters  us, GBps, TFLOPs, pct_read_bw, pct_bf16_flops, M
//   (pct_bw / pct_flops are accepted as aliases). Latency is the `us` counter,
//   else real_time converted from time_unit. With --benchmark_repetitions the
//   mean and stddev aggregates are used; without aggregates, repeated
//   iteration entries of one run_name are averaged here.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

// Writes `bytes` to `path` atomically: a uniquely named temporary in the same
// folder, flushed and fsync'ed, then renamed over `path` (parent folders are
// created). An interrupted writer leaves either the old file or the new one.
void atomic_write_file(const std::string& path, std::string_view bytes);

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view s);

// Reads and parses a JSON file; InputError "file:line:col: message" on failure.
nlohmann::json read_json_file(const std::string& path);

// ---- shards -----------------------------------------------------------------
// "--shard i/n": this process takes the cases whose index % n == i.
struct Shard {
  int index = 0;
  int count = 1;
  bool selects(size_t case_index) const { return static_cast<int>(case_index % static_cast<size_t>(count)) == index; }
  nlohmann::json to_json() const { return {{"index", index}, {"count", count}}; }
};
// Parses "i/n" with 0 <= i < n, 1 <= n <= 65536; InputError otherwise.
Shard parse_shard(std::string_view s);

// ---- verify documents ---------------------------------------------------------
// Checks the shape of a `moe-harness verify` results document (cases[] with
// kernel, name, status in pass|fail|skip); InputError naming `source` otherwise.
void validate_verify_doc(const nlohmann::json& doc, const std::string& source);

// Merges verify results. Shards (inputs carrying "shard" objects, from verify
// --shard i/n) must share the count n and cover every index 0..n-1 exactly once
// unless allow_partial; their cases are ordered by global "index" (each index
// once). Other inputs (e.g. runs of different --kernel sets) keep input order,
// and a (kernel, name) found in two files is an error. The summary is
// recomputed; devices are de-duplicated.
nlohmann::json merge_verify_docs(const std::vector<std::pair<std::string, nlohmann::json>>& docs,
                                 bool allow_partial = false);

// ---- benchmark documents -------------------------------------------------------
struct BenchPoint {
  std::string name;     // run_name without aggregate suffix, e.g. "align/deepseek_v3/M:4096/manual_time"
  std::string kernel;   // first name component
  std::string model;    // label model=..., else second component; "" if none
  std::string variant;  // remaining components (not kernel, model, M or Google Benchmark's own), '/'-joined
  int64_t m = -1;       // counter M, else name component M:<n>; -1 if absent
  double us = 0;        // mean latency in microseconds
  double us_stddev = 0; // stddev over repetitions (0 with one sample)
  int samples = 1;      // repetitions behind us / us_stddev
  std::map<std::string, double> counters;  // mean of every user counter
  std::string label;
  std::string source;   // file it came from
  bool error = false;   // Google Benchmark reported error_occurred (SkipWithError)
  std::string error_message;
  nlohmann::json to_json() const;
};

// Parses a Google Benchmark JSON document; InputError naming `source` when it
// is not one.
std::vector<BenchPoint> read_bench_points(const nlohmann::json& doc, const std::string& source);

// ---- moe-harness bench documents -------------------------------------------------
// `moe-harness bench --json` writes one Google Benchmark document for every
// family it ran: {"context": <the first executable's context>, "contexts":
// {family: context}, "benchmarks": [... each entry with "moe_family" and
// "moe_index" (position in the full, deterministic benchmark list)],
// "moe_bench": {...}, "shard": {"index", "count"} with --shard}. It is still a
// Google Benchmark document: report --bench and compare read it.
//
// The family of a Google Benchmark document entry: "moe_family", else
// bench_<family> of the context's executable, else "".
std::string bench_entry_family(const nlohmann::json& doc, const nlohmann::json& entry);
// True when `doc` looks like a Google Benchmark document (a "benchmarks" array).
bool is_bench_doc(const nlohmann::json& doc);
// Merges bench documents. Shards (inputs carrying "shard", from bench --shard
// i/n) must share n and cover 0..n-1 once unless allow_partial; benchmarks are
// ordered by moe_index and an index in two files is an error. Other inputs are
// concatenated in order and a run_name in two files is an error. Plain Google
// Benchmark documents are accepted (their family comes from the executable).
nlohmann::json merge_bench_docs(const std::vector<std::pair<std::string, nlohmann::json>>& docs,
                                bool allow_partial = false);

// ---- compare ------------------------------------------------------------------
struct CompareRow {
  std::string name;
  double a_us = 0, a_sd = 0, b_us = 0, b_sd = 0;
  int a_n = 1, b_n = 1;
  double delta_pct = 0;      // (b - a) / a * 100
  double noise_pct = 0;      // noise_k * sqrt(a_sd^2 + b_sd^2) / a * 100
  double bar_pct = 0;        // max(threshold, noise_pct)
  std::string verdict;       // "regression" | "speedup" | "same" | "error"
};
struct CompareResult {
  std::vector<CompareRow> rows;
  std::vector<std::string> only_a, only_b;
  int regressions = 0, speedups = 0;
  nlohmann::json to_json() const;
};
// A point is a regression when delta > max(threshold_pct, noise), a speedup
// when delta < -max(threshold_pct, noise); noise = noise_k combined stddevs.
CompareResult compare_benchmarks(const std::vector<BenchPoint>& a, const std::vector<BenchPoint>& b,
                                 double threshold_pct = 5.0, double noise_k = 3.0);
std::string format_compare_table(const CompareResult& r);

// ---- report ---------------------------------------------------------------------
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
