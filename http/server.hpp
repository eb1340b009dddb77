#pragma once
// The Beast HTTP/1.1 server: an accept loop and one session per connection on a pool of
// io threads. Sessions parse with limits and deadlines, hand requests to route(), and
// write the answer back on their strand.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http/api.hpp"

namespace adapterd::http {

struct server_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8110;  // 0: any free port
  unsigned io_threads = 2;
  limits lim;
  /// A request must arrive whole within this; an idle keep-alive connection closes after it.
  unsigned read_timeout_s = 30;
  /// Each write must finish within this, so that a client that stops reading lets go.
  unsigned write_timeout_s = 30;
  /// Open connections beyond this get 503 and are closed.
  unsigned max_connections = 1024;
};

class server {
public:
  server(server_options options, backend& svc);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and starts the io threads; returns the bound port, or an error text.
  std::variant<uint16_t, std::string> start();
  /// Stops taking requests: new connections are refused, new requests on open ones get
  /// 503 shutting_down, from the moment this returns.
  void stop_taking();
  /// stop_taking(), then waits up to `grace` for the taken requests to be answered;
  /// returns how many were still unanswered.
  int drain(std::chrono::milliseconds grace);
  /// Stops accepting and joins the io threads.
  void stop();

private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace adapterd::http
