// The list of kernel families. Adding a family: declare its make_*_family() (and
// its run entries, if any) and append it below.
#include "moe/registry.hpp"

namespace moe {

KernelFamily make_moe_align_family();
KernelFamily make_quant_family();
KernelFamily make_fused_moe_family();
KernelFamily make_routing_family();
KernelFamily make_fused_moe_q8_family();
std::vector<RunKernel> moe_align_run_kernels();
std::vector<RunKernel> routing_run_kernels();
std::vector<RunKernel> quant_run_kernels();
std::vector<RunKernel> fused_moe_run_kernels();
std::vector<RunKernel> fused_moe_q8_run_kernels();

std::vector<KernelFamily> families_list() {
  std::vector<KernelFamily> v;
  v.push_back(make_moe_align_family());
  v.back().run_kernels = moe_align_run_kernels();
  v.push_back(make_quant_family());
  v.back().run_kernels = quant_run_kernels();
  v.push_back(make_fused_moe_family());
  v.back().run_kernels = fused_moe_run_kernels();
  v.push_back(make_routing_family());
  v.back().run_kernels = routing_run_kernels();
  v.push_back(make_fused_moe_q8_family());
  v.back().run_kernels = fused_moe_q8_run_kernels();
  return v;
}

}  // namespace moe
