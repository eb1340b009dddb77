// adapterd-load: a load generator for servers that speak the seed's /generate-lite contract.
// Closed loop (a fixed number of clients, each sending its next request when the last one
// is answered) or open loop (Poisson arrivals at a given rate); prompts from a file or
// made up with a length distribution; adapters rotating with the base model; streamed or
// not. Reports TTFT, inter-token and end-to-end latency, throughput, errors by status and
// the server's memory over time; with --port-b it runs two servers level by level,
// alternating, and prints B/A ratios (these machines are noisy: compare within a run).
// --chat WORDS:TURNS runs conversations instead: each adapter (and the base) has its own
// system prompt of WORDS words, a client holds one conversation at a time, and each turn's
// prompt is the conversation so far plus a new question (the prefix cache's workload).
// --long-prompt WORDS:PERIOD adds, beside each level's clients, a sender of a prompt of
// WORDS words (each one different from its start, so that the prefix cache cannot skip it)
// for one new token every PERIOD seconds, open loop (up to 8 out at once): what long
// prompts do to the streams' latency.
// Those requests are reported on their own line, not in the level's figures.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "bench/generate_client.hpp"
#include "bench/http_client.hpp"
#include "bench/load_report.hpp"

using namespace adapterd::bench;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::string host = "127.0.0.1";
  std::string port, port_b;
  std::string mode = "concurrency";
  std::vector<double> levels{1};
  size_t requests = 100;
  uint32_t max_new_tokens = 32;
  double temperature = 0;
  int min_words = 8, max_words = 64;
  std::string prompts_file;
  std::vector<std::string> adapters;
  bool stream = true;
  uint64_t seed = 42;
  double time_limit_s = 300;  // per level: every load loop stops by itself
  size_t max_inflight = 256;  // open loop: client threads
  size_t warmup = 2;          // requests per server before the first level, not counted
  int chat_system_words = 0;  // --chat: conversations with a system prompt of this many words
  int chat_turns = 0;
  int long_words = 0;  // --long-prompt: a prompt of this many words every long_period_s
  double long_period_s = 0;
  std::string json_file, csv_file, svg_file;
};

const char* usage =
    "usage: adapterd-load --port P [--port-b P2] [--host H]\n"
    "         [--concurrency 1,4,16 | --rates 2,5,10] [--requests N] [--max-new-tokens N]\n"
    "         [--prompt-words MIN:MAX | --prompts FILE] [--adapters DIR,DIR] [--no-stream]\n"
    "         [--temperature T] [--seed S] [--time-limit S] [--max-inflight N] [--warmup N]\n"
    "         [--chat SYSTEM_WORDS:TURNS] [--long-prompt WORDS:PERIOD_S]\n"
    "         [--json FILE] [--csv FILE] [--svg FILE]\n";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty())
      out.push_back(item);
  return out;
}

double number(const std::string& flag, const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(v >= 0))
    throw std::invalid_argument(flag + " wants a non-negative number, not '" + text + "'");
  return v;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        throw std::invalid_argument(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      std::cout << usage;
      std::exit(0);
    } else if (flag == "--host") o.host = value();
    else if (flag == "--port") o.port = value();
    else if (flag == "--port-b") o.port_b = value();
    else if (flag == "--concurrency" || flag == "--rates") {
      o.mode = flag == "--rates" ? "rate" : "concurrency";
      o.levels.clear();
      for (const auto& item : split(value(), ','))
        o.levels.push_back(number(flag, item));
      for (double l : o.levels)
        if (l <= 0 || (o.mode == "concurrency" && (l != static_cast<int>(l) || l > 1024)))
          throw std::invalid_argument(flag + " levels must be positive" +
                                      (o.mode == "concurrency" ? " integers up to 1024" : ""));
      if (o.levels.empty())
        throw std::invalid_argument(flag + " needs at least one level");
    } else if (flag == "--requests") o.requests = static_cast<size_t>(number(flag, value()));
    else if (flag == "--max-new-tokens") o.max_new_tokens = static_cast<uint32_t>(number(flag, value()));
    else if (flag == "--temperature") o.temperature = number(flag, value());
    else if (flag == "--seed") o.seed = static_cast<uint64_t>(number(flag, value()));
    else if (flag == "--time-limit") o.time_limit_s = number(flag, value());
    else if (flag == "--max-inflight") o.max_inflight = static_cast<size_t>(number(flag, value()));
    else if (flag == "--warmup") o.warmup = static_cast<size_t>(number(flag, value()));
    else if (flag == "--prompt-words") {
      auto parts = split(value(), ':');
      if (parts.size() != 2)
        throw std::invalid_argument("--prompt-words wants MIN:MAX");
      o.min_words = static_cast<int>(number(flag, parts[0]));
      o.max_words = static_cast<int>(number(flag, parts[1]));
      if (o.min_words < 1 || o.max_words < o.min_words)
        throw std::invalid_argument("--prompt-words wants 1 <= MIN <= MAX");
    } else if (flag == "--chat") {
      auto parts = split(value(), ':');
      if (parts.size() != 2)
        throw std::invalid_argument("--chat wants SYSTEM_WORDS:TURNS");
      o.chat_system_words = static_cast<int>(number(flag, parts[0]));
      o.chat_turns = static_cast<int>(number(flag, parts[1]));
      if (o.chat_system_words < 1 || o.chat_turns < 1 || o.chat_turns > 100)
        throw std::invalid_argument("--chat wants SYSTEM_WORDS >= 1 and 1 <= TURNS <= 100");
    } else if (flag == "--long-prompt") {
      auto parts = split(value(), ':');
      if (parts.size() != 2)
        throw std::invalid_argument("--long-prompt wants WORDS:PERIOD_S");
      o.long_words = static_cast<int>(number(flag, parts[0]));
      o.long_period_s = number(flag, parts[1]);
      if (o.long_words < 1 || o.long_words > 100000 || o.long_period_s < 0.1)
        throw std::invalid_argument("--long-prompt wants 1 <= WORDS <= 100000 and PERIOD_S >= 0.1");
    } else if (flag == "--prompts")
      o.prompts_file = value();
    else if (flag == "--adapters") o.adapters = split(value(), ',');
    else if (flag == "--no-stream") o.stream = false;
    else if (flag == "--json") o.json_file = value();
    else if (flag == "--csv") o.csv_file = value();
    else if (flag == "--svg") o.svg_file = value();
    else
      throw std::invalid_argument("unknown option " + flag);
  }
  if (o.port.empty())
    throw std::invalid_argument("--port is required");
  if (o.requests == 0 || o.max_new_tokens == 0 || o.max_inflight == 0)
    throw std::invalid_argument("--requests, --max-new-tokens and --max-inflight must be at least 1");
  return o;
}

std::vector<std::string> make_prompts(const options& o) {
  std::vector<std::string> prompts;
  if (!o.prompts_file.empty()) {
    std::ifstream in(o.prompts_file);
    if (!in)
      throw std::invalid_argument("cannot read --prompts " + o.prompts_file);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty())
        prompts.push_back(line);
    if (prompts.empty())
      throw std::invalid_argument("--prompts " + o.prompts_file + " holds no prompt");
    return prompts;
  }
  static const char* words[] = {"the", "model", "serves", "adapters", "while", "memory", "stays", "flat",
                                "and", "every", "request", "gets", "its", "answer", "in", "order",
                                "a", "quiet", "river", "runs", "past", "old", "stone", "houses"};
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int> count(o.min_words, o.max_words);
  std::uniform_int_distribution<size_t> pick(0, std::size(words) - 1);
  for (size_t i = 0; i < std::max<size_t>(o.requests, 64); ++i) {
    std::string p;
    for (int n = count(rng); n > 0; --n)
      p += std::string(p.empty() ? "" : " ") + words[pick(rng)];
    prompts.push_back(p);
  }
  return prompts;
}

// --chat: one system prompt per slot (0: the base model, then each adapter), different words.
std::vector<std::string> system_prompts(const options& o) {
  static const char* words[] = {"you",    "are",   "a",      "helpful", "assistant", "for",
                                "the",    "team",  "who",    "answers", "briefly",   "and",
                                "kindly", "about", "rivers", "stones"};
  std::vector<std::string> out;
  for (size_t slot = 0; slot <= o.adapters.size(); ++slot) {
    std::mt19937_64 rng(o.seed * 7919 + slot);
    std::uniform_int_distribution<size_t> pick(0, std::size(words) - 1);
    std::string p = "System " + std::to_string(slot) + ":";
    for (int n = 0; n < o.chat_system_words; ++n)
      p += std::string(" ") + words[pick(rng)];
    out.push_back(p);
  }
  return out;
}

nlohmann::json chat_body(const options& o, const std::string& prompt, size_t slot, size_t i) {
  nlohmann::json body = {{"prompt", prompt},
                         {"max_new_tokens", o.max_new_tokens},
                         {"temperature", o.temperature},
                         {"seed", i}};
  if (slot > 0)
    body["adapter_path"] = o.adapters[slot - 1];
  return body;
}

nlohmann::json request_body(const options& o, const std::vector<std::string>& prompts, size_t i) {
  nlohmann::json body = {{"prompt", prompts[i % prompts.size()]},
                         {"max_new_tokens", o.max_new_tokens},
                         {"temperature", o.temperature},
                         {"seed", i}};
  if (!o.adapters.empty()) {
    auto slot = i % (o.adapters.size() + 1);  // 0: the base model
    if (slot > 0)
      body["adapter_path"] = o.adapters[slot - 1];
  }
  return body;
}

// Polls /health while a server is under load.
class health_poller {
public:
  health_poller(std::string host, std::string port, clock_type::time_point t0, std::vector<health_sample>& out)
    : thread_([=, &out] {
        http_client client(host, port);
        while (!stop_) {
          auto r = client.call("GET", "/health", "", std::chrono::seconds(5));
          auto j = nlohmann::json::parse(r.body, nullptr, false);
          if (r.status == 200 && !j.is_discarded()) {
            health_sample s;
            s.t_s = std::chrono::duration<double>(clock_type::now() - t0).count();
            s.rss_mb = j.value("process_rss_mb", 0.0);
            if (j.contains("gpu_memory"))
              s.gpu_allocated_mb = j["gpu_memory"].value("allocated_mb", 0.0);
            s.queue_depth = j.value("queue_depth", 0u);
            s.running = j.value("running", 0u);
            std::lock_guard<std::mutex> lock(mutex_);
            out.push_back(s);
          }
          for (int i = 0; i < 5 && !stop_; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }) {}
  ~health_poller() {
    stop_ = true;
    thread_.join();
  }

private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::thread thread_;
};

// --long-prompt: sends a long prompt every period until stopped (or the level's time limit),
// then prints how they went. Open loop: each prompt leaves on its schedule on its own
// thread, whether or not the ones before it were answered (a sender that waited would
// hide a server that cannot keep up). At most max_in_flight are out at once; a prompt
// due while that many are still out is counted as skipped, not sent.
class long_prompt_sender {
 public:
  static constexpr size_t max_in_flight = 8;

  long_prompt_sender(const options& o, const std::string& port, clock_type::time_point start,
                     clock_type::time_point stop_at) {
    if (o.long_words <= 0)
      return;
    thread_ = std::thread([=, &o] {
      static const char* words[] = {"long", "document", "about",  "rivers", "stones", "houses",
                                    "and",  "the",      "people", "who",    "built",  "them"};
      std::mt19937_64 rng(o.seed + 17);
      std::uniform_int_distribution<size_t> pick(0, std::size(words) - 1);
      for (size_t n = 0;; ++n) {
        const auto due =
            start
            + std::chrono::duration_cast<clock_type::duration>(
                std::chrono::duration<double>(o.long_period_s * static_cast<double>(n)));
        while (!stop_ && clock_type::now() < due)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (stop_ || clock_type::now() > stop_at)
          return;
        if (in_flight_ >= max_in_flight) {
          ++skipped_;
          continue;
        }
        std::string prompt = "Document " + std::to_string(n) + ":";
        for (int w = 0; w < o.long_words; ++w)
          prompt += std::string(" ") + words[pick(rng)];
        ++in_flight_;
        senders_.emplace_back([this, prompt = std::move(prompt), host = o.host, port] {
          generate_client client(host, port);
          auto timing = client.call(
              nlohmann::json{{"prompt", prompt}, {"max_new_tokens", 1}, {"temperature", 0}}, false);
          std::lock_guard<std::mutex> lock(mutex_);
          calls_.push_back(timing);
          --in_flight_;
        });
      }
    });
  }
  ~long_prompt_sender() { finish(); }
  void finish() {
    if (!thread_.joinable())
      return;
    stop_ = true;
    thread_.join();
    for (auto& t : senders_)
      t.join();
    std::vector<double> e2e, tokens;
    for (const auto& c : calls_)
      if (c.status == 200) {
        e2e.push_back(c.e2e_ms);
        tokens.push_back(c.prompt_tokens);
      }
    std::cout << "  long prompts: " << calls_.size() << " sent, " << e2e.size() << " answered, "
              << skipped_ << " skipped (" << max_in_flight << " still out when due)";
    if (!e2e.empty())
      std::cout << ", " << median(tokens) << " prompt tokens, e2e p50 " << median(e2e)
                << " ms, p99 " << percentile(e2e, 99) << " ms";
    std::cout << "\n";
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<size_t> in_flight_{0};
  size_t skipped_ = 0;  // the scheduling thread's own
  std::mutex mutex_;
  std::vector<generate_timing> calls_;  // under mutex_
  std::vector<std::thread> senders_;    // the scheduling thread's until finish() joins it
  std::thread thread_;
};

// Runs one level against one server; returns the calls in request order and the wall time.
std::pair<std::vector<generate_timing>, double> run_level(const options& o, const std::string& port,
                                                          const std::vector<std::string>& prompts,
                                                          double level) {
  std::vector<generate_timing> calls(o.requests);
  std::vector<bool> done(o.requests, false);
  std::atomic<size_t> next{0};
  const auto start = clock_type::now();
  const auto stop_at = start + std::chrono::duration<double>(o.time_limit_s);
  std::vector<double> arrival_s(o.requests, 0.0);  // open loop: Poisson arrival times
  if (o.mode == "rate") {
    std::mt19937_64 rng(o.seed + static_cast<uint64_t>(level * 1000));
    std::exponential_distribution<double> gap(level);
    double t = 0;
    for (auto& a : arrival_s) {
      a = t;
      t += gap(rng);
    }
  }
  const size_t threads = o.mode == "rate" ? std::min(o.max_inflight, o.requests)
                                          : std::min(static_cast<size_t>(level), o.requests);
  std::vector<std::thread> pool;
  long_prompt_sender long_prompts(o, port, start,
                                  std::chrono::time_point_cast<clock_type::duration>(stop_at));
  const auto systems = system_prompts(o);
  const size_t turns = static_cast<size_t>(std::max(1, o.chat_turns));
  // --chat: a client takes a whole conversation; request i is turn i % turns of conversation i /
  // turns.
  auto converse = [&](generate_client& client) {
    for (;;) {
      const size_t c = next.fetch_add(1), first = c * turns;
      if (first >= o.requests || clock_type::now() > stop_at)
        return;
      const size_t slot = c % systems.size();
      std::string history = systems[slot];
      for (size_t t = 0; t < turns && first + t < o.requests; ++t) {
        const size_t i = first + t;
        const std::string prompt =
            history + "\nUser: " + prompts[i % prompts.size()] + "\nAssistant:";
        auto r = client.call(chat_body(o, prompt, slot, i), o.stream);
        history = prompt + r.text;
        calls[i] = std::move(r);
        done[i] = true;
      }
    }
  };
  for (size_t t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      generate_client client(o.host, port);
      if (o.chat_turns > 0)
        return converse(client);
      for (;;) {
        auto i = next.fetch_add(1);
        if (i >= o.requests || clock_type::now() > stop_at)
          return;
        double late_ms = 0;
        if (o.mode == "rate") {
          auto due = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(arrival_s[i]));
          std::this_thread::sleep_until(due);
          late_ms = std::chrono::duration<double, std::milli>(clock_type::now() - due).count();
        }
        auto r = client.call(request_body(o, prompts, i), o.stream);
        r.e2e_ms += late_ms;  // open loop: latency counts from the scheduled arrival
        if (r.ttft_ms >= 0)
          r.ttft_ms += late_ms;
        calls[i] = std::move(r);
        done[i] = true;
      }
    });
  for (auto& t : pool)
    t.join();
  double wall = std::chrono::duration<double>(clock_type::now() - start).count();
  long_prompts.finish();
  std::vector<generate_timing> finished;
  for (size_t i = 0; i < calls.size(); ++i)
    if (done[i])
      finished.push_back(std::move(calls[i]));
  return {std::move(finished), wall};
}

void write_file(const std::string& path, const std::string& text) {
  if (path.empty())
    return;
  std::ofstream out(path);
  out << text;
  if (!out)
    std::cerr << "adapterd-load: cannot write " << path << "\n";
  else
    std::cout << "wrote " << path << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  std::vector<std::string> prompts;
  try {
    o = parse(argc, argv);
    prompts = make_prompts(o);
  } catch (const std::exception& e) {
    std::cerr << "adapterd-load: " << e.what() << "\n" << usage;
    return 2;
  }
  std::vector<std::pair<std::string, std::string>> servers{{"A", o.port}};
  if (!o.port_b.empty())
    servers.push_back({"B", o.port_b});
  for (const auto& [name, port] : servers) {
    http_client probe(o.host, port);
    auto h = probe.call("GET", "/health", "", std::chrono::seconds(10));
    if (h.status != 200) {
      std::cerr << "adapterd-load: server " << name << " at " << o.host << ":" << port
                << " does not answer /health (" << (h.error.empty() ? std::to_string(h.status) : h.error) << ")\n";
      return 1;
    }
    generate_client warm(o.host, port);
    for (size_t i = 0; i < o.warmup; ++i)
      warm.call(request_body(o, prompts, i), o.stream);
  }
  std::cout << "adapterd-load: " << o.requests << " requests per level, " << o.max_new_tokens
            << " new tokens, prompts of " << (o.prompts_file.empty() ? std::to_string(o.min_words) + "-" + std::to_string(o.max_words) + " words" : o.prompts_file)
            << ", " << o.adapters.size() << " adapters + base, " << (o.stream ? "streaming" : "not streaming") << "\n";
  const auto t0 = clock_type::now();
  std::map<std::string, std::vector<health_sample>> memory;
  std::vector<level_report> reports;
  for (double level : o.levels)
    for (const auto& [name, port] : servers) {
      std::vector<generate_timing> calls;
      double wall = 0;
      {
        health_poller poll(o.host, port, t0, memory[name]);
        std::tie(calls, wall) = run_level(o, port, prompts, level);
      }
      reports.push_back(summarise(name, o.mode, level, calls, wall));
      std::cout << row(reports.back()) << std::flush;
      uint64_t prompt_tokens = 0, cached_tokens = 0;
      for (const auto& c : calls) {
        prompt_tokens += c.prompt_tokens;
        cached_tokens += c.cached_tokens;
      }
      std::printf("  server %s: %llu prompt tokens, %llu of them from the prefix cache (%.1f %%)\n",
                  name.c_str(), static_cast<unsigned long long>(prompt_tokens),
                  static_cast<unsigned long long>(cached_tokens),
                  prompt_tokens > 0 ? 100.0 * static_cast<double>(cached_tokens)
                                          / static_cast<double>(prompt_tokens)
                                    : 0.0);
    }
  std::cout << "\n" << table(reports);
  if (servers.size() == 2) {
    std::cout << "\nB/A ratios (same run, levels alternating A then B):\n";
    for (size_t i = 0; i + 1 < reports.size(); i += 2) {
      const auto &a = reports[i], &b = reports[i + 1];
      std::printf("  %s %g: tokens/s %.3f, e2e p50 %.3f, ttft mean %.3f, ttft p50 %.3f\n",
                  a.mode.c_str(), a.level, a.tokens_per_s > 0 ? b.tokens_per_s / a.tokens_per_s : 0,
                  a.e2e_p50 > 0 ? b.e2e_p50 / a.e2e_p50 : 0,
                  a.ttft_mean > 0 ? b.ttft_mean / a.ttft_mean : 0,
                  a.ttft_p50 > 0 ? b.ttft_p50 / a.ttft_p50 : 0);
    }
  }
  for (const auto& [name, samples] : memory) {
    double lo = 1e18, hi = 0;
    for (const auto& s : samples) {
      lo = std::min(lo, s.rss_mb);
      hi = std::max(hi, s.rss_mb);
    }
    if (!samples.empty())
      std::printf("server %s RSS over the run: %.1f - %.1f MiB (%zu samples)\n", name.c_str(), lo, hi, samples.size());
  }
  nlohmann::json j = {{"levels", nlohmann::json::array()}, {"memory", nlohmann::json::object()}};
  for (const auto& r : reports)
    j["levels"].push_back(to_json(r));
  for (const auto& [name, samples] : memory)
    for (const auto& s : samples)
      j["memory"][name].push_back({{"t_s", s.t_s}, {"rss_mb", s.rss_mb}, {"gpu_allocated_mb", s.gpu_allocated_mb},
                                   {"queue_depth", s.queue_depth}, {"running", s.running}});
  write_file(o.json_file, j.dump(2));
  write_file(o.csv_file, csv(reports));
  write_file(o.svg_file, svg(reports, memory));
  return 0;
}
