#pragma once
// Integers read from model files. nlohmann's get<int>() on a float that does not fit is
// undefined behaviour (the adapter_config fuzzer found one); these check the type and the
// range, and throw std::out_of_range naming the field, which the file's parser reports.
#include <limits>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace adapterd::model {

template <class T>
T json_integer(const nlohmann::json& v, const std::string& what) {
  bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
              : v.is_number_integer()
                ? v.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min())
                    && (std::numeric_limits<T>::max() >= std::numeric_limits<int64_t>::max()
                        || v.get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max()))
                : false;
  if (!fits)
    throw std::out_of_range(what + " must be an integer in range");
  return v.get<T>();
}

/// The integer at `key`, or `fallback` when the key is absent or null.
template <class T>
T json_integer_or(const nlohmann::json& object, const char* key, T fallback) {
  if (!object.is_object() || !object.contains(key) || object[key].is_null())
    return fallback;
  return json_integer<T>(object[key], key);
}

}  // namespace adapterd::model
