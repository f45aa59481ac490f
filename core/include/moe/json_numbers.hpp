// Numbers of a JSON input that the readers convert to C++ types. nlohmann's
// get<int>() / get<float>() convert a double without a range check, which is
// undefined for 1e34 -> int and 1e300 -> float; the golden-file readers check
// the document first.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moe/error.hpp"

namespace moe {

// InputError "<file>: <json pointer>: ..." unless every floating-point number in
// doc lies within +-max_abs (default 2^31: every conversion to float, int32 or
// int64 is then defined; golden files hold logits, weights and scales).
void require_bounded_numbers(const nlohmann::json& doc, const std::string& file, double max_abs = 2147483648.0);

namespace detail {
// Whether v is an integer within [lo, hi], for hi >= 0 up to 2^64 - 1. nlohmann stores
// non-negative integers as unsigned, and 2^63 and above fit only that way; get<int64_t>() of
// one would wrap.
inline bool json_integer_fits(const nlohmann::json& v, int64_t lo, uint64_t hi) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return (lo <= 0 || u >= static_cast<uint64_t>(lo)) && u <= hi;
  }
  if (!v.is_number_integer()) return false;
  const int64_t x = v.get<int64_t>();
  return x >= lo && (x < 0 || static_cast<uint64_t>(x) <= hi);
}
}  // namespace detail

// Whether v is an integer within [lo, hi] (either storage; false for an empty range).
inline bool json_integer_in(const nlohmann::json& v, int64_t lo, int64_t hi) {
  if (hi < 0) return v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  return detail::json_integer_fits(v, lo, static_cast<uint64_t>(hi));
}

// The integer v as T; InputError "<what>: expected an integer in [min, max], got <v>" for
// a float, a string or an integer that does not fit (get<uint32_t>() of -3.2 is undefined).
template <typename T>
T json_integer(const nlohmann::json& v, std::string_view what) {
  static_assert(std::is_integral_v<T> && sizeof(T) <= sizeof(int64_t));
  using L = std::numeric_limits<T>;
  if (!detail::json_integer_fits(v, static_cast<int64_t>(L::min()), static_cast<uint64_t>(L::max())))
    throw InputError(utf8_sanitized(fmt::format("{}: expected an integer in [{}, {}], got {}", what, +L::min(), +L::max(),
                                                v.dump().substr(0, 40))));
  return v.get<T>();
}

// An array of such integers; InputError "<what>: expected an array of integers" for another value.
template <typename T>
std::vector<T> json_integers(const nlohmann::json& v, std::string_view what) {
  if (!v.is_array()) throw InputError(utf8_sanitized(fmt::format("{}: expected an array of integers", what)));
  std::vector<T> out;
  out.reserve(v.size());
  for (const auto& x : v) out.push_back(json_integer<T>(x, what));
  return out;
}

}  // namespace moe
