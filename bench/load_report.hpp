#pragma once
// What adapterd-load reports for one load level, and how it is written: a table for people,
// JSON and CSV for tools, an SVG chart (throughput against latency across levels, memory
// over time) for a browser.
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/generate_client.hpp"
#include "bench/stats.hpp"

namespace adapterd::bench {

struct health_sample {
  double t_s = 0;  // since the run began
  double rss_mb = 0;
  double gpu_allocated_mb = 0;
  unsigned queue_depth = 0;
  unsigned running = 0;
};

struct level_report {
  std::string server;  // "A", "B"
  std::string mode;    // "concurrency" | "rate"
  double level = 0;
  size_t requests = 0;
  double wall_s = 0;
  std::map<unsigned, size_t> by_status;
  double requests_per_s = 0, tokens_per_s = 0;
  double ttft_mean = 0, ttft_p50 = 0, ttft_p90 = 0, ttft_p99 = 0;
  double itl_p50 = 0, itl_p90 = 0, itl_p99 = 0;
  double e2e_p50 = 0, e2e_p90 = 0, e2e_p99 = 0;
  double overhead_p50 = 0, overhead_p90 = 0, overhead_p99 = 0;  // e2e - server generate - queue
};

inline level_report summarise(const std::string& server, const std::string& mode, double level,
                              const std::vector<generate_timing>& calls, double wall_s) {
  level_report r;
  r.server = server;
  r.mode = mode;
  r.level = level;
  r.requests = calls.size();
  r.wall_s = wall_s;
  std::vector<double> ttft, itl, e2e, overhead;
  double tokens = 0;
  size_t ok = 0;
  for (const auto& c : calls) {
    ++r.by_status[c.status];
    if (c.status != 200)
      continue;
    ++ok;
    tokens += c.tokens;
    e2e.push_back(c.e2e_ms);
    overhead.push_back(c.e2e_ms - c.server_generate_ms - c.server_queue_ms);
    if (c.ttft_ms >= 0)
      ttft.push_back(c.ttft_ms);
    itl.insert(itl.end(), c.itl_ms.begin(), c.itl_ms.end());
  }
  r.requests_per_s = wall_s > 0 ? static_cast<double>(ok) / wall_s : 0;
  r.tokens_per_s = wall_s > 0 ? tokens / wall_s : 0;
  auto fill = [](const std::vector<double>& v, double& p50, double& p90, double& p99) {
    p50 = percentile(v, 50);
    p90 = percentile(v, 90);
    p99 = percentile(v, 99);
  };
  fill(ttft, r.ttft_p50, r.ttft_p90, r.ttft_p99);
  r.ttft_mean = mean(ttft);
  fill(itl, r.itl_p50, r.itl_p90, r.itl_p99);
  fill(e2e, r.e2e_p50, r.e2e_p90, r.e2e_p99);
  fill(overhead, r.overhead_p50, r.overhead_p90, r.overhead_p99);
  return r;
}

inline std::string status_text(const level_report& r) {
  std::string s;
  for (const auto& [status, n] : r.by_status)
    s += (s.empty() ? "" : " ") + (status == 0 ? std::string("failed") : std::to_string(status)) + ":"
         + std::to_string(n);
  return s;
}

inline std::string row(const level_report& r) {
  char line[512];
  std::snprintf(line, sizeof line,
                "%-3s %-12s %6g %7.1f %9.1f %9.1f %9.1f %8.1f %8.2f %8.2f %8.1f %8.1f %8.1f %8.2f "
                "%8.2f  %s\n",
                r.server.c_str(), r.mode.c_str(), r.level, r.requests_per_s, r.tokens_per_s,
                r.ttft_mean, r.ttft_p50, r.ttft_p99, r.itl_p50, r.itl_p99, r.e2e_p50, r.e2e_p90,
                r.e2e_p99, r.overhead_p50, r.overhead_p99, status_text(r).c_str());
  return line;
}

inline std::string table(const std::vector<level_report>& levels) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line,
                "%-3s %-12s %6s %7s %9s %9s %9s %8s %8s %8s %8s %8s %8s %8s %8s  %s\n", "srv",
                "mode", "level", "req/s", "tok/s", "ttftavg", "ttft50", "ttft99", "itl50", "itl99",
                "e2e50", "e2e90", "e2e99", "ovh50", "ovh99", "status");
  out << line;
  for (const auto& r : levels)
    out << row(r);
  out << "(latencies in ms; ovh = end-to-end minus the server's queue_ms and generate_ms)\n";
  return out.str();
}

inline nlohmann::json to_json(const level_report& r) {
  nlohmann::json statuses = nlohmann::json::object();
  for (const auto& [status, n] : r.by_status)
    statuses[std::to_string(status)] = n;
  auto pct = [](double a, double b, double c) { return nlohmann::json{{"p50", a}, {"p90", b}, {"p99", c}}; };
  return {{"server", r.server},
          {"mode", r.mode},
          {"level", r.level},
          {"requests", r.requests},
          {"wall_s", r.wall_s},
          {"requests_per_s", r.requests_per_s},
          {"tokens_per_s", r.tokens_per_s},
          {"status", statuses},
          {"ttft_ms", pct(r.ttft_p50, r.ttft_p90, r.ttft_p99)},
          {"ttft_mean_ms", r.ttft_mean},
          {"itl_ms", pct(r.itl_p50, r.itl_p90, r.itl_p99)},
          {"e2e_ms", pct(r.e2e_p50, r.e2e_p90, r.e2e_p99)},
          {"overhead_ms", pct(r.overhead_p50, r.overhead_p90, r.overhead_p99)}};
}

inline std::string csv(const std::vector<level_report>& levels) {
  std::ostringstream out;
  out << "server,mode,level,requests,wall_s,requests_per_s,tokens_per_s,ttft_mean,ttft_p50,ttft_"
         "p90,ttft_p99,"
         "itl_p50,itl_p90,itl_p99,e2e_p50,e2e_p90,e2e_p99,overhead_p50,overhead_p90,overhead_p99,"
         "errors\n";
  for (const auto& r : levels) {
    size_t errors = 0;
    for (const auto& [status, n] : r.by_status)
      if (status != 200)
        errors += n;
    out << r.server << ',' << r.mode << ',' << r.level << ',' << r.requests << ',' << r.wall_s
        << ',' << r.requests_per_s << ',' << r.tokens_per_s << ',' << r.ttft_mean << ','
        << r.ttft_p50 << ',' << r.ttft_p90 << ',' << r.ttft_p99 << ',' << r.itl_p50 << ','
        << r.itl_p90 << ',' << r.itl_p99 << ',' << r.e2e_p50 << ',' << r.e2e_p90 << ',' << r.e2e_p99
        << ',' << r.overhead_p50 << ',' << r.overhead_p90 << ',' << r.overhead_p99 << ',' << errors
        << '\n';
  }
  return out.str();
}

// Two panels: tokens/s against p50 end-to-end latency, one line per server; RSS over time.
inline std::string svg(const std::vector<level_report>& levels,
                       const std::map<std::string, std::vector<health_sample>>& memory) {
  const double w = 900, h = 360, pad = 75;
  std::ostringstream out;
  out << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << 2 * h
      << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
  auto panel = [&](double top, const std::string& title, const std::string& xlabel, const std::string& ylabel,
                   const std::map<std::string, std::vector<std::pair<double, double>>>& lines) {
    double xmax = 1e-9, ymax = 1e-9;
    for (const auto& [name, pts] : lines)
      for (auto [x, y] : pts) {
        xmax = std::max(xmax, x);
        ymax = std::max(ymax, y);
      }
    out << "<text x='" << w / 2 << "' y='" << top + 20 << "' text-anchor='middle' font-size='14'>" << title
        << "</text>\n";
    out << "<line x1='" << pad << "' y1='" << top + h - pad << "' x2='" << w - pad / 2 << "' y2='" << top + h - pad
        << "' stroke='black'/>\n<line x1='" << pad << "' y1='" << top + 30 << "' x2='" << pad << "' y2='"
        << top + h - pad << "' stroke='black'/>\n";
    out << "<text x='" << w / 2 << "' y='" << top + h - 20 << "' text-anchor='middle'>" << xlabel << "</text>\n";
    out << "<text x='15' y='" << top + h / 2 << "' transform='rotate(-90 15 " << top + h / 2
        << ")' text-anchor='middle'>" << ylabel << "</text>\n";
    for (int i = 0; i <= 4; ++i) {
      double fx = pad + (w - 1.5 * pad) * i / 4, fy = top + h - pad - (h - pad - 30) * i / 4;
      char label[32];
      std::snprintf(label, sizeof label, xmax >= 100 ? "%.0f" : "%.3g", xmax * i / 4);
      out << "<text x='" << fx << "' y='" << top + h - pad + 15 << "' text-anchor='middle'>" << label << "</text>\n";
      std::snprintf(label, sizeof label, ymax >= 100 ? "%.0f" : "%.3g", ymax * i / 4);
      out << "<text x='" << pad - 5 << "' y='" << fy + 4 << "' text-anchor='end'>" << label << "</text>\n";
    }
    const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
    int c = 0;
    for (const auto& [name, pts] : lines) {
      out << "<polyline fill='none' stroke-width='2' stroke='" << colours[c % 4] << "' points='";
      for (auto [x, y] : pts)
        out << pad + (w - 1.5 * pad) * x / xmax << ',' << top + h - pad - (h - pad - 30) * y / ymax << ' ';
      out << "'/>\n";
      for (auto [x, y] : pts)
        out << "<circle r='3' fill='" << colours[c % 4] << "' cx='" << pad + (w - 1.5 * pad) * x / xmax
            << "' cy='" << top + h - pad - (h - pad - 30) * y / ymax << "'/>\n";
      out << "<text x='" << w - pad * 2 << "' y='" << top + 40 + 15 * c << "' fill='" << colours[c % 4] << "'>"
          << name << "</text>\n";
      ++c;
    }
  };
  std::map<std::string, std::vector<std::pair<double, double>>> throughput;
  for (const auto& r : levels)
    throughput["server " + r.server].push_back({r.tokens_per_s, r.e2e_p50});
  panel(0, "throughput vs latency (one point per load level)", "generated tokens/s", "p50 end-to-end ms",
        throughput);
  std::map<std::string, std::vector<std::pair<double, double>>> rss;
  for (const auto& [name, samples] : memory)
    for (const auto& s : samples)
      rss["server " + name + " RSS"].push_back({s.t_s, s.rss_mb});
  panel(h, "server memory over time (from /health)", "seconds", "MiB", rss);
  out << "</svg>\n";
  return out.str();
}

}  // namespace adapterd::bench
