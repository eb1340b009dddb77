#include "actors/core/logprob_messages.hpp"

namespace adapterd::actors {

namespace {

std::string bytes_of(int32_t id, const model::tokenizer& tok) {
  return tok.decode_bytes({id}, false);
}

messages::token_logprob to_message(const model::token_logprob& t, const model::tokenizer& tok) {
  messages::token_logprob m;
  m.id = t.id;
  m.token = bytes_of(t.id, tok);
  m.logprob = t.logprob;
  for (const auto& [id, logprob] : t.top)
    m.top.push_back({id, bytes_of(id, tok), logprob});
  return m;
}

}  // namespace

std::vector<messages::token_logprob> logprob_messages(const std::vector<model::token_logprob>& in,
                                                      size_t from, const model::tokenizer& tok) {
  std::vector<messages::token_logprob> out;
  for (size_t i = from; i < in.size(); ++i)
    out.push_back(to_message(in[i], tok));
  return out;
}

std::vector<messages::token_logprob> prompt_logprob_messages(
    const std::vector<int32_t>& prompt_ids,
    const std::vector<model::token_logprob>& prompt_logprobs, const model::tokenizer& tok) {
  std::vector<messages::token_logprob> out;
  if (prompt_ids.empty())
    return out;
  messages::token_logprob first;
  first.id = prompt_ids.front();
  first.token = bytes_of(first.id, tok);
  first.has_logprob = false;
  out.push_back(std::move(first));
  for (const auto& t : prompt_logprobs)
    out.push_back(to_message(t, tok));
  return out;
}

}  // namespace adapterd::actors
