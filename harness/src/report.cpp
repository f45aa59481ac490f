#include "moe/report.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe {
namespace fs = std::filesystem;
using nlohmann::json;

// ---- files ------------------------------------------------------------------------

void atomic_write_file(const std::string& path, std::string_view bytes) {
  static std::atomic<unsigned> counter{0};
  const fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) {
    fs::create_directories(p.parent_path(), ec);
    if (ec) throw InputError(fmt::format("{}: cannot create folder {}: {}", path, p.parent_path().string(), ec.message()));
  }
  const std::string tmp = fmt::format("{}.tmp.{}.{}", path, static_cast<long>(::getpid()), counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw InputError(fmt::format("{}: cannot create {}: {}", path, tmp, std::strerror(errno)));
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(fmt::format("{}: write failed: {}", tmp, std::strerror(e)));
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: flush failed: {}", tmp, std::strerror(e)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("cannot rename {} to {}: {}", tmp, path, std::strerror(e)));
  }
  // Make the rename itself durable (best effort).
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

json read_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(fmt::format("{}: cannot open", path));
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::parse_error& e) {
    // e.what() already says "parse error at line L, column C: ...".
    throw InputError(fmt::format("{}: invalid JSON: {}", path, e.what()));
  }
}

std::string git_revision_here() {
  FILE* p = ::popen("git rev-parse HEAD 2>/dev/null", "r");
  if (!p) return "";
  char buf[128] = {0};
  std::string out;
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (rc != 0 || out.size() < 7 || out.find_first_not_of("0123456789abcdef") != std::string::npos) return "";
  return out;
}

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
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

// ---- benchmark documents -------------------------------------------------------------

json BenchPoint::to_json() const {
  json j{{"name", name},   {"kernel", kernel},     {"model", model},    {"variant", variant},
         {"M", m},         {"us", us},             {"us_stddev", us_stddev}, {"samples", samples},
         {"label", label}, {"source", source}};
  json c = json::object();
  for (const auto& [k, v] : counters) c[k] = std::isfinite(v) ? json(v) : json(nullptr);
  j["counters"] = c;
  if (error) {
    j["error"] = true;
    j["error_message"] = error_message;
  }
  return j;
}

namespace {

double unit_to_us(const std::string& unit, const std::string& source, const std::string& name) {
  if (unit == "ns") return 1e-3;
  if (unit == "us") return 1.0;
  if (unit == "ms") return 1e3;
  if (unit == "s") return 1e6;
  throw InputError(fmt::format("{}: benchmark '{}': unknown time_unit '{}'", source, name, unit));
}

bool is_gbench_component(std::string_view c) {
  return c == "manual_time" || c == "real_time" || c == "process_time" || c.starts_with("iterations:") ||
         c.starts_with("repeats:") || c.starts_with("min_time:") || c.starts_with("min_warmup_time:") ||
         c.starts_with("threads:");
}

const std::set<std::string>& gbench_numeric_keys() {
  static const std::set<std::string> k{"family_index", "per_family_instance_index", "repetitions", "repetition_index",
                                       "threads",      "iterations",                "real_time",   "cpu_time",
                                       "moe_index"};
  return k;
}

std::map<std::string, std::string> parse_label(const std::string& label) {
  std::map<std::string, std::string> kv;
  std::string tok;
  auto flush = [&] {
    const auto eq = tok.find('=');
    if (eq != std::string::npos && eq > 0) kv[tok.substr(0, eq)] = tok.substr(eq + 1);
    tok.clear();
  };
  for (char c : label) {
    if (c == ' ' || c == ',' || c == ';' || c == '\t') flush();
    else tok += c;
  }
  flush();
  return kv;
}

struct Entry {
  const json* j;
};

double entry_us(const json& e, const std::string& source, const std::string& name) {
  if (e.contains("us") && e["us"].is_number()) return e["us"].get<double>();
  if (!e.contains("real_time") || !e["real_time"].is_number())
    throw InputError(fmt::format("{}: benchmark '{}': no real_time and no 'us' counter", source, name));
  return e["real_time"].get<double>() * unit_to_us(e.value("time_unit", std::string("ns")), source, name);
}

std::map<std::string, double> entry_counters(const json& e) {
  std::map<std::string, double> c;
  for (auto it = e.begin(); it != e.end(); ++it)
    if (it.value().is_number() && !gbench_numeric_keys().count(it.key())) c[it.key()] = it.value().get<double>();
  return c;
}

}  // namespace

std::vector<BenchPoint> read_bench_points(const json& doc, const std::string& source) {
  if (!doc.is_object() || !doc.contains("benchmarks") || !doc["benchmarks"].is_array())
    throw InputError(fmt::format("{}: not a Google Benchmark JSON document (no 'benchmarks' array)", source));
  struct Group {
    std::vector<const json*> iters;
    const json* mean = nullptr;
    const json* stddev = nullptr;
    const json* error = nullptr;
  };
  std::vector<std::string> order;
  std::map<std::string, Group> groups;
  const auto& arr = doc["benchmarks"];
  for (size_t i = 0; i < arr.size(); ++i) {
    const auto& e = arr[i];
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
      throw InputError(fmt::format("{}: benchmarks[{}]: missing 'name'", source, i));
    // Grouped per family too: a merged `moe-harness bench` document holds several executables.
    const std::string rn = bench_entry_family(doc, e) + "\t" +
                           (e.contains("run_name") && e["run_name"].is_string() ? e["run_name"].get<std::string>()
                                                                                : e["name"].get<std::string>());
    if (!groups.count(rn)) order.push_back(rn);
    auto& g = groups[rn];
    if (e.value("error_occurred", false)) {
      g.error = &e;
      continue;
    }
    const std::string rt = e.value("run_type", std::string("iteration"));
    if (rt == "aggregate") {
      const std::string an = e.value("aggregate_name", std::string());
      if (an == "mean") g.mean = &e;
      else if (an == "stddev") g.stddev = &e;
    } else {
      g.iters.push_back(&e);
    }
  }
  std::vector<BenchPoint> out;
  for (const auto& key : order) {
    const auto& g = groups[key];
    const std::string rn = key.substr(key.find('\t') + 1);
    BenchPoint p;
    p.name = rn;
    p.source = source;
    const json* any = g.mean ? g.mean : !g.iters.empty() ? g.iters[0] : g.error;
    if (!any) continue;  // only cv/median aggregates: nothing to use
    p.label = any->value("label", std::string());
    const std::string exe_family = bench_entry_family(doc, *any);
    if (g.error) {
      p.error = true;
      p.error_message = g.error->value("error_message", std::string("error"));
    } else if (g.mean) {
      p.counters = entry_counters(*g.mean);
      p.us = entry_us(*g.mean, source, rn);
      p.samples = g.mean->value("repetitions", static_cast<int>(std::max<size_t>(g.iters.size(), 1)));
      if (g.stddev) p.us_stddev = entry_us(*g.stddev, source, rn);
    } else {
      // Average repeated iteration entries ourselves.
      const size_t n = g.iters.size();
      std::vector<double> us(n);
      for (size_t k = 0; k < n; ++k) {
        us[k] = entry_us(*g.iters[k], source, rn);
        for (const auto& [key, v] : entry_counters(*g.iters[k])) p.counters[key] += v / double(n);
      }
      double mean = 0;
      for (double v : us) mean += v / double(n);
      double var = 0;
      for (double v : us) var += (v - mean) * (v - mean);
      p.us = mean;
      p.us_stddev = n > 1 ? std::sqrt(var / double(n - 1)) : 0.0;
      p.samples = static_cast<int>(n);
    }
    // Name components.
    std::vector<std::string> comps;
    {
      std::string cur;
      for (char c : rn) {
        if (c == '/') comps.push_back(cur), cur.clear();
        else cur += c;
      }
      comps.push_back(cur);
    }
    const auto kv = parse_label(p.label);
    p.kernel = comps[0];
    std::vector<std::string> rest;
    // Plain Google Benchmark function names ("BM_deepseek_v3/M:64"): the kernel
    // family comes from the executable (bench_<family>), the rest of the
    // function name stands where the model would.
    if (p.kernel.starts_with("BM_")) {
      rest.push_back(p.kernel.substr(3));
      p.kernel = exe_family.empty() ? p.kernel.substr(3) : exe_family;
      if (exe_family.empty()) rest.clear();
    }
    for (size_t k = 1; k < comps.size(); ++k) {
      const auto& c = comps[k];
      if (is_gbench_component(c)) continue;
      if (c.starts_with("M:")) {
        int64_t m = -1;
        const auto r = std::from_chars(c.data() + 2, c.data() + c.size(), m);
        if (r.ec == std::errc() && r.ptr == c.data() + c.size()) {
          p.m = m;
          continue;
        }
      }
      rest.push_back(c);
    }
    if (auto it = kv.find("model"); it != kv.end()) {
      p.model = it->second;
      if (!rest.empty() && rest[0] == p.model) rest.erase(rest.begin());
    } else if (!rest.empty() && rest[0].find(':') == std::string::npos) {
      p.model = rest[0];
      rest.erase(rest.begin());
    }
    if (auto it = p.counters.find("M"); it != p.counters.end() && std::isfinite(it->second))
      p.m = static_cast<int64_t>(std::llround(it->second));
    for (size_t k = 0; k < rest.size(); ++k) p.variant += (k ? "/" : "") + rest[k];
    out.push_back(std::move(p));
  }
  return out;
}

// ---- compare ------------------------------------------------------------------------------

json CompareResult::to_json() const {
  json rs = json::array();
  for (const auto& r : rows)
    rs.push_back({{"name", r.name},           {"a_us", r.a_us},       {"a_stddev", r.a_sd}, {"a_samples", r.a_n},
                  {"b_us", r.b_us},           {"b_stddev", r.b_sd},   {"b_samples", r.b_n},
                  {"delta_pct", r.delta_pct}, {"noise_pct", r.noise_pct}, {"bar_pct", r.bar_pct},
                  {"verdict", r.verdict}});
  return {{"rows", rs}, {"only_a", only_a}, {"only_b", only_b}, {"regressions", regressions}, {"speedups", speedups}};
}

CompareResult compare_benchmarks(const std::vector<BenchPoint>& a, const std::vector<BenchPoint>& b,
                                 double threshold_pct, double noise_k) {
  MOE_REQUIRE(threshold_pct >= 0 && std::isfinite(threshold_pct), "--threshold must be a non-negative percentage");
  CompareResult r;
  std::map<std::string, const BenchPoint*> bm;
  for (const auto& p : b) bm[p.name] = &p;
  std::set<std::string> in_a;
  for (const auto& pa : a) {
    in_a.insert(pa.name);
    auto it = bm.find(pa.name);
    if (it == bm.end()) {
      r.only_a.push_back(pa.name);
      continue;
    }
    const auto& pb = *it->second;
    CompareRow row;
    row.name = pa.name;
    row.a_us = pa.us, row.a_sd = pa.us_stddev, row.a_n = pa.samples;
    row.b_us = pb.us, row.b_sd = pb.us_stddev, row.b_n = pb.samples;
    if (pa.error || pb.error || !(pa.us > 0) || !std::isfinite(pb.us)) {
      row.verdict = "error";
    } else {
      row.delta_pct = (pb.us - pa.us) / pa.us * 100.0;
      row.noise_pct = noise_k * std::sqrt(pa.us_stddev * pa.us_stddev + pb.us_stddev * pb.us_stddev) / pa.us * 100.0;
      row.bar_pct = std::max(threshold_pct, row.noise_pct);
      if (row.delta_pct > row.bar_pct) row.verdict = "regression", ++r.regressions;
      else if (row.delta_pct < -row.bar_pct) row.verdict = "speedup", ++r.speedups;
      else row.verdict = "same";
    }
    r.rows.push_back(row);
  }
  for (const auto& pb : b)
    if (!in_a.count(pb.name)) r.only_b.push_back(pb.name);
  return r;
}

std::string format_compare_table(const CompareResult& r) {
  size_t w = 9;
  for (const auto& row : r.rows) w = std::max(w, row.name.size());
  w = std::min<size_t>(w, 72);
  std::string s = fmt::format("{:<{}}  {:>11} {:>9}  {:>11} {:>9}  {:>8}  {:>7}  {}\n", "benchmark", w, "A us", "A sd",
                              "B us", "B sd", "delta%", "bar%", "verdict");
  for (const auto& row : r.rows) {
    std::string name = row.name.size() > w ? "..." + row.name.substr(row.name.size() - w + 3) : row.name;
    if (row.verdict == "error")
      s += fmt::format("{:<{}}  {:>11.3f} {:>9.3f}  {:>11.3f} {:>9.3f}  {:>8}  {:>7}  {}\n", name, w, row.a_us, row.a_sd,
                       row.b_us, row.b_sd, "-", "-", "error (a run failed or has no time)");
    else
      s += fmt::format("{:<{}}  {:>11.3f} {:>9.3f}  {:>11.3f} {:>9.3f}  {:>+8.2f}  {:>7.2f}  {}\n", name, w, row.a_us,
                       row.a_sd, row.b_us, row.b_sd, row.delta_pct, row.bar_pct,
                       row.verdict == "regression" ? "REGRESSION" : row.verdict);
  }
  for (const auto& n : r.only_a) s += fmt::format("only in A: {}\n", n);
  for (const auto& n : r.only_b) s += fmt::format("only in B: {}\n", n);
  s += fmt::format("{} compared, {} regression(s), {} speedup(s)\n", r.rows.size(), r.regressions, r.speedups);
  return s;
}

// ---- report JSON ---------------------------------------------------------------------------

namespace {

std::string first_string(const json& obj, std::initializer_list<const char*> keys) {
  if (!obj.is_object()) return "";
  for (const char* k : keys)
    if (obj.contains(k) && obj[k].is_string()) return obj[k].get<std::string>();
  return "";
}

}  // namespace

json build_report_json(const ReportInputs& in) {
  json rep{{"tool", "moe-harness report"},
           {"generated_at", in.generated_at},
           {"git_revision_at_report", in.git_revision_now}};
  json inputs = json::array();
  json devices = json::array();
  std::set<std::string> dev_seen;
  json cases = json::array();
  std::map<std::string, std::array<int, 3>> per_kernel;
  std::vector<std::string> kernel_order;
  int passed = 0, failed = 0, skipped = 0;
  for (const auto& [path, d] : in.verify) {
    validate_verify_doc(d, path);
    json info{{"kind", "verify"},
              {"path", path},
              {"tool", first_string(d, {"tool"})},
              {"version", first_string(d, {"version"})},
              {"backend", first_string(d, {"backend"})},
              {"git_revision", first_string(d, {"git_revision", "moe_git_revision", "git_rev", "git_commit"})},
              {"cases", d["cases"].size()}};
    if (d.contains("shard")) info["shard"] = d["shard"];
    if (d.contains("shards")) info["shards"] = d["shards"];
    inputs.push_back(info);
    if (d.contains("devices") && d["devices"].is_array())
      for (const auto& dev : d["devices"])
        if (dev_seen.insert(dev.dump()).second) devices.push_back(dev);
    for (auto c : d["cases"]) {
      c["source"] = path;
      const auto k = c["kernel"].get<std::string>(), st = c["status"].get<std::string>();
      if (!per_kernel.count(k)) kernel_order.push_back(k);
      auto& cnt = per_kernel[k];
      const int slot = st == "pass" ? 0 : st == "fail" ? 1 : 2;
      cnt[slot]++;
      (slot == 0 ? passed : slot == 1 ? failed : skipped)++;
      cases.push_back(std::move(c));
    }
  }
  json kernels = json::array();
  for (const auto& k : kernel_order)
    kernels.push_back({{"kernel", k}, {"passed", per_kernel[k][0]}, {"failed", per_kernel[k][1]}, {"skipped", per_kernel[k][2]}});
  json points = json::array(), errors = json::array();
  for (const auto& [path, d] : in.bench) {
    const auto pts = read_bench_points(d, path);
    json ctx = d.contains("context") && d["context"].is_object() ? d["context"] : json::object();
    inputs.push_back({{"kind", "bench"},
                      {"path", path},
                      {"git_revision", first_string(ctx, {"git_revision", "moe_git_revision", "git_rev", "git_commit"})},
                      {"benchmarks", pts.size()},
                      {"context", ctx}});
    for (const auto& p : pts) (p.error ? errors : points).push_back(p.to_json());
  }
  rep["inputs"] = inputs;
  rep["devices"] = devices;
  rep["configs"] = {{"model_configs_path", in.model_configs_path}, {"models", in.models}, {"tuned_config", in.tuned}};
  // Where the fused MoE configs came from (tuned:exact | tuned:nearest |
  // heuristic | sweep): verify case metrics "config_source", bench labels
  // "source=...". And the tuned tables the inputs say they used.
  {
    std::map<std::string, std::pair<int, int>> sources;  // source -> (verify cases, benchmarks)
    for (const auto& c : cases)
      if (c.contains("metrics") && c["metrics"].is_object() && c["metrics"].contains("config_source") &&
          c["metrics"]["config_source"].is_string())
        sources[c["metrics"]["config_source"].get<std::string>()].first++;
    for (const auto& p : points) {
      const auto kv = parse_label(p.value("label", std::string()));
      if (auto it = kv.find("source"); it != kv.end()) sources[it->second].second++;
    }
    json src = json::array();
    for (const auto& [k, n] : sources) src.push_back({{"source", k}, {"verify_cases", n.first}, {"benchmarks", n.second}});
    rep["configs"]["config_sources"] = src;
    json used = json::array();
    for (const auto& [path, d] : in.verify)
      if (d.contains("tuned_config")) used.push_back({{"input", path}, {"table", d["tuned_config"]}});
    for (const auto& [path, d] : in.bench)
      if (d.contains("moe_bench") && d["moe_bench"].is_object() && d["moe_bench"].contains("tuned_config"))
        used.push_back({{"input", path}, {"table", d["moe_bench"]["tuned_config"]}});
    rep["configs"]["tuned_tables_used"] = used;
  }
  rep["verify"] = {{"summary", {{"passed", passed}, {"failed", failed}, {"skipped", skipped}}},
                   {"kernels", kernels},
                   {"cases", cases}};
  rep["bench"] = {{"points", points}, {"errors", errors}};
  return rep;
}

// ---- report HTML ---------------------------------------------------------------------------

namespace {

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                          "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

std::string fmt_num(double v) {
  if (!std::isfinite(v)) return "-";
  if (v != 0 && (std::fabs(v) >= 1e6 || std::fabs(v) < 1e-3)) return fmt::format("{:.3g}", v);
  if (std::fabs(v) >= 100) return fmt::format("{:.1f}", v);
  return fmt::format("{:.4g}", v);
}

// Axis labels: integers without decimals (M = 4096, not 4096.0).
std::string fmt_tick(double v) {
  if (std::isfinite(v) && std::fabs(v) < 1e15 && v == std::floor(v)) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt_num(v);
}

std::string json_scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return fmt_num(v.get<double>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_null()) return "-";
  return v.dump();
}

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

struct ChartSeries {
  std::string name;
  std::string color;
  bool dashed = false;
  std::vector<double> x, y, err;
};

std::string svg_chart(const std::string& title, const std::string& ylabel, const std::vector<ChartSeries>& series,
                      bool log_y, const std::string& cls) {
  const double W = 540, L = 66, R = 16, T = 30, PH = 220, B = 44;
  // Data ranges.
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  std::set<double> xs;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!(s.x[i] > 0) || !std::isfinite(s.y[i]) || (log_y && !(s.y[i] > 0))) continue;
      xs.insert(s.x[i]);
      xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
      const double e = i < s.err.size() && std::isfinite(s.err[i]) ? s.err[i] : 0;
      const double lo = log_y && s.y[i] - e <= 0 ? s.y[i] : s.y[i] - e;
      ymin = std::min(ymin, lo), ymax = std::max(ymax, s.y[i] + e);
    }
  const int legend_rows = static_cast<int>((series.size() + 1) / 2);
  const double H = T + PH + B + 18.0 * legend_rows + 6;
  std::string o = fmt::format(
      "<svg class=\"chart {}\" role=\"img\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<title>{}</title>\n",
      cls, W, H, W, H, html_escape(title));
  o += fmt::format("<text x=\"{}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>\n", L, html_escape(title));
  const double PW = W - L - R;
  o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#999\"/>\n", L, T, PW, PH);
  if (xs.empty()) {
    o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">no data</text>\n</svg>\n", L + PW / 2, T + PH / 2);
    return o;
  }
  double lx0 = std::log2(xmin), lx1 = std::log2(xmax);
  if (lx1 - lx0 < 1e-9) lx0 -= 1, lx1 += 1;
  const double xpad = (lx1 - lx0) * 0.06;
  lx0 -= xpad, lx1 += xpad;
  auto X = [&](double x) { return L + (std::log2(x) - lx0) / (lx1 - lx0) * PW; };
  double y0, y1;
  if (log_y) {
    y0 = std::log10(ymin), y1 = std::log10(ymax);
    if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
    const double pad = (y1 - y0) * 0.08;
    y0 -= pad, y1 += pad;
  } else {
    y0 = 0;
    y1 = std::max(100.0, ymax * 1.05);
  }
  auto Y = [&](double y) {
    const double v = log_y ? std::log10(y) : y;
    return T + PH - (v - y0) / (y1 - y0) * PH;
  };
  // X ticks: the measured M values, or powers of two when there are many.
  std::vector<double> xt(xs.begin(), xs.end());
  if (xt.size() > 10) {
    xt.clear();
    const int a = static_cast<int>(std::ceil(std::log2(xmin))), b = static_cast<int>(std::floor(std::log2(xmax)));
    const int step = std::max(1, (b - a + 9) / 10);
    for (int e = a; e <= b; e += step) xt.push_back(std::ldexp(1.0, e));
  }
  for (double x : xt) {
    const double px = X(x);
    o += fmt::format("<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" stroke=\"#e4e4e4\"/>", px, T, px, T + PH);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px, T + PH + 14, fmt_tick(x));
  }
  // Y ticks.
  std::vector<double> yt;
  if (log_y) {
    for (int e = static_cast<int>(std::floor(y0)); e <= static_cast<int>(std::ceil(y1)); ++e)
      for (double d : {1.0, 2.0, 5.0}) {
        const double v = d * std::pow(10.0, e);
        if (std::log10(v) >= y0 && std::log10(v) <= y1) yt.push_back(v);
      }
    if (yt.size() < 3) {  // a narrow range: 4 ticks evenly spaced in log space, 2 significant digits
      yt.clear();
      for (int j = 0; j < 4; ++j) {
        const double v = std::pow(10.0, y0 + (y1 - y0) * (0.1 + 0.8 * j / 3.0));
        const double mag = std::pow(10.0, std::floor(std::log10(v)) - 1);
        yt.push_back(std::round(v / mag) * mag);
      }
    }
    if (yt.size() > 12) {
      std::vector<double> k;
      for (double v : yt)
        if (std::fabs(std::log10(v) - std::round(std::log10(v))) < 1e-9) k.push_back(v);
      yt = k;
    }
  } else {
    const double step = y1 > 400 ? 100 : y1 > 200 ? 50 : 20;
    for (double v = 0; v <= y1 + 1e-9; v += step) yt.push_back(v);
  }
  for (double v : yt) {
    const double py = Y(v);
    o += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>", L, py, L + PW, py);
    o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", L - 5, py + 4, fmt_tick(v));
  }
  if (!log_y)  // the roofline
    o += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#444\" stroke-dasharray=\"2 3\"/>\n",
                     L, Y(100), L + PW, Y(100));
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">M (tokens)</text>\n", L + PW / 2, T + PH + 32);
  o += fmt::format("<text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n", T + PH / 2,
                   html_escape(ylabel));
  // Series.
  for (const auto& s : series) {
    std::vector<std::pair<double, size_t>> idx;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (s.x[i] > 0 && std::isfinite(s.y[i]) && (!log_y || s.y[i] > 0)) idx.emplace_back(s.x[i], i);
    std::sort(idx.begin(), idx.end());
    std::string pts;
    for (auto [x, i] : idx) pts += fmt::format("{:.1f},{:.1f} ", X(x), Y(s.y[i]));
    if (idx.size() > 1)
      o += fmt::format("<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n",
                       s.color, s.dashed ? " stroke-dasharray=\"6 4\"" : "", pts);
    for (auto [x, i] : idx) {
      const double e = i < s.err.size() && std::isfinite(s.err[i]) ? s.err[i] : 0;
      if (e > 0) {
        const double lo = log_y && s.y[i] - e <= 0 ? s.y[i] : s.y[i] - e;
        o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\"/>", X(x), Y(lo),
                         Y(s.y[i] + e), s.color);
      }
      o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}: M={} {}{}</title></circle>\n",
                       X(x), Y(s.y[i]), s.color, html_escape(s.name), fmt_tick(x), fmt_num(s.y[i]),
                       e > 0 ? " ± " + fmt_num(e) : "");
    }
  }
  // Legend, two entries per row.
  for (size_t k = 0; k < series.size(); ++k) {
    const double lx = L + (k % 2) * (PW / 2), ly = T + PH + B + 18.0 * static_cast<double>(k / 2);
    o += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}/>", lx, ly, lx + 22,
                     ly, series[k].color, series[k].dashed ? " stroke-dasharray=\"6 4\"" : "");
    o += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", lx + 28, ly + 4, html_escape(series[k].name));
  }
  o += "</svg>\n";
  return o;
}

const char* kCss = R"CSS(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222; max-width: 1240px; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 28px; }
h3 { font-size: 15px; margin-bottom: 6px; } h4 { font-size: 13px; margin: 10px 0 4px; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { background: #d9f2d9; } .fail { background: #f7d4d4; font-weight: bold; } .skip { background: #eee; color: #666; }
.partial { background: #fbe7c6; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 11px; }
.note { color: #666; font-size: 12px; }
td.msg { max-width: 420px; word-break: break-word; }
)CSS";

std::string td(const std::string& text, const char* cls = nullptr) {
  return cls ? fmt::format("<td class=\"{}\">{}</td>", cls, html_escape(text)) : fmt::format("<td>{}</td>", html_escape(text));
}

const char* status_class(const std::string& st) { return st == "pass" ? "pass" : st == "fail" ? "fail" : "skip"; }

std::string kv_table(const std::string& id, const std::vector<std::pair<std::string, std::string>>& rows) {
  std::string o = fmt::format("<table id=\"{}\" class=\"kv\">\n", id);
  for (const auto& [k, v] : rows) o += fmt::format("<tr><th>{}</th>{}</tr>\n", html_escape(k), td(v));
  return o + "</table>\n";
}

double counter_or_nan(const json& p, std::initializer_list<const char*> keys) {
  const auto& c = p["counters"];
  for (const char* k : keys)
    if (c.contains(k) && c[k].is_number()) return c[k].get<double>();
  return NAN;
}

}  // namespace

std::string render_report_html(const json& rep) {
  std::string o = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  o += "<meta name=\"generator\" content=\"moe-harness report\">\n<title>moe-harness report</title>\n<style>";
  o += kCss;
  o += "</style>\n</head>\n<body>\n<h1>moe-harness report</h1>\n";
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
                       td(json_scalar_text(d.value("sm_count", json(nullptr))), "num"), td(fmt_num(mem), "num"),
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
  for (const auto& in : rep["inputs"]) {
    if (in["kind"] != "bench" || !in.contains("context") || in["context"].empty()) continue;
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
                     td(c.contains("seconds") ? fmt_num(c["seconds"].get<double>()) : "-", "num"));
  }
  details += "</table>\n";
  o += "<p class=\"note\">Every case with its parameters and error metrics: see <em>Details</em> below.</p>\n</section>\n";

  // ---- benchmarks
  o += "<section id=\"bench\">\n<h2>Benchmarks</h2>\n";
  const auto& pts = rep["bench"]["points"];
  if (pts.empty()) o += "<p class=\"note\">No benchmark results given.</p>\n";
  std::vector<std::string> kernels;
  std::map<std::string, std::vector<std::string>> models_of;
  for (const auto& p : pts) {
    const std::string k = p["kernel"].get<std::string>(), m = p["model"].get<std::string>();
    if (std::find(kernels.begin(), kernels.end(), k) == kernels.end()) kernels.push_back(k);
    auto& ml = models_of[k];
    if (std::find(ml.begin(), ml.end(), m) == ml.end()) ml.push_back(m);
  }
  for (const auto& k : kernels) {
    o += fmt::format("<h3>{}</h3>\n", html_escape(k));
    for (const auto& m : models_of[k]) {
      std::vector<std::string> variants;
      for (const auto& p : pts)
        if (p["kernel"] == k && p["model"] == m) {
          const std::string var = p["variant"].get<std::string>();
          if (std::find(variants.begin(), variants.end(), var) == variants.end()) variants.push_back(var);
        }
      std::vector<ChartSeries> lat, roof;
      bool any_pct = false;
      for (size_t vi = 0; vi < variants.size(); ++vi) {
        const std::string color = kPalette[vi % std::size(kPalette)];
        const std::string vname = variants[vi].empty() ? k : variants[vi];
        ChartSeries sl{vname, color, false, {}, {}, {}};
        ChartSeries sb{vname + " % read BW", color, false, {}, {}, {}};
        ChartSeries sf{vname + " % bf16 FLOP/s", color, true, {}, {}, {}};
        for (const auto& p : pts) {
          if (p["kernel"] != k || p["model"] != m || p["variant"] != variants[vi]) continue;
          const double x = static_cast<double>(p["M"].get<int64_t>());
          sl.x.push_back(x), sl.y.push_back(p["us"].get<double>()), sl.err.push_back(p["us_stddev"].get<double>());
          const double b = counter_or_nan(p, {"pct_read_bw", "pct_bw"}), f = counter_or_nan(p, {"pct_bf16_flops", "pct_flops"});
          if (std::isfinite(b)) sb.x.push_back(x), sb.y.push_back(b), any_pct = true;
          if (std::isfinite(f)) sf.x.push_back(x), sf.y.push_back(f), any_pct = true;
        }
        lat.push_back(sl);
        if (!sb.x.empty()) roof.push_back(sb);
        if (!sf.x.empty()) roof.push_back(sf);
      }
      const std::string mname = m.empty() ? "(no model)" : m;
      o += fmt::format("<div class=\"charts\" data-kernel=\"{}\" data-model=\"{}\">\n", html_escape(k), html_escape(mname));
      o += svg_chart(fmt::format("{} / {}: latency", k, mname), "µs (log scale)", lat, true, "latency");
      if (any_pct)
        o += svg_chart(fmt::format("{} / {}: % of measured roofline", k, mname), "% of ceiling", roof, false, "roofline");
      else
        o += "<p class=\"note\">No roofline counters (pct_read_bw, pct_bf16_flops) for these runs.</p>\n";
      o += "</div>\n";
    }
  }
  if (!pts.empty()) {
    details += "<h3>Benchmark data</h3>\n<table id=\"bench-points\">\n<tr><th>benchmark</th><th>kernel</th><th>model</th>"
         "<th>variant</th><th>M</th><th>µs</th><th>± sd</th><th>n</th><th>GB/s</th><th>TFLOP/s</th><th>% read BW</th>"
         "<th>% bf16 FLOP/s</th><th>label</th></tr>\n";
    for (const auto& p : pts)
      details += fmt::format("<tr>{}{}{}{}{}{}{}{}{}{}{}{}{}</tr>\n", td(p["name"].get<std::string>(), "mono"),
                       td(p["kernel"].get<std::string>()), td(p["model"].get<std::string>()),
                       td(p["variant"].get<std::string>()), td(json_scalar_text(p["M"]), "num"),
                       td(fmt_num(p["us"].get<double>()), "num"), td(fmt_num(p["us_stddev"].get<double>()), "num"),
                       td(json_scalar_text(p["samples"]), "num"), td(fmt_num(counter_or_nan(p, {"GBps"})), "num"),
                       td(fmt_num(counter_or_nan(p, {"TFLOPs"})), "num"),
                       td(fmt_num(counter_or_nan(p, {"pct_read_bw", "pct_bw"})), "num"),
                       td(fmt_num(counter_or_nan(p, {"pct_bf16_flops", "pct_flops"})), "num"),
                       td(p["label"].get<std::string>(), "mono"));
    details += "</table>\n";
  }
  const auto& errs = rep["bench"]["errors"];
  if (!errs.empty()) {
    o += "<h3>Benchmarks that reported an error</h3>\n<table id=\"bench-errors\">\n<tr><th>benchmark</th><th>message</th></tr>\n";
    for (const auto& e : errs)
      o += fmt::format("<tr>{}{}</tr>\n", td(e["name"].get<std::string>(), "mono"),
                       td(e.value("error_message", ""), "fail"));
    o += "</table>\n";
  }
  o += "</section>\n";
  o += "<section id=\"details\">\n<h2>Details</h2>\n" + details + "</section>\n</body>\n</html>\n";
  return o;
}

}  // namespace moe
