// NumPy .npy files: read and write, so users can run a kernel on tensors they
// captured from a real model (router logits, activations, top-k ids).
//
// Supported: format versions 1.0, 2.0 and 3.0 headers; C order only;
// little-endian element types
//   '<f4' float32   '<f2' float16   '<i4' int32   '<i8' int64 (read only, narrowed
//   to int32 with a range check, since PyTorch index tensors are int64)
//   '<u2' bfloat16 bit patterns (the convention: NumPy has no bf16 type, so a
//         bf16 tensor is stored as its raw 16-bit patterns, e.g. from PyTorch
//         `t.view(torch.int16).numpy().view(numpy.uint16)`; every '<u2' array is
//         read as bf16 and bf16 outputs are written as '<u2').
//   '|i1' int8 codes
//   '|u1' fp8 e4m3 codes (the same convention: `t.view(torch.uint8).numpy()`;
//         whether they are e4m3fn or e4m3fnuz is a parameter of the kernel)
// Anything else (big-endian, Fortran order, other dtypes, bad magic, a header
// that does not parse, a file shorter or longer than its shape says) throws
// InputError naming the file and what is wrong.
//
// Worked example: a (2, 3) float32 array [[1,2,3],[4,5,6]] saved with
// numpy.save is the 6-byte magic "\x93NUMPY", version bytes 01 00, a little-
// endian uint16 header length (118), the header
//   "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with
//   spaces and a final '\n' so the data starts at a multiple of 64 bytes,
// then 24 bytes of float32 data in C (row-major) order.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "moe/dtype.hpp"

namespace moe {

struct NpyArray {
  DType dtype = DType::F32;       // F32, F16, BF16 ('<u2'), I32 ('<i4', or '<i8' narrowed), I8 ('|i1'), F8E4M3 ('|u1')
  std::vector<int64_t> shape;     // () for a scalar
  std::vector<uint8_t> bytes;     // C order, dtype_size(dtype) bytes per element
  std::string source;             // file it came from (for messages)

  int64_t numel() const;
  int rank() const { return static_cast<int>(shape.size()); }
  // Values widened to float (F32/F16/BF16 only; InputError otherwise).
  std::vector<float> to_f32() const;
  // Values as int32 (I32 only; InputError otherwise).
  std::vector<int32_t> to_i32() const;
  std::string shape_str() const;  // "(2, 3)"
};

// Parses an .npy file. Throws InputError (file, reason) on any problem.
NpyArray read_npy(const std::string& path);
// Parses .npy bytes held in memory; `name` is used in messages.
NpyArray parse_npy(std::span<const uint8_t> file, const std::string& name);

// Encodes an array as .npy bytes (version 1.0 header when it fits, else 2.0).
std::vector<uint8_t> encode_npy(DType dtype, std::span<const int64_t> shape, std::span<const uint8_t> data);

// Writes atomically (temporary file beside it, then rename).
void write_npy(const std::string& path, DType dtype, std::span<const int64_t> shape, std::span<const uint8_t> data);
void write_npy_f32(const std::string& path, std::span<const int64_t> shape, std::span<const float> v);
void write_npy_i32(const std::string& path, std::span<const int64_t> shape, std::span<const int32_t> v);
// Rounds float values to `dtype` (F32, F16 or BF16) and writes them in that dtype.
void write_npy_float_as(const std::string& path, DType dtype, std::span<const int64_t> shape,
                        std::span<const float> v);

// The .npy descr string for a dtype: "<f4", "<f2", "<u2" (bf16), "<i4".
std::string_view npy_descr(DType t);

}  // namespace moe
