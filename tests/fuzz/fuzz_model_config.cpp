// Model configs (configs/model_configs.json): parse_model_table, then the
// input spec of every model it accepts.
#include "fuzz_util.hpp"
#include "moe/error.hpp"
#include "moe/model_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto doc = fuzz::json_doc(data, size);
  if (!doc) return 0;
  try {
    const moe::ModelTable table = moe::parse_model_table(*doc, "fuzz.json");
    for (const auto& m : table.models) {
      try {
        moe::layer_input_spec(m, 1);
      } catch (const moe::InputError&) {
      }
    }
  } catch (const moe::InputError&) {
  }
  return 0;
}
