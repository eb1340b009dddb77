#pragma once
// The catalog family: what a node's models know besides generating. Tokenizing and
// detokenizing with a model's tokenizer, and the adapters it holds, by id.
#include <cstdint>
#include <string>
#include <vector>

#include "caf/meta/type_name.hpp"
#include "messages/generation.hpp"

namespace adapterd::messages {

struct tokenize_request {
  std::string request_id;
  std::string model;  // empty: the default; as OpenAI's "model" field (base, base:adapter, adapter id)
  std::string text;
  bool add_special_tokens = true;
  std::vector<chat_turn> chat;  // non-empty: tokenize this chat as generation would (not text)
  std::string tools;            // with chat: the tools offered, as JSON text (as generation's)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tokenize_request& x) {
  return f(caf::meta::type_name("adapterd::tokenize_request"), x.request_id, x.model, x.text,
           x.add_special_tokens, x.chat, x.tools);
}

struct tokenize_reply {
  std::string model;
  std::vector<int32_t> ids;
  std::vector<std::string> pieces;  // each id's vocabulary text
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tokenize_reply& x) {
  return f(caf::meta::type_name("adapterd::tokenize_reply"), x.model, x.ids, x.pieces);
}

struct detokenize_request {
  std::string request_id;
  std::string model;
  std::vector<int32_t> ids;
  bool skip_special_tokens = true;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, detokenize_request& x) {
  return f(caf::meta::type_name("adapterd::detokenize_request"), x.request_id, x.model, x.ids,
           x.skip_special_tokens);
}

struct detokenize_reply {
  std::string model;
  std::string text;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, detokenize_reply& x) {
  return f(caf::meta::type_name("adapterd::detokenize_reply"), x.model, x.text);
}

/// One adapter a node knows: registered under an id, resident or not.
struct adapter_info {
  std::string id;
  std::string path;
  std::string tier;    // device | host | "" (registered, not loaded)
  std::string device;
  uint64_t bytes = 0;
  std::string node;    // through a router: the worker that holds it
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, adapter_info& x) {
  return f(caf::meta::type_name("adapterd::adapter_info"), x.id, x.path, x.tier, x.device, x.bytes, x.node);
}

/// list | load (path, optional id) | unload (id or path).
enum class adapter_action : uint8_t { list, load, unload };

struct adapter_request {
  std::string request_id;
  adapter_action action = adapter_action::list;
  std::string id;
  std::string path;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, adapter_request& x) {
  return f(caf::meta::type_name("adapterd::adapter_request"), x.request_id, x.action, x.id, x.path);
}

/// A base model a node holds, and the format of its weights (f32, bf16, int8, q4).
struct model_info {
  std::string name;
  std::string weights;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_info& x) {
  return f(caf::meta::type_name("adapterd::model_info"), x.name, x.weights);
}

struct adapter_reply {
  std::string default_model;        // the default model's name
  std::vector<model_info> models;   // base models resident
  std::vector<adapter_info> adapters;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, adapter_reply& x) {
  return f(caf::meta::type_name("adapterd::adapter_reply"), x.default_model, x.models, x.adapters);
}

}  // namespace adapterd::messages
