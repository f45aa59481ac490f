// The kernel families: each one's verification cases and `run` entries. The CLI's
// verify, list and run commands walk this registry.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/run_kernel.hpp"
#include "moe/model_config.hpp"

namespace moe {

class TunedTable;

struct CaseResult {
  bool passed = false;
  bool skipped = false;
  std::string message;       // one line
  nlohmann::json metrics = nlohmann::json::object();
};

// The result of a GPU case in a build without a GPU backend. The verify runner
// already skips needs_gpu cases when no device is visible, so this is only the
// compile-time stand-in for the GPU branch of a case.
inline CaseResult skipped_without_gpu_backend() {
  CaseResult r;
  r.skipped = true;
  r.message = "skipped: built without a GPU backend";
  return r;
}

struct VerifyCase {
  std::string kernel;   // family, e.g. "moe_align"
  std::string name;     // unique within the family, e.g. "golden/small_e8"
  bool needs_gpu = false;
  // The case's parameters, as in the results JSON and for verify --where. Names are
  // the family's own (M, E, top_k, scheme, ...), except "model": the
  // configs/model_configs.json name of the model the case's shape comes from, set
  // on every case built from a model and absent on the others.
  nlohmann::json params = nlohmann::json::object();
  std::function<CaseResult()> run;
};

struct VerifyOptions {
  std::string data_dir = "data";   // golden vectors
  bool gpu_available = false;
  bool quick = false;              // a short subset (CI, smoke)
  uint64_t seed = 0;
  // --tuned-config: the table families with tuned configs (fused_moe) look up; null: their heuristics.
  std::shared_ptr<const TunedTable> tuned_table;
  ModelTable models;               // configs/model_configs.json: the model cases come from its sweeps
};

struct KernelFamily {
  std::string name;
  std::string summary;
  std::vector<std::string> impls;
  std::vector<std::string> dtypes;
  std::function<std::vector<VerifyCase>(const VerifyOptions&)> cases;
  std::vector<RunKernel> run_kernels;  // what `moe-harness run` offers of this family
};

// Families in registration order. First call registers every family.
const std::vector<KernelFamily>& kernel_families();

}  // namespace moe
