// moe_harness._core.gpu, in GPU builds only: our kernels on other libraries' GPU
// tensors (DLPack, zero copy), enqueued on the caller's stream.
#pragma once
#include <pybind11/pybind11.h>

namespace moe::python {

// Adds the submodule `gpu` to the extension module. Makes no GPU runtime call:
// importing must work on a machine without a GPU.
void add_gpu_module(pybind11::module_& core);

}  // namespace moe::python
