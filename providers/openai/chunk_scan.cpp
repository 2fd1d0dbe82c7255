#include "providers/openai/chunk_scan.h"

#include <array>
#include <cstdint>

namespace meridian::providers::openai {

namespace {

// Bytes a JSON string holds as they are: printable ASCII but the quote and the backslash.
constexpr auto kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  return t;
}();

// Strict JSON over one payload; every method consumes what it recognises and returns false on
// anything else (the caller then declines the whole payload).
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool Eat(char c) {
    Ws();
    if (p_ < s_.size() && s_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool Null() {
    Ws();
    if (s_.substr(p_).starts_with("null")) {
      p_ += 4;
      return true;
    }
    return false;
  }
  bool StringOrNull(std::string* out) {
    Ws();
    return (p_ < s_.size() && s_[p_] == 'n') ? Null() : String(out);
  }
  /// -?(0|[1-9][0-9]*): an integer (what a fraction or exponent would be is declined).
  bool Int() {
    Ws();
    if (p_ < s_.size() && s_[p_] == '-') ++p_;
    if (p_ >= s_.size() || s_[p_] < '0' || s_[p_] > '9') return false;
    if (s_[p_++] == '0') return true;
    while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
    return true;
  }
  /// Exactly the integer 0.
  bool Zero() {
    Ws();
    if (p_ < s_.size() && s_[p_] == '0') {
      ++p_;
      return p_ == s_.size() || s_[p_] < '0' || s_[p_] > '9';
    }
    return false;
  }
  /// A JSON string, decoded into `out` when given. Runs of plain bytes are copied at once.
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    std::size_t run = p_;
    auto flush = [&] {
      if (out != nullptr && p_ > run) out->append(s_.data() + run, p_ - run);
    };
    while (p_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[p_]);
      if (c == '"') {
        flush();
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        flush();
        if (!Escape(out)) return false;
        run = p_;
      } else if (c < 0x80) {
        ++p_;
        while (p_ < s_.size() && kPlain[static_cast<unsigned char>(s_[p_])]) ++p_;
      } else if (!Utf8()) {
        return false;
      }
    }
    return false;
  }
  bool AtEnd() {
    Ws();
    return p_ == s_.size();
  }

 private:
  void Ws() {
    while (p_ < s_.size() &&
           (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r')) {
      ++p_;
    }
  }
  bool Hex4(std::uint32_t& v) {
    if (p_ + 4 > s_.size()) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[p_++];
      std::uint32_t d = 0;
      if (h >= '0' && h <= '9') {
        d = static_cast<std::uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        d = static_cast<std::uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        d = static_cast<std::uint32_t>(h - 'A' + 10);
      } else {
        return false;
      }
      v = v << 4 | d;
    }
    return true;
  }
  bool Escape(std::string* out) {
    ++p_;  // the backslash
    if (p_ >= s_.size()) return false;
    const char e = s_[p_++];
    char simple = 0;
    switch (e) {
      case '"':
        simple = '"';
        break;
      case '\\':
        simple = '\\';
        break;
      case '/':
        simple = '/';
        break;
      case 'b':
        simple = '\b';
        break;
      case 'f':
        simple = '\f';
        break;
      case 'n':
        simple = '\n';
        break;
      case 'r':
        simple = '\r';
        break;
      case 't':
        simple = '\t';
        break;
      case 'u':
        break;
      default:
        return false;
    }
    if (e != 'u') {
      if (out != nullptr) out->push_back(simple);
      return true;
    }
    std::uint32_t cp = 0;
    if (!Hex4(cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate alone
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      std::uint32_t low = 0;
      if (p_ + 2 > s_.size() || s_[p_] != '\\' || s_[p_ + 1] != 'u') return false;
      p_ += 2;
      if (!Hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (out != nullptr) AppendUtf8(*out, cp);
    return true;
  }
  // One well-formed multi-byte UTF-8 sequence (no overlong forms, no surrogates, <= U+10FFFF).
  bool Utf8() {
    const auto c = static_cast<unsigned char>(s_[p_]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1Fu, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0Fu, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07u, min = 0x10000;
    } else {
      return false;
    }
    if (p_ + len > s_.size()) return false;
    for (std::size_t i = 1; i < len; ++i) {
      const auto b = static_cast<unsigned char>(s_[p_ + i]);
      if ((b & 0xC0) != 0x80) return false;
      cp = cp << 6 | (b & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p_ += len;
    return true;
  }
  static void AppendUtf8(std::string& out, std::uint32_t cp) {
    auto put = [&out](std::uint32_t b) { out.push_back(static_cast<char>(b)); };
    if (cp < 0x80) {
      put(cp);
    } else if (cp < 0x800) {
      put(0xC0 | cp >> 6), put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      put(0xE0 | cp >> 12), put(0x80 | (cp >> 6 & 0x3F)), put(0x80 | (cp & 0x3F));
    } else {
      put(0xF0 | cp >> 18), put(0x80 | (cp >> 12 & 0x3F)), put(0x80 | (cp >> 6 & 0x3F)),
          put(0x80 | (cp & 0x3F));
    }
  }

  std::string_view s_;
  std::size_t p_ = 0;
};

// Members of an object, each a name of `names` at most once; `value(i)` reads member i's value.
template <std::size_t N, class Value>
bool Members(Scanner& s, const std::string_view (&names)[N], Value value) {
  if (!s.Eat('{')) return false;
  if (s.Eat('}')) return true;
  std::uint32_t seen = 0;
  std::string key;
  do {
    key.clear();
    if (!s.String(&key) || !s.Eat(':')) return false;
    std::size_t i = 0;
    while (i < N && names[i] != key) ++i;
    if (i == N || (seen & (1u << i)) != 0) return false;
    seen |= 1u << i;
    if (!value(i)) return false;
  } while (s.Eat(','));
  return s.Eat('}');
}

}  // namespace

std::optional<std::string> ScanContentChunk(std::string_view payload) {
  Scanner s(payload);
  std::string content;
  bool has_choices = false;
  bool has_delta = false;
  static constexpr std::string_view kDelta[] = {"content", "role", "refusal"};
  auto delta = [&](std::size_t i) {
    switch (i) {
      case 0:
        return s.StringOrNull(&content);
      case 1:
        return s.String(nullptr);
      default:
        return s.Null();
    }
  };
  static constexpr std::string_view kChoice[] = {"index", "delta", "logprobs", "finish_reason"};
  auto choice = [&](std::size_t i) {
    switch (i) {
      case 0:
        return s.Zero();
      case 1:
        return has_delta = Members(s, kDelta, delta);
      default:
        return s.Null();
    }
  };
  static constexpr std::string_view kTop[] = {
      "id",           "object",      "created", "model",  "system_fingerprint",
      "service_tier", "obfuscation", "usage",   "choices"};
  auto top = [&](std::size_t i) {
    switch (i) {
      case 2:
        return s.Int();
      case 4:
      case 5:
        return s.StringOrNull(nullptr);
      case 7:
        return s.Null();
      case 8:
        // Exactly one choice.
        return has_choices = s.Eat('[') && Members(s, kChoice, choice) && s.Eat(']');
      default:
        return s.String(nullptr);
    }
  };
  if (!Members(s, kTop, top) || !s.AtEnd() || !has_choices || !has_delta) return std::nullopt;
  return content;
}

}  // namespace meridian::providers::openai
