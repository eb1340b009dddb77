#pragma once
// One /generate-lite call as a load generator sees it: over a kept-alive Beast connection,
// streamed (Server-Sent Events, timed as each chunk arrives) or not. Speaks only the seed's
// contract plus "stream", so it can measure any server that offers it.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace adapterd::bench {

struct generate_timing {
  unsigned status = 0;          // 0: no answer (connection failed)
  std::string error;
  double e2e_ms = 0;            // sent -> last byte
  double ttft_ms = -1;          // sent -> first text (streaming only)
  std::vector<double> itl_ms;   // gaps between text chunks, per token (streaming only)
  uint32_t tokens = 0;          // tokens_generated
  uint32_t prompt_tokens = 0;
  uint32_t cached_tokens = 0;  // of prompt_tokens, reused from the server's prefix cache
  std::string text;            // generated_text
  double server_generate_ms = 0;
  double server_queue_ms = 0;
};

class generate_client {
public:
  using clock = std::chrono::steady_clock;

  generate_client(std::string host, std::string port) : host_(std::move(host)), port_(std::move(port)) {}

  generate_timing call(const nlohmann::json& body, bool stream,
                       std::chrono::seconds timeout = std::chrono::seconds(600)) {
    generate_timing out;
    auto start = clock::now();
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        out = attempt_call(body, stream, timeout, start);
        break;
      } catch (const std::exception& e) {
        stream_.reset();  // a kept-alive connection the server closed: retry once
        out.status = 0;
        out.error = e.what();
      }
    }
    out.e2e_ms = ms_since(start);
    return out;
  }

private:
  static double ms_since(clock::time_point t) {
    return std::chrono::duration<double, std::milli>(clock::now() - t).count();
  }

  void read_summary(const nlohmann::json& j, generate_timing& out) {
    out.tokens = j.value("tokens_generated", 0u);
    out.prompt_tokens = j.value("prompt_tokens", 0u);
    if (j.contains("generated_text") && j["generated_text"].is_string())
      out.text = j["generated_text"].get<std::string>();
    if (j.contains("timings") && j["timings"].is_object()) {
      out.cached_tokens = j["timings"].value("prompt_tokens_cached", 0u);
      out.server_generate_ms = j["timings"].value("generate_ms", 0.0);
      out.server_queue_ms = j["timings"].value("queue_ms", 0.0);
    }
  }

  generate_timing attempt_call(const nlohmann::json& body, bool stream, std::chrono::seconds timeout,
                               clock::time_point start) {
    namespace beast = boost::beast;
    namespace http = beast::http;
    if (!stream_) {
      stream_.emplace(ioc_);
      boost::asio::ip::tcp::resolver resolver(ioc_);
      stream_->expires_after(timeout);
      stream_->connect(resolver.resolve(host_, port_));
      stream_->socket().set_option(boost::asio::ip::tcp::no_delay(true));
    }
    auto payload = body;
    if (stream)
      payload["stream"] = true;
    http::request<http::string_body> req{http::verb::post, "/generate-lite", 11};
    req.set(http::field::host, host_);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = payload.dump();
    req.prepare_payload();
    stream_->expires_after(timeout);
    http::write(*stream_, req);

    generate_timing out;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    std::string events;  // SSE text not yet split into events
    double last_chunk_ms = -1;
    uint32_t last_tokens = 0;
    auto on_event = [&](const std::string& event) {
      std::string name = "message", data;
      size_t pos = 0;
      while (pos < event.size()) {
        auto end = event.find('\n', pos);
        auto line = event.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        if (line.rfind("event: ", 0) == 0)
          name = line.substr(7);
        else if (line.rfind("data: ", 0) == 0)
          data += line.substr(6);
        pos = end == std::string::npos ? event.size() : end + 1;
      }
      auto j = nlohmann::json::parse(data, nullptr, false);
      if (j.is_discarded())
        return;
      if (name == "done") {
        read_summary(j, out);
        return;
      }
      if (name == "error") {
        out.error = j.dump();
        return;
      }
      auto now = ms_since(start);
      uint32_t tokens = j.value("tokens", 0u);
      if (out.ttft_ms < 0)
        out.ttft_ms = now;
      else if (tokens > last_tokens)
        out.itl_ms.push_back((now - last_chunk_ms) / (tokens - last_tokens));
      last_chunk_ms = now;
      last_tokens = tokens;
    };
    auto on_chunk = [&](std::uint64_t, beast::string_view piece, beast::error_code& ec) -> std::size_t {
      events.append(piece.data(), piece.size());
      size_t cut;
      while ((cut = events.find("\n\n")) != std::string::npos) {
        on_event(events.substr(0, cut));
        events.erase(0, cut + 2);
      }
      ec = {};
      return piece.size();
    };
    parser.on_chunk_body(on_chunk);
    http::read_header(*stream_, buffer_, parser);
    while (!parser.is_done())
      http::read_some(*stream_, buffer_, parser);
    auto& res = parser.get();
    out.status = res.result_int();
    if (!res.chunked()) {
      auto j = nlohmann::json::parse(res.body(), nullptr, false);
      if (out.status == 200 && !j.is_discarded())
        read_summary(j, out);
      else if (out.status != 200)
        out.error = res.body();
    }
    if (!res.keep_alive())
      stream_.reset();
    return out;
  }

  std::string host_, port_;
  boost::asio::io_context ioc_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace adapterd::bench
