// Result documents: reading JSON files, verify results and their shards,
// merging verify and bench documents.
#include "moe/results.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <sys/stat.h>

#include <fmt/format.h>

#include "moe/bench_names.hpp"
#include "moe/error.hpp"
#include "moe/json_numbers.hpp"

namespace moe {
namespace fs = std::filesystem;
using nlohmann::json;

// ---- field checks -------------------------------------------------------------------

namespace {

std::string json_pointer_append(const std::string& pointer, std::string_view key) {
  std::string out = pointer + "/";
  for (char ch : key) {
    if (ch == '~') out += "~0";
    else if (ch == '/') out += "~1";
    else out += ch;
  }
  return out;
}

std::string json_pointer_append(const std::string& pointer, size_t index) { return fmt::format("{}/{}", pointer, index); }

[[noreturn]] void throw_field_error(const std::string& source, const std::string& pointer, std::string_view problem) {
  throw InputError(utf8_sanitized(fmt::format("{}: {}: {}", source, pointer.empty() ? "(top level)" : pointer, problem)));
}

const char* article_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::null: return "null";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    default: return v.type_name();
  }
}

// What a field must be.
enum class Want { String, Number, Integer, Boolean, Object, Array };
bool has_type(const json& v, Want w) {
  switch (w) {
    case Want::String: return v.is_string();
    case Want::Number: return v.is_number();
    case Want::Integer: return v.is_number_integer();
    case Want::Boolean: return v.is_boolean();
    case Want::Object: return v.is_object();
    case Want::Array: return v.is_array();
  }
  return false;
}
const char* want_text(Want w) {
  switch (w) {
    case Want::String: return "a string";
    case Want::Number: return "a number";
    case Want::Integer: return "an integer";
    case Want::Boolean: return "true or false";
    case Want::Object: return "an object";
    case Want::Array: return "an array";
  }
  return "?";
}

// Field `key` of the object `parent` (at `pointer`) has type `w`; absent is an
// error when `required`. Returns the field or nullptr when absent.
const json* check_field(const json& parent, const std::string& pointer, const char* key, Want w, bool required,
                        const std::string& source) {
  const std::string at = json_pointer_append(pointer, key);
  if (!parent.contains(key)) {
    if (required) throw_field_error(source, at, fmt::format("missing (expected {})", want_text(w)));
    return nullptr;
  }
  const json& v = parent[key];
  if (!has_type(v, w)) throw_field_error(source, at, fmt::format("expected {}, got {}", want_text(w), article_type_name(v)));
  return &v;
}

// An integer field within [lo, hi]; nullptr when absent and not required.
const json* check_integer_field(const json& parent, const std::string& pointer, const char* key, int64_t lo, int64_t hi,
                                bool required, const std::string& source) {
  const json* v = check_field(parent, pointer, key, Want::Integer, required, source);
  if (!v) return nullptr;
  if (!json_integer_in(*v, lo, hi))
    throw_field_error(source, json_pointer_append(pointer, key),
                      fmt::format("expected an integer in [{}, {}], got {}", lo, hi, v->dump()));
  return v;
}

// {"index": i, "count": n} with 1 <= n <= Shard::kMaxCount and 0 <= i < n.
void check_shard_field(const json& doc, const std::string& source) {
  const json* sh = check_field(doc, "", "shard", Want::Object, false, source);
  if (!sh) return;
  const int64_t n = check_integer_field(*sh, "/shard", "count", 1, Shard::kMaxCount, true, source)->get<int64_t>();
  check_integer_field(*sh, "/shard", "index", 0, n - 1, true, source);
}

// A SAX handler that builds nothing and only tracks where the parser is, for
// naming the place of a number the parser rejects (1e400 overflows a double).
class JsonPointerTracker {
 public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  bool null() { return scalar(); }
  bool boolean(bool) { return scalar(); }
  bool number_integer(number_integer_t) { return scalar(); }
  bool number_unsigned(number_unsigned_t) { return scalar(); }
  bool number_float(number_float_t, const string_t&) { return scalar(); }
  bool string(string_t&) { return scalar(); }
  bool binary(binary_t&) { return scalar(); }
  bool start_object(std::size_t) { return open(false); }
  bool key(string_t& k) {
    frames_.back().key = k;
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(true); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const json::exception&) {
    for (const auto& f : frames_)
      pointer_ = f.array ? json_pointer_append(pointer_, f.index) : json_pointer_append(pointer_, f.key);
    return false;
  }
  // The value being parsed when the error came.
  const std::string& pointer() const { return pointer_; }

 private:
  struct Frame {
    bool array;
    size_t index = 0;  // arrays: the element being parsed
    std::string key;   // objects: the member being parsed
  };
  bool scalar() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }
  bool open(bool array) {
    frames_.push_back({array, 0, {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return scalar();
  }
  std::vector<Frame> frames_;
  std::string pointer_;
};

}  // namespace

std::string nonfinite_literals_as_null(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) out += text[++i];
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    const size_t at = i + (c == '-' ? 1 : 0);
    const bool nan = text.compare(at, 3, "NaN") == 0, inf = text.compare(at, 8, "Infinity") == 0;
    if (nan || inf) {
      out += "null";
      i = at + (nan ? 3 : 8) - 1;
      continue;
    }
    out += c;
  }
  return out;
}

json read_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(utf8_sanitized(fmt::format("{}: cannot open", path)));
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  try {
    try {
      return json::parse(text);
    } catch (const json::parse_error&) {
      std::string relaxed = nonfinite_literals_as_null(text);
      if (relaxed == text) throw;
      text = std::move(relaxed);
      return json::parse(text);
    }
  } catch (const json::parse_error& e) {
    // e.what() already says "parse error at line L, column C: ...".
    throw InputError(utf8_sanitized(fmt::format("{}: invalid JSON: {}", path, e.what())));
  } catch (const json::out_of_range& e) {
    // A number beyond a double (1e400): parse again only to say where it is.
    JsonPointerTracker where;
    json::sax_parse(text, &where);
    const std::string what = e.what();  // "[json.exception.out_of_range.406] number overflow parsing '1e400'"
    throw_field_error(path, where.pointer(), fmt::format("number out of range ({})", what.substr(what.find(']') + 2)));
  } catch (const json::exception& e) {
    throw InputError(utf8_sanitized(fmt::format("{}: invalid JSON: {}", path, e.what())));
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
  if (sh.count < 1 || sh.count > Shard::kMaxCount)
    throw InputError(fmt::format("--shard '{}': n must be between 1 and {}", s, Shard::kMaxCount));
  if (sh.index < 0 || sh.index >= sh.count)
    throw InputError(fmt::format("--shard '{}': i must satisfy 0 <= i < n", s));
  return sh;
}

// ---- verify documents ---------------------------------------------------------------

void validate_verify_doc(const json& doc, const std::string& source) {
  if (!doc.is_object()) throw InputError(utf8_sanitized(fmt::format("{}: not a verify results document (top level is not an object)", source)));
  if (!doc.contains("cases") || !doc["cases"].is_array())
    throw InputError(utf8_sanitized(fmt::format("{}: not a verify results document (no 'cases' array)", source)));
  const auto& cases = doc["cases"];
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string at = json_pointer_append("/cases", i);
    if (!c.is_object()) throw_field_error(source, at, fmt::format("expected an object, got {}", article_type_name(c)));
    for (const char* k : {"kernel", "name", "status"}) check_field(c, at, k, Want::String, true, source);
    const auto st = c["status"].get<std::string>();
    if (st != "pass" && st != "fail" && st != "skip")
      throw_field_error(source, at + "/status", fmt::format("expected pass, fail or skip, got '{}'", st));
    check_integer_field(c, at, "index", 0, INT64_MAX, false, source);
    check_field(c, at, "seconds", Want::Number, false, source);
    check_field(c, at, "needs_gpu", Want::Boolean, false, source);
  }
  check_shard_field(doc, source);
  if (const json* devices = check_field(doc, "", "devices", Want::Array, false, source))
    for (size_t i = 0; i < devices->size(); ++i)
      if (!(*devices)[i].is_object())
        throw_field_error(source, json_pointer_append("/devices", i),
                          fmt::format("expected an object, got {}", article_type_name((*devices)[i])));
  check_field(doc, "", "options", Want::Object, false, source);
  if (doc.contains("tuned_config") && !doc["tuned_config"].is_null())
    check_field(doc, "", "tuned_config", Want::Object, false, source);
}

void validate_bench_doc(const json& doc, const std::string& source) {
  if (!doc.is_object() || !doc.contains("benchmarks") || !doc["benchmarks"].is_array())
    throw InputError(utf8_sanitized(fmt::format("{}: not a Google Benchmark JSON document (no 'benchmarks' array)", source)));
  check_field(doc, "", "context", Want::Object, false, source);
  check_field(doc, "", "contexts", Want::Object, false, source);
  if (const json* mb = check_field(doc, "", "moe_bench", Want::Object, false, source))
    check_field(*mb, "/moe_bench", "tuned_config", Want::Object, false, source);
  check_shard_field(doc, source);
  const auto& arr = doc["benchmarks"];
  for (size_t i = 0; i < arr.size(); ++i) {
    const auto& e = arr[i];
    const std::string at = json_pointer_append("/benchmarks", i);
    if (!e.is_object()) throw_field_error(source, at, fmt::format("expected an object, got {}", article_type_name(e)));
    check_field(e, at, "name", Want::String, true, source);
    for (const char* k : {"run_name", "run_type", "aggregate_name", "label", "error_message", "time_unit", "moe_family"})
      check_field(e, at, k, Want::String, false, source);
    check_field(e, at, "error_occurred", Want::Boolean, false, source);
    for (const char* k : {"real_time", "cpu_time", "us", "iterations"}) check_field(e, at, k, Want::Number, false, source);
    check_integer_field(e, at, "repetitions", 0, INT_MAX, false, source);
    check_integer_field(e, at, "moe_index", 0, INT64_MAX, false, source);
  }
}

namespace {

// The inputs of one merge: no file twice (by name, or the same file under two
// names); shards all or none; one count n; each index once; every index
// 0..n-1 present unless allow_partial. Returns n (0 without shards) and who
// holds each index.
struct ShardSet {
  int count = 0;
  std::map<int, std::string> present;
};
ShardSet collect_shards(const std::vector<std::pair<std::string, json>>& docs, bool allow_partial) {
  std::map<std::pair<dev_t, ino_t>, std::string> files;
  std::set<std::string> names;
  for (const auto& [path, d] : docs) {
    if (!names.insert(path).second)
      throw InputError(utf8_sanitized(fmt::format("merge: {} is given twice", path)));
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0) {
      const auto [it, fresh] = files.emplace(std::make_pair(st.st_dev, st.st_ino), path);
      if (!fresh) throw InputError(utf8_sanitized(fmt::format("merge: {} and {} are the same file", it->second, path)));
    }
  }
  ShardSet set;
  size_t with_shard = 0;
  for (const auto& [path, d] : docs) {
    if (!d.contains("shard")) continue;
    ++with_shard;
    // Ranges were checked by the document validation: 1 <= n <= kMaxCount, 0 <= i < n.
    const int n = d["shard"]["count"].get<int>(), i = d["shard"]["index"].get<int>();
    if (set.count > 0 && n != set.count)
      throw InputError(utf8_sanitized(fmt::format("merge: {} is shard {}/{} but an earlier input has n = {}", path, i, n, set.count)));
    set.count = n;
    if (auto w = set.present.find(i); w != set.present.end())
      throw InputError(utf8_sanitized(fmt::format("merge: {} and {} are both shard {}/{}", w->second, path, i, n)));
    set.present[i] = path;
  }
  if (with_shard > 0 && with_shard != docs.size())
    throw InputError("merge: some inputs carry a shard index and some do not");
  if (set.count > 0 && static_cast<int>(set.present.size()) != set.count && !allow_partial) {
    constexpr int kListed = 10;
    std::string m;
    int listed = 0, missing = 0;
    for (int i = 0; i < set.count; ++i) {
      if (set.present.count(i)) continue;
      ++missing;
      if (listed < kListed) m += fmt::format("{}{}/{}", listed++ ? ", " : "", i, set.count);
    }
    if (missing > listed) m += fmt::format(" and {} more", missing - listed);
    throw InputError(fmt::format("merge: missing shard(s) {} (pass --allow-partial to merge anyway)", m));
  }
  return set;
}

// A case of shard i/n has a global index with index % n == i.
void check_index_in_shard(const json& d, int64_t index, const std::string& source, const std::string& pointer) {
  if (!d.contains("shard")) return;
  const int64_t n = d["shard"]["count"].get<int64_t>(), i = d["shard"]["index"].get<int64_t>();
  if (index % n != i)
    throw_field_error(source, pointer, fmt::format("index {} is not in shard {}/{} (index % {} != {})", index, i, n, n, i));
}

// Paths and messages end up in the merged document, which must dump.
json path_json(const std::string& path) { return utf8_sanitized(path); }

}  // namespace

json merge_verify_docs(const std::vector<std::pair<std::string, json>>& docs, bool allow_partial) {
  if (docs.empty()) throw InputError("merge: no input files");
  for (const auto& [path, d] : docs) validate_verify_doc(d, path);

  const ShardSet shards = collect_shards(docs, allow_partial);
  const int shard_count = shards.count;
  const auto& seen_shard = shards.present;
  const size_t with_shard = shard_count > 0 ? docs.size() : 0;
  // Shards of one run share the options that change results (seed, quick, ...).
  for (const auto& [path, d] : docs)
    if (shard_count > 0 && d.contains("options") && docs[0].second.contains("options") &&
        d["options"] != docs[0].second["options"])
      throw InputError(utf8_sanitized(fmt::format("merge: {} and {} are shards of runs with different options ({} vs {})",
                                                  docs[0].first, path, docs[0].second["options"].dump(),
                                                  d["options"].dump())));

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
    json f{{"path", path_json(path)}, {"cases", d["cases"].size()}};
    if (d.contains("shard")) f["shard"] = d["shard"];
    from.push_back(f);
    for (size_t ci = 0; ci < d["cases"].size(); ++ci) {
      const auto& c = d["cases"][ci];
      const auto key = std::make_pair(c["kernel"].get<std::string>(), c["name"].get<std::string>());
      if (all_indexed) {
        const int64_t idx = c["index"].get<int64_t>();
        check_index_in_shard(d, idx, path, json_pointer_append(json_pointer_append("/cases", ci), "index"));
        if (auto w = where_index.find(idx); w != where_index.end())
          throw InputError(utf8_sanitized(
              w->second == path ? fmt::format("merge: case index {} ({}/{}) is twice in {}", idx, key.first, key.second, path)
                                : fmt::format("merge: case index {} ({}/{}) is in both {} and {}", idx, key.first,
                                              key.second, w->second, path)));
        where_index[idx] = path;
      } else {
        if (auto w = where.find(key); w != where.end() && w->second != path)
          throw InputError(
              utf8_sanitized(fmt::format("merge: case {}/{} is in both {} and {}", key.first, key.second, w->second, path)));
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
  for (const auto& [path, d] : docs) read_bench_points(d, path);  // validates the documents
  const ShardSet shards = collect_shards(docs, allow_partial);
  const int shard_count = shards.count;
  const auto& seen_shard = shards.present;
  const size_t with_shard = shard_count > 0 ? docs.size() : 0;
  const bool by_index = with_shard > 0;
  json out = json::object();
  out["context"] = docs[0].second.value("context", json::object());
  json contexts = json::object();
  std::vector<std::pair<int64_t, json>> entries;
  // Repeated entries of one benchmark (iterations, aggregates) share its
  // moe_index; another benchmark, or another file, with that index is an error.
  std::map<int64_t, std::pair<std::string, std::string>> where_index;  // index -> (path, family\trun_name)
  std::map<std::string, std::string> where_name;
  json from = json::array();
  int64_t order = 0;
  for (const auto& [path, d] : docs) {
    json f{{"path", path_json(path)}, {"benchmarks", d["benchmarks"].size()}};
    if (d.contains("shard")) f["shard"] = d["shard"];
    from.push_back(f);
    if (d.contains("contexts"))
      for (auto it = d["contexts"].begin(); it != d["contexts"].end(); ++it)
        if (!contexts.contains(it.key())) contexts[it.key()] = it.value();
    std::set<std::string> mine_names;
    for (size_t ei = 0; ei < d["benchmarks"].size(); ++ei) {
      const auto& e = d["benchmarks"][ei];
      json entry = e;
      const std::string fam = bench_entry_family(d, e);
      if (!fam.empty()) {
        entry["moe_family"] = fam;
        if (!contexts.contains(fam) && d.contains("context")) contexts[fam] = d["context"];
      }
      const std::string rn = e.contains("run_name") ? e["run_name"].get<std::string>() : e["name"].get<std::string>();
      const std::string nk = fam + "\t" + rn;
      int64_t key = order++;
      if (by_index) {
        const std::string at = json_pointer_append(json_pointer_append("/benchmarks", ei), "moe_index");
        if (!e.contains("moe_index"))
          throw_field_error(path, at, fmt::format("benchmark '{}' has no moe_index (not written by moe-harness bench --shard)", rn));
        key = e["moe_index"].get<int64_t>();
        check_index_in_shard(d, key, path, at);
        if (auto w = where_index.find(key); w != where_index.end() && (w->second.first != path || w->second.second != nk))
          throw InputError(utf8_sanitized(fmt::format("merge: benchmark index {} is both {} in {} and {} in {}", key,
                                                      w->second.second.substr(w->second.second.find('\t') + 1),
                                                      w->second.first, rn, path)));
        where_index[key] = {path, nk};
      } else {
        if (auto w = where_name.find(nk); w != where_name.end() && w->second != path)
          throw InputError(utf8_sanitized(fmt::format("merge: benchmark {} is in both {} and {}", rn, w->second, path)));
        mine_names.insert(nk);
      }
      entries.emplace_back(key, std::move(entry));
    }
    for (const auto& k : mine_names) where_name[k] = path;
  }
  if (by_index)
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  json arr = json::array();
  for (auto& [k, e] : entries) arr.push_back(std::move(e));
  out["contexts"] = contexts;
  if (docs[0].second.contains("moe_bench")) {  // an object: validated
    out["moe_bench"] = docs[0].second["moe_bench"];
    out["moe_bench"].erase("shard");
  }
  out["merged_from"] = from;
  if (shard_count > 0) out["shards"] = {{"count", shard_count}, {"present", seen_shard.size()}};
  out["benchmarks"] = std::move(arr);
  return out;
}


}  // namespace moe
