#include "gateway/admin_auth.h"

#include <openssl/crypto.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace meridian::gateway {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<AdminToken> AdminToken::Load(const config::GatewayConfig& config,
                                           const std::string& file,
                                           std::vector<config::FileDiagnostic>& errors) {
  if (!config.admin_listen) return std::nullopt;
  const config::AdminTokenConfig& where = config.admin_token;
  auto fail = [&](std::string message) {
    errors.push_back({file, where.pos, std::move(message)});
    return std::nullopt;
  };
  std::string secret;
  AdminToken token;
  if (!where.env.empty()) {
    token.source_ = "environment variable " + where.env;
    const char* value = std::getenv(where.env.c_str());
    if (value == nullptr || *value == '\0') {
      return fail("'token_env': environment variable " + where.env +
                  " is not set or empty: the admin listener needs its bearer token (e.g. "
                  "export " +
                  where.env + "=$(openssl rand -hex 32))");
    }
    secret = value;
  } else if (!where.file.empty()) {
    token.source_ = "file " + where.file;
    std::ifstream in(where.file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) return fail("'token_file': cannot read '" + where.file + "'");
    secret = std::string(Trim(text.str()));
    if (secret.empty()) return fail("'token_file': '" + where.file + "' holds no token");
  } else {
    return fail("admin needs 'token_env' or 'token_file'");
  }
  if (secret.size() < kMinLength) {
    OPENSSL_cleanse(secret.data(), secret.size());
    return fail("the admin token from " + token.source_ + " is " + std::to_string(secret.size()) +
                " characters long; use at least " + std::to_string(kMinLength) +
                " (e.g. openssl rand -hex 32)");
  }
  token.digest_ = identity::Sha256(secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  return token;
}

AdminToken AdminToken::FromSecret(std::string_view secret) {
  AdminToken token;
  token.digest_ = identity::Sha256(secret);
  token.source_ = "test";
  return token;
}

AdminToken::Check AdminToken::Verify(std::string_view authorization, std::size_t copies) const {
  if (copies == 0 || Trim(authorization).empty()) return Check::kMissing;
  if (copies > 1) return Check::kInvalid;
  std::string_view value = Trim(authorization);
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size()) return Check::kInvalid;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const char c = value[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kScheme[i]) {
      return Check::kInvalid;
    }
  }
  const identity::Sha256Digest presented = identity::Sha256(Trim(value.substr(kScheme.size())));
  return CRYPTO_memcmp(presented.data(), digest_.data(), digest_.size()) == 0 ? Check::kOk
                                                                              : Check::kInvalid;
}

}  // namespace meridian::gateway
