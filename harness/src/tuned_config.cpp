#include "moe/tuned_config.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "moe/atomic_file.hpp"
#include "moe/error.hpp"

namespace moe {
using nlohmann::json;

namespace {

const std::set<std::string>& act_types() {
  static const std::set<std::string> s{"SiLu", "GeLu", "SwigluOAI"};
  return s;
}
const std::set<std::string>& dtypes() {
  static const std::set<std::string> s{"bf16", "fp16", "fp32", "fp8", "fp8_block", "int8"};
  return s;
}

std::string join(const std::set<std::string>& s) {
  std::string o;
  for (const auto& x : s) o += (o.empty() ? "" : ", ") + x;
  return o.empty() ? "(none)" : o;
}

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r')) --b;
  return std::string(s.substr(a, b - a));
}

std::vector<std::string> split_csv(std::string_view line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t c = line.find(',', start);
    out.push_back(trim(line.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start)));
    if (c == std::string_view::npos) break;
    start = c + 1;
  }
  return out;
}

struct Where {
  const std::string& file;
  int line;
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    if (line > 0) throw InputError(fmt::format("{}:{}: field '{}': {}", file, line, field, what));
    throw InputError(fmt::format("{}: row: field '{}': {}", file, field, what));
  }
  int64_t integer(const std::string& field, const std::string& s, int64_t lo, int64_t hi) const {
    int64_t v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
      fail(field, fmt::format("expected an integer, got '{}'", s));
    if (v < lo || v > hi) fail(field, fmt::format("must be in [{}, {}], got {}", lo, hi, v));
    return v;
  }
  double number(const std::string& field, const std::string& s) const {
    double v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
      fail(field, fmt::format("expected a number, got '{}'", s));
    if (!std::isfinite(v) || v < 0) fail(field, fmt::format("must be a finite non-negative number, got '{}'", s));
    return v;
  }
};

void validate_row(const TunedRow& r, const Where& w, const std::set<std::string>& impls) {
  const auto& k = r.key;
  if (k.cu_num < 1) w.fail("cu_num", fmt::format("must be positive, got {}", k.cu_num));
  if (k.token < 1) w.fail("token", fmt::format("must be positive, got {}", k.token));
  if (k.model_dim < 1) w.fail("model_dim", fmt::format("must be positive, got {}", k.model_dim));
  if (k.inter_dim < 1) w.fail("inter_dim", fmt::format("must be positive, got {}", k.inter_dim));
  if (k.expert < 1) w.fail("expert", fmt::format("must be positive, got {}", k.expert));
  if (k.topk < 1 || k.topk > k.expert) w.fail("topk", fmt::format("must be in [1, expert={}], got {}", k.expert, k.topk));
  if (!act_types().count(k.act_type)) w.fail("act_type", fmt::format("unknown act_type '{}' (known: {})", k.act_type, join(act_types())));
  if (!dtypes().count(k.dtype)) w.fail("dtype", fmt::format("unknown dtype '{}' (known: {})", k.dtype, join(dtypes())));
  if (!impls.count(r.impl)) w.fail("impl", fmt::format("unknown impl '{}' (known: {})", r.impl, join(impls)));
  if (r.split_k < 0) w.fail("splitK", "must be >= 0");
  if (r.pad_m < 0) w.fail("pad_m", "must be >= 0");
  if (r.pad_n < 0) w.fail("pad_n", "must be >= 0");
  for (auto [name, v] : {std::pair{"block_m", r.block_m}, {"block_n", r.block_n}, {"block_k", r.block_k}})
    if (v && (*v < 1 || *v > 4096)) w.fail(name, fmt::format("must be in [1, 4096], got {}", *v));
  if (r.warps && (*r.warps < 1 || *r.warps > 32)) w.fail("warps", fmt::format("must be in [1, 32], got {}", *r.warps));
  if (r.stages && (*r.stages < 1 || *r.stages > 16)) w.fail("stages", fmt::format("must be in [1, 16], got {}", *r.stages));
  if (r.us && !(std::isfinite(*r.us) && *r.us >= 0)) w.fail("us", "must be a finite non-negative number");
  if (r.err && !(std::isfinite(*r.err) && *r.err >= 0)) w.fail("err", "must be a finite non-negative number");
  if (k.device.find_first_of(",\"\r\n") != std::string::npos)
    w.fail("device", fmt::format("must not hold a comma, a quote or a line break, got '{}'", k.device));
}

std::string num_text(double v) { return fmt::format("{}", v); }

}  // namespace

std::string TunedKey::str() const {
  return fmt::format("cu_num={} token={} model_dim={} inter_dim={} expert={} topk={} act_type={} dtype={}{}", cu_num, token,
                     model_dim, inter_dim, expert, topk, act_type, dtype,
                     device.empty() ? std::string() : fmt::format(" device='{}'", device));
}

json TunedRow::to_json() const {
  json j{{"cu_num", key.cu_num},       {"token", key.token}, {"model_dim", key.model_dim}, {"inter_dim", key.inter_dim},
         {"expert", key.expert},       {"topk", key.topk},   {"act_type", key.act_type},   {"dtype", key.dtype},
         {"impl", impl},               {"splitK", split_k},  {"pad_m", pad_m},             {"pad_n", pad_n}};
  if (block_m) j["block_m"] = *block_m;
  if (block_n) j["block_n"] = *block_n;
  if (block_k) j["block_k"] = *block_k;
  if (warps) j["warps"] = *warps;
  if (stages) j["stages"] = *stages;
  if (persistent) j["persistent"] = *persistent;
  if (us) j["us"] = *us;
  if (err) j["err"] = *err;
  if (!key.device.empty()) j["device"] = key.device;
  for (const auto& [k, v] : other) j[k] = v;
  if (line > 0) j["line"] = line;
  return j;
}

json TunedLookup::to_json() const {
  return {{"source", source}, {"file", file}, {"exact", exact}, {"any_device", any_device}, {"row", row.to_json()}};
}

const std::vector<std::string>& TunedTable::seed_columns() {
  static const std::vector<std::string> c{"cu_num", "token", "model_dim", "inter_dim", "expert", "topk",
                                          "act_type", "dtype", "impl", "splitK", "pad_m", "pad_n"};
  return c;
}
const std::vector<std::string>& TunedTable::extra_columns() {
  static const std::vector<std::string> c{"block_m", "block_n", "block_k", "warps",
                                          "stages",  "persistent", "us",   "err", "device"};
  return c;
}

TunedTable TunedTable::parse(const std::string& text, const std::string& name, const std::set<std::string>& impls) {
  TunedTable t;
  t.file_ = name;
  std::vector<std::string> lines;
  {
    std::string cur;
    for (char c : text) {
      if (c == '\n') lines.push_back(cur), cur.clear();
      else cur += c;
    }
    if (!cur.empty()) lines.push_back(cur);
  }
  if (lines.empty() || trim(lines[0]).empty())
    throw InputError(fmt::format("{}:1: missing header (expected {})", name, fmt::format("{}", "cu_num,token,...,pad_n")));
  const auto header = split_csv(lines[0]);
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i].empty()) throw InputError(fmt::format("{}:1: header column {} is empty", name, i + 1));
    if (!col.emplace(header[i], i).second)
      throw InputError(fmt::format("{}:1: header: column '{}' appears twice", name, header[i]));
  }
  for (const auto& c : seed_columns())
    if (!col.count(c)) throw InputError(fmt::format("{}:1: header: required column '{}' is missing", name, c));
  const auto& extras = extra_columns();
  for (const auto& h : header)
    if (std::find(seed_columns().begin(), seed_columns().end(), h) == seed_columns().end() &&
        std::find(extras.begin(), extras.end(), h) == extras.end())
      t.other_columns_.push_back(h);

  std::map<TunedKey, int> first_line;
  for (size_t li = 1; li < lines.size(); ++li) {
    const int ln = static_cast<int>(li + 1);
    if (trim(lines[li]).empty()) continue;
    const Where w{name, ln};
    if (lines[li].find('"') != std::string::npos)
      throw InputError(fmt::format("{}:{}: quoted fields are not supported", name, ln));
    const auto f = split_csv(lines[li]);
    if (f.size() != header.size())
      throw InputError(fmt::format("{}:{}: expected {} fields (as in the header), got {}", name, ln, header.size(), f.size()));
    auto get = [&](const std::string& c) -> const std::string& { return f[col.at(c)]; };
    auto opt_int = [&](const char* c, int64_t lo, int64_t hi) -> std::optional<int32_t> {
      if (!col.count(c) || get(c).empty()) return std::nullopt;
      return static_cast<int32_t>(w.integer(c, get(c), lo, hi));
    };
    auto opt_num = [&](const char* c) -> std::optional<double> {
      if (!col.count(c) || get(c).empty()) return std::nullopt;
      return w.number(c, get(c));
    };
    TunedRow r;
    r.line = ln;
    constexpr int64_t kBig = int64_t{1} << 40;
    r.key.cu_num = static_cast<int32_t>(w.integer("cu_num", get("cu_num"), 1, 1 << 20));
    r.key.token = w.integer("token", get("token"), 1, kBig);
    r.key.model_dim = w.integer("model_dim", get("model_dim"), 1, 1 << 24);
    r.key.inter_dim = w.integer("inter_dim", get("inter_dim"), 1, 1 << 24);
    r.key.expert = static_cast<int32_t>(w.integer("expert", get("expert"), 1, 1 << 20));
    r.key.topk = static_cast<int32_t>(w.integer("topk", get("topk"), 1, 1 << 20));
    r.key.act_type = get("act_type");
    r.key.dtype = get("dtype");
    r.impl = get("impl");
    r.split_k = static_cast<int32_t>(w.integer("splitK", get("splitK"), 0, 1 << 16));
    r.pad_m = static_cast<int32_t>(w.integer("pad_m", get("pad_m"), 0, 1 << 16));
    r.pad_n = static_cast<int32_t>(w.integer("pad_n", get("pad_n"), 0, 1 << 16));
    r.block_m = opt_int("block_m", 1, 4096);
    r.block_n = opt_int("block_n", 1, 4096);
    r.block_k = opt_int("block_k", 1, 4096);
    r.warps = opt_int("warps", 1, 32);
    r.stages = opt_int("stages", 1, 16);
    if (auto p = opt_int("persistent", 0, 1)) r.persistent = *p != 0;
    r.us = opt_num("us");
    r.err = opt_num("err");
    if (col.count("device")) r.key.device = get("device");
    for (const auto& c : t.other_columns_) r.other[c] = get(c);
    validate_row(r, w, impls);
    if (auto it = first_line.find(r.key); it != first_line.end())
      throw InputError(fmt::format("{}:{}: field 'token': duplicate key ({}), first on line {}", name, ln, r.key.str(), it->second));
    first_line[r.key] = ln;
    t.rows_.push_back(std::move(r));
  }
  return t;
}

TunedTable TunedTable::load(const std::string& path, const std::set<std::string>& impls) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(fmt::format("{}: cannot open tuned-config table", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return parse(ss.str(), path, impls);
}

TunedTable TunedTable::load_or_empty(const std::string& path, const std::set<std::string>& impls) {
  if (!std::filesystem::exists(path)) {
    TunedTable t;
    t.file_ = path;
    return t;
  }
  return load(path, impls);
}

TunedLookup TunedTable::lookup(const TunedKey& key, const TunedHeuristic& heuristic) const {
  // Among the rows naming `device`: the exact key, else the nearest token bucket.
  // Device names compare without leading/trailing blanks (as the CSV reader trims cells).
  const std::string device = trim(key.device);
  auto find = [&](const std::string& name, bool any_device) -> std::optional<TunedLookup> {
    TunedKey want = key;
    want.device = name;
    const TunedRow* best = nullptr;
    double best_d = INFINITY;
    for (const auto& r : rows_) {
      if (r.key == want)
        return TunedLookup{r, any_device ? "exact(any-device)" : "exact", file_, true, any_device};
      TunedKey k = r.key;
      k.token = want.token;
      if (!(k == want)) continue;
      const double d = std::fabs(std::log2(double(r.key.token)) - std::log2(double(want.token)));
      if (d < best_d - 1e-12 || (std::fabs(d - best_d) <= 1e-12 && best && r.key.token > best->key.token)) {
        best = &r;
        best_d = d;
      }
    }
    if (!best) return std::nullopt;
    return TunedLookup{*best, any_device ? "nearest(any-device)" : "nearest", file_, false, any_device};
  };
  if (auto l = find(device, false)) return *l;
  if (!device.empty())
    if (auto l = find(std::string(), true)) return *l;
  if (!heuristic)
    throw InputError(fmt::format("{}: no tuned row for {} and no heuristic", file_.empty() ? "tuned config" : file_, key.str()));
  TunedRow r = heuristic(key);
  r.key = key;
  r.line = 0;
  return TunedLookup{r, "heuristic", "", false, false};
}

void TunedTable::upsert(const TunedRow& row, const std::set<std::string>& impls) {
  TunedRow r = row;
  r.key.device = trim(r.key.device);  // as it reads back from the CSV
  validate_row(r, Where{file_.empty() ? std::string("tuned config") : file_, 0}, impls);
  for (const auto& [k, v] : r.other)
    if (std::find(other_columns_.begin(), other_columns_.end(), k) == other_columns_.end()) other_columns_.push_back(k);
  for (auto& x : rows_)
    if (x.key == r.key) {
      r.line = x.line;
      x = r;
      return;
    }
  r.line = 0;
  rows_.push_back(r);
}

std::string TunedTable::to_csv() const {
  std::vector<std::string> cols = seed_columns();
  for (const auto& c : extra_columns()) cols.push_back(c);
  for (const auto& c : other_columns_) cols.push_back(c);
  std::string o;
  for (size_t i = 0; i < cols.size(); ++i) o += (i ? "," : "") + cols[i];
  o += "\n";
  std::vector<const TunedRow*> sorted;
  for (const auto& r : rows_) sorted.push_back(&r);
  std::stable_sort(sorted.begin(), sorted.end(), [](const TunedRow* a, const TunedRow* b) { return a->key < b->key; });
  auto oi = [](const std::optional<int32_t>& v) { return v ? std::to_string(*v) : std::string(); };
  auto od = [](const std::optional<double>& v) { return v ? num_text(*v) : std::string(); };
  for (const auto* r : sorted) {
    const auto& k = r->key;
    o += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{}", k.cu_num, k.token, k.model_dim, k.inter_dim, k.expert, k.topk,
                     k.act_type, k.dtype, r->impl, r->split_k, r->pad_m, r->pad_n);
    o += fmt::format(",{},{},{},{},{},{},{},{},{}", oi(r->block_m), oi(r->block_n), oi(r->block_k), oi(r->warps),
                     oi(r->stages), r->persistent ? (*r->persistent ? "1" : "0") : "", od(r->us), od(r->err), k.device);
    for (const auto& c : other_columns_) {
      auto it = r->other.find(c);
      o += "," + (it == r->other.end() ? std::string() : it->second);
    }
    o += "\n";
  }
  return o;
}

void TunedTable::save(const std::string& path) const { write_file_atomic(path, to_csv()); }

json TunedTable::summary() const {
  std::set<int> cus;
  std::set<std::string> impls, devices;
  for (const auto& r : rows_) {
    cus.insert(r.key.cu_num), impls.insert(r.impl);
    if (!r.key.device.empty()) devices.insert(r.key.device);
  }
  return {{"file", file_}, {"rows", rows_.size()}, {"cu_nums", cus}, {"devices", devices}, {"impls", impls}};
}

void update_tuned_file(const std::string& path, const TunedRow& row, const std::set<std::string>& impls) {
  update_file_locked(path, [&] {
    TunedTable t = TunedTable::load_or_empty(path, impls);
    t.upsert(row, impls);
    t.save(path);
  });
}

}  // namespace moe
