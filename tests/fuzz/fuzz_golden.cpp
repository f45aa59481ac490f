// Golden files: the moe_align parser (reference/moe_align) and the check of
// the reference against the case; and the routing and quant families' golden
// files, which only their verify cases read: the input is written as both
// files into a scratch data folder and every "golden/..." case is run, as
// `verify` would (CPU only).
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "fuzz_util.hpp"
#include "moe/error.hpp"
#include "moe/registry.hpp"
#include "reference/moe_align/moe_align_ref.hpp"

namespace {

struct Scratch {
  std::filesystem::path dir;
  moe::VerifyOptions options;
  Scratch() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "moe-fuzz-golden-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) std::abort();
    dir = tmpl;
    std::filesystem::create_directories(dir / "routing");
    std::filesystem::create_directories(dir / "quant");
    options.data_dir = dir.string();
    options.quick = true;
    try {
      options.models = moe::load_model_table("configs/model_configs.json");
    } catch (const moe::InputError&) {
      // Run from elsewhere: the golden cases do not need the models.
    }
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

void run_golden_cases(const Scratch& s, const std::string& family) {
  for (const auto& f : moe::kernel_families()) {
    if (f.name != family) continue;
    for (const auto& c : f.cases(s.options)) {
      if (c.name.rfind("golden/", 0) != 0 || c.needs_gpu || !c.run) continue;
      try {
        c.run();
      } catch (const moe::InputError&) {
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Scratch scratch;
  if (const auto doc = fuzz::json_doc(data, size)) {
    try {
      const auto c = moe::ref::parse_align_golden(*doc, "fuzz.json");
      moe::ref::check_align_golden(c);
    } catch (const moe::InputError&) {
    }
  }
  for (const char* file : {"routing/golden_routing.json", "quant/golden.json"}) {
    std::ofstream(scratch.dir / file, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                                 static_cast<std::streamsize>(size));
  }
  run_golden_cases(scratch, "routing");
  run_golden_cases(scratch, "quant");
  return 0;
}
