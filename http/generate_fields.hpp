#pragma once
// The generation fields that /generate-lite and the OpenAI routes share, read with the
// same names, types and bounds.
#include "http/json_fields.hpp"
#include "messages/generation.hpp"

namespace adapterd::http {

inline constexpr size_t max_stop_strings = 16;
inline constexpr size_t max_stop_bytes = 256;
inline constexpr size_t max_path_bytes = 4096;

/// temperature, top_p, top_k, repetition_penalty, seed, stop, stream, timeout_s,
/// ignore_eos, min_tokens (at most req.max_new_tokens: read that first).
void read_sampling(fields& f, messages::generate_request& req);

}  // namespace adapterd::http
