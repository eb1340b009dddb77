// CAF 0.17's TLS sessions (libcaf_openssl, session.cpp) ask SSL_get_error about a failed
// read or write without first emptying the thread's OpenSSL error queue, as OpenSSL
// requires. All node connections share the multiplexer thread, so one connection's failure
// (a killed worker's EOF without close_notify, a stranger's bytes on the node port) leaves
// an entry that makes the next plain "no data yet" on a healthy connection look fatal, and
// CAF closes that connection too: every stream over it is lost.
//
// The Debian library cannot be patched here, so the executable defines the four calls that
// session.cpp makes; the dynamic linker binds libcaf_openssl to these, and each empties the
// queue and calls OpenSSL's own. Linked into the adapterd binary only (actors/CMakeLists.txt).
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

template <class Fn>
Fn openssl_call(const char* name) {
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
  if (fn == nullptr) {
    std::fprintf(stderr, "adapterd: cannot find OpenSSL's %s\n", name);
    std::abort();
  }
  return fn;
}

}  // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto call = openssl_call<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return call(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto call = openssl_call<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return call(ssl, buf, num);
}

int SSL_connect(SSL* ssl) {
  static const auto call = openssl_call<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return call(ssl);
}

int SSL_accept(SSL* ssl) {
  static const auto call = openssl_call<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return call(ssl);
}

}  // extern "C"
