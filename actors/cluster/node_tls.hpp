#pragma once
// Mutual TLS between nodes (libcaf_openssl): every node presents a certificate signed by
// the cluster CA and accepts only peers that do. CAF reads the files at the first
// connection, where a bad file aborts the process; so they are checked here, at start-up,
// and a node with a problem refuses to start and says which file.
#include <optional>
#include <string>

namespace adapterd::actors {

struct node_tls_files {
  std::string certificate;  // this node's certificate (PEM)
  std::string key;          // its private key (PEM, unencrypted)
  std::string ca;           // the cluster CA (PEM): the only issuer trusted
};

/// Why the files cannot serve mutual TLS (unreadable, not PEM, key and certificate of
/// different pairs, a certificate the CA did not sign or that is not for client and
/// server use), or none.
std::optional<std::string> tls_files_problem(const node_tls_files& files);

}  // namespace adapterd::actors
