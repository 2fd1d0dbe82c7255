// PII classifier. See classifier.h for the detector rules and the class choices.
#include "gateway/classifier.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cstddef>
#include <initializer_list>
#include <string>

namespace meridian::classifier {
namespace {

using policy::DataClass;

// Byte classes. 0 = cannot start or continue anything the scanner looks at.
constexpr std::uint8_t kDigit = 1;
constexpr std::uint8_t kUpper = 2;
constexpr std::uint8_t kLower = 4;
constexpr std::uint8_t kAt = 8;
/// Lead bytes of the UTF-8 sequences Fold rewrites (full-width forms, zero-width and other
/// format characters, Unicode dashes and spaces, mathematical digits).
constexpr std::uint8_t kFoldLead = 16;
constexpr std::uint8_t kAlnum = kDigit | kUpper | kLower;

constexpr std::array<std::uint8_t, 256> MakeClassTable() {
  std::array<std::uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = kDigit;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = kUpper;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = kLower;
  t[static_cast<std::size_t>('@')] = kAt;
  for (int c : {0xC2, 0xE1, 0xE2, 0xE3, 0xEF, 0xF0}) t[static_cast<std::size_t>(c)] = kFoldLead;
  return t;
}
constexpr std::array<std::uint8_t, 256> kClass = MakeClassTable();

inline std::uint8_t ClassAt(std::string_view s, std::size_t i) {
  return kClass[static_cast<unsigned char>(s[i])];
}
inline bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
inline bool IsUpper(char c) {
  return c >= 'A' && c <= 'Z';
}
inline bool IsAlpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
inline bool IsAlnum(char c) {
  return IsDigit(c) || IsAlpha(c);
}
inline int D(char c) {
  return c - '0';
}
inline int Two(const char* p) {
  return D(p[0]) * 10 + D(p[1]);
}

constexpr std::size_t kMaxDigits = 24;  // longest digit sequence any detector needs (0086+11 etc.)

// ---- checksums / field checks (inputs are already known to be digits where required) ----

bool PlausibleMonthDay(int month, int day) {
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

// 18 chars: 17 digits + [0-9Xx].
bool IsResidentId18(const char* p) {
  for (int k = 0; k < 17; ++k) {
    if (!IsDigit(p[k])) return false;
  }
  const char last = p[17];
  if (!IsDigit(last) && last != 'X' && last != 'x') return false;
  if (p[0] == '0') return false;
  const int year = Two(p + 6) * 100 + Two(p + 8);
  if (year < 1900 || year > 2099) return false;
  if (!PlausibleMonthDay(Two(p + 10), Two(p + 12))) return false;
  static constexpr std::array<int, 17> kWeights = {7, 9, 10, 5,  8, 4, 2, 1, 6,
                                                   3, 7, 9,  10, 5, 8, 4, 2};
  int sum = 0;
  for (std::size_t k = 0; k < 17; ++k) sum += D(p[k]) * kWeights[k];
  const char expected = "10X98765432"[sum % 11];
  return (last == 'x' ? 'X' : last) == expected;
}

// 15 digits, legacy: no checksum, so region digit + plausible YYMMDD only.
bool IsResidentId15(const char* p) {
  return p[0] != '0' && PlausibleMonthDay(Two(p + 8), Two(p + 10));
}

bool IsMobile11(const char* p) {
  return p[0] == '1' && p[1] >= '3' && p[1] <= '9';
}

bool IsBankCard(const char* p, std::size_t n) {
  if (n < 16 || n > 19) return false;
  if (p[0] < '2' || p[0] > '6') return false;
  bool all_same = true;
  int sum = 0;
  for (std::size_t k = 0; k < n; ++k) {
    if (p[k] != p[0]) all_same = false;
    int d = D(p[n - 1 - k]);
    if (k % 2 == 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return !all_same && sum % 10 == 0;
}

int HkLetterValue(char c) {
  return c == ' ' ? 36 : c - 'A' + 10;
}

// letters: 1 or 2 upper-case letters; six digits; check char [0-9A].
bool IsHkId(const char* letters, std::size_t nletters, const char* digits, char check) {
  const char l1 = nletters == 2 ? letters[0] : ' ';
  const char l2 = nletters == 2 ? letters[1] : letters[0];
  int sum = HkLetterValue(l1) * 9 + HkLetterValue(l2) * 8;
  for (int k = 0; k < 6; ++k) sum += D(digits[k]) * (7 - k);
  const int value = 11 - sum % 11;
  const char expected = value == 11 ? '0' : value == 10 ? 'A' : static_cast<char>('0' + value);
  return check == expected;
}

// ---- folding (see "Normalisation" in classifier.h) ----

// What Fold makes of one code point: -1 = drop it, 0 = keep it as it is, else the ASCII byte.
int FoldCodePoint(std::uint32_t cp) {
  if (cp >= 0xFF01 && cp <= 0xFF5E) return static_cast<int>(cp - 0xFEE0);  // full-width ASCII
  if (cp == 0x3000 || cp == 0x00A0 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F ||
      cp == 0x205F) {
    return ' ';  // ideographic, no-break and typographic spaces
  }
  if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212 || cp == 0xFE58 || cp == 0xFE63) {
    return '-';  // hyphens, dashes, minus
  }
  if (cp == 0x00AD || cp == 0x180E || (cp >= 0x200B && cp <= 0x200F) ||
      (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) ||
      (cp >= 0x2066 && cp <= 0x206F) || cp == 0xFEFF) {
    return -1;  // zero-width and other format characters (Unicode category Cf)
  }
  if (cp >= 0x2460 && cp <= 0x2468) return static_cast<int>('1' + (cp - 0x2460));  // circled
  if (cp == 0x24EA) return '0';                                                    // circled 0
  if (cp >= 0x1D7CE && cp <= 0x1D7FF) return static_cast<int>('0' + (cp - 0x1D7CE) % 10);
  return 0;
}

// Decodes the well-formed UTF-8 sequence at s[i] into `cp` and its length; false when the
// bytes there are not one (they are then left as they are).
bool DecodeUtf8(std::string_view s, std::size_t i, std::uint32_t& cp, std::size_t& len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  len = b0 < 0xC2 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : b0 < 0xF5 ? 4 : 1;
  if (len == 1 || i + len > s.size()) return false;
  cp = b0 & (len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u);
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  return true;
}

// True when folding the sequence at s[i] can change what the scanner sees: it becomes an
// alphanumeric, '@', a separator or a bracket, or it is removed. Chinese punctuation such as
// U+FF0C (，) or U+FF1A (：) folds to ',' / ':', which delimit tokens either way: a text
// with only those is scanned once.
bool FoldChangesTokens(std::string_view s, std::size_t i) {
  std::uint32_t cp = 0;
  std::size_t len = 0;
  if (!DecodeUtf8(s, i, cp, len)) return false;
  const int f = FoldCodePoint(cp);
  if (f == 0) return false;
  if (f < 0) return true;
  const char c = static_cast<char>(f);
  return IsAlnum(c) || c == '@' || c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' ||
         c == '[' || c == ']' || c == '{' || c == '}' || c == '<' || c == '>' || c == '_' ||
         c == '/' || c == '+' || c == '%';
}

// ---- the scanner ----

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  std::uint32_t Run() {
    const std::size_t n = s_.size();
    std::size_t i = 0;
    while (i < n) {
      const std::uint8_t c = ClassAt(s_, i);
      if (c == 0) {
        ++i;
        continue;
      }
      if (c == kAt) {
        Email(i);
        ++i;
        continue;
      }
      if (c == kFoldLead) {
        if (!saw_foldable_) saw_foldable_ = FoldChangesTokens(s_, i);
        ++i;
        continue;
      }
      // An alphanumeric run starts here (the previous byte is not alphanumeric, because runs
      // are always consumed whole).
      std::size_t j = i + 1;
      while (j < n && (ClassAt(s_, j) & kAlnum) != 0) ++j;
      if (c == kDigit) {
        DigitToken(i, j);
      } else if (c == kUpper) {
        UpperToken(i, j);
      }
      if (j - i == 2 && (s_[i] | 0x20) == 'a' && (s_[i + 1] | 0x20) == 't') ObfuscatedAt(i, j);
      if (j - i > 18) GluedResidentId(i, j);
      i = j;
    }
    return mask_;
  }

  /// True when the text holds a byte sequence Fold would rewrite.
  bool saw_foldable() const { return saw_foldable_; }

 private:
  void Fire(Detector d) { mask_ |= policy::Bit(d); }

  bool DigitAt(std::size_t k) const { return k < s_.size() && IsDigit(s_[k]); }

  static bool IsGroupSeparator(char c) { return c == ' ' || c == '-' || c == '.'; }

  // A digit run [i, j) starting at a run boundary.
  void DigitToken(std::size_t i, std::size_t j) {
    const std::size_t len = j - i;
    const char* p = s_.data() + i;
    std::size_t ndigits = 0;
    while (ndigits < len && IsDigit(p[ndigits])) ++ndigits;
    const bool all_digits = ndigits == len;
    // Grouped forms start at the first group of a separator-joined sequence. Dots separate
    // groups too ("110105.19491231.002X"); a decimal number never passes the checksums.
    const bool continues_sequence = i >= 2 && IsGroupSeparator(s_[i - 1]) && IsDigit(s_[i - 2]);
    if ((all_digits || len == ndigits + 1) && !continues_sequence && j + 1 < s_.size() &&
        IsGroupSeparator(s_[j]) && IsDigit(s_[j + 1])) {
      GroupedSequence(i, j);
    }
    // Part of a decimal number ("3.13812345678", "13812345678.5")?
    if (i >= 2 && s_[i - 1] == '.' && IsDigit(s_[i - 2])) return;
    if (j < s_.size() && s_[j] == '.' && DigitAt(j + 1)) return;

    if (len == 18 && ndigits >= 17) {
      if (IsResidentId18(p)) {
        Fire(Detector::kCnResidentId);
        return;
      }
    }
    if (!all_digits) return;
    switch (len) {
      case 11:
        if (IsMobile11(p)) Fire(Detector::kCnMobile);
        break;
      case 13:
        if (p[0] == '8' && p[1] == '6' && IsMobile11(p + 2)) Fire(Detector::kCnMobile);
        break;
      case 15:
        if (p[0] == '0' && p[1] == '0' && p[2] == '8' && p[3] == '6' && IsMobile11(p + 4)) {
          Fire(Detector::kCnMobile);
        } else if (IsResidentId15(p)) {
          Fire(Detector::kCnResidentId);
        }
        break;
      case 16:
      case 17:
      case 18:
      case 19:
        if (IsBankCard(p, len)) Fire(Detector::kBankCard);
        break;
      default:
        break;
    }
  }

  // [i, j) is the first group (digits, the last one possibly ending in the resident ID's
  // check char X), followed by a separator and a digit. Groups are joined by one consistent
  // single separator (' ', '-' or '.'). The checksum-backed detectors (resident ID, bank card)
  // accept any grouping whose groups, except the last, have at least 3 digits ("110105
  // 19491231 002X", "6222-0202-0000-1234-567"); mobiles (no checksum) only the customary
  // 3-4-4 forms with optional 86 / 0086 prefix.
  void GroupedSequence(std::size_t i, std::size_t j) {
    const char sep = s_[j];
    std::array<char, kMaxDigits> digits{};
    std::array<std::size_t, kMaxDigits> lens{};
    std::size_t ngroups = 0;
    std::size_t ndigits = 0;
    std::size_t start = i;
    std::size_t end = j;
    bool check_x = false;  // the sequence ends in X/x
    while (true) {
      const std::size_t glen = end - start;
      if (ngroups == lens.size() || ndigits + glen > kMaxDigits) return;
      for (std::size_t k = start; k < end; ++k) {
        if (!IsDigit(s_[k])) {
          if (k + 1 == end && (s_[k] == 'X' || s_[k] == 'x')) {
            check_x = true;
          } else {
            return;  // a group glued to letters: not a clean sequence
          }
        }
        digits[ndigits++] = s_[k];
      }
      lens[ngroups++] = glen;
      if (!check_x && end + 1 < s_.size() && s_[end] == sep && IsDigit(s_[end + 1])) {
        start = end + 1;
        end = start + 1;
        while (end < s_.size() && (ClassAt(s_, end) & kAlnum) != 0) ++end;
        continue;
      }
      break;
    }
    // The sequence must end cleanly: no other separator/decimal point followed by a digit.
    if (end + 1 < s_.size() && IsGroupSeparator(s_[end]) && IsDigit(s_[end + 1])) return;
    const char* d = digits.data();
    bool long_groups = true;  // every group but the last has >= 3 digits
    for (std::size_t g = 0; g + 1 < ngroups; ++g) long_groups = long_groups && lens[g] >= 3;
    if (ndigits == 18 && long_groups && IsResidentId18(d)) {
      Fire(Detector::kCnResidentId);
      return;
    }
    if (check_x) return;
    auto is = [&](std::initializer_list<std::size_t> want) {
      return want.size() == ngroups && std::equal(want.begin(), want.end(), lens.begin());
    };
    const bool p86 = ngroups >= 2 && lens[0] == 2 && d[0] == '8' && d[1] == '6';
    const bool p0086 =
        ngroups >= 2 && lens[0] == 4 && d[0] == '0' && d[1] == '0' && d[2] == '8' && d[3] == '6';
    if (is({3, 4, 4}) && IsMobile11(d)) {
      Fire(Detector::kCnMobile);
    } else if ((p86 && (is({2, 11}) || is({2, 3, 4, 4})) && IsMobile11(d + 2)) ||
               (p0086 && (is({4, 11}) || is({4, 3, 4, 4})) && IsMobile11(d + 4))) {
      Fire(Detector::kCnMobile);
    } else if (long_groups && IsBankCard(d, ndigits)) {
      Fire(Detector::kBankCard);
    }
  }

  // An alphanumeric run [i, j) longer than 18 that may hold a resident ID glued to letters
  // ("ID11010519491231002X", "no11010519491231002Xok"): every maximal digit sub-run of 18
  // digits, or 17 digits followed by X/x, is checked against the GB 11643 checksum. Digit-only
  // runs never match here (an ID inside a longer number is not an ID).
  void GluedResidentId(std::size_t i, std::size_t j) {
    if ((mask_ & policy::Bit(Detector::kCnResidentId)) != 0) return;
    std::size_t k = i;
    while (k < j) {
      if (!IsDigit(s_[k])) {
        ++k;
        continue;
      }
      std::size_t e = k;
      while (e < j && IsDigit(s_[e])) ++e;
      const std::size_t n = e - k;
      const bool whole = k == i && e == j;
      if (!whole && (n == 18 || (n == 17 && e < j && (s_[e] == 'X' || s_[e] == 'x'))) &&
          IsResidentId18(s_.data() + k)) {
        Fire(Detector::kCnResidentId);
        return;
      }
      k = e;
    }
  }

  static bool IsJoiner(char c) { return c == '-' || c == '_' || c == '/'; }

  // True if [i, j) is glued by '-', '_' or '/' to another alphanumeric run on either side.
  bool JoinedAt(std::size_t i, std::size_t j) const {
    if (i >= 2 && IsJoiner(s_[i - 1]) && IsAlnum(s_[i - 2])) return true;
    return j + 1 < s_.size() && IsJoiner(s_[j]) && IsAlnum(s_[j + 1]);
  }

  // An alphanumeric run [i, j) starting with an upper-case letter.
  void UpperToken(std::size_t i, std::size_t j) {
    const std::size_t len = j - i;
    if (len < 7 || len > 9) return;
    // Letter-led codes joined into a compound identifier ("SKU-E12345678-01") are not IDs.
    if (JoinedAt(i, j)) return;
    const char* p = s_.data() + i;
    const std::size_t nletters = IsUpper(p[1]) ? 2 : 1;
    for (std::size_t k = nletters; k < nletters + 6; ++k) {
      if (!IsDigit(p[k])) return;
    }
    // HKID, glued check char: letters + 6 digits + [0-9A].
    if (len == nletters + 7) {
      const char check = p[len - 1];
      if ((IsDigit(check) || check == 'A') && IsHkId(p, nletters, p + nletters, check)) {
        Fire(Detector::kHkId);
        return;
      }
    }
    // HKID, check char in parentheses: letters + 6 digits, then "(c)".
    if (len == nletters + 6 && j + 2 < s_.size() && s_[j] == '(' && s_[j + 2] == ')' &&
        !JoinedAt(i, j + 3)) {
      const char check = s_[j + 1];
      if ((IsDigit(check) || check == 'A') && IsHkId(p, nletters, p + nletters, check)) {
        Fire(Detector::kHkId);
      }
      return;
    }
    // Passport: E/G + 8 digits, or E + letter + 7 digits, as a whole token.
    if (len == 9) {
      bool tail_digits = true;
      for (std::size_t k = nletters + 6; k < 9; ++k) tail_digits = tail_digits && IsDigit(p[k]);
      if (tail_digits &&
          ((nletters == 1 && (p[0] == 'E' || p[0] == 'G')) || (nletters == 2 && p[0] == 'E'))) {
        Fire(Detector::kPassport);
      }
    }
  }

  static bool IsLocalChar(char c) {
    return IsAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
  }
  static bool IsDomainChar(char c) { return IsAlnum(c) || c == '.' || c == '-'; }

  void Email(std::size_t at) {
    if ((mask_ & policy::Bit(Detector::kEmail)) != 0) return;
    // Local part: back to the previous non-local byte (never past another '@').
    std::size_t b = at;
    while (b > 0 && IsLocalChar(s_[b - 1])) {
      if (at - b == 64) return;  // longer than RFC 5321 allows: not an address
      --b;
    }
    if (b == at || s_[b] == '.' || s_[at - 1] == '.') return;
    // Domain: forward over domain bytes.
    const std::size_t n = s_.size();
    std::size_t e = at + 1;
    while (e < n && IsDomainChar(s_[e])) {
      if (e - at > 255) return;
      ++e;
    }
    while (e > at + 1 && (s_[e - 1] == '.' || s_[e - 1] == '-')) --e;  // "mail a@b.com."
    if (e < n && (s_[e] == '@' || s_[e] == '_')) return;
    const std::string_view domain = s_.substr(at + 1, e - at - 1);
    std::size_t labels = 0;
    std::size_t label_start = 0;
    for (std::size_t k = 0; k <= domain.size(); ++k) {
      if (k < domain.size() && domain[k] != '.') continue;
      const std::string_view label = domain.substr(label_start, k - label_start);
      if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
        return;
      }
      ++labels;
      if (k == domain.size()) {
        if (labels < 2 || label.size() < 2) return;
        for (char c : label) {
          if (!IsAlpha(c)) return;
        }
      }
      label_start = k + 1;
    }
    Fire(Detector::kEmail);
  }

  static bool IsLabelChar(char c) { return IsAlnum(c) || c == '-'; }

  static char Closer(char open) {
    switch (open) {
      case '(':
        return ')';
      case '[':
        return ']';
      case '{':
        return '}';
      case '<':
        return '>';
      default:
        return 0;
    }
  }

  // A bracketed word "(w)" / "[w]" / "{w}" / "<w>" (case-insensitive) at k, with one optional
  // space on either side, followed by an alphanumeric byte: the index after it, else 0.
  // Also " w " (spaced) when `spaced_ok`.
  std::size_t WordToken(std::size_t k, std::string_view word, bool spaced_ok) const {
    const std::size_t n = s_.size();
    std::size_t q = k;
    if (q < n && s_[q] == ' ') ++q;
    auto word_at = [&](std::size_t at) {
      if (at + word.size() > n) return false;
      for (std::size_t w = 0; w < word.size(); ++w) {
        if ((s_[at + w] | 0x20) != word[w]) return false;
      }
      return true;
    };
    std::size_t after = 0;
    if (q < n && Closer(s_[q]) != 0 && word_at(q + 1) && q + 1 + word.size() < n &&
        s_[q + 1 + word.size()] == Closer(s_[q])) {
      after = q + 2 + word.size();
      if (after < n && s_[after] == ' ') ++after;
    } else if (spaced_ok && k < n && s_[k] == ' ' && word_at(k + 1) && k + 1 + word.size() < n &&
               s_[k + 1 + word.size()] == ' ') {
      after = k + 2 + word.size();
    }
    return after != 0 && after < n && IsAlnum(s_[after]) ? after : 0;
  }

  // "alice(at)example.com", "alice [at] example [dot] com", "alice at example dot com": the
  // alphanumeric run [i, j) is "at" in any case. The spaced form needs a spelled-out dot too
  // ("look at example.com" is prose, not an address).
  void ObfuscatedAt(std::size_t i, std::size_t j) {
    if ((mask_ & policy::Bit(Detector::kEmail)) != 0 || i == 0) return;
    const std::size_t n = s_.size();
    std::size_t lb = 0;
    std::size_t rb = 0;
    bool spaced = false;
    if (j < n && Closer(s_[i - 1]) != 0 && s_[j] == Closer(s_[i - 1])) {
      lb = i - 1;
      rb = j + 1;
      if (lb > 0 && s_[lb - 1] == ' ') --lb;
      if (rb < n && s_[rb] == ' ') ++rb;
    } else if (j < n && s_[i - 1] == ' ' && s_[j] == ' ') {
      lb = i - 1;
      rb = j + 1;
      spaced = true;
    } else {
      return;
    }
    std::size_t b = lb;
    while (b > 0 && IsLocalChar(s_[b - 1])) {
      if (lb - b == 64) return;
      --b;
    }
    if (b == lb || s_[b] == '.' || s_[lb - 1] == '.') return;
    std::size_t k = rb;
    std::size_t labels = 0;
    bool spelled_dot = false;
    std::string_view last;
    while (true) {
      const std::size_t start = k;
      while (k < n && IsLabelChar(s_[k])) {
        if (k - start == 63 || k - rb > 255) return;
        ++k;
      }
      const std::string_view label = s_.substr(start, k - start);
      if (label.empty() || label.front() == '-' || label.back() == '-') return;
      ++labels;
      last = label;
      if (k + 1 < n && s_[k] == '.' && IsAlnum(s_[k + 1])) {
        ++k;
        continue;
      }
      if (const std::size_t next = WordToken(k, "dot", true); next != 0) {
        spelled_dot = true;
        k = next;
        continue;
      }
      break;
    }
    if (labels < 2 || last.size() < 2 || (spaced && !spelled_dot)) return;
    for (char c : last) {
      if (!IsAlpha(c)) return;
    }
    Fire(Detector::kEmail);
  }

  std::string_view s_;
  std::uint32_t mask_ = 0;
  bool saw_foldable_ = false;
};

}  // namespace

bool Fold(std::string_view text, std::string& out) {
  out.clear();
  bool changed = false;
  const std::size_t n = text.size();
  std::size_t i = 0;
  std::size_t copied = 0;  // text[copied, i) is still to be copied verbatim
  while (i < n) {
    if (static_cast<unsigned char>(text[i]) < 0xC2) {
      ++i;
      continue;
    }
    std::uint32_t cp = 0;
    std::size_t len = 0;
    const int folded = DecodeUtf8(text, i, cp, len) ? FoldCodePoint(cp) : 0;
    if (folded == 0) {
      i += len;
      continue;
    }
    if (!changed) out.reserve(n);
    changed = true;
    out.append(text.substr(copied, i - copied));
    if (folded > 0) out += static_cast<char>(folded);
    i += len;
    copied = i;
  }
  if (!changed) return false;
  out.append(text.substr(copied));
  return true;
}

namespace {

Classification Finish(DataClass declared, std::uint32_t mask) {
  DataClass effective = declared;
  for (std::size_t k = 0; k < kDetectorCount; ++k) {
    const auto d = static_cast<Detector>(k);
    if ((mask & policy::Bit(d)) != 0) effective = std::max(effective, ClassOf(d));
  }
  return Classification{effective, effective > declared, mask};
}

constexpr std::uint32_t kAllDetectors = (1u << kDetectorCount) - 1u;

namespace json = boost::json;

std::string_view Sv(json::string_view s) {
  return {s.data(), s.size()};
}

// Walks every string a request will carry upstream. JSON carried raw (content parts, tool
// calls, tools, pass-through members) is parsed and walked: string values, object keys and
// integers; a string that is itself JSON (tool-call arguments) is walked once more.
class RequestWalker {
 public:
  void Text(std::string_view s) {
    if (mask_ != kAllDetectors && !s.empty()) mask_ |= Scan(s);
  }

  void RawJson(std::string_view raw) {
    if (raw.empty()) return;
    json::error_code ec;
    const json::value v = json::parse(raw, ec, {}, Options());
    if (ec) {
      Text(raw);  // cannot be parsed (never for what the decoders produce): scan the bytes
      return;
    }
    Value(v, 0);
  }

  void ContentParts(std::string_view raw) {
    if (raw.empty()) return;
    json::error_code ec;
    const json::value v = json::parse(raw, ec, {}, Options());
    if (ec || !v.is_array()) {
      Text(raw);
      return;
    }
    std::string glued;  // adjacent text parts joined with nothing in between
    std::size_t text_parts = 0;
    for (const json::value& part : v.get_array()) {
      const json::object* o = part.if_object();
      if (o == nullptr) {
        Value(part, 0);
        continue;
      }
      const json::value* type = o->if_contains("type");
      const bool is_text = type != nullptr && type->is_string() && type->get_string() == "text";
      if (type != nullptr && type->is_string()) {
        if (auto kind = core::PartKindOf(Sv(type->get_string()))) parts_ |= policy::Bit(*kind);
      }
      for (const auto& member : *o) {
        if (is_text && member.key() == "text" && member.value().is_string()) {
          // Already scanned as Message::text; scanned again glued to its neighbours.
          glued += Sv(member.value().get_string());
          ++text_parts;
          continue;
        }
        Text(Sv(member.key()));
        Value(member.value(), 0);
      }
    }
    if (text_parts > 1) Text(glued);
  }

  /// Content that cannot be scanned (token ids): reported as its kind.
  void Part(core::PartKind kind) { parts_ |= policy::Bit(kind); }

  RequestScan Result() const { return RequestScan{mask_, parts_}; }

 private:
  static json::parse_options Options() {
    json::parse_options o;
    o.max_depth = 256;
    return o;
  }

  void Value(const json::value& v, int depth) {
    switch (v.kind()) {
      case json::kind::string:
        String(Sv(v.get_string()), depth);
        break;
      case json::kind::int64:
        Text(std::to_string(v.get_int64()));
        break;
      case json::kind::uint64:
        Text(std::to_string(v.get_uint64()));
        break;
      case json::kind::object:
        for (const auto& member : v.get_object()) {
          Text(Sv(member.key()));
          Value(member.value(), depth);
        }
        break;
      case json::kind::array:
        for (const json::value& e : v.get_array()) Value(e, depth);
        break;
      default:
        break;  // null, bool, double (cannot hold a 15+ digit identifier exactly)
    }
  }

  void String(std::string_view s, int depth) {
    Text(s);  // data: URLs too: base64 payloads are scanned like any text (linear time)
    // Tool-call arguments and similar are JSON text: walk what they decode to (escapes such
    // as \u0031 would otherwise hide digits from the scan).
    std::size_t b = 0;
    while (b < s.size() && (s[b] == ' ' || s[b] == '\n' || s[b] == '\t' || s[b] == '\r')) ++b;
    if (depth >= 2 || b == s.size() || (s[b] != '{' && s[b] != '[')) return;
    json::error_code ec;
    const json::value inner = json::parse(s, ec, {}, Options());
    if (!ec) Value(inner, depth + 1);
  }

  std::uint32_t mask_ = 0;
  std::uint32_t parts_ = 0;
};

}  // namespace

RequestScan ScanRequest(const core::CompletionRequest& request) {
  RequestWalker w;
  // Every member is named here: a new member of CompletionRequest or Message breaks these
  // bindings until it is either scanned below or stated not to leave (or not to be text).
  const auto& [op, model, messages, stream, include_usage, max_tokens, max_completion_tokens,
               temperature, top_p, stop, tools_json, tool_choice_json, user, enable_thinking,
               passthrough, traceparent, embedding, native] = request;
  // Not scanned: `model` is replaced by the provider's upstream model id; `traceparent` is the
  // gateway's own W3C header (hex ids), never part of a body; the rest are not text.
  (void)op, (void)model, (void)stream, (void)include_usage, (void)max_tokens,
      (void)max_completion_tokens, (void)temperature, (void)top_p, (void)enable_thinking,
      (void)traceparent;
  {
    const auto& [texts, tokens, dimensions, base64] = embedding;
    (void)dimensions, (void)base64;  // numbers and a flag
    for (const std::string& t : texts) w.Text(t);
    // Token ids cannot be read without the model's tokenizer: like media, they are reported
    // and imply the policy's image_data_class.
    if (!tokens.empty()) w.Part(core::PartKind::kTokens);
  }
  for (const core::Message& m : messages) {
    const auto& [role, text, content_parts_json, content_null, name, tool_call_id,
                 tool_calls_json] = m;
    (void)role, (void)content_null;  // an enum-like validated word; a flag
    w.Text(text);
    w.ContentParts(content_parts_json);
    w.Text(name);
    w.Text(tool_call_id);
    w.RawJson(tool_calls_json);
  }
  for (const std::string& s : stop) w.Text(s);
  w.RawJson(tools_json);
  w.RawJson(tool_choice_json);
  w.Text(user);
  for (const core::PassthroughMember& member : passthrough) {
    w.Text(member.key);
    w.RawJson(member.json);
  }
  // The client's own body, sent as it came to an upstream of its format: every member of it
  // (thinking blocks, anything the translation above leaves out) is read as well.
  (void)native.format;
  w.RawJson(native.json);
  return w.Result();
}

Classification Classify(DataClass declared, const RequestScan& scan) {
  return Finish(declared, scan.detectors_mask);
}

std::string_view Name(Detector detector) {
  static constexpr std::array<std::string_view, kDetectorCount> kNames = {
      "cn_resident_id", "cn_mobile", "bank_card", "email", "passport", "hk_id"};
  return kNames[static_cast<std::size_t>(detector)];
}

DataClass ClassOf(Detector detector) {
  switch (detector) {
    case Detector::kCnResidentId:  // PIPL Art. 28: specific identity
    case Detector::kBankCard:      // PIPL Art. 28: financial accounts
    case Detector::kPassport:      // PIPL Art. 28: specific identity
    case Detector::kHkId:          // PIPL Art. 28: specific identity
      return DataClass::kSensitivePersonal;
    case Detector::kCnMobile:  // PIPL Art. 4: personal information
    case Detector::kEmail:     // PIPL Art. 4: personal information
      return DataClass::kPersonal;
  }
  return DataClass::kSensitivePersonal;
}

std::uint32_t Scan(std::string_view text) {
  Scanner raw(text);
  std::uint32_t mask = raw.Run();
  if (raw.saw_foldable()) {
    // Both forms are scanned: folding joins what a zero-width character split, but it can
    // also glue a token to a neighbour that the raw text kept apart.
    std::string folded;
    if (Fold(text, folded)) mask |= Scanner(folded).Run();
  }
  return mask;
}

std::vector<Finding> Findings(std::uint32_t detectors_mask) {
  std::vector<Finding> out;
  for (std::size_t k = 0; k < kDetectorCount; ++k) {
    const auto d = static_cast<Detector>(k);
    if ((detectors_mask & policy::Bit(d)) != 0) out.push_back(Finding{d});
  }
  return out;
}

Classification Classify(DataClass declared, std::span<const std::string_view> texts) {
  std::uint32_t mask = 0;
  for (std::string_view text : texts) {
    mask |= Scan(text);
    if (mask == kAllDetectors) break;
  }
  return Finish(declared, mask);
}

Classification Classify(DataClass declared, const std::vector<core::Message>& messages) {
  std::uint32_t mask = 0;
  for (const core::Message& m : messages) {
    mask |= Scan(m.text);
    if (mask == kAllDetectors) break;
  }
  return Finish(declared, mask);
}

}  // namespace meridian::classifier
