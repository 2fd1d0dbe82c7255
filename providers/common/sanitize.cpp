#include "providers/common/sanitize.h"

#include <algorithm>
#include <array>
#include <cstdint>

namespace meridian::providers {
namespace {

bool IsTokenChar(char c) {
  return IsAsciiAlnum(c) || c == '-' || c == '_' || c == '*' || c == '+' || c == '/' || c == '=' ||
         c == '.';
}

// Key material shows up as "sk-..." (OpenAI, also masked "sk-proj-****abcd") or as long
// random alphanumerics (Azure's 32 hex digits, org ids, JWTs). Model names and URLs have
// short alphanumeric runs between separators, so they survive.
bool LooksLikeSecret(std::string_view token) {
  if (token.size() >= 3 && (token[0] == 's' || token[0] == 'S') &&
      (token[1] == 'k' || token[1] == 'K') && (token[2] == '-' || token[2] == '_')) {
    return true;
  }
  std::size_t run = 0;
  bool digit = false;
  bool alpha = false;
  for (std::size_t i = 0; i <= token.size(); ++i) {
    if (i < token.size() && IsAsciiAlnum(token[i])) {
      ++run;
      if (token[i] >= '0' && token[i] <= '9') {
        digit = true;
      } else {
        alpha = true;
      }
      continue;
    }
    if (run >= 32 || (run >= 20 && digit && alpha)) return true;
    run = 0;
    digit = alpha = false;
  }
  return false;
}

// Valid UTF-8 in, control characters and whitespace runs folded to one space, invalid bytes
// replaced by '?', so whatever encodes the message later cannot be broken by it.
std::string CleanText(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), std::size_t{4096}));
  bool space = true;  // drops leading whitespace
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c <= 0x20 || c == 0x7F) {
        if (!space) out.push_back(' ');
        space = true;
      } else {
        out.push_back(static_cast<char>(c));
        space = false;
      }
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07u;
    }
    bool valid = len != 0 && i + len <= text.size();
    for (std::size_t k = 1; valid && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      valid = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (valid) {
      static constexpr std::array<std::uint32_t, 5> kMin = {0, 0, 0x80, 0x800, 0x10000};
      valid = cp >= kMin[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (valid) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out.push_back('?');
      ++i;
    }
    space = false;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string Redact(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (!IsTokenChar(text[i])) {
      out.push_back(text[i++]);
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && IsTokenChar(text[end])) ++end;
    std::size_t token_end = end;
    while (token_end > i && text[token_end - 1] == '.') --token_end;  // sentence full stop
    const std::string_view token = text.substr(i, token_end - i);
    if (!token.empty() && LooksLikeSecret(token)) {
      out += "[redacted]";
    } else {
      out.append(token);
    }
    out.append(text.substr(token_end, end - token_end));
    i = end;
  }
  return out;
}

}  // namespace

void TruncateUtf8(std::string& s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return;
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
}

std::string SanitizeUpstreamText(std::string_view text, std::size_t max_bytes) {
  std::string s = Redact(CleanText(text));
  TruncateUtf8(s, max_bytes);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace meridian::providers
