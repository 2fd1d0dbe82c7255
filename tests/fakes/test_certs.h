// Throw-away PKI for TLS and mTLS tests, generated in-process with the OpenSSL 3 API so tests
// never depend on checked-in keys (which expire, and which scanners flag) or on the openssl CLI.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace meridian::fakes {

/// PEM file paths of the default certificate set.
struct CertPaths {
  std::string ca_cert{};      ///< trusted test CA ("Meridian Test CA")
  std::string server_cert{};  ///< leaf for 127.0.0.1 / localhost, signed by the CA
  std::string server_key{};
  std::string client_cert{};  ///< client leaf with a SPIFFE URI SAN, signed by the CA
  std::string client_key{};
};

/// A certificate and its private key, both PEM files.
struct CertKeyFiles {
  std::string cert{};
  std::string key{};
};

/// What `TestCerts::IssueLeaf` puts into a leaf certificate.
struct LeafSpec {
  std::string file_stem{};  ///< files are `<dir>/<file_stem>.crt` and `.key`; must be unique
  std::string common_name{};
  std::vector<std::string> dns_sans{};
  std::vector<std::string> ip_sans{};   ///< dotted IPv4 or textual IPv6
  std::vector<std::string> uri_sans{};  ///< e.g. spiffe://meridian.test/tenant/demo
  bool server_auth = true;              ///< extendedKeyUsage serverAuth
  bool client_auth = false;             ///< extendedKeyUsage clientAuth
  bool signed_by_other_ca = false;      ///< sign with the unrelated CA (an "unknown" peer)
  bool expired = false;                 ///< validity ended yesterday
};

/// Generates, at construction, two unrelated CAs (EC P-256, SHA-256) and, under the first one:
///  - a server leaf: CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1, EKU serverAuth;
///  - a client leaf: CN=demo-client, SAN URI:spiffe://meridian.test/tenant/demo, EKU clientAuth.
/// Under the second ("other") CA it issues a server and a client leaf with the same names, so
/// "valid-looking but untrusted" can be tested from either side.
/// Everything is written as PEM into a fresh mkdtemp directory under $TMPDIR (or /tmp), which
/// the destructor removes. Throws std::runtime_error when OpenSSL or the filesystem fails.
class TestCerts {
 public:
  static constexpr const char* kClientSpiffeId = "spiffe://meridian.test/tenant/demo";
  static constexpr const char* kClientCommonName = "demo-client";

  TestCerts();
  ~TestCerts();
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  /// The default set, all under the trusted CA.
  const CertPaths& paths() const { return paths_; }
  const std::string& dir() const { return dir_; }

  const std::string& ca_cert() const { return paths_.ca_cert; }
  const std::string& ca_key() const { return ca_key_; }
  const std::string& server_cert() const { return paths_.server_cert; }
  const std::string& server_key() const { return paths_.server_key; }
  const std::string& client_cert() const { return paths_.client_cert; }
  const std::string& client_key() const { return paths_.client_key; }

  /// The unrelated CA: trust it instead of ca_cert() to get "unknown certificate" failures.
  const std::string& other_ca_cert() const { return other_ca_cert_; }
  /// Leaves signed by the unrelated CA (same names as the default leaves).
  const CertKeyFiles& other_server() const { return other_server_; }
  const CertKeyFiles& other_client() const { return other_client_; }

  /// Issues one more leaf (e.g. another tenant's client certificate, or an expired server
  /// certificate). Thread-compatible, not thread-safe.
  CertKeyFiles IssueLeaf(const LeafSpec& spec);

 private:
  struct Impl;

  std::string dir_;
  CertPaths paths_;
  std::string ca_key_;
  std::string other_ca_cert_;
  std::string other_ca_key_;
  CertKeyFiles other_server_;
  CertKeyFiles other_client_;
  std::unique_ptr<Impl> impl_;  // the in-memory CA keys; pimpl keeps OpenSSL out of the header
};

}  // namespace meridian::fakes
