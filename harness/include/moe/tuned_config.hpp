// The tuned-config table (configs/tuned_fmoe.csv), in the seed's format
//
//   cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n
//
// plus optional extra columns: block_m, block_n, block_k, warps, stages,
// persistent (0/1), us (measured latency), err (max rel. error of the accepted
// candidate). An empty extra cell means "not set". Unknown extra columns are
// kept and written back unchanged. Columns are matched by header name, in any
// order; the 12 seed columns are required.
//
//   cu_num    SMs (NVIDIA) or CUs (AMD) of the device the row was tuned on
//   token     M, the number of tokens
//   act_type  SiLu | GeLu | SwigluOAI
//   dtype     bf16 | fp16 | fp32 | fp8 | fp8_block | int8
//   impl      a name the kernel family knows (passed in by the caller)
//
// Key of a row: (cu_num, token, model_dim, inter_dim, expert, topk, act_type,
// dtype). Lookup for a device and shape: the exact row; else, among rows with the
// same key but a different token count, the nearest token bucket (smallest
// |log2(token) - log2(M)|, ties to the larger bucket); else the heuristic the
// kernel family supplies. The result says which ("exact" | "nearest" |
// "heuristic"). Rows tuned on another cu_num are never borrowed.
//
// Errors (InputError) name the file, the line and the field:
//   "configs/tuned_fmoe.csv:7: field 'impl': unknown impl 'foo' (known: a, b)".
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

struct TunedKey {
  int32_t cu_num = 0;
  int64_t token = 0;
  int64_t model_dim = 0;
  int64_t inter_dim = 0;
  int32_t expert = 0;
  int32_t topk = 0;
  std::string act_type = "SiLu";
  std::string dtype = "bf16";
  auto tie() const { return std::tie(cu_num, token, model_dim, inter_dim, expert, topk, act_type, dtype); }
  bool operator<(const TunedKey& o) const { return tie() < o.tie(); }
  bool operator==(const TunedKey& o) const { return tie() == o.tie(); }
  std::string str() const;  // "cu_num=132 token=64 model_dim=7168 ..."
};

struct TunedRow {
  TunedKey key;
  std::string impl;
  int32_t split_k = 0;
  int32_t pad_m = 0;
  int32_t pad_n = 0;
  // Optional extras.
  std::optional<int32_t> block_m, block_n, block_k, warps, stages;
  std::optional<bool> persistent;
  std::optional<double> us, err;
  std::map<std::string, std::string> other;  // unknown extra columns, kept verbatim
  int line = 0;                              // 1-based line in the file (0: not from a file)
  nlohmann::json to_json() const;
};

struct TunedLookup {
  TunedRow row;
  std::string source;  // "exact" | "nearest" | "heuristic"
  std::string file;    // table it came from ("" for heuristic)
  nlohmann::json to_json() const;
};

// Supplied by a kernel family: a config for a shape the table does not cover.
using TunedHeuristic = std::function<TunedRow(const TunedKey&)>;

class TunedTable {
 public:
  static const std::vector<std::string>& seed_columns();   // the 12 required ones, in order
  static const std::vector<std::string>& extra_columns();  // the known optional ones, in order

  TunedTable() = default;
  // Parses `text` (the whole CSV); `name` is used in messages. `impls`: the
  // impl names the caller knows; any other name is an error.
  static TunedTable parse(const std::string& text, const std::string& name, const std::set<std::string>& impls);
  // Reads a file; a missing file is an error (use load_or_empty for the tuner).
  static TunedTable load(const std::string& path, const std::set<std::string>& impls);
  // As load, but a missing file gives an empty table.
  static TunedTable load_or_empty(const std::string& path, const std::set<std::string>& impls);

  const std::vector<TunedRow>& rows() const { return rows_; }
  const std::string& file() const { return file_; }

  // Exact row for the key, else nearest token bucket, else heuristic(key).
  // Without a heuristic and without a matching row: InputError.
  TunedLookup lookup(const TunedKey& key, const TunedHeuristic& heuristic = nullptr) const;

  // Inserts the row or replaces the one with the same key (validates it first).
  void upsert(const TunedRow& row, const std::set<std::string>& impls);

  // The CSV text: header (seed columns, the known extras, then unknown extras),
  // rows sorted by key.
  std::string to_csv() const;
  // Writes to_csv() atomically (temporary file beside it, fsync, rename).
  void save(const std::string& path) const;

  // Summary for reports: file, rows, cu_nums, impls.
  nlohmann::json summary() const;

 private:
  std::vector<TunedRow> rows_;
  std::vector<std::string> other_columns_;
  std::string file_;
};

// For a tuner: re-reads `path` (missing = empty), upserts `row`, writes the file
// atomically. A tuner killed at any point leaves the old or the new file.
void update_tuned_file(const std::string& path, const TunedRow& row, const std::set<std::string>& impls);

}  // namespace moe
