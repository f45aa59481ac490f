#include "dlpack_tensor.hpp"

#include <utility>

#include <fmt/format.h>

#include "arrays.hpp"

namespace moe::python {
namespace {

#if defined(MOE_BACKEND_HIP)
constexpr int kOurDevice = kDLROCM;
constexpr const char* kOurDeviceName = "ROCm";
#else
constexpr int kOurDevice = kDLCUDA;
constexpr const char* kOurDeviceName = "CUDA";
#endif

std::string device_type_name(int t) {
  switch (t) {
    case kDLCPU: return "CPU";
    case kDLCUDA: return "CUDA";
    case kDLCUDAHost: return "CUDA pinned host memory";
    case kDLCUDAManaged: return "CUDA managed memory";
    case kDLROCM: return "ROCm";
    case kDLROCMHost: return "ROCm pinned host memory";
    default: return fmt::format("DLPack device type {}", t);
  }
}

bool matches(const DLDataType& d, ElemType t) {
  if (d.lanes != 1) return false;
  switch (t) {
    case ElemType::BF16: return d.code == kDLBfloat && d.bits == 16;
    case ElemType::F16: return d.code == kDLFloat && d.bits == 16;
    case ElemType::F32: return d.code == kDLFloat && d.bits == 32;
    case ElemType::I32: return d.code == kDLInt && d.bits == 32;
    case ElemType::U8: return d.code == kDLUInt && d.bits == 8;
    case ElemType::I8: return d.code == kDLInt && d.bits == 8;
  }
  return false;
}

std::string dl_dtype_text(const DLDataType& d) {
  const char* kind = d.code == kDLInt ? "int" : d.code == kDLUInt ? "uint" : d.code == kDLFloat ? "float"
                   : d.code == kDLBfloat ? "bfloat" : nullptr;
  const std::string base = kind ? fmt::format("{}{}", kind, d.bits) : fmt::format("DLPack type code {} bits {}", d.code, d.bits);
  return d.lanes == 1 ? base : fmt::format("{} x{} lanes", base, d.lanes);
}

std::string allowed_text(std::initializer_list<ElemType> allowed) {
  std::string s;
  size_t i = 0;
  for (ElemType t : allowed) {
    if (i > 0) s += i + 1 == allowed.size() ? " or " : ", ";
    s += elem_type_name(t);
    ++i;
  }
  return s;
}

}  // namespace

std::string_view elem_type_name(ElemType t) {
  switch (t) {
    case ElemType::BF16: return "bfloat16";
    case ElemType::F16: return "float16";
    case ElemType::F32: return "float32";
    case ElemType::I32: return "int32";
    case ElemType::U8: return "uint8";
    case ElemType::I8: return "int8";
  }
  return "?";
}

BorrowedTensor::BorrowedTensor(BorrowedTensor&& o) noexcept
    : name(std::move(o.name)), data(o.data), shape(std::move(o.shape)), type(o.type), device_id(o.device_id),
      owner_(std::exchange(o.owner_, nullptr)) {}

BorrowedTensor& BorrowedTensor::operator=(BorrowedTensor&& o) noexcept {
  if (this != &o) {
    BorrowedTensor old(std::move(*this));
    name = std::move(o.name);
    data = o.data;
    shape = std::move(o.shape);
    type = o.type;
    device_id = o.device_id;
    owner_ = std::exchange(o.owner_, nullptr);
  }
  return *this;
}

BorrowedTensor::~BorrowedTensor() {
  if (owner_ && owner_->deleter) owner_->deleter(owner_);
}

int64_t BorrowedTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

py::object producer_stream_arg(uintptr_t s) {
#if defined(MOE_BACKEND_HIP)
  return py::int_(s);  // ROCm: 0 is the default stream
#else
  return py::int_(s == 0 ? uintptr_t{1} : s);  // CUDA: 1 is the legacy default stream
#endif
}

BorrowedTensor borrow_gpu_tensor(py::handle obj, std::string_view name, int rank, std::initializer_list<ElemType> allowed,
                                 const py::object& producer_stream) {
  if (!py::hasattr(obj, "__dlpack__") || !py::hasattr(obj, "__dlpack_device__"))
    throw py::type_error(fmt::format("{}: expected a GPU tensor with __dlpack__ and __dlpack_device__ (e.g. a torch {} "
                                     "tensor), got {}",
                                     name, kOurDeviceName, py::str(py::type::of(obj)).cast<std::string>()));
  // The device first: a host tensor is refused before the producer is asked for
  // anything (no stream handshake for memory our kernels cannot read).
  const py::tuple dev = obj.attr("__dlpack_device__")();
  const int dev_type = py::int_(dev[0]).cast<int>();
  if (dev_type != kOurDevice)
    throw py::type_error(fmt::format("{}: expected a {} device tensor (DLPack device type {}), got one in {}", name,
                                     kOurDeviceName, kOurDevice, device_type_name(dev_type)));

  const py::object capsule = obj.attr("__dlpack__")(py::arg("stream") = producer_stream);
  PyObject* cap = capsule.ptr();
  if (!PyCapsule_IsValid(cap, "dltensor"))
    throw py::type_error(fmt::format("{}: __dlpack__() did not return an unconsumed 'dltensor' capsule", name));
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
  if (!managed) throw py::error_already_set();
  // Consumed from here on: the capsule's destructor no longer frees the tensor,
  // the BorrowedTensor's does.
  if (PyCapsule_SetName(cap, "used_dltensor") != 0) throw py::error_already_set();
  BorrowedTensor t;
  t.owner_ = managed;
  t.name = std::string(name);

  const DLTensor& dl = managed->dl_tensor;
  if (static_cast<int>(dl.device.device_type) != kOurDevice)
    throw py::type_error(fmt::format("{}: __dlpack__() returned a tensor in {}, not on the {} device it reported", name,
                                     device_type_name(static_cast<int>(dl.device.device_type)), kOurDeviceName));
  t.device_id = dl.device.device_id;
  t.shape.assign(dl.shape, dl.shape + dl.ndim);
  bool known = false;
  for (ElemType e : allowed)
    if (matches(dl.dtype, e)) {
      t.type = e;
      known = true;
    }
  if (!known)
    throw py::type_error(fmt::format("{}: dtype {} not supported (expected {})", name, dl_dtype_text(dl.dtype),
                                     allowed_text(allowed)));
  if (rank >= 0 && dl.ndim != rank)
    throw py::value_error(fmt::format("{}: expected rank {}, got shape {}", name, rank, shape_text(t.shape)));
  if (dl.strides) {
    // Row-major contiguous; the stride of an extent-1 dimension is never used.
    int64_t want = 1;
    for (int i = dl.ndim - 1; i >= 0; --i) {
      if (dl.shape[i] != 1 && dl.strides[i] != want)
        throw py::value_error(fmt::format("{}: not contiguous (strides {} for shape {}): pass a contiguous tensor "
                                          "(.contiguous())",
                                          name, shape_text(std::vector<int64_t>(dl.strides, dl.strides + dl.ndim)),
                                          shape_text(t.shape)));
      want *= dl.shape[i];
    }
  }
  t.data = static_cast<char*>(dl.data) + dl.byte_offset;
  return t;
}

}  // namespace moe::python
