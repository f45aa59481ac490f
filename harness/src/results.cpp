// Result documents: reading JSON files, verify results and their shards,
// merging verify and bench documents.
#include "moe/results.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "moe/bench_names.hpp"
#include "moe/error.hpp"

namespace moe {
namespace fs = std::filesystem;
using nlohmann::json;

json read_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(fmt::format("{}: cannot open", path));
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    // e.what() already says "parse error at line L, column C: ..." (or "number overflow parsing '1e400'").
    throw InputError(fmt::format("{}: invalid JSON: {}", path, e.what()));
  }
}

// ---- shards -----------------------------------------------------------------------

namespace {
bool parse_int(std::string_view s, int& out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}
}  // namespace

Shard parse_shard(std::string_view s) {
  const auto slash = s.find('/');
  Shard sh;
  if (slash == std::string_view::npos || !parse_int(s.substr(0, slash), sh.index) ||
      !parse_int(s.substr(slash + 1), sh.count))
    throw InputError(fmt::format("--shard '{}': expected i/n, e.g. 0/4", s));
  if (sh.count < 1 || sh.count > 65536)
    throw InputError(fmt::format("--shard '{}': n must be between 1 and 65536", s));
  if (sh.index < 0 || sh.index >= sh.count)
    throw InputError(fmt::format("--shard '{}': i must satisfy 0 <= i < n", s));
  return sh;
}

// ---- verify documents ---------------------------------------------------------------

void validate_verify_doc(const json& doc, const std::string& source) {
  if (!doc.is_object()) throw InputError(fmt::format("{}: not a verify results document (top level is not an object)", source));
  if (!doc.contains("cases") || !doc["cases"].is_array())
    throw InputError(fmt::format("{}: not a verify results document (no 'cases' array)", source));
  const auto& cases = doc["cases"];
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    if (!c.is_object()) throw InputError(fmt::format("{}: cases[{}]: not an object", source, i));
    for (const char* k : {"kernel", "name", "status"})
      if (!c.contains(k) || !c[k].is_string())
        throw InputError(fmt::format("{}: cases[{}].{}: missing or not a string", source, i, k));
    const auto st = c["status"].get<std::string>();
    if (st != "pass" && st != "fail" && st != "skip")
      throw InputError(fmt::format("{}: cases[{}].status: expected pass, fail or skip, got '{}'", source, i, st));
    if (c.contains("index") && !c["index"].is_number_integer())
      throw InputError(fmt::format("{}: cases[{}].index: not an integer", source, i));
  }
  if (doc.contains("shard")) {
    const auto& s = doc["shard"];
    if (!s.is_object() || !s.contains("index") || !s.contains("count") || !s["index"].is_number_integer() ||
        !s["count"].is_number_integer())
      throw InputError(fmt::format("{}: shard: expected {{\"index\": i, \"count\": n}}", source));
  }
}

json merge_verify_docs(const std::vector<std::pair<std::string, json>>& docs, bool allow_partial) {
  if (docs.empty()) throw InputError("merge: no input files");
  for (const auto& [path, d] : docs) validate_verify_doc(d, path);

  // Shards: all or none carry one; same count; each index once.
  int shard_count = -1;
  std::map<int, std::string> seen_shard;
  size_t with_shard = 0;
  for (const auto& [path, d] : docs) {
    if (!d.contains("shard")) continue;
    ++with_shard;
    const int n = d["shard"]["count"].get<int>(), i = d["shard"]["index"].get<int>();
    if (shard_count >= 0 && n != shard_count)
      throw InputError(fmt::format("merge: {} is shard {}/{} but an earlier input has n = {}", path, i, n, shard_count));
    shard_count = n;
    if (seen_shard.count(i))
      throw InputError(fmt::format("merge: {} and {} are both shard {}/{}", seen_shard[i], path, i, n));
    seen_shard[i] = path;
  }
  if (with_shard > 0 && with_shard != docs.size())
    throw InputError("merge: some inputs carry a shard index and some do not");
  if (shard_count > 0 && static_cast<int>(seen_shard.size()) != shard_count && !allow_partial) {
    std::vector<int> missing;
    for (int i = 0; i < shard_count; ++i)
      if (!seen_shard.count(i)) missing.push_back(i);
    std::string m;
    for (int i : missing) m += fmt::format("{}{}/{}", m.empty() ? "" : ", ", i, shard_count);
    throw InputError(fmt::format("merge: missing shard(s) {} (pass --allow-partial to merge anyway)", m));
  }

  json out = json::object();
  for (auto it = docs[0].second.begin(); it != docs[0].second.end(); ++it)
    if (it.key() != "cases" && it.key() != "summary" && it.key() != "shard" && it.key() != "devices")
      out[it.key()] = it.value();
  std::vector<std::pair<int64_t, json>> cases;
  // Shards of one run: overlap detection and order by the global index (verify
  // writes it). Otherwise by (kernel, name) across different files, input order.
  bool all_indexed = with_shard > 0;
  for (const auto& [path, d] : docs)
    for (const auto& c : d["cases"]) all_indexed = all_indexed && c.contains("index");
  std::map<std::pair<std::string, std::string>, std::string> where;
  std::map<int64_t, std::string> where_index;
  json devices = json::array();
  std::set<std::string> device_keys;
  json from = json::array();
  int64_t order = 0;
  for (const auto& [path, d] : docs) {
    json f{{"path", path}, {"cases", d["cases"].size()}};
    if (d.contains("shard")) f["shard"] = d["shard"];
    from.push_back(f);
    for (const auto& c : d["cases"]) {
      const auto key = std::make_pair(c["kernel"].get<std::string>(), c["name"].get<std::string>());
      if (all_indexed) {
        const int64_t idx = c["index"].get<int64_t>();
        if (auto w = where_index.find(idx); w != where_index.end())
          throw InputError(fmt::format("merge: case index {} ({}/{}) is in both {} and {}", idx, key.first, key.second,
                                       w->second, path));
        where_index[idx] = path;
      } else {
        if (auto w = where.find(key); w != where.end() && w->second != path)
          throw InputError(fmt::format("merge: case {}/{} is in both {} and {}", key.first, key.second, w->second, path));
        where[key] = path;
      }
      cases.emplace_back(all_indexed ? c["index"].get<int64_t>() : order, c);
      ++order;
    }
    if (d.contains("devices") && d["devices"].is_array())
      for (const auto& dev : d["devices"])
        if (device_keys.insert(dev.dump()).second) devices.push_back(dev);
  }
  if (all_indexed)
    std::stable_sort(cases.begin(), cases.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  int passed = 0, failed = 0, skipped = 0;
  json arr = json::array();
  for (auto& [idx, c] : cases) {
    const auto st = c["status"].get<std::string>();
    (st == "pass" ? passed : st == "fail" ? failed : skipped)++;
    arr.push_back(std::move(c));
  }
  out["devices"] = devices;
  out["summary"] = {{"passed", passed}, {"failed", failed}, {"skipped", skipped}};
  out["merged_from"] = from;
  if (shard_count > 0) out["shards"] = {{"count", shard_count}, {"present", seen_shard.size()}};
  out["cases"] = std::move(arr);
  return out;
}

// ---- moe-harness bench documents -------------------------------------------------------

std::string bench_entry_family(const json& doc, const json& entry) {
  if (entry.is_object() && entry.contains("moe_family") && entry["moe_family"].is_string())
    return entry["moe_family"].get<std::string>();
  if (doc.contains("context") && doc["context"].is_object() && doc["context"].contains("executable") &&
      doc["context"]["executable"].is_string()) {
    const std::string exe = fs::path(doc["context"]["executable"].get<std::string>()).filename().string();
    if (exe.starts_with("bench_") && exe.size() > 6) return exe.substr(6);
  }
  return "";
}

bool is_bench_doc(const json& doc) { return doc.is_object() && doc.contains("benchmarks") && doc["benchmarks"].is_array(); }

json merge_bench_docs(const std::vector<std::pair<std::string, json>>& docs, bool allow_partial) {
  if (docs.empty()) throw InputError("merge: no input files");
  int shard_count = -1;
  std::map<int, std::string> seen_shard;
  size_t with_shard = 0;
  for (const auto& [path, d] : docs) {
    if (!is_bench_doc(d)) throw InputError(fmt::format("{}: not a Google Benchmark JSON document (no 'benchmarks' array)", path));
    read_bench_points(d, path);  // validates the entries
    if (!d.contains("shard")) continue;
    const auto& sh = d["shard"];
    if (!sh.is_object() || !sh.contains("index") || !sh.contains("count") || !sh["index"].is_number_integer() ||
        !sh["count"].is_number_integer())
      throw InputError(fmt::format("{}: shard: expected {{\"index\": i, \"count\": n}}", path));
    ++with_shard;
    const int n = sh["count"].get<int>(), i = sh["index"].get<int>();
    if (shard_count >= 0 && n != shard_count)
      throw InputError(fmt::format("merge: {} is shard {}/{} but an earlier input has n = {}", path, i, n, shard_count));
    shard_count = n;
    if (seen_shard.count(i))
      throw InputError(fmt::format("merge: {} and {} are both shard {}/{}", seen_shard[i], path, i, n));
    seen_shard[i] = path;
  }
  if (with_shard > 0 && with_shard != docs.size())
    throw InputError("merge: some inputs carry a shard index and some do not");
  if (shard_count > 0 && static_cast<int>(seen_shard.size()) != shard_count && !allow_partial) {
    std::string m;
    for (int i = 0; i < shard_count; ++i)
      if (!seen_shard.count(i)) m += fmt::format("{}{}/{}", m.empty() ? "" : ", ", i, shard_count);
    throw InputError(fmt::format("merge: missing shard(s) {} (pass --allow-partial to merge anyway)", m));
  }
  const bool by_index = with_shard > 0;
  json out = json::object();
  out["context"] = docs[0].second.value("context", json::object());
  json contexts = json::object();
  std::vector<std::pair<int64_t, json>> entries;
  std::map<int64_t, std::string> where_index;
  std::map<std::string, std::string> where_name;
  json from = json::array();
  int64_t order = 0;
  for (const auto& [path, d] : docs) {
    json f{{"path", path}, {"benchmarks", d["benchmarks"].size()}};
    if (d.contains("shard")) f["shard"] = d["shard"];
    from.push_back(f);
    if (d.contains("contexts") && d["contexts"].is_object())
      for (auto it = d["contexts"].begin(); it != d["contexts"].end(); ++it)
        if (!contexts.contains(it.key())) contexts[it.key()] = it.value();
    std::set<int64_t> mine;
    std::set<std::string> mine_names;
    for (const auto& e : d["benchmarks"]) {
      json entry = e;
      const std::string fam = bench_entry_family(d, e);
      if (!fam.empty()) {
        entry["moe_family"] = fam;
        if (!contexts.contains(fam) && d.contains("context")) contexts[fam] = d["context"];
      }
      const std::string rn = e.contains("run_name") && e["run_name"].is_string() ? e["run_name"].get<std::string>()
                                                                                : e["name"].get<std::string>();
      int64_t key = order++;
      if (by_index) {
        if (!e.contains("moe_index") || !e["moe_index"].is_number_integer())
          throw InputError(fmt::format("{}: benchmark '{}' has no moe_index (not written by moe-harness bench --shard)", path, rn));
        key = e["moe_index"].get<int64_t>();
        if (auto w = where_index.find(key); w != where_index.end() && w->second != path)
          throw InputError(fmt::format("merge: benchmark index {} ({}) is in both {} and {}", key, rn, w->second, path));
        mine.insert(key);
      } else {
        const std::string nk = fam + "\t" + rn;
        if (auto w = where_name.find(nk); w != where_name.end() && w->second != path)
          throw InputError(fmt::format("merge: benchmark {} is in both {} and {}", rn, w->second, path));
        mine_names.insert(nk);
      }
      entries.emplace_back(key, std::move(entry));
    }
    for (int64_t k : mine) where_index[k] = path;
    for (const auto& k : mine_names) where_name[k] = path;
  }
  if (by_index)
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  json arr = json::array();
  for (auto& [k, e] : entries) arr.push_back(std::move(e));
  out["contexts"] = contexts;
  if (docs[0].second.contains("moe_bench")) {
    out["moe_bench"] = docs[0].second["moe_bench"];
    out["moe_bench"].erase("shard");
  }
  out["merged_from"] = from;
  if (shard_count > 0) out["shards"] = {{"count", shard_count}, {"present", seen_shard.size()}};
  out["benchmarks"] = std::move(arr);
  return out;
}


}  // namespace moe
