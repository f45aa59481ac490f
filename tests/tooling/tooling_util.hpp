// Helpers shared by the tooling tests: a temporary folder, a random source on
// top of moe::rng, and running the moe-harness binary.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "moe/rng.hpp"

namespace tooling {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "moe-tooling-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(const std::string& name = "") const { return name.empty() ? dir_.string() : (dir_ / name).string(); }
  // Files whose name says they are an atomic writer's temporary.
  int stray_temporaries() const {
    int n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_))
      if (e.path().filename().string().find(".tmp.") != std::string::npos) ++n;
    return n;
  }

 private:
  std::filesystem::path dir_;
};

// Deterministic random values (counter-based, like every other test).
struct Gen {
  uint64_t seed;
  uint64_t i = 0;
  explicit Gen(uint64_t s) : seed(s) {}
  float normal() { return moe::rng::normal(seed, moe::rng::Stream::Test, i++); }
  uint32_t next_u32() { return moe::rng::bits32(seed, moe::rng::Stream::Test, i++); }
};

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

struct CmdResult {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// Runs `moe-harness <args>` (binary from $MOE_HARNESS) through the shell,
// capturing output; args are passed verbatim (quote them yourself).
inline CmdResult harness(const std::string& args, const TempDir& dir) {
  const char* exe = std::getenv("MOE_HARNESS");
  if (!exe) throw std::runtime_error("MOE_HARNESS is not set (run through meson test)");
  const std::string log = dir.path("cmd.log");
  const std::string cmd = std::string("'") + exe + "' " + args + " > '" + log + "' 2>&1";
  const int st = std::system(cmd.c_str());
  CmdResult r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = slurp(log);
  return r;
}

}  // namespace tooling
