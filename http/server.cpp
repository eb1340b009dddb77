#include "http/server.hpp"

#include <atomic>
#include <chrono>
#include <optional>
#include <random>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "http/json_codec.hpp"
#include "http/routes.hpp"

namespace adapterd::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::string new_request_id() {
  static std::atomic<uint64_t> counter{0};
  static const uint32_t salt = std::random_device{}();
  char buf[32];
  std::snprintf(buf, sizeof buf, "req-%08x-%06llx", salt,
                static_cast<unsigned long long>(++counter));
  return buf;
}

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, backend& svc, const server_options& opts)
    : stream_(std::move(socket)), deadline_(stream_.get_executor()), svc_(svc), opts_(opts) {}

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&session::read, shared_from_this()));
  }

private:
  void read() {
    parser_.emplace();
    parser_->body_limit(opts_.lim.max_body_bytes);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(std::chrono::seconds(opts_.read_timeout_s));
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout
        || ec == net::error::connection_reset || ec == net::error::eof)
      return close();
    if (ec == bhttp::error::body_limit)
      return send(error_response({413, "payload_too_large",
                                  "the request body exceeds "
                                    + std::to_string(opts_.lim.max_body_bytes) + " bytes"}),
                  false, "-", "-", new_request_id());
    if (ec)
      return send(error_response({400, "bad_http", "malformed HTTP request: " + ec.message()}),
                  false, "-", "-", new_request_id());
    auto req = parser_->release();
    request_view view;
    view.method = std::string(req.method_string());
    view.target = std::string(req.target());
    view.body = std::move(req.body());
    auto id_header = req.find("X-Request-Id");
    view.request_id = id_header != req.end() && !id_header->value().empty()
                        && id_header->value().size() <= 128
                        ? std::string(id_header->value())
                        : new_request_id();
    keep_alive_ = req.keep_alive();
    stream_.expires_never();
    started_ = std::chrono::steady_clock::now();
    // One answer per request: the backend's, or a 504 when it takes too long. A timer
    // here (not an actor-side request timeout) is cancelled on the answer, so nothing
    // per request outlives it.
    auto generation = ++generation_;
    answered_ = false;
    auto self = shared_from_this();
    deadline_.expires_after(std::chrono::seconds(opts_.lim.request_timeout_s));
    deadline_.async_wait([self, generation, method = view.method, target = view.target,
                          id = view.request_id](beast::error_code ec) {
      if (ec || self->answered_ || generation != self->generation_)
        return;
      self->answered_ = true;
      self->send(error_response({504, "timeout", "no answer within "
                                                   + std::to_string(self->opts_.lim.request_timeout_s)
                                                   + " s"}),
                 false, method, target, id);
    });
    route(view, svc_, opts_.lim,
          [self, generation, method = view.method, target = view.target, id = view.request_id](response r) {
            net::post(self->stream_.get_executor(), [self, generation, r = std::move(r), method, target, id]() mutable {
              if (self->answered_ || generation != self->generation_)
                return;  // the deadline answered already
              self->answered_ = true;
              self->deadline_.cancel();
              self->send(std::move(r), self->keep_alive_, method, target, id);
            });
          });
  }

  void send(response r, bool keep_alive, const std::string& method, const std::string& target,
            const std::string& request_id) {
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
    spdlog::info("http {} {} {} -> {} ({:.1f} ms)", request_id, method, target, r.status, ms);
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
      static_cast<bhttp::status>(r.status), 11);
    res->set(bhttp::field::server, "adapterd");
    res->set(bhttp::field::content_type, r.content_type);
    res->set("X-Request-Id", request_id);
    for (const auto& [k, v] : r.headers)
      res->set(k, v);
    res->keep_alive(keep_alive);
    res->body() = std::move(r.body);
    res->prepare_payload();
    stream_.expires_after(std::chrono::seconds(opts_.read_timeout_s));
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
      if (ec || !res->keep_alive())
        return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  net::steady_timer deadline_;
  uint64_t generation_ = 0;  // which request of this connection an answer belongs to
  bool answered_ = false;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  backend& svc_;
  const server_options& opts_;
  bool keep_alive_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace

struct server::state {
  server_options opts;
  backend& svc;
  net::io_context ioc;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  std::vector<std::thread> threads;
  bool running = false;

  state(server_options o, backend& s) : opts(std::move(o)), svc(s), ioc(static_cast<int>(opts.io_threads)) {}

  void accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor.is_open())
        return;
      if (!ec)
        std::make_shared<session>(std::move(socket), svc, opts)->run();
      accept();
    });
  }
};

server::server(server_options options, backend& svc)
  : state_(std::make_unique<state>(std::move(options), svc)) {}

server::~server() { stop(); }

std::variant<uint16_t, std::string> server::start() {
  auto& s = *state_;
  beast::error_code ec;
  auto address = net::ip::make_address(s.opts.host, ec);
  if (ec)
    return "invalid listen address '" + s.opts.host + "': " + ec.message();
  tcp::endpoint ep{address, s.opts.port};
  s.acceptor.open(ep.protocol(), ec);
  if (!ec)
    s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    s.acceptor.bind(ep, ec);
  if (!ec)
    s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return "cannot listen on " + s.opts.host + ":" + std::to_string(s.opts.port) + ": " + ec.message();
  auto port = s.acceptor.local_endpoint().port();
  s.accept();
  s.running = true;
  for (unsigned i = 0; i < std::max(1u, s.opts.io_threads); ++i)
    s.threads.emplace_back([&s] { s.ioc.run(); });
  return port;
}

void server::stop() {
  auto& s = *state_;
  if (!s.running)
    return;
  s.running = false;
  net::post(s.acceptor.get_executor(), [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
  });
  s.ioc.stop();
  for (auto& t : s.threads)
    t.join();
  s.threads.clear();
}

}  // namespace adapterd::http
