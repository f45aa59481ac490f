// .npy files: parse_npy, then the element conversions a command applies.
#include "fuzz_util.hpp"
#include "moe/error.hpp"
#include "moe/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const moe::NpyArray a = moe::parse_npy(fuzz::bytes(data, size), "fuzz.npy");
    if (moe::is_float_dtype(a.dtype)) a.to_f32();
    if (a.dtype == moe::DType::I32) a.to_i32();
  } catch (const moe::InputError&) {
  }
  return 0;
}
