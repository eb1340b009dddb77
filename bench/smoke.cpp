// adapterd-smoke: the seed's smoke script for adapterd. Sends N generation requests one
// after another with a /cleanup-memory call between them, writes every result to a JSON
// file, prints first/warm latency and RSS, and exits non-zero if anything failed.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/http_client.hpp"
#include "bench/stats.hpp"

using adapterd::bench::median;

using nlohmann::json;

namespace {

struct options {
  std::string host = "127.0.0.1";
  std::string port = "8110";
  int requests = 10;
  int max_new_tokens = 32;
  std::string prompt = "Once upon a time";
  std::string adapter;
  std::string out = "smoke-results.json";
  bool cleanup = true;
};

int usage(const std::string& problem) {
  if (!problem.empty())
    std::cerr << "adapterd-smoke: " << problem << "\n";
  std::cerr << "usage: adapterd-smoke [--host H] [--port P] [--requests N] [--max-new-tokens T]\n"
               "                      [--prompt TEXT] [--adapter PATH] [--out FILE] [--no-cleanup]\n";
  return problem.empty() ? 0 : 2;
}

double rss_mb(adapterd::bench::http_client& client) {
  auto h = client.call("GET", "/health", "");
  auto j = json::parse(h.body, nullptr, false);
  return h.status == 200 && j.is_object() ? j.value("process_rss_mb", 0.0) : -1.0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= argc)
        return false;
      into = argv[++i];
      return true;
    };
    std::string v;
    try {
      if (a == "--help") return usage("");
      else if (a == "--no-cleanup") o.cleanup = false;
      else if (a == "--host" && value(o.host)) {}
      else if (a == "--port" && value(o.port)) {}
      else if (a == "--prompt" && value(o.prompt)) {}
      else if (a == "--adapter" && value(o.adapter)) {}
      else if (a == "--out" && value(o.out)) {}
      else if (a == "--requests" && value(v)) o.requests = std::stoi(v);
      else if (a == "--max-new-tokens" && value(v)) o.max_new_tokens = std::stoi(v);
      else return usage("unknown or incomplete option " + a);
    } catch (const std::exception&) {
      return usage("option " + a + " needs an integer");
    }
  }
  if (o.requests < 1 || o.requests > 100000 || o.max_new_tokens < 1)
    return usage("--requests must be 1..100000 and --max-new-tokens positive");

  adapterd::bench::http_client client(o.host, o.port);
  json results = json::array();
  std::vector<double> warm;
  std::map<int, double> rss_after;
  int failures = 0;
  json body = {{"prompt", o.prompt}, {"max_new_tokens", o.max_new_tokens}, {"temperature", 0}};
  if (!o.adapter.empty())
    body["adapter_path"] = o.adapter;
  for (int i = 0; i < o.requests; ++i) {
    auto r = client.call("POST", "/generate-lite", body.dump());
    if (r.status == 0) {  // no server: one clear line, not one per request
      std::cerr << "adapterd-smoke: no answer from " << o.host << ":" << o.port << ": " << r.error << "\n";
      return 1;
    }
    auto reply = json::parse(r.body, nullptr, false);
    bool ok = r.status == 200 && reply.is_object();
    failures += ok ? 0 : 1;
    if (i > 0 && ok)
      warm.push_back(r.ms);
    results.push_back({{"index", i}, {"status", r.status}, {"ms", r.ms},
                       {"reply", reply.is_discarded() ? json(r.body) : reply},
                       {"transport_error", r.error}});
    if (!ok)
      std::cerr << "request " << i << " failed: " << r.status << " " << r.body << r.error << "\n";
    if (o.cleanup && i + 1 < o.requests) {
      auto c = client.call("POST", "/cleanup-memory", "");
      if (c.status != 200) {
        ++failures;
        std::cerr << "cleanup after request " << i << " failed: " << c.status << " " << c.body << "\n";
      }
    }
    if ((i + 1) % 10 == 0 || i + 1 == o.requests)
      rss_after[i + 1] = rss_mb(client);
  }
  json summary = {{"requests", o.requests}, {"failures", failures},
                  {"first_ms", results[0]["ms"]}, {"warm_median_ms", median(warm)},
                  {"rss_mb_after", rss_after}};
  std::ofstream out(o.out);
  out << json{{"summary", summary}, {"results", results}}.dump(2) << "\n";
  if (!out) {
    std::cerr << "adapterd-smoke: cannot write " << o.out << "\n";
    return 1;
  }
  std::cout << "requests " << o.requests << ", failures " << failures << ", first "
            << results[0]["ms"].get<double>() << " ms, warm median " << median(warm) << " ms\n";
  for (const auto& [n, mb] : rss_after)
    std::cout << "rss after " << n << " requests: " << mb << " MiB\n";
  std::cout << "results in " << o.out << "\n";
  return failures == 0 ? 0 : 1;
}
