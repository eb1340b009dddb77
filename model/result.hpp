#pragma once
// Expected failures of the model layer, as values: callers outside model/ never see
// a libtorch exception, only one of these.
#include <string>
#include <utility>
#include <variant>

namespace adapterd::model {

enum class errc {
  invalid_argument,  // the request itself is wrong (bad sampling value, empty prompt)
  not_found,         // a file or directory that should exist does not
  invalid_model,     // a model directory that cannot be loaded
  invalid_adapter,   // an adapter directory that cannot be loaded onto this model
  context_overflow,  // prompt (plus generation) longer than the model's context
  out_of_memory,     // an allocation failed; the process is fine
  internal,          // a bug or an unexpected library failure
};

const char* to_string(errc code);

struct error {
  errc code = errc::internal;
  std::string message;
};

template <class T>
class result {
public:
  result(T value) : v_(std::move(value)) {}
  result(error err) : v_(std::move(err)) {}

  explicit operator bool() const { return v_.index() == 0; }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const error& err() const { return std::get<1>(v_); }

private:
  std::variant<T, error> v_;
};

inline error make_error(errc code, std::string message) {
  return error{code, std::move(message)};
}

}  // namespace adapterd::model
