#include "model/llama/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace adapterd::model {

std::optional<error> validate(const sampling_params& p, int64_t vocab) {
  if (!(p.temperature >= 0.0) || p.temperature > 100.0)
    return make_error(errc::invalid_argument, "temperature must be between 0 and 100");
  if (p.top_k < 0)
    return make_error(errc::invalid_argument, "top_k must be >= 0");
  if (!(p.top_p > 0.0 && p.top_p <= 1.0))
    return make_error(errc::invalid_argument, "top_p must be in (0, 1]");
  if (!(p.repetition_penalty > 0.0))
    return make_error(errc::invalid_argument, "repetition_penalty must be > 0");
  if (!(p.presence_penalty >= -2.0 && p.presence_penalty <= 2.0))
    return make_error(errc::invalid_argument, "presence_penalty must be between -2 and 2");
  if (!(p.frequency_penalty >= -2.0 && p.frequency_penalty <= 2.0))
    return make_error(errc::invalid_argument, "frequency_penalty must be between -2 and 2");
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0 || id >= vocab)
      return make_error(errc::invalid_argument, "logit_bias names token " + std::to_string(id)
                                                    + ", outside the vocabulary of "
                                                    + std::to_string(vocab));
    if (!(bias >= -100.0f && bias <= 100.0f))
      return make_error(errc::invalid_argument, "a logit_bias value must be between -100 and 100");
  }
  return std::nullopt;
}

sampler::sampler(sampling_params params)
  : params_(params), rng_(params.seed ? *params.seed : std::random_device{}()) {}

int32_t sampler::next(std::vector<float>& logits, const std::vector<int32_t>& history,
                      const std::vector<int32_t>& output) {
  const auto n = logits.size();
  for (const auto& [id, bias] : params_.logit_bias)
    if (id >= 0 && static_cast<size_t>(id) < n)
      logits[static_cast<size_t>(id)] += bias;
  if (params_.repetition_penalty != 1.0) {
    std::unordered_set<int32_t> seen(history.begin(), history.end());
    for (auto id : seen) {
      if (id < 0 || static_cast<size_t>(id) >= n)
        continue;
      auto& l = logits[static_cast<size_t>(id)];
      l = l < 0 ? static_cast<float>(l * params_.repetition_penalty)
                : static_cast<float>(l / params_.repetition_penalty);
    }
  }
  if (params_.presence_penalty != 0.0 || params_.frequency_penalty != 0.0) {
    std::unordered_map<int32_t, int> counts;
    for (auto id : output)
      ++counts[id];
    for (const auto& [id, count] : counts)
      if (id >= 0 && static_cast<size_t>(id) < n)
        logits[static_cast<size_t>(id)] -=
            static_cast<float>(params_.frequency_penalty * count + params_.presence_penalty);
  }
  if (params_.temperature == 0.0)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());

  for (auto& l : logits)
    l = static_cast<float>(l / params_.temperature);
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  size_t keep = n;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n)
    keep = static_cast<size_t>(params_.top_k);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  order.resize(keep);

  // Softmax over the kept tokens, then top-p keeps the smallest prefix whose mass
  // reaches top_p (always at least one token).
  double max_logit = logits[order[0]];
  std::vector<double> probs(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i)
    total += probs[i] = std::exp(logits[order[i]] - max_logit);
  for (auto& p : probs)
    p /= total;
  if (params_.top_p < 1.0) {
    double mass = 0;
    size_t cut = 0;
    while (cut < keep) {
      mass += probs[cut++];
      if (mass >= params_.top_p)
        break;
    }
    probs.resize(cut);
  }
  std::discrete_distribution<size_t> draw(probs.begin(), probs.end());
  return order[draw(rng_)];
}

}  // namespace adapterd::model
