#include "actors/tokenizer_pool_actor.hpp"

#include <algorithm>

#include "actors/core/chat_prompt.hpp"
#include "actors/error_mapping.hpp"
#include "actors/handler_firewall.hpp"
#include "model/prompt.hpp"

namespace adapterd::actors {

namespace {

using messages::errc;

tokenizer_pool_actor::behavior_type worker_behavior(tokenizer_pool_actor::pointer) {
  return guarded_behavior<tokenizer_pool_actor::behavior_type>(
      "tokenizer",
      [](messages::encode_atom, const encode_job& j) -> caf::result<encoded_prompt> {
        auto ids = model::encode_prompt(j.model->tok(), j.prompt, chat_messages_of(j.chat), j.tools,
                                        j.max_tokens);
        if (!ids)
          return from_model_error(ids.err());
        return encoded_prompt{std::move(*ids)};
      },
      [](messages::tokenize_atom, const tokenizer_ref& t,
         const messages::tokenize_request& req) -> caf::result<messages::tokenize_reply> {
        messages::tokenize_reply r;
        r.model = t.name;
        if (req.chat.empty()) {
          r.ids = t.tok->encode(req.text, req.add_special_tokens);
        } else {
          auto ids = model::encode_prompt(*t.tok, "", chat_messages_of(req.chat), req.tools);
          if (!ids)
            return from_model_error(ids.err());
          r.ids = std::move(*ids);
        }
        r.pieces.reserve(r.ids.size());
        for (auto id : r.ids)
          r.pieces.push_back(t.tok->token_text(id));
        return r;
      },
      [](messages::detokenize_atom, const tokenizer_ref& t,
         const messages::detokenize_request& req) -> caf::result<messages::detokenize_reply> {
        for (auto id : req.ids)
          if (id < 0 || static_cast<size_t>(id) >= t.tok->vocab_size())
            return make_failure(errc::bad_request,
                                "id " + std::to_string(id) + " is not in the vocabulary (0 to "
                                    + std::to_string(t.tok->vocab_size() - 1) + ")");
        return messages::detokenize_reply{t.name, t.tok->decode(req.ids, req.skip_special_tokens)};
      });
}

struct pool_state {
  static inline const char* name = "tokenizer-pool";
  pool_state() = default;  // non-aggregate: CAF 0.17's C++20 state trap

  std::vector<tokenizer_pool_actor> workers;
  std::vector<size_t> in_hand;  // requests each worker has not answered yet
};

using pool_ptr = tokenizer_pool_actor::stateful_pointer<pool_state>;

// Hands a request to the least busy worker and relays its answer.
template <class Reply, class... Ts>
caf::result<Reply> relay(pool_ptr self, Ts... xs) {
  auto& st = self->state;
  auto i = static_cast<size_t>(std::min_element(st.in_hand.begin(), st.in_hand.end()) - st.in_hand.begin());
  ++st.in_hand[i];
  auto rp = self->template make_response_promise<Reply>();
  self->request(st.workers[i], caf::infinite, std::move(xs)...)
    .then(
      [self, i, rp](Reply& reply) mutable {
        --self->state.in_hand[i];
        rp.deliver(std::move(reply));
      },
      [self, i, rp](caf::error& e) mutable {
        --self->state.in_hand[i];
        rp.deliver(std::move(e));
      });
  return rp;
}

tokenizer_pool_actor::behavior_type pool_behavior(pool_ptr self, unsigned threads,
                                                  actor_placement placement) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i) {
    // Linked: the workers end with the pool.
    self->state.workers.push_back(placement == actor_placement::scheduler_pool
                                      ? self->spawn<caf::linked>(worker_behavior)
                                      : self->spawn<caf::detached + caf::linked>(worker_behavior));
    self->state.in_hand.push_back(0);
  }
  return guarded_behavior<tokenizer_pool_actor::behavior_type>(
    "tokenizer-pool",
    [self](messages::encode_atom a, encode_job& j) { return relay<encoded_prompt>(self, a, std::move(j)); },
    [self](messages::tokenize_atom a, tokenizer_ref& t, messages::tokenize_request& req) {
      return relay<messages::tokenize_reply>(self, a, std::move(t), std::move(req));
    },
    [self](messages::detokenize_atom a, tokenizer_ref& t, messages::detokenize_request& req) {
      return relay<messages::detokenize_reply>(self, a, std::move(t), std::move(req));
    });
}

}  // namespace

tokenizer_pool_actor spawn_tokenizer_pool(caf::actor_system& sys, unsigned threads,
                                          actor_placement placement) {
  return sys.spawn(pool_behavior, threads, placement);
}

}  // namespace adapterd::actors
