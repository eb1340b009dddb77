// Over 400 lines on purpose: one Beast session (read, deadline, write, stream, close)
// and the acceptor that bounds them; the states of a connection belong together.
#include "http/server.hpp"

#include <atomic>
#include <deque>
#include <functional>
#include <chrono>
#include <optional>
#include <random>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "http/json_codec.hpp"
#include "http/metrics_text.hpp"
#include "http/routes.hpp"

namespace adapterd::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// A client id short and plain enough to log and echo.
bool printable_id(boost::beast::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id)
    if (c < 0x21 || c > 0x7e)
      return false;
  return true;
}

std::string new_request_id() {
  static std::atomic<uint64_t> counter{0};
  static const uint32_t salt = std::random_device{}();
  char buf[32];
  std::snprintf(buf, sizeof buf, "req-%08x-%06llx", salt,
                static_cast<unsigned long long>(++counter));
  return buf;
}

class session;

// The responder of one request: hands each call to its session's strand.
class session_responder final : public responder {
public:
  session_responder(std::shared_ptr<session> s, uint64_t generation, std::string id)
    : session_(std::move(s)), generation_(generation), id_(std::move(id)) {}
  void respond(response r) override;
  void stream_open() override;
  void stream_write(std::string data) override;
  void stream_close() override;
  std::string request_id() const override;

private:
  std::shared_ptr<session> session_;
  uint64_t generation_;
  std::string id_;
};

// What a graceful stop needs to know: whether new requests are still taken, and how many
// taken ones are unanswered.
struct drain_state {
  std::atomic<bool> draining{false};
  std::atomic<int> active{0};
  std::atomic<unsigned> connections{0};  // open sessions, for --max-connections
};

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, backend& svc, const server_options& opts, std::shared_ptr<drain_state> drain)
    : stream_(std::move(socket)), deadline_(stream_.get_executor()), svc_(svc), opts_(opts), drain_(std::move(drain)) {
    ++drain_->connections;
  }
  ~session() {
    if (counted_)
      --drain_->active;
    --drain_->connections;
  }

  void run() {
    // Streamed tokens go out at once, not when Nagle's algorithm sees fit.
    beast::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&session::read, shared_from_this()));
  }

  // The responder's calls, posted onto this session's strand.
  template <class F>
  void on_strand(uint64_t generation, F f) {
    net::post(stream_.get_executor(), [self = shared_from_this(), generation, f = std::move(f)]() mutable {
      if (self->answered_ || generation != self->generation_)
        return;  // answered already (deadline, disconnect) or a later request
      f(*self);
    });
  }

  void respond(response r) {
    finish_request();
    send(std::move(r), keep_alive_);
  }

  void stream_open() {
    if (streaming_)
      return;
    streaming_ = true;
    auto head = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::ok, 11);
    head->set(bhttp::field::server, "adapterd");
    head->set(bhttp::field::content_type, "text/event-stream");
    head->set(bhttp::field::cache_control, "no-cache");
    head->set("X-Request-Id", shown_id());
    head->keep_alive(keep_alive_);
    head->chunked(true);
    log_line(200);
    auto serializer = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*head);
    enqueue([head, serializer](session& s, std::function<void(beast::error_code)> next) {
      bhttp::async_write_header(s.stream_, *serializer,
                                [head, serializer, next](beast::error_code ec, size_t) { next(ec); });
    });
  }

  void stream_write(std::string data) {
    if (!streaming_)
      return;
    auto text = std::make_shared<std::string>(std::move(data));
    enqueue([text](session& s, std::function<void(beast::error_code)> next) {
      net::async_write(s.stream_, bhttp::make_chunk(net::buffer(*text)),
                       [text, next](beast::error_code ec, size_t) { next(ec); });
    });
  }

  void stream_close() {
    if (!streaming_)
      return;
    finish_request();
    enqueue([](session& s, std::function<void(beast::error_code)> next) {
      net::async_write(s.stream_, bhttp::make_chunk_last(),
                       [next](beast::error_code ec, size_t) { next(ec); });
    });
    stream_done_ = true;
  }

private:
  using write_step = std::function<void(session&, std::function<void(beast::error_code)>)>;

  void read() {
    streaming_ = false;
    stream_done_ = false;
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
    request_id_ = new_request_id();
    started_ = std::chrono::steady_clock::now();
    method_ = "-";
    target_ = "-";
    if (ec == bhttp::error::body_limit)
      return send(error_response({413, "payload_too_large",
                                  "the request body exceeds "
                                    + std::to_string(opts_.lim.max_body_bytes) + " bytes"}),
                  false);
    if (ec)
      return send(error_response({400, "bad_http", "malformed HTTP request: " + ec.message()}), false);
    auto req = parser_->release();
    request_view view;
    view.method = method_ = std::string(req.method_string());
    view.target = target_ = std::string(req.target());
    view.body = std::move(req.body());
    // The client's id is echoed and logged, never used as a key: cancellation, leases
    // and streams go by the server's id, so no client can reach another's request.
    client_id_.clear();
    auto id_header = req.find("X-Request-Id");
    if (id_header != req.end() && printable_id(id_header->value()))
      client_id_ = std::string(id_header->value());
    if (!client_id_.empty())
      spdlog::info("http {} is the client's {}", request_id_, client_id_);
    view.request_id = request_id_;
    if (auto auth = req.find(boost::beast::http::field::authorization); auth != req.end())
      view.authorization = std::string(auth->value());
    keep_alive_ = req.keep_alive();
    if (drain_->draining)
      return send(error_response({503, "shutting_down", "the server is shutting down; try another instance"}), false);
    stream_.expires_never();
    // One answer per request: the backend's, or a 504 when it takes too long. A timer
    // here (not an actor-side request timeout) is cancelled on the answer, so nothing
    // per request outlives it.
    auto generation = ++generation_;
    answered_ = false;
    counted_ = true;
    ++drain_->active;
    auto self = shared_from_this();
    deadline_.expires_after(std::chrono::seconds(opts_.lim.request_timeout_s));
    deadline_.async_wait([self, generation](beast::error_code ec) {
      if (ec || self->answered_ || generation != self->generation_)
        return;
      self->svc_.cancel(self->request_id_);
      auto err = error_response({504, "timeout", "no answer within "
                                                   + std::to_string(self->opts_.lim.request_timeout_s) + " s"});
      if (self->streaming_) {  // headers are out: the error becomes the stream's last event
        self->stream_write(sse_event("error", err.body));
        self->stream_close();
        return;
      }
      self->finish_request();
      self->send(std::move(err), false);
    });
    watch_for_disconnect();
    route(view, svc_, opts_.lim, std::make_shared<session_responder>(self, generation, request_id_));
  }

  // While the backend works, a read on the socket notices a client that goes away (EOF or
  // reset), so that its request is cancelled instead of running on for nobody. Bytes that
  // arrive meanwhile (a pipelined request) are kept for the next parse.
  void watch_for_disconnect() {
    if (watching_ || buffer_.size() > 64 * 1024)
      return;
    watching_ = true;
    stream_.socket().async_read_some(
      net::buffer(watch_bytes_), [self = shared_from_this()](beast::error_code ec, size_t n) {
        self->watching_ = false;
        if (n > 0)
          self->buffer_.commit(net::buffer_copy(self->buffer_.prepare(n), net::buffer(self->watch_bytes_, n)));
        if (ec && ec != net::error::operation_aborted) {
          if (!self->answered_) {
            spdlog::info("http {} client went away; cancelling", self->request_id_);
            self->finish_request();
            self->svc_.cancel(self->request_id_);
          }
          self->gone_ = true;
          return self->close();
        }
        if (!self->answered_)
          return self->watch_for_disconnect();
        if (self->read_after_watch_) {
          self->read_after_watch_ = false;
          self->read();
        }
      });
  }

  // The next request is read only when no watch read is pending on the socket.
  void read_next() {
    if (gone_)
      return;
    if (watching_) {
      read_after_watch_ = true;
      beast::error_code ec;
      stream_.socket().cancel(ec);  // ends the watch; its handler then reads
      return;
    }
    read();
  }

  void finish_request() {
    answered_ = true;
    deadline_.cancel();
    if (counted_) {
      counted_ = false;
      --drain_->active;
    }
  }

  void log_line(unsigned status) {
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
    spdlog::info("http {} {} {} -> {} ({:.1f} ms)", request_id_, method_, target_, status, ms);
    count_request(method_, target_, status);
  }

  void send(response r, bool keep_alive) {
    log_line(r.status);
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
      static_cast<bhttp::status>(r.status), 11);
    res->set(bhttp::field::server, "adapterd");
    res->set(bhttp::field::content_type, r.content_type);
    res->set("X-Request-Id", shown_id());
    for (const auto& [k, v] : r.headers)
      res->set(k, v);
    res->keep_alive(keep_alive);
    res->body() = std::move(r.body);
    res->prepare_payload();
    if (method_ == "HEAD") {  // the headers a GET would get, Content-Length included, no body
      auto length = res->body().size();
      res->body().clear();
      res->content_length(length);
    }
    stream_done_ = true;
    enqueue([res](session& s, std::function<void(beast::error_code)> next) {
      bhttp::async_write(s.stream_, *res, [res, next](beast::error_code ec, size_t) { next(ec); });
    });
  }

  // Writes run one after another; after the one that ends a response, the next request is
  // read (or the connection closes).
  void enqueue(write_step step) {
    writes_.push_back(std::move(step));
    if (!writing_)
      write_next();
  }

  void write_next() {
    if (writes_.empty()) {
      writing_ = false;
      stream_.expires_never();  // the write deadline ends with the writes
      if (stream_done_ && !gone_) {
        if (!keep_alive_ || !answered_)
          return close();
        read_next();
      }
      return;
    }
    writing_ = true;
    stream_.expires_after(std::chrono::seconds(opts_.write_timeout_s));
    auto step = std::move(writes_.front());
    writes_.pop_front();
    step(*this, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        if (!self->answered_) {  // a streamed write failed: nobody is listening
          self->finish_request();
          self->svc_.cancel(self->request_id_);
        }
        self->writes_.clear();
        self->writing_ = false;
        self->gone_ = true;
        return self->close();
      }
      self->write_next();
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
  bool streaming_ = false;    // the event stream's headers are queued
  bool stream_done_ = false;  // the current response's last write is queued
  bool watching_ = false;
  bool read_after_watch_ = false;
  bool gone_ = false;         // the connection is closed
  bool writing_ = false;
  std::deque<write_step> writes_;
  char watch_bytes_[512];
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  backend& svc_;
  const server_options& opts_;
  std::shared_ptr<drain_state> drain_;
  bool counted_ = false;  // this request counts in drain_->active
  bool keep_alive_ = false;
  std::string request_id_, client_id_, method_ = "-", target_ = "-";

  std::string shown_id() const { return client_id_.empty() ? request_id_ : client_id_; }
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

void session_responder::respond(response r) {
  session_->on_strand(generation_, [r = std::move(r)](session& s) mutable { s.respond(std::move(r)); });
}

void session_responder::stream_open() {
  session_->on_strand(generation_, [](session& s) { s.stream_open(); });
}

void session_responder::stream_write(std::string data) {
  session_->on_strand(generation_, [d = std::move(data)](session& s) mutable { s.stream_write(std::move(d)); });
}

std::string session_responder::request_id() const { return id_; }

void session_responder::stream_close() {
  session_->on_strand(generation_, [](session& s) { s.stream_close(); });
}

}  // namespace

struct server::state {
  server_options opts;
  backend& svc;
  net::io_context ioc;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  std::vector<std::thread> threads;
  bool running = false;
  std::shared_ptr<drain_state> drain = std::make_shared<drain_state>();

  state(server_options o, backend& s) : opts(std::move(o)), svc(s), ioc(static_cast<int>(opts.io_threads)) {}

  net::steady_timer backoff{acceptor.get_executor()};

  void accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor.is_open())
        return;
      if (ec) {
        // Out of descriptors (EMFILE, ENFILE) or memory: accepting again at once would
        // spin a core; wait for sessions to close some.
        spdlog::warn("http accept failed: {}; retrying in 100 ms", ec.message());
        backoff.expires_after(std::chrono::milliseconds(100));
        return backoff.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && acceptor.is_open())
            accept();
        });
      }
      if (drain->connections >= opts.max_connections)
        refuse(std::move(socket));
      else
        std::make_shared<session>(std::move(socket), svc, opts, drain)->run();
      accept();
    });
  }

  // Past --max-connections: a short 503, then the connection closes.
  void refuse(tcp::socket socket) {
    static const std::string body = R"({"error":{"code":"overloaded","message":"too many open connections; try again later"}})";
    static const std::string text = "HTTP/1.1 503 Service Unavailable\r\nServer: adapterd\r\nContent-Type: application/json\r\n"
                                    "Retry-After: 1\r\nConnection: close\r\nContent-Length: "
                                    + std::to_string(body.size()) + "\r\n\r\n" + body;
    count_request("-", "-", 503);
    auto sock = std::make_shared<tcp::socket>(std::move(socket));
    net::async_write(*sock, net::buffer(text), [sock](beast::error_code, size_t) {
      beast::error_code ignored;
      sock->shutdown(tcp::socket::shutdown_both, ignored);
      sock->close(ignored);
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
    s.threads.emplace_back([&s] {
      // The last firewall: an exception out of a handler ends that handler, not the thread.
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http io thread: unexpected failure: {}", e.what());
        } catch (...) {
          spdlog::error("http io thread: unexpected failure");
        }
      }
    });
  return port;
}

void server::stop_taking() {
  auto& s = *state_;
  if (!s.running || s.drain->draining.exchange(true))
    return;
  net::post(s.acceptor.get_executor(), [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
  });
}

int server::drain(std::chrono::milliseconds grace) {
  auto& s = *state_;
  if (!s.running)
    return 0;
  stop_taking();
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (s.drain->active > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return s.drain->active;
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
