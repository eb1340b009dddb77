#include "model/llama/logprobs.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace adapterd::model {

token_logprob logprob_of(const float* logits, size_t vocab, int32_t id, uint32_t top) {
  // In double, with the maximum taken out first: exp never overflows and a vocabulary of
  // 150k terms loses nothing a float logprob would show.
  double max_logit = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < vocab; ++i)
    max_logit = std::max(max_logit, static_cast<double>(logits[i]));
  double total = 0;
  if (std::isfinite(max_logit))
    for (size_t i = 0; i < vocab; ++i)
      total += std::exp(static_cast<double>(logits[i]) - max_logit);
  const double log_total = std::isfinite(max_logit) ? max_logit + std::log(total)
                                                    : std::numeric_limits<double>::infinity();
  auto logprob = [&](size_t i) {
    return static_cast<float>(static_cast<double>(logits[i]) - log_total);
  };
  token_logprob out;
  out.id = id;
  out.logprob = id >= 0 && static_cast<size_t>(id) < vocab
                    ? logprob(static_cast<size_t>(id))
                    : -std::numeric_limits<float>::infinity();
  const size_t keep = std::min<size_t>(top, vocab);
  if (keep == 0)
    return out;
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&](int32_t a, int32_t b) {
                      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
                    });
  for (size_t i = 0; i < keep; ++i)
    out.top.emplace_back(order[i], logprob(static_cast<size_t>(order[i])));
  return out;
}

}  // namespace adapterd::model
