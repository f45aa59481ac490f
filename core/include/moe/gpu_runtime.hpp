// Include point for the GPU runtime API. Kernels and host code are written
// against HIP names; on NVIDIA they resolve through hip_compat_cuda.hpp.
#pragma once
#if defined(MOE_BACKEND_HIP)
#include <hip/hip_runtime.h>
#define MOE_HAVE_GPU 1
#elif defined(MOE_BACKEND_CUDA)
#include "moe/hip_compat_cuda.hpp"
#define MOE_HAVE_GPU 1
#else
#define MOE_HAVE_GPU 0
#endif

#if defined(__CUDACC__) || defined(__HIPCC__)
#define MOE_HD __host__ __device__ __forceinline__
#define MOE_DEVICE_COMPILER 1
#else
#define MOE_HD inline
#define MOE_DEVICE_COMPILER 0
#endif
