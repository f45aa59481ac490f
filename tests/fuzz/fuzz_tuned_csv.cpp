// Tuned-config CSV: TunedTable::parse with the fused_moe family's impl names;
// a table that parses must survive its own writer (to_csv parses back to the
// same rows) and a lookup.
#include <cstdlib>
#include <set>

#include "fuzz_util.hpp"
#include "moe/error.hpp"
#include "moe/registry.hpp"
#include "moe/tuned_config.hpp"

namespace {
const std::set<std::string>& fused_moe_impls() {
  static const std::set<std::string> impls = [] {
    for (const auto& f : moe::kernel_families())
      if (f.name == "fused_moe") return std::set<std::string>(f.impls.begin(), f.impls.end());
    std::abort();  // the family must exist
  }();
  return impls;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& impls = fused_moe_impls();
  moe::TunedTable t;
  try {
    t = moe::TunedTable::parse(fuzz::text(data, size), "fuzz.csv", impls);
  } catch (const moe::InputError&) {
    return 0;
  }
  const moe::TunedTable again = moe::TunedTable::parse(t.to_csv(), "fuzz-rewritten.csv", impls);
  if (again.rows().size() != t.rows().size()) std::abort();
  for (const auto& row : t.rows()) {
    try {
      t.lookup(row.key);
    } catch (const moe::InputError&) {
    }
  }
  t.summary();
  return 0;
}
