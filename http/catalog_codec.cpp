#include "http/catalog_codec.hpp"

#include <climits>
#include <optional>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "http/chat_messages.hpp"
#include "http/generate_fields.hpp"
#include "http/tool_fields.hpp"

namespace adapterd::http {

namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

constexpr size_t max_text_bytes = 1 << 20;
constexpr size_t max_ids = 1 << 20;
constexpr size_t max_target_modules = 32;

// Parses a body and reads it with `read`; every field the body holds must be one it read.
template <class T, class Read>
std::variant<T, api_error> decode_body(const std::string& text, Read read) {
  auto body = parse_object(text);
  if (auto* e = std::get_if<api_error>(&body))
    return *e;
  return decode<T>([&] {
    fields f(std::get<json>(body));
    T out = read(f);
    f.refuse_unknown();
    return out;
  });
}

}  // namespace

std::variant<messages::tokenize_request, api_error> parse_tokenize(const std::string& text) {
  return decode_body<messages::tokenize_request>(text, [&text](fields& f) {
    messages::tokenize_request req;
    if (f.raw("messages") != nullptr) {  // a chat, as its template renders it
      if (f.raw("text") != nullptr)
        f.fail("text", "invalid_value", "cannot be given with messages");
      req.chat = read_messages(f);
      messages::generate_request offered;  // tools and tool_choice, as generation reads them
      read_tools(f, text, offered);
      req.tools = offered.tools;
    } else {
      req.text = f.required_text("text", max_text_bytes);
    }
    req.model = f.text("model").value_or("");
    req.add_special_tokens = f.boolean("add_special_tokens").value_or(true);
    return req;
  });
}

std::variant<messages::detokenize_request, api_error> parse_detokenize(const std::string& text) {
  return decode_body<messages::detokenize_request>(text, [](fields& f) {
    messages::detokenize_request req;
    auto ids = f.integers("ids", max_ids, 0, INT32_MAX);
    if (!ids)
      f.fail("ids", "missing_field", "(a list of token ids) is required");
    req.ids.assign(ids->begin(), ids->end());
    req.model = f.text("model").value_or("");
    req.skip_special_tokens = f.boolean("skip_special_tokens").value_or(true);
    return req;
  });
}

std::variant<messages::adapter_request, api_error> parse_adapter_load(const std::string& text) {
  return decode_body<messages::adapter_request>(text, [](fields& f) {
    messages::adapter_request load;
    load.action = messages::adapter_action::load;
    load.path = f.required_text("path", max_path_bytes);
    if (load.path.empty())
      f.fail("path", "missing_field", "(an adapter directory under the adapter roots) is required");
    load.id = f.text("id").value_or("");
    return load;
  });
}

std::variant<messages::train_request, api_error> parse_train(const std::string& text) {
  return decode_body<messages::train_request>(text, [](fields& f) {
    messages::train_request req;
    req.dataset = f.required_text("dataset", max_path_bytes);
    req.base_model = f.text("base_model").value_or("");
    req.id = f.text("id").value_or("");
    // Types and hard limits here; the trainer's own ranges are checked where jobs are made.
    if (auto r = f.integer("r", INT32_MIN, INT32_MAX))
      req.r = static_cast<int32_t>(*r);
    req.alpha = f.number("alpha", -1e9, 1e9).value_or(req.alpha);
    req.lr = f.number("learning_rate", -1e9, 1e9).value_or(req.lr);
    req.steps = f.integer("steps", INT64_MIN, INT64_MAX).value_or(req.steps);
    req.batch = f.integer("batch_size", INT64_MIN, INT64_MAX).value_or(req.batch);
    req.seq_len = f.integer("seq_len", INT64_MIN, INT64_MAX).value_or(req.seq_len);
    req.seed = f.unsigned_integer("seed").value_or(req.seed);
    if (auto targets = f.texts("target_modules", max_target_modules, 128)) {
      if (targets->empty())
        f.fail("target_modules", "invalid_type", "must be a non-empty list of module names");
      req.targets = std::move(*targets);
    }
    return req;
  });
}

json job_json(const messages::job_status& s) {
  auto or_null = [](const std::string& v) { return v.empty() ? json(nullptr) : json(v); };
  return {{"id", s.id},
          {"state", s.state},
          {"error", or_null(s.error)},
          {"adapter_id", or_null(s.adapter_id)},
          {"adapter_path", or_null(s.adapter_path)},
          {"dataset", s.dataset},
          {"base_model", or_null(s.base_model)},
          {"step", s.step},
          {"steps", s.steps},
          {"loss", s.loss},
          {"loss_avg", s.loss_avg},
          {"tokens_per_s", s.tokens_per_s},
          {"eta_s", s.eta_s},
          {"elapsed_s", s.elapsed_s},
          {"created_at_ms", s.created_at_ms},
          {"finished_at_ms", s.finished_at_ms == 0 ? json(nullptr) : json(s.finished_at_ms)}};
}

std::string to_json(const messages::job_status& s) { return dump(job_json(s)); }

std::string to_json(const messages::job_list& l) {
  json jobs = json::array();
  for (const auto& s : l.jobs)
    jobs.push_back(job_json(s));
  return dump(json{{"jobs", jobs}});
}

std::string to_json(const messages::tokenize_reply& r) {
  return dump(json{{"model", r.model}, {"ids", r.ids}, {"pieces", r.pieces}, {"count", r.ids.size()}});
}

std::string to_json(const messages::detokenize_reply& r) {
  return dump(json{{"model", r.model}, {"text", r.text}});
}

std::string to_json(const messages::adapter_reply& r) {
  json adapters = json::array();
  for (const auto& a : r.adapters) {
    json item = {{"id", a.id.empty() ? json(nullptr) : json(a.id)},
                 {"path", a.path},
                 {"tier", a.tier.empty() ? json(nullptr) : json(a.tier)},
                 {"device", a.device.empty() ? json(nullptr) : json(a.device)},
                 {"bytes", a.bytes}};
    if (!a.node.empty())
      item["node"] = a.node;
    adapters.push_back(item);
  }
  json models = json::array();
  for (const auto& m : r.models)
    models.push_back(m.name);
  return dump(json{{"default_model", r.default_model}, {"models", models}, {"adapters", adapters}});
}

}  // namespace adapterd::http
