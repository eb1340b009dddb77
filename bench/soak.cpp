// adapterd-soak: many requests mixing adapters, prompt lengths and cleanup calls against
// a running server, recording its memory over time. Writes PREFIX.csv and PREFIX.svg (RSS
// and GPU memory against requests) and prints RSS after warm-up and at the end.
#include <fstream>
#include <optional>
#include <iostream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bench/http_client.hpp"
#include "bench/stats.hpp"

using nlohmann::json;

namespace {

struct options {
  std::string host = "127.0.0.1", port = "8110", out = "soak";
  int requests = 2000, warmup = 100, cleanup_every = 50, sample_every = 10;
  std::vector<std::string> adapters;
  uint64_t seed = 7;
};

struct sample {
  int requests = 0;
  double seconds = 0, rss_mb = 0, gpu_allocated_mb = 0, gpu_reserved_mb = 0;
  int64_t model_loads = 0, evictions = 0;
};

int usage(const std::string& problem) {
  std::cerr << (problem.empty() ? "" : "adapterd-soak: " + problem + "\n")
            << "usage: adapterd-soak [--host H] [--port P] [--requests N] [--warmup N]\n"
               "                     [--cleanup-every N] [--adapter PATH]... [--out PREFIX] [--seed S]\n";
  return problem.empty() ? 0 : 2;
}

std::optional<sample> poll(adapterd::bench::http_client& client, int done, double seconds) {
  auto r = client.call("GET", "/health", "");
  auto h = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !h.is_object())
    return std::nullopt;
  sample s;
  s.requests = done;
  s.seconds = seconds;
  s.rss_mb = h.value("process_rss_mb", 0.0);
  s.gpu_allocated_mb = h["gpu_memory"].value("allocated_mb", 0.0);
  s.gpu_reserved_mb = h["gpu_memory"].value("reserved_mb", 0.0);
  s.model_loads = h["counters"].value("model_loads", int64_t{0});
  s.evictions = h["counters"].value("evictions", int64_t{0});
  return s;
}

// A line chart of RSS (and GPU reserved memory when present) against requests served.
std::string svg_chart(const std::vector<sample>& samples, int warmup) {
  const double w = 800, h = 400, left = 70, right = 20, top = 30, bottom = 50;
  double max_x = 1, max_y = 1;
  for (const auto& s : samples) {
    max_x = std::max(max_x, static_cast<double>(s.requests));
    max_y = std::max({max_y, s.rss_mb, s.gpu_reserved_mb});
  }
  max_y *= 1.1;
  auto x = [&](double v) { return left + v / max_x * (w - left - right); };
  auto y = [&](double v) { return h - bottom - v / max_y * (h - top - bottom); };
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n"
    << "<text x='" << left << "' y='18' font-size='14'>adapterd soak: memory over "
    << samples.back().requests << " requests</text>\n";
  for (int i = 0; i <= 5; ++i) {
    double v = max_y * i / 5;
    o << "<line x1='" << left << "' x2='" << w - right << "' y1='" << y(v) << "' y2='" << y(v)
      << "' stroke='#ddd'/><text x='5' y='" << y(v) + 4 << "'>" << static_cast<int>(v) << " MiB</text>\n";
    double r = max_x * i / 5;
    o << "<text x='" << x(r) - 10 << "' y='" << h - bottom + 18 << "'>" << static_cast<int>(r) << "</text>\n";
  }
  o << "<text x='" << w / 2 - 40 << "' y='" << h - 10 << "'>requests served</text>\n";
  o << "<line x1='" << x(warmup) << "' x2='" << x(warmup) << "' y1='" << top << "' y2='" << h - bottom
    << "' stroke='#999' stroke-dasharray='4'/><text x='" << x(warmup) + 4 << "' y='" << top + 12
    << "'>end of warm-up</text>\n";
  auto line = [&](auto field, const char* color, const char* label, int row) {
    o << "<polyline fill='none' stroke='" << color << "' stroke-width='2' points='";
    for (const auto& s : samples)
      o << x(s.requests) << "," << y(field(s)) << " ";
    o << "'/><text x='" << w - 220 << "' y='" << top + 14 * row << "' fill='" << color << "'>" << label
      << "</text>\n";
  };
  line([](const sample& s) { return s.rss_mb; }, "#1f77b4", "process RSS (MiB)", 1);
  if (samples.back().gpu_reserved_mb > 0) {
    line([](const sample& s) { return s.gpu_reserved_mb; }, "#d62728", "GPU reserved (MiB)", 2);
    line([](const sample& s) { return s.gpu_allocated_mb; }, "#ff7f0e", "GPU allocated (MiB)", 3);
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help")
      return usage("");
    if (i + 1 >= argc)
      return usage("option " + a + " needs a value");
    std::string v = argv[++i];
    try {
      if (a == "--host") o.host = v;
      else if (a == "--port") o.port = v;
      else if (a == "--out") o.out = v;
      else if (a == "--adapter") o.adapters.push_back(v);
      else if (a == "--requests") o.requests = std::stoi(v);
      else if (a == "--warmup") o.warmup = std::stoi(v);
      else if (a == "--cleanup-every") o.cleanup_every = std::stoi(v);
      else if (a == "--seed") o.seed = std::stoull(v);
      else return usage("unknown option " + a);
    } catch (const std::exception&) {
      return usage("option " + a + " needs a number");
    }
  }
  if (o.requests < 1 || o.requests > 1000000 || o.warmup < 0 || o.warmup >= o.requests || o.cleanup_every < 0)
    return usage("need 0 <= --warmup < --requests <= 1000000 and --cleanup-every >= 0");

  adapterd::bench::http_client client(o.host, o.port);
  std::mt19937_64 rng(o.seed);
  static const char* words[] = {"memory", "stays", "flat", "while", "adapters", "change", "the",
                                "style", "of", "every", "answer", "server", "model", "queue"};
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  std::vector<sample> samples;
  std::vector<double> latencies;
  std::optional<sample> warm;
  int failures = 0;
  for (int i = 0; i < o.requests; ++i) {
    std::string prompt;
    for (int n = 1 + static_cast<int>(rng() % 80); n > 0; --n)
      prompt += std::string(words[rng() % 14]) + " ";
    json body = {{"prompt", prompt}, {"max_new_tokens", 4 + static_cast<int>(rng() % 29)}, {"temperature", 0}};
    auto pick = o.adapters.empty() ? 0 : rng() % (o.adapters.size() + 1);
    if (pick > 0)
      body["adapter_path"] = o.adapters[pick - 1];
    auto r = client.call("POST", "/generate-lite", body.dump());
    if (r.status == 0) {
      std::cerr << "adapterd-soak: no answer from " << o.host << ":" << o.port << ": " << r.error << "\n";
      return 1;
    }
    if (r.status != 200) {
      ++failures;
      std::cerr << "request " << i << ": " << r.status << " " << r.body << "\n";
    } else if (i >= o.warmup) {
      latencies.push_back(r.ms);
    }
    if (o.cleanup_every > 0 && (i + 1) % o.cleanup_every == 0
        && client.call("POST", "/cleanup-memory", "").status != 200)
      ++failures;
    if ((i + 1) % o.sample_every == 0 || i + 1 == o.warmup || i + 1 == o.requests) {
      if (auto s = poll(client, i + 1, elapsed())) {
        samples.push_back(*s);
        if (i + 1 == o.warmup)
          warm = s;
      }
    }
  }
  if (!warm || samples.empty()) {
    std::cerr << "adapterd-soak: /health did not answer\n";
    return 1;
  }
  std::ofstream csv(o.out + ".csv");
  csv << "requests,seconds,rss_mb,gpu_allocated_mb,gpu_reserved_mb,model_loads,evictions\n";
  for (const auto& s : samples)
    csv << s.requests << "," << s.seconds << "," << s.rss_mb << "," << s.gpu_allocated_mb << ","
        << s.gpu_reserved_mb << "," << s.model_loads << "," << s.evictions << "\n";
  std::ofstream(o.out + ".svg") << svg_chart(samples, o.warmup);
  const auto& end = samples.back();
  std::cout << "requests " << o.requests << " (" << o.adapters.size() << " adapters + base), failures "
            << failures << ", " << elapsed() << " s\n"
            << "RSS after warm-up (" << o.warmup << " requests): " << warm->rss_mb << " MiB\n"
            << "RSS at the end: " << end.rss_mb << " MiB (ratio " << end.rss_mb / warm->rss_mb << ")\n";
  if (end.gpu_reserved_mb > 0)
    std::cout << "GPU reserved after warm-up " << warm->gpu_reserved_mb << " MiB, at the end "
              << end.gpu_reserved_mb << " MiB\n";
  std::cout << "model loads during the soak: " << end.model_loads - warm->model_loads
            << ", evictions: " << end.evictions - warm->evictions << "\n"
            << "latency after warm-up: median " << adapterd::bench::median(latencies) << " ms, p99 "
            << adapterd::bench::percentile(latencies, 99) << " ms\n"
            << "wrote " << o.out << ".csv and " << o.out << ".svg\n";
  return failures == 0 ? 0 : 1;
}
