// Shared by the libFuzzer targets: every target feeds the bytes to one parser;
// moe::InputError is the expected verdict on bad input, anything else (another
// exception, a sanitizer report, a hang) is a finding.
#pragma once
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "moe/error.hpp"
#include "moe/results.hpp"

namespace fuzz {

inline std::span<const uint8_t> bytes(const uint8_t* data, size_t size) { return {data, size}; }
inline std::string text(const uint8_t* data, size_t size) { return std::string(reinterpret_cast<const char*>(data), size); }

// The bytes as a file on disk, rewritten for every input (one per process).
class ScratchFile {
 public:
  ScratchFile() {
    path_ = (std::filesystem::temp_directory_path() / "moe-fuzz-XXXXXX").string();
    const int fd = ::mkstemp(path_.data());
    if (fd < 0) std::abort();
    ::close(fd);
  }
  ~ScratchFile() { std::filesystem::remove(path_); }
  const std::string& write(const uint8_t* data, size_t size) const {
    std::ofstream(path_, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                    static_cast<std::streamsize>(size));
    return path_;
  }

 private:
  std::string path_;
};

// The document as the harness's JSON reader (read_json_file) gives it; none
// where the reader rejects the file.
inline std::optional<nlohmann::json> json_doc(const uint8_t* data, size_t size) {
  static const ScratchFile file;
  try {
    return moe::read_json_file(file.write(data, size));
  } catch (const moe::InputError&) {
    return std::nullopt;
  }
}

}  // namespace fuzz
