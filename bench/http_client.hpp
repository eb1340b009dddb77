#pragma once
// A small blocking HTTP/1.1 client over Boost.Beast for bench programs: one connection,
// kept alive, reopened when the server closes it.
#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace adapterd::bench {

struct http_result {
  unsigned status = 0;  // 0: no answer (connection failed)
  std::string body;
  std::string error;
  double ms = 0;
};

class http_client {
public:
  http_client(std::string host, std::string port) : host_(std::move(host)), port_(std::move(port)) {}

  http_result call(const std::string& method, const std::string& target, const std::string& body,
                   std::chrono::seconds timeout = std::chrono::seconds(300)) {
    namespace beast = boost::beast;
    namespace http = beast::http;
    auto start = std::chrono::steady_clock::now();
    http_result out;
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        if (!stream_) {
          stream_.emplace(ioc_);
          boost::asio::ip::tcp::resolver resolver(ioc_);
          stream_->expires_after(timeout);
          stream_->connect(resolver.resolve(host_, port_));
        }
        http::request<http::string_body> req{http::string_to_verb(method), target, 11};
        req.set(http::field::host, host_);
        req.set(http::field::content_type, "application/json");
        req.keep_alive(true);
        req.body() = body;
        req.prepare_payload();
        stream_->expires_after(timeout);
        http::write(*stream_, req);
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        http::read(*stream_, buffer, res);
        out.status = res.result_int();
        out.body = std::move(res.body());
        if (!res.keep_alive())
          stream_.reset();
        break;
      } catch (const std::exception& e) {
        stream_.reset();  // the server may have closed a kept-alive connection: retry once
        out.error = e.what();
      }
    }
    out.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return out;
  }

private:
  std::string host_, port_;
  boost::asio::io_context ioc_;
  std::optional<boost::beast::tcp_stream> stream_;
};

}  // namespace adapterd::bench
