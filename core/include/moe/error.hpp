// Error types and the one error-check macro family used across moe-harness.
// Library code throws; only the CLI's main() turns exceptions into exit codes.
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

namespace moe {

// Anything that went wrong inside the harness or a GPU runtime call.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The user's input is invalid (bad shape, bad flag value, malformed file).
// The CLI maps this to exit code 2.
class InputError : public Error {
 public:
  using Error::Error;
};

// A GPU runtime call failed. Carries the call text, file and line.
class GpuError : public Error {
 public:
  GpuError(const std::string& msg, int code) : Error(msg), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

[[noreturn]] void throw_input_error(const std::string& msg);

// `s` with every byte that does not belong to a valid UTF-8 sequence replaced by
// U+FFFD: messages and JSON strings built from paths, file contents or argv can
// then always be printed and dumped.
std::string utf8_sanitized(std::string_view s);

}  // namespace moe

// Validate user input: throws moe::InputError with a one-line message.
#define MOE_REQUIRE(cond, msg)                                  \
  do {                                                          \
    if (!(cond)) ::moe::throw_input_error(std::string(msg));    \
  } while (0)
