// GPU tensors of other libraries (torch, CuPy, JAX, ...) taken zero copy through
// the DLPack protocol: __dlpack_device__() says where a tensor lives, and
// __dlpack__(stream=S) returns a "dltensor" capsule after making stream S wait
// for the producer's pending work on it. The capsule is renamed "used_dltensor"
// (consumed: its own destructor then leaves the tensor alone) and the
// DLManagedTensor's deleter runs when the borrow ends.
//
// DLPack ABI: the unversioned DLManagedTensor of dlpack.h (0.6 in Debian
// bookworm's libdlpack-dev), which producers return when the consumer passes no
// max_version. GPU builds only.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <dlpack/dlpack.h>
#include <pybind11/pybind11.h>

namespace moe::python {

namespace py = pybind11;

// The element types the GPU entries take.
// U8 / I8: 8-bit codes (fp8 e4m3 codes as uint8, int8 codes as int8).
enum class ElemType { BF16, F16, F32, I32, U8, I8 };
std::string_view elem_type_name(ElemType t);  // "bfloat16", "float16", "float32", "int32", "uint8", "int8"

// A device tensor borrowed from its producer; move-only. Destroy it with the GIL
// held: a producer's deleter may touch Python objects (NumPy's does).
class BorrowedTensor {
 public:
  BorrowedTensor() = default;
  BorrowedTensor(const BorrowedTensor&) = delete;
  BorrowedTensor& operator=(const BorrowedTensor&) = delete;
  BorrowedTensor(BorrowedTensor&& o) noexcept;
  BorrowedTensor& operator=(BorrowedTensor&& o) noexcept;
  ~BorrowedTensor();

  std::string name;
  void* data = nullptr;  // first element (DLTensor::data + byte_offset)
  std::vector<int64_t> shape;
  ElemType type = ElemType::F32;
  int device_id = 0;
  int64_t numel() const;

 private:
  friend BorrowedTensor borrow_gpu_tensor(py::handle, std::string_view, int, std::initializer_list<ElemType>,
                                          const py::object&);
  DLManagedTensor* owner_ = nullptr;
};

// `obj` as a GPU tensor of this backend (kDLCUDA, or kDLROCM in a HIP build).
// TypeError: no __dlpack__/__dlpack_device__, another device type, a dtype not
// in `allowed`. ValueError: rank (rank < 0: any), strides other than row-major
// contiguous (extent-1 dimensions aside). Every message starts with `name`.
// producer_stream: the value passed as __dlpack__(stream=...).
BorrowedTensor borrow_gpu_tensor(py::handle obj, std::string_view name, int rank, std::initializer_list<ElemType> allowed,
                                 const py::object& producer_stream);

// The __dlpack__(stream=...) value that names the stream handle `s` (the
// protocol numbers CUDA's legacy default stream 1, since 0 is ambiguous).
py::object producer_stream_arg(uintptr_t s);

}  // namespace moe::python
