#pragma once
// JSON in and out of /tokenize, /detokenize and /adapters.
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "http/json_codec.hpp"

namespace adapterd::http {

/// Every body refuses fields it does not know, by name.
/// {"model"?, "text", "add_special_tokens"? (true)}
std::variant<messages::tokenize_request, api_error> parse_tokenize(const std::string& body);
/// {"model"?, "ids", "skip_special_tokens"? (true)}
std::variant<messages::detokenize_request, api_error> parse_detokenize(const std::string& body);
/// POST /adapters {"path", "id"?} (load).
std::variant<messages::adapter_request, api_error> parse_adapter_load(const std::string& body);

/// POST /adapters/train: {"dataset", "base_model"?, "id"?, "r"?, "alpha"?, "target_modules"?,
/// "learning_rate"?, "steps"?, "batch_size"?, "seq_len"?, "seed"?}
std::variant<messages::train_request, api_error> parse_train(const std::string& body);

std::string to_json(const messages::job_status& s);
/// A job as GET /jobs shows it (also in the console's feed).
nlohmann::json job_json(const messages::job_status& s);
std::string to_json(const messages::job_list& l);
std::string to_json(const messages::tokenize_reply& r);
std::string to_json(const messages::detokenize_reply& r);
std::string to_json(const messages::adapter_reply& r);

}  // namespace adapterd::http
