// Result documents: reading JSON files, verify results and their shards,
// merging verify shards and bench shards into one document.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

// Reads and parses a JSON file; InputError "file: invalid JSON: ..." on failure,
// and "file: /json/pointer: number out of range" for a number beyond a double
// (1e400).
// Google Benchmark writes NaN, Infinity and -Infinity (not JSON) for undefined
// values, e.g. the coefficient of variation of a counter that is 0 in every
// repetition: outside strings they are read as null (a missing value).
std::string nonfinite_literals_as_null(const std::string& text);
nlohmann::json read_json_file(const std::string& path);

// ---- shards -----------------------------------------------------------------
// "--shard i/n": this process takes the cases whose index % n == i.
struct Shard {
  static constexpr int kMaxCount = 65536;
  int index = 0;
  int count = 1;
  bool selects(size_t case_index) const { return static_cast<int>(case_index % static_cast<size_t>(count)) == index; }
  nlohmann::json to_json() const { return {{"index", index}, {"count", count}}; }
};
// Parses "i/n" with 0 <= i < n, 1 <= n <= Shard::kMaxCount; InputError otherwise.
Shard parse_shard(std::string_view s);

// ---- verify documents ---------------------------------------------------------
// Checks the shape of a `moe-harness verify` results document (cases[] with
// kernel, name, status in pass|fail|skip, and the type of every field a reader
// uses); otherwise InputError "<source>: <JSON pointer>: expected ..., got ...".
void validate_verify_doc(const nlohmann::json& doc, const std::string& source);

// Merges verify results. No file may come twice (under one name or two).
// Shards (inputs carrying "shard" objects, from verify
// --shard i/n) must share the count n and cover every index 0..n-1 exactly once
// unless allow_partial, and share their "options"; their cases are ordered by
// global "index" (each index once, and in its shard: index % n == i). Other inputs (e.g. runs of different --kernel sets) keep input order,
// and a (kernel, name) found in two files is an error. The summary is
// recomputed; devices are de-duplicated.
nlohmann::json merge_verify_docs(const std::vector<std::pair<std::string, nlohmann::json>>& docs,
                                 bool allow_partial = false);

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
// Checks the type of every field the bench readers use (read_bench_points
// calls it); otherwise InputError "<source>: <JSON pointer>: expected ..., got ...".
void validate_bench_doc(const nlohmann::json& doc, const std::string& source);
// True when `doc` looks like a Google Benchmark document (a "benchmarks" array).
bool is_bench_doc(const nlohmann::json& doc);
// Merges bench documents. Shards (inputs carrying "shard", from bench --shard
// i/n) must share n and cover 0..n-1 once unless allow_partial; benchmarks are
// ordered by moe_index (index % n == i) and an index held by two benchmarks or
// two files is an error. No file may come twice. Other inputs are
// concatenated in order and a run_name in two files is an error. Plain Google
// Benchmark documents are accepted (their family comes from the executable).
nlohmann::json merge_bench_docs(const std::vector<std::pair<std::string, nlohmann::json>>& docs,
                                bool allow_partial = false);

}  // namespace moe
