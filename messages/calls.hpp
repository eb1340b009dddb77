#pragma once
// The API calls the HTTP side makes through one generic envelope (http::backend::ask): for
// each request, its reply and the service that owns it. The http actor forwards any of them
// by these traits, so adding a call needs no forwarder of its own. Generation (it streams),
// cancel and health keep their own paths.
#include <cstdint>

#include "messages/catalog.hpp"
#include "messages/console.hpp"
#include "messages/memory.hpp"
#include "messages/training.hpp"

namespace adapterd::messages {

/// Who answers a call: in a standalone node its own actors, in a router the router.
enum class service : uint8_t { cleanup, catalog, training, console };

template <class Request>
struct call_traits;

template <class Reply, service Owner>
struct call_of {
  using reply = Reply;
  static constexpr service owner = Owner;
};

// clang-format off
template <> struct call_traits<cleanup_request> : call_of<cleanup_reply, service::cleanup> {};
template <> struct call_traits<tokenize_request> : call_of<tokenize_reply, service::catalog> {};
template <> struct call_traits<detokenize_request> : call_of<detokenize_reply, service::catalog> {};
template <> struct call_traits<adapter_request> : call_of<adapter_reply, service::catalog> {};
template <> struct call_traits<train_request> : call_of<job_status, service::training> {};
template <> struct call_traits<job_request> : call_of<job_list, service::training> {};
template <> struct call_traits<console_request> : call_of<console_feed, service::console> {};
// clang-format on

template <class... Requests>
struct call_list {};

/// Every request the envelope carries.
using api_calls = call_list<cleanup_request, tokenize_request, detokenize_request, adapter_request,
                            train_request, job_request, console_request>;

}  // namespace adapterd::messages
