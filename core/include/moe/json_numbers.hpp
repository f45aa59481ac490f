// Numbers of a JSON input that the readers convert to C++ types. nlohmann's
// get<int>() / get<float>() convert a double without a range check, which is
// undefined for 1e34 -> int and 1e300 -> float; the golden-file readers check
// the document first.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace moe {

// InputError "<file>: <json pointer>: ..." unless every floating-point number in
// doc lies within +-max_abs (default 2^31: every conversion to float, int32 or
// int64 is then defined; golden files hold logits, weights and scales).
void require_bounded_numbers(const nlohmann::json& doc, const std::string& file, double max_abs = 2147483648.0);

}  // namespace moe
