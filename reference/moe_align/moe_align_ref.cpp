// CPU reference of moe_align_block_size: one bucket per expert, filled in slot
// order (so ascending within an expert), then concatenated with padding.
#include "reference/moe_align/moe_align_ref.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "moe/error.hpp"
#include "moe/json_numbers.hpp"

namespace moe::ref {

AlignResult moe_align_block_size(const align::AlignShape& shape, std::span<const int32_t> topk_ids,
                                 std::span<const int32_t> expert_map) {
  align::validate_align_ids(shape, topk_ids, expert_map);
  const int64_t n = shape.num_slots();
  const int32_t E = shape.num_experts, bs = shape.block_size;
  const int32_t sentinel = shape.sentinel();

  std::vector<std::vector<int32_t>> bucket(static_cast<size_t>(E));
  for (int64_t i = 0; i < n; ++i) {
    int32_t e = topk_ids[static_cast<size_t>(i)];
    if (e == -1) continue;                                     // masked slot
    if (!expert_map.empty()) e = expert_map[static_cast<size_t>(e)];
    if (e == -1) continue;                                     // expert on another rank
    bucket[static_cast<size_t>(e)].push_back(static_cast<int32_t>(i));
  }

  AlignResult r;
  for (int32_t e = 0; e < E; ++e) {
    const auto& b = bucket[static_cast<size_t>(e)];
    if (b.empty()) continue;                                   // no tokens: no blocks
    const size_t padded = (b.size() + bs - 1) / bs * bs;
    r.sorted_token_ids.insert(r.sorted_token_ids.end(), b.begin(), b.end());
    r.sorted_token_ids.insert(r.sorted_token_ids.end(), padded - b.size(), sentinel);
    r.expert_ids.insert(r.expert_ids.end(), padded / bs, e);
  }
  r.num_tokens_post_padded = static_cast<int32_t>(r.sorted_token_ids.size());
  return r;
}

AlignResult moe_align_block_size(std::span<const int32_t> topk_ids, int64_t num_tokens, int32_t top_k,
                                 int32_t num_experts, int32_t block_size, std::span<const int32_t> expert_map) {
  return moe_align_block_size(align::AlignShape{num_tokens, top_k, num_experts, block_size}, topk_ids, expert_map);
}

AlignFull expand_to_capacity(const AlignResult& r, const align::AlignShape& shape) {
  const int64_t cap = align::align_capacity(shape), blocks = align::align_max_blocks(shape);
  if (static_cast<int64_t>(r.sorted_token_ids.size()) > cap || static_cast<int64_t>(r.expert_ids.size()) > blocks)
    throw Error(fmt::format("moe_align: result of {} slots / {} blocks exceeds the capacity bound {} / {}",
                            r.sorted_token_ids.size(), r.expert_ids.size(), cap, blocks));
  AlignFull f;
  f.sorted_token_ids.assign(static_cast<size_t>(cap), shape.sentinel());
  f.expert_ids.assign(static_cast<size_t>(blocks), -1);
  std::copy(r.sorted_token_ids.begin(), r.sorted_token_ids.end(), f.sorted_token_ids.begin());
  std::copy(r.expert_ids.begin(), r.expert_ids.end(), f.expert_ids.begin());
  f.num_tokens_post_padded = r.num_tokens_post_padded;
  return f;
}

CheckResult compare_align(const AlignFull& ref, std::span<const int32_t> sorted_token_ids,
                          std::span<const int32_t> expert_ids, int32_t num_tokens_post_padded) {
  CheckResult total;
  if (num_tokens_post_padded != ref.num_tokens_post_padded) {
    total.passed = false;
    total.count = 1;
    total.n_outside = 1;
    total.first_mismatches.push_back({-1, double(num_tokens_post_padded), double(ref.num_tokens_post_padded)});
    total.message = fmt::format("FAIL: num_tokens_post_padded {} want {}", num_tokens_post_padded,
                                ref.num_tokens_post_padded);
    return total;
  }
  CheckResult s = check_exact(sorted_token_ids, ref.sorted_token_ids);
  if (!s.passed) {
    s.message = "sorted_token_ids " + s.message;
    return s;
  }
  CheckResult b = check_exact(expert_ids, ref.expert_ids);
  if (!b.passed) {
    b.message = "expert_ids " + b.message;
    return b;
  }
  total.count = s.count + b.count + 1;
  total.message = fmt::format("ok: exact ({} slots, {} blocks, num_tokens_post_padded {})", s.count, b.count,
                              num_tokens_post_padded);
  return total;
}

namespace {

template <typename T>
T int_field(const nlohmann::json& j, const char* key) {
  return json_integer<T>(j.at(key), fmt::format("'{}'", key));
}

std::vector<int32_t> ints(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return {};
  return json_integers<int32_t>(j.at(key), fmt::format("'{}'", key));
}

}  // namespace

AlignGoldenCase parse_align_golden(const nlohmann::json& j, const std::string& file) {
  AlignGoldenCase c;
  try {
    c.file = file;
    c.name = j.at("name").get<std::string>();
    c.generator = j.value("generator", std::string("?"));
    c.shape.num_tokens = int_field<int64_t>(j, "num_tokens");
    c.shape.top_k = int_field<int32_t>(j, "top_k");
    c.shape.num_experts = int_field<int32_t>(j, "num_experts");
    c.shape.block_size = int_field<int32_t>(j, "block_size");
    c.topk_ids = ints(j, "topk_ids");
    c.expert_map = ints(j, "expert_map");
    c.expect_error = j.value("expect_error", false);
    if (!c.expect_error) {
      const auto& e = j.at("expected");
      c.expected.sorted_token_ids = ints(e, "sorted_token_ids");
      c.expected.expert_ids = ints(e, "expert_ids");
      c.expected.num_tokens_post_padded = int_field<int32_t>(e, "num_tokens_post_padded");
      c.capacity = e.contains("capacity") ? int_field<int64_t>(e, "capacity") : 0;
    }
  } catch (const nlohmann::json::exception& ex) {
    throw InputError(fmt::format("moe_align golden {}: malformed: {}", file.empty() ? "?" : file, ex.what()));
  } catch (const InputError& ex) {
    throw InputError(fmt::format("moe_align golden {}: malformed: {}", file.empty() ? "?" : file, ex.what()));
  }
  return c;
}

std::vector<std::string> align_golden_files(const std::string& data_dir) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(data_dir) / "moe_align";
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_directory(dir, ec))
    for (const auto& de : fs::directory_iterator(dir, ec))
      if (de.is_regular_file(ec) && de.path().extension() == ".json") files.push_back(de.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(fmt::format("moe_align: no golden vectors (*.json) in {}", dir.string()));
  return files;
}

AlignGoldenCase load_align_golden_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("moe_align golden {}: cannot read", path));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& ex) {
    throw InputError(fmt::format("moe_align golden {}: not JSON: {}", path, ex.what()));
  }
  require_bounded_numbers(j, path);
  return parse_align_golden(j, path);
}

std::vector<AlignGoldenCase> load_align_golden(const std::string& data_dir) {
  std::vector<AlignGoldenCase> out;
  for (const auto& f : align_golden_files(data_dir)) out.push_back(load_align_golden_file(f));
  return out;
}

GoldenCheck check_align_golden(const AlignGoldenCase& c) {
  GoldenCheck g;
  if (c.expect_error) {
    try {
      (void)moe_align_block_size(c.shape, c.topk_ids, c.expert_map);
      g.message = "FAIL: the reference accepted inputs the golden file marks invalid";
    } catch (const InputError& e) {
      g.passed = true;
      g.message = fmt::format("ok: rejected ({})", e.what());
    }
    return g;
  }
  const AlignResult r = moe_align_block_size(c.shape, c.topk_ids, c.expert_map);
  if (c.capacity != 0 && c.capacity != align::align_capacity(c.shape)) {
    g.message = fmt::format("FAIL: capacity {} but the golden script computed {}", align::align_capacity(c.shape),
                            c.capacity);
    return g;
  }
  if (r.num_tokens_post_padded != c.expected.num_tokens_post_padded) {
    g.message = fmt::format("FAIL: num_tokens_post_padded {} want {}", r.num_tokens_post_padded,
                            c.expected.num_tokens_post_padded);
    return g;
  }
  const CheckResult s = check_exact(r.sorted_token_ids, c.expected.sorted_token_ids);
  if (!s.passed) {
    g.message = "sorted_token_ids " + s.message;
    return g;
  }
  const CheckResult b = check_exact(r.expert_ids, c.expected.expert_ids);
  if (!b.passed) {
    g.message = "expert_ids " + b.message;
    return g;
  }
  g.passed = true;
  g.message = fmt::format("ok: exact ({} slots, {} blocks)", r.sorted_token_ids.size(), r.expert_ids.size());
  return g;
}

}  // namespace moe::ref

#include "moe/inputs.hpp"
#include "moe/rng.hpp"

namespace moe::ref {

const char* align_ids_name(AlignIds k) {
  switch (k) {
    case AlignIds::Softmax: return "softmax";
    case AlignIds::Zipf: return "zipf";
    case AlignIds::Uniform: return "uniform";
    case AlignIds::OneExpert: return "one_expert";
    case AlignIds::FewExperts: return "few_experts";
  }
  return "?";
}

std::vector<int32_t> make_align_ids(const align::AlignShape& shape, AlignIds kind, uint64_t seed,
                                    double masked_fraction) {
  shape.validate();
  const int64_t n = shape.num_slots();
  const int32_t E = shape.num_experts;
  std::vector<int32_t> ids(static_cast<size_t>(n));
  switch (kind) {
    case AlignIds::Softmax:
    case AlignIds::Zipf: {
      InputSpec spec;
      spec.shape = MoeShape{shape.num_tokens, 0, 0, E, shape.top_k};
      spec.routing = kind == AlignIds::Softmax ? RoutingDist::Softmax : RoutingDist::Zipf;
      spec.seed = seed;
      ids = make_routing(spec).topk_ids;
      break;
    }
    case AlignIds::Uniform:
      for (int64_t i = 0; i < n; ++i)
        ids[static_cast<size_t>(i)] =
            static_cast<int32_t>(rng::bits32(seed, rng::Stream::Test, static_cast<uint64_t>(i)) % static_cast<uint32_t>(E));
      break;
    case AlignIds::OneExpert:
      std::fill(ids.begin(), ids.end(), E - 1);
      break;
    case AlignIds::FewExperts: {
      const int32_t few[3] = {0, E / 2, E - 1};
      for (int64_t i = 0; i < n; ++i)
        ids[static_cast<size_t>(i)] = few[rng::bits32(seed, rng::Stream::Test, static_cast<uint64_t>(i)) % 3];
      break;
    }
  }
  if (masked_fraction > 0) {
    const auto thresh = static_cast<uint32_t>(masked_fraction * 4294967296.0);
    for (int64_t i = 0; i < n; ++i)
      if (rng::bits32(seed ^ 0x5bd1e995u, rng::Stream::Test, static_cast<uint64_t>(i)) < thresh)
        ids[static_cast<size_t>(i)] = -1;
  }
  return ids;
}

std::vector<int32_t> make_half_remote_map(int32_t num_experts, uint64_t seed) {
  std::vector<int32_t> map(static_cast<size_t>(num_experts), -1);
  int32_t next = 0;
  for (int32_t e = 0; e < num_experts; ++e)
    if (rng::bits32(seed, rng::Stream::Test, 0x100000000ull + static_cast<uint64_t>(e)) & 1u) map[static_cast<size_t>(e)] = next++;
  return map;
}

}  // namespace moe::ref
