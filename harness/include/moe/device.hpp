// What the harness knows about a GPU: identity from the runtime, and ceilings it
// measured itself so reports can state % of measured roofline.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

struct DeviceInfo {
  int index = -1;
  std::string backend;       // "cuda" | "hip"
  std::string name;          // "NVIDIA H100 80GB HBM3"
  std::string arch;          // "sm_90" | "gfx90a"
  int sm_count = 0;          // SMs (NVIDIA) or CUs (AMD): the tuned-config cu_num
  int warp_size = 0;
  int64_t total_mem_bytes = 0;
  int64_t l2_bytes = 0;
  int64_t max_smem_per_block = 0;
  int driver_version = 0;
  int runtime_version = 0;
  nlohmann::json to_json() const;
};

struct Ceilings {
  double read_gbps = 0;    // large-buffer read, 16-byte loads
  double copy_gbps = 0;    // device-to-device copy, bytes read + written
  std::optional<double> bf16_tflops;  // dense 8192^3 GEMM through the vendor BLAS
  std::string bf16_note;   // how it was measured, or why not
  // The same GEMM on fp8 e4m3 (fp32 accumulate, bf16 out) and int8 (int32
  // accumulate and out) inputs: the roofline of the quantized layers.
  std::optional<double> fp8_tflops;
  std::string fp8_note;
  std::optional<double> int8_tops;
  std::string int8_note;
  nlohmann::json to_json() const;
};

// Backend this binary was built with: "cuda", "hip" or "none".
const char* gpu_backend();

// All devices visible to the runtime; empty where there is no GPU or no backend.
std::vector<DeviceInfo> list_devices();

// Measures the ceilings of device `index` (a few hundred milliseconds).
Ceilings measure_ceilings(int index);

}  // namespace moe
