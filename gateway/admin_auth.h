// The admin listener's bearer token: read once at startup from the environment variable or file
// the gateway config names (admin.token_env / admin.token_file), kept only as its SHA-256, and
// compared in constant time. /healthz and /readyz stay open for probes; every other admin route
// requires it (docs/security.md).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/file_diagnostic.h"
#include "config/gateway_config.h"
#include "gateway/identity.h"

namespace meridian::gateway {

class AdminToken {
 public:
  /// Fewer characters than this are refused at startup (a guessable token).
  static constexpr std::size_t kMinLength = 16;

  /// Reads the token named by `config.admin_token` (nullopt without `admin:`). Errors (unset or
  /// empty variable, unreadable or empty file, too short) point at the key in `file`, the
  /// gateway config, and never contain the token. A token file's trailing whitespace (the
  /// newline editors and `kubectl create secret --from-file` leave) is not part of the token.
  static std::optional<AdminToken> Load(const config::GatewayConfig& config,
                                        const std::string& file,
                                        std::vector<config::FileDiagnostic>& errors);
  /// A token given directly (tests).
  static AdminToken FromSecret(std::string_view token);

  enum class Check { kOk, kMissing, kInvalid };
  /// `authorization` is the request's Authorization value ("Bearer <token>", the scheme in any
  /// case); `copies` how many Authorization headers it sent (more than one is invalid). The
  /// comparison is of SHA-256 digests with CRYPTO_memcmp: its time depends on neither the
  /// token's content nor its length.
  /// With `allow_basic`, "Basic base64(user:token)" is accepted too (any user name, the token as
  /// the password): what a browser sends for the operator console once asked. Only for GETs:
  /// a browser attaches remembered Basic credentials to cross-site requests too, so nothing
  /// that changes state may accept them.
  Check Verify(std::string_view authorization, std::size_t copies, bool allow_basic = false) const;

  /// Where the token came from, for the startup log ("environment variable X", "file Y").
  const std::string& source() const { return source_; }

 private:
  identity::Sha256Digest digest_{};
  std::string source_;
};

}  // namespace meridian::gateway
