// Host launch code of the quantization family: path/launch-shape selection and the
// Inf/NaN status check. Device code: quant_kernels.cuh. Argument validation and its
// messages live in quant.cpp (host compiler): fmt does not compile under nvcc.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/quant/quant.hpp"
#include "kernels/quant/quant_detail.hpp"
#include "kernels/quant/quant_kernels.cuh"
#include "moe/gpu.hpp"

namespace moe::quant {
namespace {

constexpr int kRowCache = 4;  // vectors per thread kept in registers by row_quant_kernel

template <DType D>
using DT = std::integral_constant<DType, D>;
template <QType Q>
using QT = std::integral_constant<QType, Q>;

template <typename F>
void with_dtype(DType d, F&& f) {
  switch (d) {
    case DType::BF16: f(DT<DType::BF16>{}); return;
    case DType::F16: f(DT<DType::F16>{}); return;
    case DType::F32: f(DT<DType::F32>{}); return;
    default: throw_input_error("quantize: unsupported input dtype");
  }
}
template <typename F>
void with_qtype(QType q, F&& f) {
  switch (q) {
    case QType::FP8_E4M3FN: f(QT<QType::FP8_E4M3FN>{}); return;
    case QType::FP8_E4M3FNUZ: f(QT<QType::FP8_E4M3FNUZ>{}); return;
    case QType::INT8: f(QT<QType::INT8>{}); return;
  }
  throw_input_error("quantize: unsupported quantized type");
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int pow2_ceil(int64_t v) {
  int p = 1;
  while (p < v && p < (1 << 30)) p <<= 1;
  return p;
}

int sm_count() {
  int dev = 0, n = 0;
  MOE_GPU_CHECK(hipGetDevice(&dev));
  MOE_GPU_CHECK(hipDeviceGetAttribute(&n, hipDeviceAttributeMultiprocessorCount, dev));
  return n > 0 ? n : 1;
}

constexpr int64_t kMaxGridX = (int64_t{1} << 31) - 1;

template <DType D, QType Q>
void launch(const QuantProblem& p, const void* xv, void* qv, float* scales, Workspace& ws, hipStream_t s,
            const LaunchConfig& cfg) {
  using T = typename dev::In<D>::T;
  constexpr int V = dev::kVec<D>;
  const T* x = static_cast<const T*>(xv);
  uint8_t* q = static_cast<uint8_t*>(qv);
  const float qmax = qtype_max(Q);
  const int64_t B = p.shape.batch, R = p.shape.rows, C = p.shape.cols;
  const bool base_vec = !cfg.force_scalar && aligned(x, 16) && aligned(q, V);

  switch (p.spec.granularity) {
    case Granularity::PerTensor: {
      const int64_t n = R * C;
      const bool vec = base_vec && n % V == 0;
      const int threads = cfg.threads ? cfg.threads : 256;
      const int64_t nv = vec ? n / V : n;
      const int64_t cap = std::max<int64_t>(1, 4 * int64_t{sm_count()} / B);
      const dim3 grid(static_cast<unsigned>(std::clamp<int64_t>(ceil_div(nv, int64_t{threads} * 4), 1, cap)),
                      static_cast<unsigned>(B));
      if (!p.spec.static_scale) {
        MOE_GPU_CHECK(hipMemsetAsync(ws.amax(), 0, static_cast<size_t>(B) * sizeof(uint32_t), s));
        if (vec) hipLaunchKernelGGL((dev::amax_kernel<D, V>), grid, dim3(threads), 0, s, x, n, ws.amax());
        else hipLaunchKernelGGL((dev::amax_kernel<D, 1>), grid, dim3(threads), 0, s, x, n, ws.amax());
        MOE_GPU_CHECK(hipGetLastError());
        if (vec)
          hipLaunchKernelGGL((dev::tensor_quant_kernel<D, V, Q, false>), grid, dim3(threads), 0, s, x, q, scales, n,
                             ws.amax(), qmax, ws.status());
        else
          hipLaunchKernelGGL((dev::tensor_quant_kernel<D, 1, Q, false>), grid, dim3(threads), 0, s, x, q, scales, n,
                             ws.amax(), qmax, ws.status());
      } else {
        if (vec)
          hipLaunchKernelGGL((dev::tensor_quant_kernel<D, V, Q, true>), grid, dim3(threads), 0, s, x, q, scales, n,
                             ws.amax(), qmax, ws.status());
        else
          hipLaunchKernelGGL((dev::tensor_quant_kernel<D, 1, Q, true>), grid, dim3(threads), 0, s, x, q, scales, n,
                             ws.amax(), qmax, ws.status());
      }
      MOE_GPU_CHECK(hipGetLastError());
      return;
    }
    case Granularity::PerRow: {
      const bool vec = base_vec && C % V == 0;
      const int64_t nv = vec ? C / V : C;
      const int threads = cfg.threads ? cfg.threads : std::clamp(pow2_ceil(ceil_div(nv, kRowCache)), 64, 1024);
      const int64_t blocks = B * R;
      MOE_REQUIRE(blocks <= kMaxGridX, detail::grid_limit_message(p, blocks));
      if (vec)
        hipLaunchKernelGGL((dev::row_quant_kernel<D, V, Q, kRowCache>), dim3(static_cast<unsigned>(blocks)),
                           dim3(threads), 0, s, x, q, scales, C, qmax, ws.status());
      else
        hipLaunchKernelGGL((dev::row_quant_kernel<D, 1, Q, kRowCache>), dim3(static_cast<unsigned>(blocks)),
                           dim3(threads), 0, s, x, q, scales, C, qmax, ws.status());
      MOE_GPU_CHECK(hipGetLastError());
      return;
    }
    case Granularity::PerGroup: {
      const int64_t G = p.spec.group;
      const bool col_major = p.spec.group_layout == GroupScaleLayout::ColMajor;
      const int64_t tpg = G / V;
      const bool vec = base_vec && C % V == 0 && G % V == 0 && tpg <= 32 && (tpg & (tpg - 1)) == 0;
      if (vec) {
        const int64_t nv = C / V;
        int threads = cfg.threads;
        if (threads == 0) {
          // Fewest idle threads in the last chunk of a row; larger blocks on ties.
          int64_t best_waste = -1;
          for (int t : {256, 128, 64}) {
            const int64_t waste = ceil_div(nv, t) * t - nv;
            if (best_waste < 0 || waste < best_waste) {
              best_waste = waste;
              threads = t;
            }
          }
        }
        const int64_t chunks = ceil_div(nv, threads);
        const int64_t blocks = B * R * chunks;
        MOE_REQUIRE(blocks <= kMaxGridX, detail::grid_limit_message(p, blocks));
        hipLaunchKernelGGL((dev::group_quant_kernel<D, V, Q>), dim3(static_cast<unsigned>(blocks)), dim3(threads), 0, s,
                           x, q, scales, R, C, G, chunks, col_major, qmax, ws.status());
      } else {
        const int threads = cfg.threads ? cfg.threads : 256;
        const int64_t segs = p.num_scales();
        const int64_t blocks = ceil_div(segs, threads / 32);
        hipLaunchKernelGGL((dev::group_quant_scalar_kernel<D, Q>), dim3(static_cast<unsigned>(blocks)), dim3(threads),
                           0, s, x, q, scales, R, C, G, segs, col_major, qmax, ws.status());
      }
      MOE_GPU_CHECK(hipGetLastError());
      return;
    }
    case Granularity::PerBlock: {
      const int threads = cfg.threads ? cfg.threads : 256;
      hipLaunchKernelGGL((dev::block_quant_kernel<D, Q>), dim3(static_cast<unsigned>(p.num_scales())), dim3(threads), 0,
                         s, x, q, scales, R, C, p.spec.block_rows, p.spec.block_cols, qmax, ws.status());
      MOE_GPU_CHECK(hipGetLastError());
      return;
    }
  }
}

}  // namespace

Workspace::Workspace(int64_t max_batch) : max_batch_(max_batch) {
  MOE_REQUIRE(max_batch >= 1 && max_batch <= 65535,
              "quant::Workspace: max_batch " + std::to_string(max_batch) + " must be in [1, 65535]");
  status_ = gpu::DeviceBuffer<unsigned long long>(2);
  amax_ = gpu::DeviceBuffer<uint32_t>(static_cast<size_t>(max_batch));
  gpu::fill_blocking(status_.data(), 0, status_.bytes());
  gpu::fill_blocking(amax_.data(), 0, amax_.bytes());
}

void Workspace::clear(hipStream_t s) { MOE_GPU_CHECK(hipMemsetAsync(status_.data(), 0, status_.bytes(), s)); }

void Workspace::check(const QuantProblem& p, hipStream_t s) {
  unsigned long long st[2] = {0, 0};
  MOE_GPU_CHECK(hipMemcpyAsync(st, status_.data(), sizeof(st), hipMemcpyDeviceToHost, s));
  MOE_GPU_CHECK(hipStreamSynchronize(s));
  if (st[0] != 0) {
    clear(s);
    MOE_GPU_CHECK(hipStreamSynchronize(s));
    throw_input_error(p.nonfinite_message(static_cast<int64_t>(~st[1])));
  }
}

void quantize(const QuantProblem& p, const void* x, void* q, float* scales, Workspace& ws, hipStream_t s,
              CheckMode mode, const LaunchConfig& cfg) {
  detail::validate_launch(p, x, q, scales, ws.max_batch(), mode, cfg);
  if (mode == CheckMode::Sync) ws.clear(s);
  with_dtype(p.in_dtype, [&](auto dt) {
    with_qtype(p.spec.qtype, [&](auto qt) { launch<decltype(dt)::value, decltype(qt)::value>(p, x, q, scales, ws, s, cfg); });
  });
  if (mode == CheckMode::Sync) ws.check(p, s);
}

namespace testing {

std::vector<float> device_decode_all(Fp8Format f) {
  gpu::DeviceBuffer<float> out(256);
  out.poison();
  if (f == Fp8Format::E4M3FN) hipLaunchKernelGGL((dev::decode_all_kernel<Fp8Format::E4M3FN>), dim3(1), dim3(256), 0, nullptr, out.data());
  else hipLaunchKernelGGL((dev::decode_all_kernel<Fp8Format::E4M3FNUZ>), dim3(1), dim3(256), 0, nullptr, out.data());
  MOE_GPU_CHECK(hipGetLastError());
  return out.download();
}

std::vector<uint8_t> device_encode(Fp8Format f, const std::vector<float>& xs) {
  if (xs.empty()) return {};
  gpu::DeviceBuffer<float> in(xs.size());
  gpu::DeviceBuffer<uint8_t> out(xs.size());
  in.upload(xs);
  out.poison(0x5A);
  const int64_t n = static_cast<int64_t>(xs.size());
  const unsigned blocks = static_cast<unsigned>(ceil_div(ceil_div(n, 2), 256));
  if (f == Fp8Format::E4M3FN)
    hipLaunchKernelGGL((dev::encode_kernel<Fp8Format::E4M3FN>), dim3(blocks), dim3(256), 0, nullptr, in.data(), out.data(), n);
  else
    hipLaunchKernelGGL((dev::encode_kernel<Fp8Format::E4M3FNUZ>), dim3(blocks), dim3(256), 0, nullptr, in.data(), out.data(), n);
  MOE_GPU_CHECK(hipGetLastError());
  return out.download();
}

SweepResult device_sweep_all_floats(Fp8Format f) {
  gpu::DeviceBuffer<unsigned long long> res(2);
  gpu::DeviceBuffer<int> flag(1);
  gpu::fill_blocking(res.data(), 0, res.bytes());
  const unsigned blocks = static_cast<unsigned>(sm_count() * 8);
  if (f == Fp8Format::E4M3FN) {
    hipLaunchKernelGGL((dev::sweep_kernel<Fp8Format::E4M3FN>), dim3(blocks), dim3(256), 0, nullptr, res.data());
    hipLaunchKernelGGL((dev::hw_flag_kernel<Fp8Format::E4M3FN>), dim3(1), dim3(32), 0, nullptr, flag.data());
  } else {
    hipLaunchKernelGGL((dev::sweep_kernel<Fp8Format::E4M3FNUZ>), dim3(blocks), dim3(256), 0, nullptr, res.data());
    hipLaunchKernelGGL((dev::hw_flag_kernel<Fp8Format::E4M3FNUZ>), dim3(1), dim3(32), 0, nullptr, flag.data());
  }
  MOE_GPU_CHECK(hipGetLastError());
  const auto r = res.download();
  const auto fl = flag.download();
  SweepResult out;
  out.mismatches = r[0];
  out.hw_cvt = fl[0] != 0;
  if (r[0]) {
    out.first_bits = static_cast<uint32_t>(~r[1]);
    const float v = bits_f32(out.first_bits);
    out.soft_code = fp8_encode(v, f);
    out.fast_code = device_encode(f, {v})[0];
  }
  return out;
}

}  // namespace testing
}  // namespace moe::quant
