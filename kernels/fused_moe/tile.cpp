#include "kernels/fused_moe/tile.hpp"

#include <charconv>

#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe::fused_moe {

std::string Tile::name() const {
  return fmt::format("{}x{}x{}-w{}-s{}-{}{}", block_m, block_n, block_k, warps, stages,
                     ws ? "wgmma_ws" : wgmma ? "wgmma" : "mma", cluster != 1 ? fmt::format("-c{}", cluster) : "");
}

namespace {

constexpr std::string_view kGrammar =
    "<block_m>x<block_n>x<block_k>-w<warps>-s<stages>-<mma: mma|wgmma|wgmma_ws>[-c<cluster>]";

struct NameReader {
  std::string_view name;
  std::string_view rest;

  [[noreturn]] void fail(std::string_view field, const std::string& what) const {
    throw_input_error(fmt::format("tile name '{}': field '{}': {} (expected {})", name, field, what, kGrammar));
  }
  // `prefix`, then a decimal integer in [1, 4096], then `end` (or the end of the name when end == 0).
  int number(std::string_view field, std::string_view prefix, char end) {
    if (rest.substr(0, prefix.size()) != prefix)
      fail(field, rest.empty() ? std::string("missing") : fmt::format("expected '{}' before it", prefix));
    rest.remove_prefix(prefix.size());
    const size_t stop = end ? rest.find(end) : std::string_view::npos;
    if (end && stop == std::string_view::npos) fail(field, fmt::format("missing the '{}' after it", end));
    const std::string_view digits = rest.substr(0, stop);
    int v = 0;
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (digits.empty() || r.ec != std::errc() || r.ptr != digits.data() + digits.size() || digits[0] == '0' ||
        v < 1 || v > 4096)
      fail(field, fmt::format("expected an integer in [1, 4096], got '{}'", digits));
    rest.remove_prefix(end ? stop + 1 : rest.size());
    return v;
  }
};

}  // namespace

Tile parse_tile(std::string_view name) {
  NameReader in{name, name};
  Tile t;
  t.block_m = in.number("block_m", "", 'x');
  t.block_n = in.number("block_n", "", 'x');
  t.block_k = in.number("block_k", "", '-');
  t.warps = in.number("warps", "w", '-');
  t.stages = in.number("stages", "s", '-');
  const size_t dash = in.rest.find('-');
  const std::string_view mma = in.rest.substr(0, dash);
  if (mma == "wgmma") {
    t.wgmma = true;
  } else if (mma == "wgmma_ws") {
    t.wgmma = t.ws = true;
  } else if (mma != "mma") {
    in.fail("mma", fmt::format("expected mma, wgmma or wgmma_ws, got '{}'", mma));
  }
  if (dash != std::string_view::npos) {
    in.rest.remove_prefix(dash + 1);
    t.cluster = in.number("cluster", "c", 0);
    if (!t.ws) in.fail("cluster", "only wgmma_ws tiles run in clusters");
    if (t.cluster == 1) in.fail("cluster", "a cluster of 1 is written without the '-c1'");
  }
  return t;
}

int find_tile_shape(std::span<const TileShape> shapes, const Tile& t) {
  for (size_t i = 0; i < shapes.size(); ++i)
    if (shapes[i].tile() == t) return static_cast<int>(i);
  return -1;
}

std::string why_not_compiled(std::span<const TileShape> shapes, const Tile& t) {
  if (find_tile_shape(shapes, t) >= 0) return {};
  std::string names;
  for (const TileShape& s : shapes) names += (names.empty() ? "" : ", ") + s.name();
  return fmt::format("tile {} is not a compiled shape of this build (compiled: {})", t.name(), names);
}

}  // namespace moe::fused_moe
