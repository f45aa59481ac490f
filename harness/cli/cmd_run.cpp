// moe-harness run KERNEL: run one kernel on the user's tensors (.npy files),
// write the outputs as .npy, and check them against the CPU reference.
//
//   moe-harness run moe_align --in topk_ids=ids.npy --param num_experts=256
//       --param block_size=128 [--expect sorted_token_ids=theirs.npy ...] --out-dir out/
//   moe-harness run grouped_topk --model deepseek_v3 --in logits=router_logits.npy
//       --in bias=e_score_correction_bias.npy --out-dir out/
// --model NAME fills the routing parameters from configs/model_configs.json
// (explicit --param values win).
//
// Writes out/ref_<output>.npy (CPU reference), out/gpu_<output>.npy (the GPU
// kernel, in a GPU build with a device present) and out/run.json (what ran and
// every check). Checks: GPU kernel vs reference, and each --expect file vs
// reference. Exit 0 when every check passes, 1 on a mismatch or when nothing
// was checked (no GPU kernel ran, no --expect) unless --reference-only, 2 on bad
// input. Inputs, parameters, --expect files and the output folder are all
// validated before anything is written. Each check prints its margin (moe/check.hpp).
// bf16 inputs: '<u2' arrays of bf16 bit patterns (see moe/npy.hpp).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <tuple>

#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "moe/atomic_file.hpp"
#include "moe/check.hpp"
#include "moe/device.hpp"
#include "moe/error.hpp"
#include "moe/model_config.hpp"
#include "moe/npy.hpp"
#include "moe/report.hpp"

#if MOE_HAVE_GPU
#include "moe/gpu.hpp"
#endif
#include "moe/registry.hpp"
#include "moe/run_kernel.hpp"
#include "moe/safetensors.hpp"

namespace moe::cli {
namespace {

// ---- the command ------------------------------------------------------------------

struct Opts {
  std::string kernel;
  std::vector<std::string> in, expect, params;
  std::string out_dir;
  std::string model, model_configs;
  std::string tuned_config;
  std::vector<std::string> experts;  // checkpoint shards holding a layer's experts (--experts)
  int layer = -1;
  bool cpu_only = false;
  bool reference_only = false;
  bool list = false;
};

std::pair<std::string, std::string> split_eq(const std::string& s, const char* flag) {
  const auto eq = s.find('=');
  MOE_REQUIRE(eq != std::string::npos && eq > 0 && eq + 1 < s.size(),
              fmt::format("{} '{}': expected name=value", flag, s));
  return {s.substr(0, eq), s.substr(eq + 1)};
}

std::string dtype_list(const std::vector<DType>& v) {
  std::string s;
  for (auto d : v) s += fmt::format("{}{} ('{}')", s.empty() ? "" : ", ", dtype_name(d), npy_descr(d));
  return s;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::vector<std::string> d;
  for (auto x : shape) d.push_back(x < 0 ? std::string("*") : std::to_string(x));
  return fmt::format("({}{})", fmt::join(d, ", "), shape.size() == 1 ? "," : "");
}

// The one place tensors are read. accepted: the dtypes (empty: any); rank < 0:
// any; bits_only: 16-bit floats without their widened copy (RunInput::bits_only).
Tensor to_tensor(NpyArray a, const std::string& path, const std::string& what, const std::vector<DType>& accepted,
                 int rank, bool bits_only = false) {
  if (!accepted.empty() && std::find(accepted.begin(), accepted.end(), a.dtype) == accepted.end()) {
    // float inputs accept any float encoding; other kinds only the listed dtypes.
    const bool want_float = std::any_of(accepted.begin(), accepted.end(), is_float_dtype);
    if (!(want_float && is_float_dtype(a.dtype)))
      throw InputError(fmt::format("{}: {} must be {}, got {} ('{}')", path, what, dtype_list(accepted),
                                   dtype_name(a.dtype), npy_descr(a.dtype)));
  }
  if (rank >= 0 && a.rank() != rank)
    throw InputError(fmt::format("{}: {} must have rank {}, got shape {}", path, what, rank, a.shape_str()));
  for (auto d : a.shape) MOE_REQUIRE(d > 0, fmt::format("{}: {} has an empty dimension, shape {}", path, what, a.shape_str()));
  Tensor t;
  t.dtype = a.dtype;
  t.shape = a.shape;
  if (a.dtype == DType::I32) {
    t.i = a.to_i32();
  } else if (a.dtype == DType::I8 || a.dtype == DType::F8E4M3) {
    t.codes = std::move(a.bytes);
  } else {
    if (a.dtype == DType::F32 || !bits_only) t.f = a.to_f32();
    if (a.dtype != DType::F32) {
      t.bits.resize(a.bytes.size() / 2);
      std::memcpy(t.bits.data(), a.bytes.data(), a.bytes.size());
    }
  }
  return t;
}

// path: FILE.npy or FILE.safetensors:TENSOR (moe/safetensors.hpp).
Tensor load_tensor(const std::string& path, const std::string& what, const std::vector<DType>& accepted, int rank,
                   bool bits_only = false) {
  return to_tensor(read_tensor_arg(path), path, what, accepted, rank, bits_only);
}

void save_tensor(const std::string& path, const Tensor& t) {
  if (t.dtype == DType::I32) write_npy_i32(path, t.shape, t.i);
  else if (t.dtype == DType::I8 || t.dtype == DType::F8E4M3) write_npy(path, t.dtype, t.shape, t.codes);
  else write_npy_float_as(path, t.dtype, t.shape, t.f);
}

// An --expect file against what the output is: same kind of dtype (any float
// encoding for a float output), rank, and every known extent.
void require_like(const Tensor& got, const std::string& path, const std::string& name, DType want_dtype,
                  const std::vector<int64_t>& want_shape) {
  const bool ok_dtype = got.dtype == want_dtype || (is_float_dtype(got.dtype) && is_float_dtype(want_dtype));
  MOE_REQUIRE(ok_dtype, fmt::format("{}: --expect {} must be {} ('{}'), got {} ('{}')", path, name, dtype_name(want_dtype),
                                    npy_descr(want_dtype), dtype_name(got.dtype), npy_descr(got.dtype)));
  bool ok_shape = got.shape.size() == want_shape.size();
  for (size_t d = 0; ok_shape && d < want_shape.size(); ++d) ok_shape = want_shape[d] < 0 || want_shape[d] == got.shape[d];
  MOE_REQUIRE(ok_shape, fmt::format("{}: --expect {} must have shape {}, got {}", path, name, shape_text(want_shape),
                                    shape_text(got.shape)));
}

// InputError unless `dir` exists as a writable folder or can be created (its
// nearest existing ancestor is a writable folder).
void require_out_dir_usable(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);
  MOE_REQUIRE(!ec, fmt::format("run: --out-dir {}: {}", dir, ec.message()));
  if (fs::exists(p, ec)) {
    MOE_REQUIRE(fs::is_directory(p, ec), fmt::format("run: --out-dir {}: exists and is not a folder", dir));
    check_output_target((p / "run.json").string());
    return;
  }
  while (p.has_parent_path() && p != p.parent_path() && !fs::exists(p, ec)) p = p.parent_path();
  MOE_REQUIRE(fs::is_directory(p, ec), fmt::format("run: --out-dir {}: {} is not a folder", dir, p.string()));
  check_output_target((p / ".moe-run-probe").string());
}

// Every family's run entries, in registry order.
std::vector<const RunKernel*> run_kernels() {
  std::vector<const RunKernel*> v;
  for (const auto& f : kernel_families())
    for (const auto& k : f.run_kernels) v.push_back(&k);
  return v;
}

void print_kernel_list(const std::vector<const RunKernel*>& table) {
  fmt::print("kernels runnable on .npy inputs:\n");
  for (const RunKernel* kp : table) {
    const RunKernel& k = *kp;
    fmt::print("  {}: {}{}\n", k.name, k.summary, k.device ? "" : " [CPU reference only in this build]");
    for (const auto& i : k.inputs)
      fmt::print("    --in {}=FILE.npy  {}, {}{}: {}\n", i.name, i.rank < 0 ? std::string("any rank") : fmt::format("rank {}", i.rank), dtype_list(i.dtypes),
                 i.optional ? ", optional" : "", i.doc);
    for (const auto& p : k.params)
      fmt::print("    --param {}={}  {}{}\n", p.name, p.integer ? "N" : "X", p.doc,
                 p.required ? " (required)" : fmt::format(" (default {})", p.dflt));
    if (k.from_model) fmt::print("    --model NAME  parameters from configs/model_configs.json\n");
    fmt::print("    outputs: {}\n", fmt::join(k.outputs, ", "));
  }
  if (table.empty()) fmt::print("  (none: no kernel reference is built in)\n");
}

// "margin 0.42 (worst [17] got 1.03 want 1.0, bound 0.07)" or "margin not measured".
std::string margin_text(const CheckResult& r) {
  if (!r.margins_known) return "margin not measured";
  std::string s = fmt::format("margin {:.3g}", r.margin());
  if (r.worst.index >= 0)
    s += fmt::format(" (worst [{}] got {:.7g} want {:.7g}, bound {:.3g})", r.worst.index, r.worst.got, r.worst.want, r.worst.bound);
  return s;
}

int run_run(const CommonOptions& c, const Opts& o) {
  const auto table = run_kernels();
  if (o.list) {
    print_kernel_list(table);
    return 0;
  }
  if (o.kernel.empty()) {
    print_kernel_list(table);
    throw InputError("run: no kernel given (the runnable kernels are listed on stdout)");
  }
  const RunKernel* kp = nullptr;
  for (const RunKernel* k : table)
    if (k->name == o.kernel) kp = k;
  if (!kp) {
    std::vector<std::string> names;
    for (const RunKernel* k : table) names.push_back(k->name);
    throw InputError(fmt::format("run: unknown kernel '{}' (runnable: {})", o.kernel, names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
  }
  const RunKernel& k = *kp;
  MOE_REQUIRE(!o.out_dir.empty(), "run: --out-dir is required");

  // Parameters: numbers; integer ones in the int32 range (checked before any cast).
  Params params;
  for (const auto& s : o.params) {
    std::string name, value;
    std::tie(name, value) = split_eq(s, "--param");  // named, not bound: lambdas capture them
    const auto it = std::find_if(k.params.begin(), k.params.end(), [&](const RunParam& p) { return p.name == name; });
    MOE_REQUIRE(it != k.params.end(), fmt::format("run {}: unknown --param '{}'", k.name, name));
    MOE_REQUIRE(!params.count(name), fmt::format("run {}: --param {} given twice", k.name, name));
    double v = 0;
    const auto r = std::from_chars(value.data(), value.data() + value.size(), v);
    MOE_REQUIRE(r.ec == std::errc() && r.ptr == value.data() + value.size() && std::isfinite(v),
                fmt::format("run {}: --param {}={}: expected a number", k.name, name, value));
    MOE_REQUIRE(!it->integer || (v == std::floor(v) && v >= std::numeric_limits<int32_t>::min() &&
                                 v <= std::numeric_limits<int32_t>::max()),
                fmt::format("run {}: --param {}={}: expected an integer in [{}, {}]", k.name, name, value,
                            std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
    params[name] = v;
  }
  if (!o.model.empty()) {
    MOE_REQUIRE(k.from_model, fmt::format("run {}: --model is not supported for this kernel", k.name));
    const std::string path =
        o.model_configs.empty() ? find_config_file("model_configs.json", MOE_SOURCE_DIR) : o.model_configs;
    k.from_model(find_model(load_model_configs(path), o.model), params);
  }
  for (const auto& p : k.params) {
    if (params.count(p.name)) continue;
    MOE_REQUIRE(!p.required, fmt::format("run {}: --param {}=N{} is required ({})", k.name, p.name,
                                         k.from_model ? " (or --model)" : "", p.doc));
    params[p.name] = p.dflt;
  }
  // Inputs.
  Tensors in;
  std::vector<std::string> read_paths;
  for (const auto& s : o.in) {
    std::string name, path;
    std::tie(name, path) = split_eq(s, "--in");
    const auto it = std::find_if(k.inputs.begin(), k.inputs.end(), [&](const RunInput& i) { return i.name == name; });
    MOE_REQUIRE(it != k.inputs.end(), fmt::format("run {}: unknown input '{}'", k.name, name));
    MOE_REQUIRE(!in.count(name), fmt::format("run {}: --in {} given twice", k.name, name));
    in[name] = load_tensor(path, name, it->dtypes, it->rank, it->bits_only);
    read_paths.push_back(path);
  }
  // --experts: w1 and w2 assembled from a checkpoint's per-expert tensors of one layer.
  MOE_REQUIRE(o.experts.empty() == (o.layer < 0), "run: --experts FILE[,FILE...] and --layer L go together");
  if (!o.experts.empty()) {
    const auto input_of = [&](const char* n) {
      return std::find_if(k.inputs.begin(), k.inputs.end(), [&](const RunInput& i) { return i.name == n; });
    };
    MOE_REQUIRE(input_of("w1") != k.inputs.end() && input_of("w2") != k.inputs.end(),
                fmt::format("run {}: --experts gives w1 and w2, which this kernel does not take", k.name));
    MOE_REQUIRE(!in.count("w1") && !in.count("w2"), fmt::format("run {}: give w1/w2 either with --in or with --experts", k.name));
    ExpertWeights ew = assemble_experts(o.experts, o.layer);
    const std::string from = fmt::format("{} layer {} ({} experts)", fmt::join(o.experts, ","), o.layer, ew.experts);
    in["w1"] = to_tensor(std::move(ew.w1), from, "w1", input_of("w1")->dtypes, input_of("w1")->rank, input_of("w1")->bits_only);
    in["w2"] = to_tensor(std::move(ew.w2), from, "w2", input_of("w2")->dtypes, input_of("w2")->rank, input_of("w2")->bits_only);
    read_paths.insert(read_paths.end(), o.experts.begin(), o.experts.end());
  }
  for (const auto& i : k.inputs)
    MOE_REQUIRE(i.optional || in.count(i.name), fmt::format("run {}: missing --in {}=FILE.npy", k.name, i.name));
  k.validate(in, params);
  // --expect files: read and checked against what the outputs will be.
  const OutputSpecs specs = k.output_specs ? k.output_specs(in, params) : OutputSpecs{};
  std::map<std::string, std::string> expect_paths;
  Tensors theirs;
  for (const auto& s : o.expect) {
    std::string name, path;
    std::tie(name, path) = split_eq(s, "--expect");
    MOE_REQUIRE(std::find(k.outputs.begin(), k.outputs.end(), name) != k.outputs.end(),
                fmt::format("run {}: --expect {}: not an output (outputs: {})", k.name, name, fmt::join(k.outputs, ", ")));
    MOE_REQUIRE(!expect_paths.count(name), fmt::format("run {}: --expect {} given twice", k.name, name));
    expect_paths[name] = path;
    theirs[name] = load_tensor(path, name, {}, -1);
    if (specs.count(name)) require_like(theirs[name], path, name, specs.at(name).dtype, specs.at(name).shape);
    read_paths.push_back(path);
  }
  MOE_REQUIRE(!k.expect_together || theirs.empty() || theirs.size() == k.outputs.size(),
              fmt::format("run {}: the outputs are checked together: give --expect for each of {}", k.name,
                          fmt::join(k.outputs, ", ")));
  // Validated and recorded: no kernel of run takes a tuned config.
  const nlohmann::json tuned = open_tuned_config(o.tuned_config).summary;
  // Every file run may write: none of them may be a file it reads.
  std::vector<std::string> targets{o.out_dir + "/run.json"};
  for (const auto& name : k.outputs) {
    targets.push_back(o.out_dir + "/ref_" + name + ".npy");
    targets.push_back(o.out_dir + "/gpu_" + name + ".npy");
  }
  for (const auto& t : targets) check_output_not_input(t, read_paths);
  require_out_dir_usable(o.out_dir);

  nlohmann::json doc{{"tool", "moe-harness run"}, {"version", MOE_VERSION}, {"kernel", k.name}, {"model", o.model},
                     {"backend", gpu_backend()},  {"params", params},      {"checks", nlohmann::json::array()}};
  for (const auto& [name, t] : in) doc["inputs"][name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}};
  doc["tuned_config"] = tuned;

  const Tensors ref = k.reference(in, params);
  for (const auto& [name, t] : theirs) {
    const Tensor& r = ref.at(name);
    if (!specs.count(name)) require_like(t, expect_paths.at(name), name, r.dtype, std::vector<int64_t>(r.shape.size(), -1));
  }
  {
    std::error_code ec;
    std::filesystem::create_directories(o.out_dir, ec);
    MOE_REQUIRE(!ec && std::filesystem::is_directory(o.out_dir),
                fmt::format("run: --out-dir {}: cannot create the folder{}", o.out_dir, ec ? ": " + ec.message() : ""));
  }
  for (const auto& [name, t] : ref) save_tensor(o.out_dir + "/ref_" + name + ".npy", t);
  int failures = 0;
  auto record = [&](const std::string& against, const std::string& output, const CheckResult& r) {
    fmt::print("{} {} vs reference: {}: {}\n", r.passed ? "PASS" : "FAIL", against + " " + output, margin_text(r),
               r.message);
    auto j = r.to_json();
    j["against"] = against;
    j["output"] = output;
    doc["checks"].push_back(j);
    if (!r.passed) ++failures;
  };
  // The GPU kernel, when this build has one and a device is present.
  const bool skip_gpu = o.cpu_only || o.reference_only;
  const bool have_device = !skip_gpu && k.device && !list_devices().empty();
  Tensors got;  // empty: the GPU kernel did not run (or takes no such inputs)
  if (have_device) {
#if MOE_HAVE_GPU
    MOE_GPU_CHECK(hipSetDevice(c.device));
#endif
    got = k.device(in, params);
    for (const auto& [name, t] : got) save_tensor(o.out_dir + "/gpu_" + name + ".npy", t);
    if (!got.empty()) {
      for (const auto& [what, r] : k.check(got, ref, in, params, false)) record("gpu", what, r);
      doc["device"] = list_devices().at(static_cast<size_t>(c.device)).to_json();
    }
  }
  if (got.empty()) {
    const std::string why = o.reference_only ? "--reference-only"
                            : o.cpu_only     ? "--cpu-only"
                            : !k.device      ? "this build has no GPU kernel for it"
                            : have_device    ? "the GPU kernel does not take these inputs"
                                             : "no GPU visible";
    fmt::print("run {}: GPU kernel not run ({})\n", k.name, why);
    doc["gpu_skipped"] = why;
  }
  (void)c;
  if (!theirs.empty()) {
    std::string files;
    for (const auto& [name, path] : expect_paths) files += (files.empty() ? "" : "+") + path;
    for (const auto& [what, r] : k.check(theirs, ref, in, params, true)) record(files, what, r);
  }
  const bool checked = !doc["checks"].empty();
  doc["checked"] = checked;
  doc["reference_only"] = o.reference_only;
  doc["passed"] = checked ? failures == 0 : o.reference_only;
  write_file_atomic(o.out_dir + "/run.json", doc.dump(2) + "\n");
  fmt::print("run {}: outputs in {} ({} check(s), {} failed)\n", k.name, o.out_dir, doc["checks"].size(), failures);
  if (!checked) {
    if (o.reference_only) {
      fmt::print("run {}: reference outputs only (--reference-only)\n", k.name);
      return 0;
    }
    fmt::print(stderr, "run {}: nothing was checked (no GPU kernel ran and no --expect given); pass --reference-only "
                       "to only write the reference outputs\n", k.name);
    return 1;
  }
  return failures > 0 ? 1 : 0;
}

}  // namespace

void register_run(CLI::App& app, std::vector<Command>& out) {
  auto o = std::make_shared<Opts>();  // bound by CLI11, owned by the command
  auto* sub = app.add_subcommand("run", "Run one kernel on .npy inputs, write .npy outputs, check against the reference");
  sub->add_option("kernel", o->kernel, "Kernel (see run --list)");
  sub->add_option("--in", o->in,
                  "Input tensor name=FILE.npy or name=FILE.safetensors:TENSOR (repeatable); .npy bf16 as '<u2' bit "
                  "patterns, fp8 e4m3 codes as '|u1', int8 as '|i1'");
  sub->add_option("--experts", o->experts,
                  "Checkpoint shards (FILE.safetensors[,FILE...]) whose layer --layer experts give w1 and w2 "
                  "(Mixtral block_sparse_moe.experts.N.w1/w3/w2 or DeepSeek/Qwen mlp.experts.N.gate/up/down_proj)")
      ->delimiter(',');
  sub->add_option("--layer", o->layer, "Layer index for --experts")->check(CLI::NonNegativeNumber);
  sub->add_option("--param", o->params, "Parameter name=value (repeatable)");
  sub->add_option("--model", o->model, "Take the kernel's parameters from this model's config (see moe-harness list)");
  sub->add_option("--model-configs", o->model_configs, "Model configs file (default: configs/model_configs.json)");
  sub->add_option("--expect", o->expect, "Output name=FILE.npy to check against the reference (repeatable)");
  sub->add_option("--out-dir", o->out_dir, "Folder for ref_*.npy, gpu_*.npy and run.json");
  add_tuned_config_option(sub, o->tuned_config);
  sub->add_flag("--cpu-only", o->cpu_only, "Do not run the GPU kernel");
  sub->add_flag("--reference-only", o->reference_only,
                "Only write the reference outputs (no GPU kernel); exit 0 even when nothing is checked");
  sub->add_flag("--list", o->list, "List the runnable kernels, their inputs and parameters");
  out.push_back({sub, [o](const CommonOptions& c) { return run_run(c, *o); }});
}

}  // namespace moe::cli
