#include "actors/cluster/node_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace adapterd::actors {

namespace {

std::string to_hex(const unsigned char* data, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  return out;
}

}  // namespace

std::string make_nonce() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    throw std::runtime_error("no random bytes for a node nonce");
  return to_hex(bytes, sizeof bytes);
}

std::string make_proof(const std::string& secret, const std::string& label, const std::string& nonce) {
  auto message = label + "|" + nonce;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), md, &len);
  return to_hex(md, len);
}

bool check_proof(const std::string& secret, const std::string& label, const std::string& nonce,
                 const std::string& proof) {
  auto expected = make_proof(secret, label, nonce);
  return proof.size() == expected.size()
         && CRYPTO_memcmp(proof.data(), expected.data(), expected.size()) == 0;
}

}  // namespace adapterd::actors
