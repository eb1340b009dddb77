// adapterd-roofline MODEL_DIR [ROUNDS] [--weights=f32,bf16,int8,q4] [--threads=1,2]
//   [--kv-dtype=bfloat16] [--context=N]:
// batch-1 decode tokens/s for each weight format and thread count, each against the
// roofline of that format's bytes (read bandwidth / weight bytes) measured in the same run,
// around each case, and against reads taken between its own decode steps (paired_read).
// Each round measures every case one after another, so that the noise of a shared machine
// hits them alike; the report gives the medians, the fraction of the roofline and the
// speed relative to f32 at the same thread count, then the best round against the best
// bandwidth: on a virtual machine whose host takes CPU time away (the steal share printed
// at the end), the best round is the code's speed, the median the machine's mood.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "bench/read_bandwidth.hpp"
#include "bench/stats.hpp"
#include "model/base_model.hpp"
#include "model/llama/cpu_kernels.hpp"
#include "model/quant/dense.hpp"

using namespace adapterd;
using clock_type = std::chrono::steady_clock;

namespace {

// A 1 GiB huge-page buffer for the read probes (bench/read_bandwidth.hpp).
constexpr size_t probe_floats = (size_t(1) << 30) / sizeof(float);
const float* probe_buffer() {
  static auto buffer = [] {
    auto b = model::cpu::allocate_huge(probe_floats);
    for (size_t i = 0; i < probe_floats; ++i)
      b.get()[i] = static_cast<float>(i & 1023);
    return b;
  }();
  return buffer.get();
}

double read_bandwidth_gbs(int threads) {
  return bench::read_bandwidth_gbs(probe_buffer(), probe_floats, threads);
}

// The bandwidth the host gave while a case decoded: 256 MB passes of the probe's read,
// taken between its steps, each access pattern in turn; the fastest pattern's bytes over its
// seconds. Single passes here read 30 to 56 GB/s at 2 threads within a second, so the
// probes' best pass alone could be a moment the decode never saw; these are its own moments.
class paired_read {
 public:
  explicit paired_read(int threads) : threads_(threads) {}
  void pass() {
    // The model's pool spins ~0.2 ms for more work before it sleeps: not during the pass.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const int streams = bench::read_stream_counts[next_++ % std::size(bench::read_stream_counts)];
    auto& [bytes, seconds] = per_pattern_[streams];
    bytes += static_cast<double>(pass_floats * sizeof(float));
    seconds += bench::read_pass_seconds(probe_buffer(), pass_floats, threads_, streams);
  }
  double gbs() const {
    double best = 0;
    for (const auto& [streams, read] : per_pattern_)
      best = std::max(best, read.first / read.second / 1e9);
    return best;
  }

 private:
  static constexpr size_t pass_floats = (size_t(256) << 20) / sizeof(float);
  int threads_;
  size_t next_ = 0;
  std::map<int, std::pair<double, double>> per_pattern_;
};

// Decodes after a prompt of `context` tokens (0: a short sentence), where the KV reads join
// the weights'. Every fourth step, one pass of `paired` before it; the step after a pass
// is not timed, since it wakes the model's sleeping pool with its caches cold.
double decode_tokens_per_s(const model::base_model& m, int tokens, int context,
                           paired_read& paired) {
  model::generation_params p;
  p.max_new_tokens = static_cast<uint32_t>(tokens + 1);
  p.ignore_eos = true;  // a model that ends early (the demo's does) still decodes every step
  auto ids = m.tok().encode("The roofline of a decoder is the speed of its memory", true);
  while (static_cast<int>(ids.size()) < context)
    ids.push_back(ids[1 + ids.size() % 8]);
  auto g = m.begin(ids, p, nullptr);
  if (!g)
    throw std::runtime_error(g.err().message);
  for (int i = 0; i < 4; ++i)  // warm
    m.step({g->get()});
  double seconds = 0;
  int timed = 0;
  for (int i = 0; i < tokens - 4 && !(*g)->finished(); ++i) {
    const bool after_pass = i % 4 == 0;
    if (after_pass)
      paired.pass();
    auto start = clock_type::now();
    if (auto e = m.step({g->get()}))
      throw std::runtime_error(e->message);
    if (!after_pass) {
      seconds += std::chrono::duration<double>(clock_type::now() - start).count();
      ++timed;
    }
  }
  return timed > 0 ? timed / seconds : 0;
}

// CPU time the hypervisor took from this machine, and time spent running, in clock ticks
// (/proc/stat's steal and user+system columns).
std::pair<double, double> steal_and_busy() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return {steal, user + nice + system + irq + softirq};
}

struct result_row {
  std::vector<double> bandwidth, roofline, decode, fraction, paired_bandwidth, paired_fraction;
  double bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional, formats{"f32"}, thread_counts;
  std::string kv_dtype = "auto";
  int context = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--weights=", 0) == 0)
      formats = bench::split_list(a.substr(10));
    else if (a.rfind("--kv-dtype=", 0) == 0)
      kv_dtype = a.substr(11);
    else if (a.rfind("--context=", 0) == 0)
      context = std::atoi(a.c_str() + 10);
    else if (a.rfind("--threads=", 0) == 0)
      thread_counts = bench::split_list(a.substr(10));
    else if (a[0] == '-')
      positional.clear(), positional.push_back("");  // refused below
    else
      positional.push_back(a);
  }
  if (positional.empty() || positional[0].empty() || positional.size() > 2) {
    std::cerr << "usage: adapterd-roofline MODEL_DIR [ROUNDS] [--weights=f32,bf16,int8,q4] "
                 "[--threads=1,2]\n";
    return 2;
  }
  int rounds = positional.size() > 1 ? std::atoi(positional[1].c_str()) : 5;
  if (rounds < 1 || rounds > 100) {
    std::cerr << "adapterd-roofline: ROUNDS must be 1 to 100\n";
    return 2;
  }
  if (thread_counts.empty())
    thread_counts.push_back(std::to_string(std::thread::hardware_concurrency()));
  std::vector<int> threads;
  for (const auto& t : thread_counts) {
    threads.push_back(std::atoi(t.c_str()));
    if (threads.back() < 1 || threads.back() > 256) {
      std::cerr << "adapterd-roofline: --threads takes counts from 1 to 256\n";
      return 2;
    }
  }
  // One model per format, loaded once; the thread count changes between cases.
  // One case per format and KV type (--kv-dtype=float32,bfloat16 compares caches in one run).
  std::vector<std::string> cases;
  std::map<std::string, std::shared_ptr<const model::base_model>> models;
  const auto kv_types = bench::split_list(kv_dtype);
  for (const auto& kv : kv_types)
    for (const auto& f : formats) {
      const auto name = kv_types.size() > 1 ? f + "/kv-" + kv : f;
      model::load_options options;
      options.device = "cpu";
      options.weights = f;
      options.kv_dtype = kv;
      options.threads = *std::max_element(threads.begin(), threads.end());
      auto m = model::base_model::load(positional[0], options);
      if (!m) {
        std::cerr << "adapterd-roofline: " << name << ": " << m.err().message << "\n";
        return 1;
      }
      cases.push_back(name);
      models[name] = *m;
    }
  std::printf("model %s, kernels %s, KV %s, context %d, %d rounds\n", positional[0].c_str(),
              model::quant::kernel_isa(), kv_dtype.c_str(), context, rounds);
  std::map<std::pair<std::string, int>, result_row> results;
  const auto stat_before = steal_and_busy();
  try {
    for (int r = 1; r <= rounds; ++r)
      for (int t : threads) {
        model::set_cpu_threads(t);
        // The host's bandwidth can change within seconds (here 34 to 60 GB/s and back), so
        // each case is read against the faster of the probes just before and just after it.
        double before = read_bandwidth_gbs(t);
        for (const auto& f : cases) {
          auto& row = results[{f, t}];
          row.bytes = static_cast<double>(models[f]->weight_bytes());
          paired_read paired(t);
          row.decode.push_back(decode_tokens_per_s(*models[f], 52, context, paired));
          const double after = read_bandwidth_gbs(t), bw = std::max(before, after);
          before = after;
          row.bandwidth.push_back(bw);
          row.roofline.push_back(bw * 1e9 / row.bytes);
          row.fraction.push_back(row.decode.back() / row.roofline.back());
          row.paired_bandwidth.push_back(paired.gbs());
          row.paired_fraction.push_back(
              paired.gbs() > 0 ? row.decode.back() * row.bytes / 1e9 / paired.gbs() : 0);
        }
      }
  } catch (const std::exception& e) {
    std::cerr << "adapterd-roofline: " << e.what() << "\n";
    return 1;
  }
  const auto stat_after = steal_and_busy();
  using bench::median;
  auto best = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  std::printf(
      "case              threads  weight MB  read GB/s  roofline tok/s  decode tok/s  of roofline  "
      "x f32  best tok/s  best of best roofline  paired GB/s  of paired\n");
  for (int t : threads)
    for (const auto& f : cases) {
      const auto& row = results[{f, t}];
      const auto f32 = results.find({cases.front(), t});
      const double speedup =
          f32 == results.end() ? 0 : median(row.decode) / median(f32->second.decode);
      std::printf(
          "%-16s  %7d  %9.1f  %9.1f  %14.1f  %12.1f  %9.1f %%  %5.2f  %10.1f  %19.1f %%  %11.1f  "
          "%7.1f %%\n",
          f.c_str(), t, row.bytes / 1e6, median(row.bandwidth), median(row.roofline),
          median(row.decode), 100 * median(row.fraction), speedup, best(row.decode),
          100 * best(row.decode) / best(row.roofline), median(row.paired_bandwidth),
          100 * median(row.paired_fraction));
    }
  const double steal = stat_after.first - stat_before.first,
               busy = stat_after.second - stat_before.second;
  std::printf("# steal: the host took %.0f %% of this machine's CPU time during the run\n",
              steal + busy > 0 ? 100 * steal / (steal + busy) : 0.0);
  return 0;
}
