#include "moe/registry.hpp"

namespace moe {

// Each family defines one of these next to its reference; listed here (not by
// static initialisers) so the linker cannot drop a family from the static lib.
std::vector<KernelFamily> families_list();

const std::vector<KernelFamily>& kernel_families() {
  static const std::vector<KernelFamily> all = families_list();
  return all;
}

}  // namespace moe
