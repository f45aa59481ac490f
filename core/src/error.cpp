#include "moe/error.hpp"

#include <fmt/format.h>

#include "moe/dtype.hpp"
#include "moe/gpu.hpp"

namespace moe {

void throw_input_error(const std::string& msg) { throw InputError(msg); }

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "fp32";
    case DType::BF16: return "bf16";
    case DType::F16: return "fp16";
    case DType::I32: return "i32";
    case DType::I8: return "i8";
    case DType::F8E4M3: return "fp8_e4m3";
  }
  return "?";
}

DType parse_dtype(std::string_view s) {
  if (s == "bf16") return DType::BF16;
  if (s == "fp16" || s == "f16") return DType::F16;
  if (s == "fp32" || s == "f32") return DType::F32;
  if (s == "i32") return DType::I32;
  if (s == "i8") return DType::I8;
  if (s == "fp8_e4m3") return DType::F8E4M3;
  throw_input_error(fmt::format("unknown dtype '{}' (expected bf16, fp16, fp32, i32, i8 or fp8_e4m3)", s));
}

#if MOE_HAVE_GPU
namespace gpu {

void check_failed(hipError_t err, const char* call, const char* file, int line) {
  throw GpuError(fmt::format("{} failed: {}: {} at {}:{}", call, hipGetErrorName(err), hipGetErrorString(err), file, line),
                 static_cast<int>(err));
}

int device_count() {
  int n = 0;
  const hipError_t e = hipGetDeviceCount(&n);
  if (e != hipSuccess) {
    (void)hipGetLastError();  // no driver / no device: clear the sticky error
    return 0;
  }
  return n;
}

}  // namespace gpu
#endif

}  // namespace moe
