#pragma once
// The exception firewall of every actor handler. In CAF 0.17 an exception that escapes a
// handler ends the actor (an exception handler only picks its exit reason), and the
// requester learns little. Wrapped here, a throwing handler answers its own request with
// errc::internal, logs one line, and the actor goes on serving everyone else.
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "caf/expected.hpp"
#include "caf/make_message.hpp"
#include "caf/result.hpp"

#include <spdlog/spdlog.h>

#include "actors/error_mapping.hpp"

namespace adapterd::actors {

namespace detail {

template <class T>
struct is_caf_result : std::false_type {};
template <class... Ts>
struct is_caf_result<caf::result<Ts...>> : std::true_type {};

// What a guarded handler returns: void stays void, a caf::result stays itself, and a plain
// value becomes a caf::result of it, so that the firewall can answer with an error.
template <class R>
struct guarded_result {
  using type = std::conditional_t<std::is_void_v<R> || is_caf_result<R>::value, R, caf::result<R>>;
};
template <class T>
struct guarded_result<caf::expected<T>> {
  using type = caf::result<T>;
};
template <class R>
using guarded_result_t = typename guarded_result<R>::type;

inline std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

template <class F, class R, class... Ts>
auto guard(const char* actor, F f, R (F::*)(Ts...) const) {
  return [actor, f = std::move(f)](Ts... xs) -> guarded_result_t<R> {
    try {
      return f(std::forward<Ts>(xs)...);
    } catch (...) {
      auto why = what_of(std::current_exception());
      spdlog::error("{}: a handler failed unexpectedly: {}", actor, why);
      if constexpr (!std::is_void_v<R>)
        return make_failure(messages::errc::internal, std::string(actor) + " failed on this request: " + why);
    }
  };
}

}  // namespace detail

/// `handler` with the firewall around it; the signature CAF sees is unchanged.
template <class F>
auto guarded(const char* actor, F handler) {
  return detail::guard(actor, std::move(handler), &F::operator());
}

/// A behavior of `Behavior` type whose every handler is guarded.
template <class Behavior, class... Fs>
Behavior guarded_behavior(const char* actor, Fs... handlers) {
  return Behavior{guarded(actor, std::move(handlers))...};
}

}  // namespace adapterd::actors
