// verify / bench results documents: validate_verify_doc and the shard mergers
// (a document merged with itself, and alone).
#include "fuzz_util.hpp"
#include "moe/error.hpp"
#include "moe/results.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto doc = fuzz::json_doc(data, size);
  if (!doc) return 0;
  const std::vector<std::pair<std::string, nlohmann::json>> one{{"a.json", *doc}};
  const std::vector<std::pair<std::string, nlohmann::json>> two{{"a.json", *doc}, {"b.json", *doc}};
  try {
    moe::validate_verify_doc(*doc, "a.json");
    moe::merge_verify_docs(one, true);
    moe::merge_verify_docs(two);
  } catch (const moe::InputError&) {
  }
  try {
    if (moe::is_bench_doc(*doc)) {
      moe::merge_bench_docs(one, true);
      moe::merge_bench_docs(two);
    }
  } catch (const moe::InputError&) {
  }
  return 0;
}
