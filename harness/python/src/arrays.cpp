#include "arrays.hpp"

#include <limits>

#include <fmt/format.h>

namespace moe::python {

std::string shape_text(const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

DType bits_dtype(const std::optional<std::string>& name) {
  if (!name) return DType::BF16;
  const DType t = parse_dtype(*name);
  if (t != DType::BF16 && t != DType::F16)
    throw py::value_error(fmt::format("dtype '{}' does not name 16-bit float bits (expected bf16 or fp16)", *name));
  return t;
}

namespace {

py::array as_array(py::handle obj, std::string_view name) {
  py::array a = py::array::ensure(obj);
  if (!a) throw py::type_error(fmt::format("{}: expected a NumPy array, got {}", name, py::str(py::type::of(obj)).cast<std::string>()));
  return a;
}

std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

void require_rank(const py::array& a, std::string_view name, int rank) {
  if (rank >= 0 && a.ndim() != rank)
    throw py::value_error(fmt::format("{}: expected rank {}, got shape {}", name, rank, shape_text(shape_of(a))));
}

std::string dtype_text(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// A dtype's kind and item size asked through Python: right whatever NumPy the
// pybind11 headers were written for (before 2.12 they read NumPy 1's descriptor
// layout, and NumPy 2 moved the item size).
struct KindSize {
  char kind;
  int64_t itemsize;
};
KindSize kind_size(const py::array& a) {
  const py::object d = a.attr("dtype");
  return {d.attr("kind").cast<std::string>().at(0), d.attr("itemsize").cast<int64_t>()};
}

}  // namespace

FloatTensor float_tensor(py::handle obj, std::string_view name, int rank, DType bits, bool allow_f64) {
  const py::array a = as_array(obj, name);
  FloatTensor t;
  t.shape = shape_of(a);
  const auto n = static_cast<size_t>(a.size());
  t.values.resize(n);
  const auto [kind, itemsize] = kind_size(a);
  if (kind == 'f' && itemsize == 4) {
    require_rank(a, name, rank);
    const auto c = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
    std::memcpy(t.values.data(), c.data(), n * sizeof(float));
    t.dtype = DType::F32;
  } else if (kind == 'f' && itemsize == 8 && allow_f64) {
    require_rank(a, name, rank);
    const auto c = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
    for (size_t i = 0; i < n; ++i) t.values[i] = static_cast<float>(c.data()[i]);
    t.dtype = DType::F32;
  } else if ((kind == 'f' && itemsize == 2) || (kind == 'u' && itemsize == 2)) {
    require_rank(a, name, rank);
    // float16 and uint16 share the layout: read both as bits.
    const py::array bits_view = a.attr("view")(py::dtype("uint16"));
    const auto c = py::array_t<uint16_t, py::array::c_style | py::array::forcecast>::ensure(bits_view);
    t.dtype = kind == 'f' ? DType::F16 : bits;
    for (size_t i = 0; i < n; ++i)
      t.values[i] = t.dtype == DType::BF16 ? bf16_bits_to_f32(c.data()[i]) : f16_bits_to_f32(c.data()[i]);
  } else {
    throw py::type_error(fmt::format("{}: dtype {} not supported (expected float32, float16, or uint16 holding {} bits{})",
                                     name, dtype_text(a), dtype_name(bits), allow_f64 ? ", or float64" : ""));
  }
  return t;
}

IdTensor id_tensor(py::handle obj, std::string_view name, int rank) {
  const py::array a = as_array(obj, name);
  const auto [kind, itemsize] = kind_size(a);
  if (kind != 'i' || (itemsize != 4 && itemsize != 8))
    throw py::type_error(fmt::format("{}: dtype {} not supported (expected int32 or int64)", name, dtype_text(a)));
  require_rank(a, name, rank);
  IdTensor t;
  t.shape = shape_of(a);
  const auto n = static_cast<size_t>(a.size());
  t.values.resize(n);
  if (itemsize == 4) {
    const auto c = py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(a);
    std::memcpy(t.values.data(), c.data(), n * sizeof(int32_t));
  } else {
    const auto c = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    for (size_t i = 0; i < n; ++i) {
      const int64_t v = c.data()[i];
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
        throw py::value_error(fmt::format("{}: element {} = {} does not fit int32", name, i, v));
      t.values[i] = static_cast<int32_t>(v);
    }
  }
  return t;
}

ByteTensor byte_tensor(py::handle obj, std::string_view name) {
  const py::array a = as_array(obj, name);
  const auto [kind, itemsize] = kind_size(a);
  if ((kind != 'u' && kind != 'i') || itemsize != 1)
    throw py::type_error(fmt::format("{}: dtype {} not supported (expected uint8 or int8 codes)", name, dtype_text(a)));
  const py::array bytes = a.attr("view")(py::dtype("uint8"));
  const auto c = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(bytes);
  ByteTensor t;
  t.shape = shape_of(a);
  t.values.assign(c.data(), c.data() + c.size());
  return t;
}

}  // namespace moe::python
