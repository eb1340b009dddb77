// adapterd-fairness --port P --flood ADAPTER_DIR --quiet ADAPTER_DIR [--flood-clients 32]
//   [--quiet-clients 1] [--requests 40] [--max-new-tokens 32] [--flood-new-tokens N]
//   [--steady ADAPTER_DIR] [--steady-clients 8] [--time-limit 600]:
// whether one adapter flooding the queue holds back another. The quiet adapter's clients
// send --requests requests alone; then (with --steady) beside a steady load that keeps the
// server busy but leaves places in the batch, so nothing queues; then while the flood's
// clients send theirs back to back. The report gives the quiet requests' queue wait (the
// server's queue_ms: arrival to admission) and end-to-end time in each phase, and their
// ratios. Every loop is bounded by its count and by --time-limit.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/generate_client.hpp"
#include "bench/stats.hpp"

using namespace adapterd::bench;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::string host = "127.0.0.1", port, flood, quiet, steady;
  int flood_clients = 32, quiet_clients = 1, steady_clients = 8, requests = 40, max_new_tokens = 32;
  int flood_new_tokens = 0;  // 0: max_new_tokens
  double time_limit_s = 600;
};

struct samples {
  std::mutex mutex;
  std::vector<double> queue_ms, e2e_ms;
  int failed = 0;
  void add(const generate_timing& t) {
    std::lock_guard<std::mutex> lock(mutex);
    if (t.status != 200) {
      ++failed;
      return;
    }
    queue_ms.push_back(t.server_queue_ms);
    e2e_ms.push_back(t.e2e_ms);
  }
};

nlohmann::json body(const std::string& adapter, int max_new_tokens, int i) {
  return {{"prompt", "request " + std::to_string(i) + " of a steady client, a few words long"},
          {"adapter_path", adapter},
          {"max_new_tokens", max_new_tokens},
          {"temperature", 0},
          {"ignore_eos", true}};
}

// The quiet adapter's requests, `clients` at a time, until `requests` are answered.
void run_quiet(const options& o, samples& out, clock_type::time_point deadline) {
  std::atomic<int> next{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < o.quiet_clients; ++c)
    clients.emplace_back([&] {
      generate_client client(o.host, o.port);
      for (int i = next++; i < o.requests && clock_type::now() < deadline; i = next++)
        out.add(client.call(body(o.quiet, o.max_new_tokens, i), false));
    });
  for (auto& t : clients)
    t.join();
}

// `clients` of `adapter` sending back to back until `stop`, while `during` runs.
void beside(const options& o, const std::string& adapter, int clients, int new_tokens, samples& out,
            clock_type::time_point deadline, const std::function<void()>& during) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (int c = 0; c < clients; ++c)
    senders.emplace_back([&, c] {
      generate_client client(o.host, o.port);
      for (int i = 0; i < 100000 && !stop && clock_type::now() < deadline; ++i)
        out.add(client.call(body(adapter, new_tokens, c * 100000 + i), false));
    });
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the load (and the queue) builds up
  during();
  stop = true;
  for (auto& t : senders)
    t.join();
}

double ratio(const std::vector<double>& a, const std::vector<double>& b, double p) {
  return percentile(a, p) / std::max(1e-3, percentile(b, p));
}

void print(const char* phase, const samples& s) {
  std::printf("%-22s %5zu %4d  %10.1f %10.1f  %10.1f %10.1f\n", phase, s.queue_ms.size(), s.failed,
              percentile(s.queue_ms, 50), percentile(s.queue_ms, 99), percentile(s.e2e_ms, 50),
              percentile(s.e2e_ms, 99));
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--port")
      o.port = value;
    else if (flag == "--host")
      o.host = value;
    else if (flag == "--flood")
      o.flood = value;
    else if (flag == "--quiet")
      o.quiet = value;
    else if (flag == "--steady")
      o.steady = value;
    else if (flag == "--steady-clients")
      o.steady_clients = std::clamp(std::stoi(value), 1, 256);
    else if (flag == "--flood-new-tokens")
      o.flood_new_tokens = std::clamp(std::stoi(value), 1, 4096);
    else if (flag == "--flood-clients")
      o.flood_clients = std::clamp(std::stoi(value), 1, 256);
    else if (flag == "--quiet-clients")
      o.quiet_clients = std::clamp(std::stoi(value), 1, 64);
    else if (flag == "--requests")
      o.requests = std::clamp(std::stoi(value), 1, 10000);
    else if (flag == "--max-new-tokens")
      o.max_new_tokens = std::clamp(std::stoi(value), 1, 4096);
    else if (flag == "--time-limit")
      o.time_limit_s = std::stod(value);
    else {
      std::cerr << "adapterd-fairness: unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (o.port.empty() || o.flood.empty() || o.quiet.empty()) {
    std::cerr << "usage: adapterd-fairness --port P --flood ADAPTER_DIR --quiet ADAPTER_DIR "
                 "[--flood-clients 32] [--quiet-clients 1] [--requests 40] [--max-new-tokens 32] "
                 "[--flood-new-tokens N] [--steady ADAPTER_DIR] [--steady-clients 8] [--time-limit "
                 "600]\n";
    return 2;
  }
  const auto deadline = clock_type::now()
                        + std::chrono::duration_cast<clock_type::duration>(
                            std::chrono::duration<double>(o.time_limit_s));
  {  // warm: both adapters loaded
    generate_client c(o.host, o.port);
    c.call(body(o.flood, 2, 0), false);
    c.call(body(o.quiet, 2, 0), false);
  }
  if (o.flood_new_tokens == 0)
    o.flood_new_tokens = o.max_new_tokens;
  samples alone, steadied, steady, flooded, flood;
  run_quiet(o, alone, deadline);
  if (!o.steady.empty())
    beside(o, o.steady, o.steady_clients, o.max_new_tokens, steady, deadline,
           [&] { run_quiet(o, steadied, deadline); });
  beside(o, o.flood, o.flood_clients, o.flood_new_tokens, flood, deadline,
         [&] { run_quiet(o, flooded, deadline); });

  std::printf(
      "%d quiet client(s), %d flooding (%d new tokens), %d steady; quiet %d new tokens (ms)\n",
      o.quiet_clients, o.flood_clients, o.flood_new_tokens, o.steady.empty() ? 0 : o.steady_clients,
      o.max_new_tokens);
  std::printf("%-22s %5s %4s  %10s %10s  %10s %10s\n", "phase", "ok", "fail", "queue p50",
              "queue p99", "e2e p50", "e2e p99");
  print("quiet alone", alone);
  if (!o.steady.empty()) {
    print("quiet beside steady", steadied);
    print("steady", steady);
  }
  print("quiet beside flood", flooded);
  print("flood", flood);
  std::printf("quiet p99 queue wait, flooded / alone: %.2f (p50 %.2f); e2e p99 %.2f\n",
              ratio(flooded.queue_ms, alone.queue_ms, 99),
              ratio(flooded.queue_ms, alone.queue_ms, 50), ratio(flooded.e2e_ms, alone.e2e_ms, 99));
  if (!o.steady.empty())
    std::printf("quiet p99 queue wait, flooded / beside steady: %.2f (p50 %.2f)\n",
                ratio(flooded.queue_ms, steadied.queue_ms, 99),
                ratio(flooded.queue_ms, steadied.queue_ms, 50));
  return alone.failed + steadied.failed + flooded.failed > 0 ? 1 : 0;
}
