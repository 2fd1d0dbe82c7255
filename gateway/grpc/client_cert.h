// Verifies a gRPC client's certificate chain against the configured client CA and extracts the
// identity a tenant is bound to. The TLS handshake has already proved the client holds the
// certificate's private key; the chain is verified here, per call, so that a missing or
// untrusted certificate is answered with UNAUTHENTICATED and a reason instead of an opaque
// handshake failure. Pure (OpenSSL only, no I/O after construction).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/status.h"

namespace meridian::grpcfe {

struct CertIdentity {
  std::vector<std::string> uris;  ///< URI SANs in certificate order (SPIFFE ids)
  std::string common_name;        ///< subject CN ("" when none)
};

class ClientCertVerifier {
 public:
  /// From the PEM text of the trusted CA certificate(s) into `out`; an error when none could
  /// be read.
  static core::Status Create(std::string_view ca_pem, std::unique_ptr<ClientCertVerifier>& out);
  ~ClientCertVerifier();

  /// Verifies `leaf_pem` (with the intermediates in `chain_pem`, which may repeat the leaf)
  /// for TLS client use at the current time. kUnauthenticated "untrusted_client_certificate"
  /// naming OpenSSL's reason on failure.
  core::Status Verify(std::string_view leaf_pem, std::string_view chain_pem,
                      CertIdentity& identity) const;

 private:
  struct Impl;
  explicit ClientCertVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace meridian::grpcfe
