// A kernel that `moe-harness run` can run on a user's tensors: its inputs, parameters,
// outputs, CPU reference, GPU kernel and checks. Each family folder under
// harness/families/ provides its entries; the family registry (moe/registry.hpp)
// carries them, and cmd_run only walks the registry.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "moe/check.hpp"
#include "moe/dtype.hpp"
#include "moe/error.hpp"
#include "moe/model_config.hpp"

namespace moe {

struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<float> f;    // float dtypes, widened (empty for a RunInput::bits_only 16-bit input)
  std::vector<int32_t> i;  // I32
  std::vector<uint16_t> bits;  // BF16/F16: the raw 16-bit values as read
  std::vector<uint8_t> codes;  // I8 / F8E4M3: the raw bytes
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};
using Tensors = std::map<std::string, Tensor>;
using Params = std::map<std::string, double>;
using Checks = std::vector<std::pair<std::string, CheckResult>>;  // (output(s), result)

struct RunInput {
  std::string name;
  std::vector<DType> dtypes;  // accepted
  int rank = 1;  // -1: any (the kernel's validate checks it)
  bool optional = false;
  std::string doc;
  // 16-bit floats kept only as their raw bits (Tensor::f left empty): model-sized
  // weights, which the kernel's reference widens slice by slice.
  bool bits_only = false;
};
struct RunParam {
  std::string name;
  bool required = false;
  double dflt = 0;
  std::string doc;
  bool integer = true;
};

// What an output will be, known from the inputs before the reference runs (so a
// bad --expect file is rejected before any work). A shape entry of -1: any extent.
struct OutputSpec {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};
using OutputSpecs = std::map<std::string, OutputSpec>;

struct RunKernel {
  std::string name;
  std::string summary;
  std::vector<RunInput> inputs;
  std::vector<RunParam> params;
  std::vector<std::string> outputs;
  // The outputs are checked together: --expect must give all of them or none.
  bool expect_together = false;
  // Checks shapes and relations between inputs and params (InputError).
  std::function<void(const Tensors&, const Params&)> validate;
  std::function<Tensors(const Tensors&, const Params&)> reference;
  // The GPU kernel; null when this build has none for the kernel.
  std::function<Tensors(const Tensors&, const Params&)> device;
  // Compares outputs (all of them from the GPU; the --expect subset from a
  // user) with the reference; `external` marks user files (may follow a looser
  // layout, documented per kernel).
  std::function<Checks(const Tensors& got, const Tensors& ref, const Tensors& in, const Params&, bool external)> check;
  // Fills parameters from a model config (--model); explicit --param wins.
  std::function<void(const ModelConfig&, Params&)> from_model;
  // Dtype and shape of every output from validated inputs; null: known only from
  // the reference (then --expect files are checked for dtype and rank).
  std::function<OutputSpecs(const Tensors&, const Params&)> output_specs;
};

// Helpers of the per-family entries.
// An integer parameter as int32: InputError naming it when it is not an integer
// in the int32 range (checked before the cast).
inline int32_t int_param(const Params& p, const char* k) {
  const double v = p.at(k);
  constexpr double lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
  MOE_REQUIRE(v >= lo && v <= hi && v == static_cast<double>(static_cast<int64_t>(v)),
              "--param " + std::string(k) + ": expected an integer in [-2147483648, 2147483647], got " + std::to_string(v));
  return static_cast<int32_t>(v);
}
// A float-valued tensor of dtype dt (held widened in f).
inline Tensor float_tensor(DType dt, std::vector<float> v, std::vector<int64_t> shape) {
  Tensor t;
  t.dtype = dt;
  t.shape = std::move(shape);
  t.f = std::move(v);
  return t;
}
inline Tensor i32_tensor(std::vector<int32_t> v, std::vector<int64_t> shape) {
  Tensor t;
  t.dtype = DType::I32;
  t.shape = std::move(shape);
  t.i = std::move(v);
  return t;
}

}  // namespace moe
