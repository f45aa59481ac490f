#include "moe/error.hpp"

#include <fmt/format.h>

#include "moe/dtype.hpp"
#include "moe/gpu.hpp"

namespace moe {

void throw_input_error(const std::string& msg) { throw InputError(msg); }

namespace {
// Length of the valid UTF-8 sequence starting at s[i], 0 when there is none
// (stray continuation byte, overlong form, surrogate, above U+10FFFF, cut short).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 == 0xE0) n = 3, lo = 0xA0;
  else if (b0 == 0xED) n = 3, hi = 0x9F;
  else if (b0 >= 0xE1 && b0 <= 0xEF) n = 3;
  else if (b0 == 0xF0) n = 4, lo = 0x90;
  else if (b0 == 0xF4) n = 4, hi = 0x8F;
  else if (b0 >= 0xF1 && b0 <= 0xF3) n = 4;
  else return 0;
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}
}  // namespace

std::string utf8_sanitized(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

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
