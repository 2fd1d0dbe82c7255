// PII classifier: true positives AND near-misses for every detector, plus the raise-only rule.
// Every identifier here is synthetic: built from obviously fake digits with a check character
// computed by the helpers below (never a real person's number).
#include "gateway/classifier.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace meridian::classifier {
namespace {

using policy::DataClass;

// ---- helpers computing check characters ----

/// GB 11643 check char for 17 digits.
std::string Id18(const std::string& first17) {
  static constexpr std::array<int, 17> kW = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int sum = 0;
  for (std::size_t k = 0; k < 17; ++k) sum += (first17[k] - '0') * kW[k];
  return first17 + "10X98765432"[sum % 11];
}

/// The same ID with a deliberately wrong check char.
std::string Id18Wrong(const std::string& first17) {
  std::string id = Id18(first17);
  id.back() = id.back() == '0' ? '1' : '0';
  return id;
}

/// Appends the Luhn check digit.
std::string Luhn(const std::string& body) {
  int sum = 0;
  for (std::size_t k = 0; k < body.size(); ++k) {
    int d = body[body.size() - 1 - k] - '0';
    if (k % 2 == 0) {  // these positions are doubled once the check digit is appended
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return body + static_cast<char>('0' + (10 - sum % 10) % 10);
}

std::string LuhnWrong(const std::string& body) {
  std::string card = Luhn(body);
  card.back() = card.back() == '9' ? '0' : static_cast<char>(card.back() + 1);
  return card;
}

/// HKID check char for 1-2 letters + 6 digits.
char HkCheck(const std::string& letters, const std::string& digits) {
  const std::string l = letters.size() == 1 ? " " + letters : letters;
  auto v = [](char c) { return c == ' ' ? 36 : c - 'A' + 10; };
  int sum = v(l[0]) * 9 + v(l[1]) * 8;
  for (int k = 0; k < 6; ++k) sum += (digits[static_cast<std::size_t>(k)] - '0') * (7 - k);
  const int value = 11 - sum % 11;
  return value == 11 ? '0' : value == 10 ? 'A' : static_cast<char>('0' + value);
}

char OtherCheck(char c) {
  return c == '1' ? '2' : '1';
}

std::uint32_t B(Detector d) {
  return policy::Bit(d);
}

/// True iff only `d` fired (or nothing, for ExpectNone).
void ExpectOnly(Detector d, std::string_view text) {
  EXPECT_EQ(Scan(text), B(d)) << "text: " << text;
}
void ExpectNone(std::string_view text) {
  EXPECT_EQ(Scan(text), 0u) << "text: " << text;
}
bool Fires(Detector d, std::string_view text) {
  return (Scan(text) & B(d)) != 0;
}

// ---- API shape ----

TEST(ClassifierApi, NamesAndClasses) {
  EXPECT_EQ(Name(Detector::kCnResidentId), "cn_resident_id");
  EXPECT_EQ(Name(Detector::kCnMobile), "cn_mobile");
  EXPECT_EQ(Name(Detector::kBankCard), "bank_card");
  EXPECT_EQ(Name(Detector::kEmail), "email");
  EXPECT_EQ(Name(Detector::kPassport), "passport");
  EXPECT_EQ(Name(Detector::kHkId), "hk_id");
  EXPECT_EQ(ClassOf(Detector::kCnResidentId), DataClass::kSensitivePersonal);
  EXPECT_EQ(ClassOf(Detector::kBankCard), DataClass::kSensitivePersonal);
  EXPECT_EQ(ClassOf(Detector::kPassport), DataClass::kSensitivePersonal);
  EXPECT_EQ(ClassOf(Detector::kHkId), DataClass::kSensitivePersonal);
  EXPECT_EQ(ClassOf(Detector::kCnMobile), DataClass::kPersonal);
  EXPECT_EQ(ClassOf(Detector::kEmail), DataClass::kPersonal);
}

// The results can never carry the matched value: by construction they are small trivially
// copyable aggregates of enums / integers (a std::string member would break both asserts).
static_assert(std::is_trivially_copyable_v<Finding>);
static_assert(sizeof(Finding) == sizeof(Detector));
static_assert(std::is_trivially_copyable_v<Classification>);
static_assert(sizeof(Classification) <= 2 * sizeof(std::uint32_t));

TEST(ClassifierApi, FindingsFromMask) {
  const auto f = Findings(B(Detector::kEmail) | B(Detector::kCnMobile));
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].detector, Detector::kCnMobile);
  EXPECT_EQ(f[1].detector, Detector::kEmail);
  EXPECT_TRUE(Findings(0).empty());
}

// ---- mainland resident ID ----

TEST(ResidentId, ValidEighteenDigits) {
  const std::string id = Id18("11010119900307001");
  ExpectOnly(Detector::kCnResidentId, id);
  ExpectOnly(Detector::kCnResidentId, "my id is " + id + ", thanks");
  ExpectOnly(Detector::kCnResidentId, "身份证号：" + id + "。");
  ExpectOnly(Detector::kCnResidentId, "(" + id + ")");
  ExpectOnly(Detector::kCnResidentId, Id18("44030620001231999"));  // 2000-12-31
  ExpectOnly(Detector::kCnResidentId, Id18("51010719000101555"));  // 1900-01-01
}

TEST(ResidentId, CheckCharX) {
  // Find a synthetic serial whose check char is X, in upper and lower case.
  std::string with_x;
  for (int serial = 0; serial < 1000 && with_x.empty(); ++serial) {
    const std::string body = "11010119900307" + std::to_string(1000 + serial).substr(1);
    const std::string id = Id18(body);
    if (id.back() == 'X') with_x = id;
  }
  ASSERT_FALSE(with_x.empty());
  ExpectOnly(Detector::kCnResidentId, "ID " + with_x);
  std::string lower = with_x;
  lower.back() = 'x';
  ExpectOnly(Detector::kCnResidentId, "ID " + lower);
}

TEST(ResidentId, LegacyFifteenDigits) {
  ExpectOnly(Detector::kCnResidentId, "old id 110101900307123 issued");
  ExpectOnly(Detector::kCnResidentId, "320102851231001");
}

TEST(ResidentId, NearMissesDoNotFire) {
  ExpectNone(Id18Wrong("11010119900307001"));           // wrong checksum
  ExpectNone(Id18("11010119901307001"));                // month 13
  ExpectNone(Id18("11010119900332001"));                // day 32
  ExpectNone(Id18("11010119900300001"));                // day 00
  ExpectNone(Id18("11010118990307001"));                // year 1899
  ExpectNone(Id18("11010121000307001"));                // year 2100
  ExpectNone(Id18("01010119900307001"));                // region starts with 0
  ExpectNone(Id18("11010119900307001").substr(0, 17));  // 17 digits
  ExpectNone("9" + Id18("11010119900307001"));          // embedded in a longer run
  ExpectNone("ID" + Id18("11010119900307001"));         // glued to letters
  ExpectNone(Id18("11010119900307001") + "A");          // glued to a trailing letter
  ExpectNone("3." + Id18("11010119900307001"));         // fraction digits of a decimal
  ExpectNone("ORDER20240115123456789");                 // order number
  ExpectNone("110101901307123");                        // legacy, month 13
  ExpectNone("110101900332123");                        // legacy, day 32
  ExpectNone("010101900307123");                        // legacy, region 0
  ExpectNone("X110101900307123");                       // legacy, glued
}

// ---- mainland mobile ----

TEST(Mobile, ValidForms) {
  for (const char* text :
       {"13812345678", "call 13912345678 now", "手机：15012345678", "+86 13812345678",
        "+86-13812345678", "8613812345678", "+8613812345678", "86 13812345678", "0086 13812345678",
        "008613812345678", "0086-138-1234-5678", "138-1234-5678", "138 1234 5678",
        "+86 138 1234 5678", "tel:19912345678;", "(17712345678)"}) {
    ExpectOnly(Detector::kCnMobile, text);
  }
}

TEST(Mobile, NearMissesDoNotFire) {
  for (const char* text : {"12345678901",          // starts with 12
                           "12812345678",          // 1 + 2: not a mobile prefix
                           "11012345678",          // 1 + 1
                           "10086",                // short code
                           "call 10086 or 95588",  // short codes
                           "1381234567",           // 10 digits
                           "138123456789",         // 12 digits
                           "1700000000000",        // epoch milliseconds
                           "1700000000",           // epoch seconds
                           "20240115093045",       // timestamp
                           "2024-01-15 09:30:45",  // date time
                           "13812345678.5",        // decimal
                           "0.13812345678",        // decimal fraction
                           "tx13812345678",        // glued to letters
                           "13812345678abc",       // glued to letters
                           "138 1234 56789",       // wrong grouping
                           "138 1234 5678 9",      // longer grouped sequence
                           "1 138 1234 5678",      // longer grouped sequence
                           "138-1234 5678",        // mixed separators
                           "138  1234  5678",      // double spaces
                           "85 13812345678x",      // glued
                           "8712812345678"}) {     // 13 digits not 86-prefixed
    ExpectNone(text);
  }
}

// ---- bank card ----

TEST(BankCard, ValidForms) {
  const std::string c16 = Luhn("622202020000123");
  const std::string c19 = Luhn("622202020000123456");
  const std::string visa = Luhn("411111111111111");
  ExpectOnly(Detector::kBankCard, c16);
  ExpectOnly(Detector::kBankCard, "card " + c19 + " exp 12/29");
  ExpectOnly(Detector::kBankCard, visa);
  ExpectOnly(Detector::kBankCard, Luhn("520000000000000"));
  auto grouped = [](const std::string& digits, char sep) {
    std::string out;
    for (std::size_t k = 0; k < digits.size(); ++k) {
      if (k > 0 && k % 4 == 0) out += sep;
      out += digits[k];
    }
    return out;
  };
  ExpectOnly(Detector::kBankCard, grouped(c16, ' '));
  ExpectOnly(Detector::kBankCard, "卡号 " + grouped(c16, '-') + "。");
  ExpectOnly(Detector::kBankCard, grouped(c19, ' '));  // 6222 0202 0000 1234 56x
  ExpectOnly(Detector::kBankCard, grouped(Luhn("6222020200001234"), ' '));  // 17 digits
}

TEST(BankCard, NearMissesDoNotFire) {
  ExpectNone(LuhnWrong("622202020000123"));  // Luhn fails
  {
    const std::string bad = LuhnWrong("622202020000123");  // Luhn fails (grouped)
    ExpectNone(bad.substr(0, 4) + " " + bad.substr(4, 4) + " " + bad.substr(8, 4) + " " +
               bad.substr(12, 4));
  }
  ExpectNone(Luhn("62220202000012"));       // 15 digits
  ExpectNone(Luhn("6222020200001234567"));  // 20 digits
  ExpectNone("6666666666666666");           // all the same digit
  ExpectNone("6666 6666 6666 6666");
  ExpectNone(Luhn("940010000000000"));           // tracking-like, first digit 9
  ExpectNone(Luhn("100000000000001"));           // first digit 1
  ExpectNone("9400 1000 0000 0000 0000 00");     // USPS-style grouped tracking
  ExpectNone("1Z999AA1" + Luhn("012345678"));    // UPS-style, glued to letters
  ExpectNone("INV" + Luhn("622202020000123"));   // glued to letters
  ExpectNone("9" + Luhn("622202020000123456"));  // embedded in 20 digits
  ExpectNone("622 2020 2000 0123 4");            // wrong grouping
  const std::string c16 = Luhn("622202020000123");
  ExpectNone(c16.substr(0, 4) + " " + c16.substr(4, 4) + "-" + c16.substr(8, 4) + " " +
             c16.substr(12, 4));  // mixed separators
  // A 17-digit ms timestamp starting with 2: rejected only because it fails Luhn (about 1 in 10
  // such digit runs would pass; the 2-6 first-digit rule and the boundaries do not help here).
  ExpectNone("20240115093045123");
}

// ---- e-mail ----

TEST(Email, ValidForms) {
  for (const char* text : {"alice@example.com", "write to bob.smith+tag@mail.example.co.uk today",
                           "mail x_y%z@sub-domain.example.org.", "<carol@example.net>",
                           "联系：dave@example.cn。", "first-last@a1.example.io"}) {
    ExpectOnly(Detector::kEmail, text);
  }
}

TEST(Email, NearMissesDoNotFire) {
  for (const char* text :
       {"a@b", "user@localhost", "user@host.c", "user@host.123", "@example.com",
        "user.@example.com", ".user@example.com", "user@-example.com", "user@example-.com",
        "user@example..com", "follow @handle on x.com", "user@.com", "user@ example.com",
        "price 5 @ 3.50", "a@b.c1", "user@@example.com"}) {
    ExpectNone(text);
  }
}

// ---- passport ----

TEST(Passport, ValidForms) {
  ExpectOnly(Detector::kPassport, "E12345678");
  ExpectOnly(Detector::kPassport, "passport G87654321 issued");
  // E + letter + 7 digits, choosing a last digit that is not also a valid HKID check char.
  const char hk = HkCheck("EA", "123456");
  const std::string ea = std::string("EA123456") + (hk == '7' ? '8' : '7');
  ExpectOnly(Detector::kPassport, "护照号：" + ea + "。");
}

TEST(Passport, NearMissesDoNotFire) {
  for (const char* text :
       {"E123456789", "X12345678", "e12345678", "PE12345678", "E12345678X", "ABE12345678",
        "E1234567B", "G1234567", "EA12345678", "GA1234567", "E1234-5678", "E12345678a",
        "SKU-E12345678-01", "PO/G12345678", "E12345678_v2"}) {
    EXPECT_FALSE(Fires(Detector::kPassport, text)) << text;
  }
  ExpectNone("E123456789");
  ExpectNone("X12345678");
}

// ---- Hong Kong ID ----

TEST(HkId, ValidForms) {
  const char c1 = HkCheck("A", "123456");
  const char c2 = HkCheck("XY", "987654");
  ExpectOnly(Detector::kHkId, std::string("A123456(") + c1 + ")");
  ExpectOnly(Detector::kHkId, std::string("HKID: A123456") + c1 + ".");
  ExpectOnly(Detector::kHkId, std::string("XY987654(") + c2 + ")");
  ExpectOnly(Detector::kHkId, std::string("XY987654") + c2);
  // A check char of 'A'.
  std::string with_a;
  for (int n = 100000; n < 200000 && with_a.empty(); ++n) {
    if (HkCheck("K", std::to_string(n)) == 'A') with_a = "K" + std::to_string(n) + "(A)";
  }
  ASSERT_FALSE(with_a.empty());
  ExpectOnly(Detector::kHkId, "身份證 " + with_a);
}

TEST(HkId, NearMissesDoNotFire) {
  const char c1 = HkCheck("A", "123456");
  ExpectNone(std::string("A123456(") + OtherCheck(c1) + ")");  // wrong check
  ExpectNone(std::string("A123456") + OtherCheck(c1));         // wrong check, glued
  ExpectNone(std::string("a123456(") + c1 + ")");              // lower case
  ExpectNone(std::string("A12345(") + c1 + ")");               // 5 digits
  ExpectNone(std::string("ABC123456(") + c1 + ")");            // 3 letters
  ExpectNone(std::string("A123456(") + c1);                    // unclosed parenthesis
  ExpectNone(std::string("A123456") + c1 + "9");               // longer run
  ExpectNone(std::string("9A123456") + c1);                    // glued digits before
  ExpectNone(std::string("REF-A123456") + c1);                 // part of a compound code
  ExpectNone(std::string("A123456(") + c1 + ")-02");           // part of a compound code
  ExpectOnly(Detector::kHkId, std::string("id - A123456") + c1 + " - ok");  // spaced dash ok
}

// ---- classification ----

TEST(Classify, RaisesToTheFindingsClass) {
  const std::array<std::string_view, 1> texts = {"call me on 13812345678"};
  const Classification c = Classify(DataClass::kNone, texts);
  EXPECT_EQ(c.effective, DataClass::kPersonal);
  EXPECT_TRUE(c.raised);
  EXPECT_EQ(c.detectors_mask, B(Detector::kCnMobile));
}

TEST(Classify, NeverLowersTheDeclaredClass) {
  const std::array<std::string_view, 1> texts = {"call me on 13812345678"};
  const Classification c = Classify(DataClass::kImportant, texts);
  EXPECT_EQ(c.effective, DataClass::kImportant);
  EXPECT_FALSE(c.raised);
  EXPECT_EQ(c.detectors_mask, B(Detector::kCnMobile));
  const Classification core = Classify(DataClass::kCore, texts);
  EXPECT_EQ(core.effective, DataClass::kCore);
  EXPECT_FALSE(core.raised);
  const Classification same = Classify(DataClass::kPersonal, texts);
  EXPECT_EQ(same.effective, DataClass::kPersonal);
  EXPECT_FALSE(same.raised);
}

TEST(Classify, NoFindingsKeepsDeclared) {
  const std::array<std::string_view, 2> texts = {"Order 20240115093045 shipped at 1700000000000",
                                                 ""};
  const Classification c = Classify(DataClass::kPersonal, texts);
  EXPECT_EQ(c.effective, DataClass::kPersonal);
  EXPECT_FALSE(c.raised);
  EXPECT_EQ(c.detectors_mask, 0u);
  EXPECT_EQ(Classify(DataClass::kNone, std::span<const std::string_view>{}).effective,
            DataClass::kNone);
}

TEST(Classify, MultipleTextsAndDetectorsSetEveryBit) {
  const std::string id = Id18("11010119900307001");
  const std::string card = Luhn("622202020000123");
  const std::string hk = std::string("A123456(") + HkCheck("A", "123456") + ")";
  const std::string t1 = "id " + id + " and mail eve@example.com";
  const std::string t2 = "card " + card + ", phone 138-1234-5678";
  const std::string t3 = "passport E12345678 / " + hk;
  const std::array<std::string_view, 3> texts = {t1, t2, t3};
  const Classification c = Classify(DataClass::kPersonal, texts);
  EXPECT_EQ(c.detectors_mask, (1u << kDetectorCount) - 1u);
  EXPECT_EQ(c.effective, DataClass::kSensitivePersonal);
  EXPECT_TRUE(c.raised);
  EXPECT_EQ(Findings(c.detectors_mask).size(), kDetectorCount);
}

TEST(Classify, MessagesOverloadReadsText) {
  std::vector<core::Message> messages(2);
  messages[0].role = "system";
  messages[0].text = "You are helpful.";
  messages[1].role = "user";
  messages[1].text = "My email is frank@example.com";
  messages[1].name = "13812345678";  // only Message::text is scanned
  const Classification c = Classify(DataClass::kNone, messages);
  EXPECT_EQ(c.detectors_mask, B(Detector::kEmail));
  EXPECT_EQ(c.effective, DataClass::kPersonal);
  EXPECT_TRUE(c.raised);
}

TEST(Classify, SensitiveBeatsPersonal) {
  const std::string text = "mail g@example.com card " + Luhn("411111111111111");
  const std::array<std::string_view, 1> texts = {text};
  EXPECT_EQ(Classify(DataClass::kNone, texts).effective, DataClass::kSensitivePersonal);
}

// ---- robustness: boundaries, pathological input, arbitrary bytes ----

TEST(Robustness, TokensAtTextEdgesAndPathologicalInput) {
  ExpectNone("");
  ExpectNone("@");
  ExpectNone("1");
  ExpectNone("A(");
  ExpectNone("A123456(");
  std::string at_storm(200000, '@');
  for (std::size_t k = 0; k < at_storm.size(); k += 2) at_storm[k] = 'a';
  ExpectNone(at_storm);
  ExpectNone(std::string(500000, '7'));
  std::string groups;
  for (int k = 0; k < 50000; ++k) groups += "1234 ";
  ExpectNone(groups);
  std::string dots(100000, '.');
  ExpectNone("a@" + dots);
}

TEST(Robustness, ArbitraryBytesDoNotCrash) {
  std::mt19937 rng(12345);
  const std::string alphabet = "0123456789 -.@()+AEGXxKab\xe4\xb8\xad";
  for (int round = 0; round < 2000; ++round) {
    std::string text(static_cast<std::size_t>(rng() % 64), ' ');
    for (char& ch : text) ch = alphabet[rng() % alphabet.size()];
    (void)Scan(text);
  }
}

}  // namespace
}  // namespace meridian::classifier
