#pragma once
// The cluster's shared-secret handshake, as plain functions: random nonces and HMAC-SHA256
// proofs. A proof binds the secret to a role label and the other side's fresh nonce, so a
// proof seen on the wire cannot be replayed, and the secret itself never travels.
#include <string>

namespace adapterd::actors {

/// 32 random bytes, hex.
std::string make_nonce();

/// HMAC-SHA256(secret, label + "|" + nonce), hex.
std::string make_proof(const std::string& secret, const std::string& label, const std::string& nonce);

/// Whether `proof` is make_proof(secret, label, nonce), compared in constant time.
bool check_proof(const std::string& secret, const std::string& label, const std::string& nonce,
                 const std::string& proof);

}  // namespace adapterd::actors
