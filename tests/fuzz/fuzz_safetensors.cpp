// safetensors files: parse_safetensors for the tensor "t" (the corpus files
// name their tensor "t"), which validates the whole header first.
#include "fuzz_util.hpp"
#include "moe/error.hpp"
#include "moe/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const moe::NpyArray a = moe::parse_safetensors(fuzz::bytes(data, size), "fuzz.safetensors", "t");
    if (moe::is_float_dtype(a.dtype)) a.to_f32();
    if (a.dtype == moe::DType::I32) a.to_i32();
  } catch (const moe::InputError&) {
  }
  return 0;
}
