// adapterd-train: pretrain a small Llama-shaped model, or train a LoRA adapter, in the
// Hugging Face / PEFT layout, with a progress bar on the terminal.
//   adapterd-train pretrain --data FILE --out DIR [--merges N --hidden N --intermediate N
//       --layers N --heads N --context N --steps N --batch N --seq-len N --lr X --seed N --threads N]
//   adapterd-train lora --base DIR --data FILE --out DIR [--r N --alpha X --targets q_proj,v_proj
//       --lr X --steps N --batch N --seq-len N --seed N --threads N]
// FILE: a text file (fortune files' "%" lines separate entries) or JSONL ({"text": ...}).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "model/train/trainer.hpp"

using namespace adapterd::model;

namespace {

std::string clock_text(double seconds) {
  auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", static_cast<long>(s / 3600), static_cast<long>(s / 60 % 60));
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", static_cast<long>(s / 60), static_cast<long>(s % 60));
  return buf;
}

void draw(const train_progress& p) {
  const int width = 30;
  int filled = static_cast<int>(width * p.step / std::max<int64_t>(1, p.steps));
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "\r[%s] step %ld/%ld  loss %.3f (avg %.3f)  %.0f tok/s  ETA %s   ", bar.c_str(),
               static_cast<long>(p.step), static_cast<long>(p.steps), p.loss, p.loss_avg, p.tokens_per_s,
               clock_text(p.eta_s).c_str());
  std::fflush(stderr);
}

int usage(const std::string& problem) {
  std::cerr << "adapterd-train: " << problem << "\n"
            << "usage: adapterd-train pretrain --data FILE --out DIR [--steps N --batch N --seq-len N --lr X --seed N\n"
            << "                               --merges N --hidden N --intermediate N --layers N --heads N --context N --threads N]\n"
            << "       adapterd-train lora --base DIR --data FILE --out DIR [--r N --alpha X --targets q_proj,v_proj\n"
            << "                           --steps N --batch N --seq-len N --lr X --seed N --threads N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    return usage("say pretrain or lora");
  std::string mode = argv[1];
  if (mode != "pretrain" && mode != "lora")
    return usage("unknown mode '" + mode + "'");
  std::map<std::string, std::string> opts;
  for (int i = 2; i < argc; ++i) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || i + 1 >= argc)
      return usage("expected --option VALUE, got '" + key + "'");
    opts[key.substr(2)] = argv[++i];
  }
  auto take = [&](const char* name, auto& out) -> bool {
    auto it = opts.find(name);
    if (it == opts.end())
      return true;
    std::istringstream in(it->second);
    in >> out;
    bool ok = !in.fail() && in.eof();
    opts.erase(it);
    return ok;
  };
  std::string out_dir, bad;
  if (!take("out", out_dir) || out_dir.empty())
    return usage("--out DIR is required");
  std::unique_ptr<trainer> run;
  if (mode == "pretrain") {
    pretrain_spec s;
    if (!take("data", s.data.path) || !take("merges", s.merges) || !take("hidden", s.hidden)
        || !take("intermediate", s.intermediate) || !take("layers", s.layers) || !take("heads", s.heads)
        || !take("context", s.context) || !take("steps", s.steps) || !take("batch", s.batch)
        || !take("seq-len", s.seq_len) || !take("lr", s.lr) || !take("seed", s.seed) || !take("threads", s.threads))
      return usage("an option has a value of the wrong kind");
    if (!opts.empty())
      return usage("unknown option --" + opts.begin()->first);
    if (s.data.path.empty())
      return usage("--data FILE is required");
    auto started = start_pretraining(s, out_dir);
    if (!started)
      return std::cerr << "adapterd-train: " << started.err().message << "\n", 1;
    run = std::move(*started);
  } else {
    lora_spec s;
    std::string targets;
    if (!take("base", s.base_dir) || !take("data", s.data.path) || !take("r", s.r) || !take("alpha", s.alpha)
        || !take("targets", targets) || !take("steps", s.steps) || !take("batch", s.batch)
        || !take("seq-len", s.seq_len) || !take("lr", s.lr) || !take("seed", s.seed) || !take("threads", s.threads))
      return usage("an option has a value of the wrong kind");
    if (!opts.empty())
      return usage("unknown option --" + opts.begin()->first);
    if (s.base_dir.empty() || s.data.path.empty())
      return usage("--base DIR and --data FILE are required");
    if (!targets.empty()) {
      s.targets.clear();
      std::stringstream ss(targets);
      for (std::string t; std::getline(ss, t, ',');)
        s.targets.push_back(t);
    }
    auto started = start_lora_training(s);
    if (!started)
      return std::cerr << "adapterd-train: " << started.err().message << "\n", 1;
    run = std::move(*started);
  }
  double first_eval = run->eval_loss(4);
  train_progress last;
  while (!run->done()) {
    auto p = run->step();
    if (!p)
      return std::cerr << "\nadapterd-train: " << p.err().message << "\n", 1;
    last = *p;
    if (last.step == 1 || last.step % 5 == 0 || run->done())
      draw(last);
  }
  double final_eval = run->eval_loss(4);
  if (auto ok = run->save(out_dir); !ok)
    return std::cerr << "\nadapterd-train: " << ok.err().message << "\n", 1;
  std::fprintf(stderr, "\n");
  std::printf("trained %ld steps in %.1f s (%.0f tok/s); loss %.3f (last 20 steps %.3f); held-back loss %.3f -> %.3f; wrote %s\n",
              static_cast<long>(last.step), last.elapsed_s, last.tokens_per_s, last.loss, last.loss_avg, first_eval,
              final_eval, out_dir.c_str());
  return 0;
}
