// main() for GPU test executables: with no usable device, print the reason and
// exit 77, which `meson test` reports as SKIP.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "moe/device.hpp"
#include "moe/gpu.hpp"

int main(int argc, char** argv) {
  if (moe::list_devices().empty()) {
    std::printf("SKIP: no GPU visible to the %s runtime on this machine; GPU tests need an NVIDIA or AMD device\n",
                moe::gpu_backend());
    return 77;
  }
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  return ctx.run();
}
