#include "gateway/admin_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

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

AdminToken::Check AdminToken::Verify(std::string_view authorization, std::size_t copies,
                                     bool allow_basic) const {
  if (copies == 0 || Trim(authorization).empty()) return Check::kMissing;
  if (copies > 1) return Check::kInvalid;
  std::string_view value = Trim(authorization);
  auto scheme_is = [&](std::string_view scheme) {
    if (value.size() <= scheme.size()) return false;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
      const char c = value[i];
      if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != scheme[i]) {
        return false;
      }
    }
    return true;
  };
  auto matches = [&](std::string_view secret) {
    const identity::Sha256Digest presented = identity::Sha256(secret);
    return CRYPTO_memcmp(presented.data(), digest_.data(), digest_.size()) == 0 ? Check::kOk
                                                                                : Check::kInvalid;
  };
  constexpr std::string_view kBearer = "bearer ";
  constexpr std::string_view kBasic = "basic ";
  if (scheme_is(kBearer)) return matches(Trim(value.substr(kBearer.size())));
  if (!allow_basic || !scheme_is(kBasic)) return Check::kInvalid;
  const std::string_view encoded = Trim(value.substr(kBasic.size()));
  if (encoded.size() % 4 != 0 || encoded.size() > 4096) return Check::kInvalid;
  std::string decoded(encoded.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(encoded.data()),
                                static_cast<int>(encoded.size()));
  if (n < 0) return Check::kInvalid;
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = encoded.size(); i > 0 && encoded[i - 1] == '=' && size > 0; --i) --size;
  decoded.resize(size);
  const std::size_t colon = decoded.find(':');
  const Check check = colon == std::string::npos
                          ? Check::kInvalid
                          : matches(std::string_view(decoded).substr(colon + 1));
  OPENSSL_cleanse(decoded.data(), decoded.size());
  return check;
}

}  // namespace meridian::gateway
