#include "moe/json_numbers.hpp"

#include <cmath>

#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe {
namespace {

void walk(const nlohmann::json& v, const std::string& at, const std::string& file, double max_abs) {
  if (v.is_number_float()) {
    const double x = v.get<double>();
    if (!(std::fabs(x) <= max_abs))
      throw InputError(utf8_sanitized(fmt::format("{}: {}: the number {} is outside [-{}, {}]", file,
                                                  at.empty() ? "(top level)" : at, x, max_abs, max_abs)));
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) walk(v[i], fmt::format("{}/{}", at, i), file, max_abs);
  } else if (v.is_object()) {
    for (const auto& [key, value] : v.items()) walk(value, at + "/" + key, file, max_abs);
  }
}

}  // namespace

void require_bounded_numbers(const nlohmann::json& doc, const std::string& file, double max_abs) {
  walk(doc, "", file, max_abs);
}

}  // namespace moe
