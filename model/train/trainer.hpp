#pragma once
// Training with libtorch autograd: a small Llama-shaped model from scratch (with its own
// byte-level BPE tokenizer learned from the same text), and LoRA adapters for any
// supported base model. Both write exactly the Hugging Face / PEFT layout, so the service,
// transformers and peft load the results. A trainer advances one optimizer step per
// call, so the service can run it in time slices between generation steps.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/result.hpp"

namespace adapterd::model {

struct train_progress {
  int64_t step = 0;
  int64_t steps = 0;
  double loss = 0;          // of the latest step
  double loss_avg = 0;      // over the last 20 steps
  double tokens_per_s = 0;  // over the run so far
  double eta_s = 0;
  double elapsed_s = 0;
};

/// The text to learn from: a text file (fortune files with their "%" separators count as
/// text), or JSONL with one {"text": ...} per line. Documents are joined with EOS.
struct dataset_source {
  std::string path;
};

struct pretrain_spec {
  dataset_source data;
  int merges = 1000;  // BPE merges: the vocabulary is 256 bytes + merges + BOS and EOS
  int64_t hidden = 192;
  int64_t intermediate = 512;
  int64_t layers = 4;
  int64_t heads = 4;
  int64_t context = 256;  // max_position_embeddings
  int64_t steps = 1000;
  int64_t batch = 16;
  int64_t seq_len = 128;
  double lr = 3e-3;
  uint64_t seed = 7;
  int threads = 0;
};

struct lora_spec {
  std::string base_dir;
  dataset_source data;
  int r = 8;
  double alpha = 16;
  std::vector<std::string> targets{"q_proj", "v_proj"};  // q_proj k_proj v_proj o_proj gate_proj up_proj down_proj
  double lr = 2e-3;
  int64_t steps = 200;
  int64_t batch = 8;
  int64_t seq_len = 128;
  uint64_t seed = 7;
  int threads = 0;
};

class trainer {
public:
  virtual ~trainer() = default;
  /// One optimizer step; the progress after it.
  virtual result<train_progress> step() = 0;
  virtual bool done() const = 0;
  /// Writes the model (pretraining) or the adapter (LoRA) to `dir`.
  virtual result<bool> save(const std::string& dir) const = 0;
  /// Mean loss over `batches` fixed held-back batches of the training text.
  virtual double eval_loss(int batches) = 0;
  /// The logits [ids.size() x vocab], row-major, of the weights as they are now.
  virtual std::vector<float> logits(const std::vector<int32_t>& ids) = 0;
};

/// Learns the tokenizer, then sets up a fresh model. `work_dir` receives the tokenizer.
result<std::unique_ptr<trainer>> start_pretraining(const pretrain_spec& spec, const std::string& work_dir);
/// Loads the base model's weights (frozen) and fresh adapter weights (B = 0, as PEFT).
result<std::unique_ptr<trainer>> start_lora_training(const lora_spec& spec);

/// The module names a LoRA spec may target.
const std::vector<std::string>& lora_target_names();

}  // namespace adapterd::model
