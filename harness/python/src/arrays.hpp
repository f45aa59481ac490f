// NumPy arrays in and out of the bindings: dtype, rank and shape checks with
// one-line messages naming the tensor (TypeError for a wrong dtype, ValueError
// for a wrong rank or shape), 16-bit floats as uint16 bit patterns.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "moe/dtype.hpp"

namespace moe::python {

namespace py = pybind11;

// A float tensor widened to fp32 values; `dtype` is the precision its elements
// were stored in (BF16/F16 for uint16 bits and float16, F32 for float32).
struct FloatTensor {
  std::vector<float> values;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
  int64_t dim(size_t i) const { return shape[i]; }
};

struct IdTensor {
  std::vector<int32_t> values;
  std::vector<int64_t> shape;
  int64_t dim(size_t i) const { return shape[i]; }
};

struct ByteTensor {
  std::vector<uint8_t> values;
  std::vector<int64_t> shape;
};

// "(2, 3)"
std::string shape_text(const std::vector<int64_t>& shape);

// The dtype of 16-bit bit patterns: "bf16" or "fp16" (None: bf16).
DType bits_dtype(const std::optional<std::string>& name);

// obj: a NumPy array (or anything numpy.asarray accepts) of float32, float16, or
// uint16 holding `bits` (BF16/F16) bit patterns; float64 only with allow_f64.
// rank < 0: any rank.
FloatTensor float_tensor(py::handle obj, std::string_view name, int rank, DType bits, bool allow_f64 = false);
// int32, or int64 with every value inside int32.
IdTensor id_tensor(py::handle obj, std::string_view name, int rank);
// uint8 or int8 codes (int8 reinterpreted as bytes).
ByteTensor byte_tensor(py::handle obj, std::string_view name);

template <typename T>
py::array_t<T> to_array(const std::vector<T>& v, std::vector<py::ssize_t> shape) {
  py::array_t<T> a(shape);
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(T));
  return a;
}

}  // namespace moe::python
