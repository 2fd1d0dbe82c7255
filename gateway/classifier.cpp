// PII classifier. See classifier.h for the detector rules and the class choices.
#include "gateway/classifier.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <initializer_list>

namespace meridian::classifier {
namespace {

using policy::DataClass;

// Byte classes. 0 = cannot start or continue anything the scanner looks at.
constexpr std::uint8_t kDigit = 1;
constexpr std::uint8_t kUpper = 2;
constexpr std::uint8_t kLower = 4;
constexpr std::uint8_t kAt = 8;
constexpr std::uint8_t kAlnum = kDigit | kUpper | kLower;

constexpr std::array<std::uint8_t, 256> MakeClassTable() {
  std::array<std::uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = kDigit;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = kUpper;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = kLower;
  t[static_cast<std::size_t>('@')] = kAt;
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
      // An alphanumeric run starts here (the previous byte is not alphanumeric, because runs
      // are always consumed whole).
      std::size_t j = i + 1;
      while (j < n && (ClassAt(s_, j) & kAlnum) != 0) ++j;
      if (c == kDigit) {
        DigitToken(i, j);
      } else if (c == kUpper) {
        UpperToken(i, j);
      }
      i = j;
    }
    return mask_;
  }

 private:
  void Fire(Detector d) { mask_ |= policy::Bit(d); }

  bool DigitAt(std::size_t k) const { return k < s_.size() && IsDigit(s_[k]); }

  // A digit run [i, j) starting at a run boundary.
  void DigitToken(std::size_t i, std::size_t j) {
    // Part of a decimal number ("3.13812345678", "13812345678.5")?
    if (i >= 2 && s_[i - 1] == '.' && IsDigit(s_[i - 2])) return;
    if (j < s_.size() && s_[j] == '.' && DigitAt(j + 1)) return;
    const std::size_t len = j - i;
    const char* p = s_.data() + i;
    std::size_t ndigits = 0;
    while (ndigits < len && IsDigit(p[ndigits])) ++ndigits;
    const bool all_digits = ndigits == len;

    if (len == 18 && ndigits >= 17) {
      if (IsResidentId18(p)) {
        Fire(Detector::kCnResidentId);
        return;
      }
    }
    // Grouped forms start at the first group of a separator-joined sequence.
    const bool continues_sequence =
        i >= 2 && (s_[i - 1] == ' ' || s_[i - 1] == '-') && IsDigit(s_[i - 2]);
    if (all_digits && !continues_sequence && j + 1 < s_.size() && (s_[j] == ' ' || s_[j] == '-') &&
        IsDigit(s_[j + 1])) {
      GroupedSequence(i, j);
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

  // [i, j) is the first all-digit group, followed by a separator and a digit.
  void GroupedSequence(std::size_t i, std::size_t j) {
    const char sep = s_[j];
    std::array<char, kMaxDigits> digits{};
    std::array<std::size_t, 6> lens{};
    std::size_t ngroups = 0;
    std::size_t ndigits = 0;
    std::size_t start = i;
    std::size_t end = j;
    while (true) {
      const std::size_t glen = end - start;
      if (ngroups == lens.size() || ndigits + glen > kMaxDigits) return;
      for (std::size_t k = start; k < end; ++k) {
        if (!IsDigit(s_[k])) return;  // a group glued to letters: not a clean sequence
        digits[ndigits++] = s_[k];
      }
      lens[ngroups++] = glen;
      if (end + 1 < s_.size() && s_[end] == sep && IsDigit(s_[end + 1])) {
        start = end + 1;
        end = start + 1;
        while (end < s_.size() && (ClassAt(s_, end) & kAlnum) != 0) ++end;
        continue;
      }
      break;
    }
    // The sequence must end cleanly: no other separator/decimal point followed by a digit.
    if (end + 1 < s_.size() && (s_[end] == ' ' || s_[end] == '-' || s_[end] == '.') &&
        IsDigit(s_[end + 1])) {
      return;
    }
    const char* d = digits.data();
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
    } else if ((is({4, 4, 4, 4}) || is({4, 4, 4, 4, 1}) || is({4, 4, 4, 4, 2}) ||
                is({4, 4, 4, 4, 3})) &&
               IsBankCard(d, ndigits)) {
      Fire(Detector::kBankCard);
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

  std::string_view s_;
  std::uint32_t mask_ = 0;
};

Classification Finish(DataClass declared, std::uint32_t mask) {
  DataClass effective = declared;
  for (std::size_t k = 0; k < kDetectorCount; ++k) {
    const auto d = static_cast<Detector>(k);
    if ((mask & policy::Bit(d)) != 0) effective = std::max(effective, ClassOf(d));
  }
  return Classification{effective, effective > declared, mask};
}

constexpr std::uint32_t kAllDetectors = (1u << kDetectorCount) - 1u;

}  // namespace

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
  return Scanner(text).Run();
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
