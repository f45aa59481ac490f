// The tuned-config table (configs/tuned_fmoe.csv), in aiter's tuned-config format
//
//   cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n
//
// plus optional extra columns: block_m, block_n, block_k, warps, stages,
// persistent (0/1), us (measured latency), err (max rel. error of the accepted
// candidate), device (the GPU's name as the runtime reports it, e.g.
// "NVIDIA H200"; empty: any device with this cu_num). An empty extra cell means
// "not set". Unknown extra columns are kept and written back unchanged. Columns
// are matched by header name, in any order; the 12 seed columns are required, so
// tables written before the device column existed read unchanged (every row
// then has an empty device).
//
//   cu_num    SMs (NVIDIA) or CUs (AMD) of the device the row was tuned on
//   token     M, the number of tokens
//   act_type  SiLu | GeLu | SwigluOAI
//   dtype     bf16 | fp16 | fp32 | fp8 | fp8_block | int8
//   impl      a name the kernel family knows (passed in by the caller)
//   device    the GPU's name: an H100 and an H200 both report cu_num 132
//
// Key of a row: (cu_num, device, token, model_dim, inter_dim, expert, topk,
// act_type, dtype). Lookup for a device (cu_num and name) and shape, first match
// wins:
//   1. the row with the device's name and the exact token count    "exact"
//   2. the nearest token bucket among rows with the device's name   "nearest"
//      (smallest |log2(token) - log2(M)|, ties to the larger bucket)
//   3. the exact row among rows without a device (same cu_num)     "exact(any-device)"
//   4. the nearest bucket among rows without a device               "nearest(any-device)"
//   5. the heuristic the kernel family supplies                     "heuristic"
// Rows of another cu_num, or naming another device, are never used. A lookup
// key without a device name (the caller does not know the GPU, e.g. tune
// --dry-run without one) matches only rows without one, as steps 1-2.
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
  // The GPU's name as the runtime reports it ("NVIDIA H200"); "" = any device
  // with this cu_num (rows written before the column existed). Last member so
  // positional initialisers of the 8 seed fields stay valid; second in the order.
  std::string device{};
  auto tie() const { return std::tie(cu_num, device, token, model_dim, inter_dim, expert, topk, act_type, dtype); }
  bool operator<(const TunedKey& o) const { return tie() < o.tie(); }
  bool operator==(const TunedKey& o) const { return tie() == o.tie(); }
  // "cu_num=132 token=64 model_dim=7168 ..." (+ " device='NVIDIA H200'" when set)
  std::string str() const;
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
  // "exact" | "nearest" (a row with the device's name) | "exact(any-device)" |
  // "nearest(any-device)" (a row without a device) | "heuristic"
  std::string source;
  std::string file;         // table it came from ("" for heuristic)
  bool exact = false;       // the row's token count is the key's (source exact...)
  bool any_device = false;  // the row has no device name (source ...(any-device))
  nlohmann::json to_json() const;
};

// Supplied by a kernel family: a config for a shape the table does not cover.
using TunedHeuristic = std::function<TunedRow(const TunedKey&)>;

class TunedTable {
 public:
  static const std::vector<std::string>& seed_columns();   // the 12 required ones, in order
  static const std::vector<std::string>& extra_columns();  // the known optional ones, in order (device last)

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

  // key.device is the running device's name. Its exact row, else its nearest
  // token bucket, else the same among rows without a device (for a key with a
  // device), else heuristic(key) (see the top of this file).
  // Without a heuristic and without a matching row: InputError.
  TunedLookup lookup(const TunedKey& key, const TunedHeuristic& heuristic = nullptr) const;

  // Inserts the row or replaces the one with the same key, device included
  // (validates it first).
  void upsert(const TunedRow& row, const std::set<std::string>& impls);

  // The CSV text: header (seed columns, the known extras, then unknown extras),
  // rows sorted by key.
  std::string to_csv() const;
  // Writes to_csv() atomically (temporary file beside it, fsync, rename).
  void save(const std::string& path) const;

  // Summary for reports: file, rows, cu_nums, devices (non-empty names), impls.
  nlohmann::json summary() const;

 private:
  std::vector<TunedRow> rows_;
  std::vector<std::string> other_columns_;
  std::string file_;
};

// For a tuner: re-reads `path` (missing = empty), upserts `row`, writes the file
// atomically. A tuner killed at any point leaves the old or the new file. The
// three steps hold the file's lock (update_file_locked), so tuners sharing one
// table (tune --shard, tune under mpirun) never drop each other's rows.
void update_tuned_file(const std::string& path, const TunedRow& row, const std::set<std::string>& impls);

}  // namespace moe
