#include "actors/cluster/node_tls.hpp"

#include <memory>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace adapterd::actors {

namespace {

std::string openssl_error() {
  char buf[256] = "unknown error";
  if (auto code = ERR_get_error())
    ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

template <class T, class Free>
std::unique_ptr<T, Free> owned(T* p, Free f) {
  return std::unique_ptr<T, Free>(p, f);
}

}  // namespace

std::optional<std::string> tls_files_problem(const node_tls_files& files) {
  if (files.certificate.empty() || files.key.empty() || files.ca.empty())
    return std::string("mutual TLS needs --node-cert, --node-key and --node-ca (make them with scripts/make-node-certs)");
  auto read_cert = [](const std::string& path, std::string& why) -> X509* {
    auto f = owned(std::fopen(path.c_str(), "r"), &std::fclose);
    if (!f) {
      why = "cannot read " + path;
      return nullptr;
    }
    X509* cert = PEM_read_X509(f.get(), nullptr, nullptr, nullptr);
    if (!cert)
      why = path + " is not a PEM certificate: " + openssl_error();
    return cert;
  };
  std::string why;
  auto cert = owned(read_cert(files.certificate, why), &X509_free);
  if (!cert)
    return why;
  auto ca = owned(read_cert(files.ca, why), &X509_free);
  if (!ca)
    return why;
  auto key_file = owned(std::fopen(files.key.c_str(), "r"), &std::fclose);
  if (!key_file)
    return "cannot read " + files.key;
  // No passphrase callback: an encrypted key would make OpenSSL prompt on a terminal.
  auto key = owned(PEM_read_PrivateKey(key_file.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr),
                   &EVP_PKEY_free);
  if (!key)
    return files.key + " is not an unencrypted PEM private key: " + openssl_error();
  if (X509_check_private_key(cert.get(), key.get()) != 1)
    return files.key + " is not the key of " + files.certificate;
  auto store = owned(X509_STORE_new(), &X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca.get());
  auto ctx = owned(X509_STORE_CTX_new(), &X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  if (X509_verify_cert(ctx.get()) != 1)
    return files.certificate + " is not signed by the CA in " + files.ca + ": "
           + X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  // Every node dials (TLS client) and is dialled (TLS server).
  if (X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0) != 1
      || X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0) != 1)
    return files.certificate + " must allow both clientAuth and serverAuth (scripts/make-node-certs makes such)";
  return std::nullopt;
}

}  // namespace adapterd::actors
