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

#include "tests/text_forms.h"
#include "tests/unit/passthrough_members.h"

namespace meridian::classifier {
namespace {

using meridian::testing::FullWidth;

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
  ExpectNone("62 2202 0200 0012 34");            // a group of 2 before the last
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

// ---- evasion: folding, separators, glued letters, obfuscated e-mail (issue 12) ----

const std::string kZwsp = "\xE2\x80\x8B";  // U+200B ZERO WIDTH SPACE

TEST(Evasion, FullWidthDigitsAndLetters) {
  const std::string id = Id18("11010519491231002");
  ExpectOnly(Detector::kCnResidentId, FullWidth(id));
  ExpectOnly(Detector::kCnResidentId, "身份证：" + FullWidth(id) + "。");
  const std::string card = Luhn("622202020000123");
  ExpectOnly(Detector::kBankCard, "卡号" + FullWidth(card));
  ExpectOnly(Detector::kEmail, FullWidth("alice@example.com"));
  ExpectOnly(Detector::kCnMobile, FullWidth("13812345678"));
  ExpectOnly(Detector::kPassport, FullWidth("E12345678"));
}

TEST(Evasion, ZeroWidthAndFormatCharacters) {
  const std::string id = Id18("11010519491231002");
  ExpectOnly(Detector::kCnResidentId, id.substr(0, 6) + kZwsp + id.substr(6));
  ExpectOnly(Detector::kCnResidentId, id.substr(0, 9) + "\xC2\xAD" + id.substr(9));  // soft hyphen
  ExpectOnly(Detector::kCnResidentId, id.substr(0, 3) + "\xEF\xBB\xBF" + id.substr(3));  // BOM
  ExpectOnly(Detector::kCnResidentId, id.substr(0, 3) + "\xE2\x81\xA0" + id.substr(3));  // WJ
  const std::string card = Luhn("622202020000123");
  std::string spread;
  for (char c : card) spread += std::string(1, c) + kZwsp;
  ExpectOnly(Detector::kBankCard, spread);
  ExpectOnly(Detector::kEmail, "alice" + kZwsp + "@example.com");
}

TEST(Evasion, UnicodeDashesAndSpacesAsSeparators) {
  const std::string id = Id18("11010519491231002");
  const std::string emdash = "\xE2\x80\x94", ideo = "\xE3\x80\x80";
  ExpectOnly(Detector::kCnResidentId,
             id.substr(0, 6) + emdash + id.substr(6, 8) + emdash + id.substr(14));
  ExpectOnly(Detector::kCnResidentId,
             id.substr(0, 6) + ideo + id.substr(6, 8) + ideo + id.substr(14));
  ExpectOnly(Detector::kCnMobile, "138" + FullWidth("-") + "1234" + FullWidth("-") + "5678");
}

TEST(Evasion, AnyGroupingForChecksumDetectors) {
  const std::string id = Id18("11010519491231002");
  for (char sep : {' ', '-', '.'}) {
    const std::string s(1, sep);
    ExpectOnly(Detector::kCnResidentId, id.substr(0, 6) + s + id.substr(6, 8) + s + id.substr(14));
    ExpectOnly(Detector::kCnResidentId,
               id.substr(0, 6) + s + id.substr(6, 4) + s + id.substr(10, 4) + s + id.substr(14));
    ExpectOnly(Detector::kCnResidentId,
               "id: " + id.substr(0, 3) + s + id.substr(3, 3) + s + id.substr(6, 12) + ".");
  }
  // The check char X closes the last group.
  std::string with_x;
  for (int serial = 0; serial < 1000 && with_x.empty(); ++serial) {
    const std::string candidate = Id18("11010519491231" + std::to_string(1000 + serial).substr(1));
    if (candidate.back() == 'X') with_x = candidate;
  }
  ASSERT_FALSE(with_x.empty());
  ExpectOnly(Detector::kCnResidentId,
             with_x.substr(0, 6) + " " + with_x.substr(6, 8) + " " + with_x.substr(14));
  const std::string card = Luhn("622202020000123");
  ExpectOnly(Detector::kBankCard, card.substr(0, 6) + " " + card.substr(6));           // 6-10
  ExpectOnly(Detector::kBankCard, card.substr(0, 4) + "." + card.substr(4, 6) + "." +  // 4-6-6
                                      card.substr(10));
  ExpectOnly(Detector::kBankCard, card.substr(0, 3) + " " + card.substr(3, 4) + " " +  // 3-4-4-4-1
                                      card.substr(7, 4) + " " + card.substr(11, 4) + " " +
                                      card.substr(15));
  ExpectOnly(Detector::kCnMobile, "138.1234.5678");
}

TEST(Evasion, GroupingNearMisses) {
  const std::string id = Id18Wrong("11010519491231002");
  ExpectNone(id.substr(0, 6) + " " + id.substr(6, 8) + " " + id.substr(14));  // bad checksum
  const std::string good = Id18("11010519491231002");
  ExpectNone(good.substr(0, 6) + " " + good.substr(6, 8) + "-" + good.substr(14));  // mixed
  ExpectNone("9 " + good.substr(0, 6) + " " + good.substr(6, 8) + " " + good.substr(14));
  ExpectNone("192.168.100.200");
  ExpectNone("version 1.2.3.4567.89012.345678");
  ExpectNone("3.14159 26535 89793 23846");  // digits of pi
  ExpectNone("2024.01.15 12.30.45");
  ExpectNone("1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6");  // single-digit groups
}

TEST(Evasion, ResidentIdGluedToLetters) {
  const std::string id = Id18("11010519491231002");
  ExpectOnly(Detector::kCnResidentId, "ID" + id);
  ExpectOnly(Detector::kCnResidentId, id + "A");
  ExpectOnly(Detector::kCnResidentId, "idno" + id + "end");
  std::string with_x;
  for (int serial = 0; serial < 1000 && with_x.empty(); ++serial) {
    const std::string candidate = Id18("11010519491231" + std::to_string(1000 + serial).substr(1));
    if (candidate.back() == 'X') with_x = candidate;
  }
  ExpectOnly(Detector::kCnResidentId, "ID" + with_x + "abc");
  // Near misses: a wrong checksum, an ID inside a longer digit run, order codes.
  ExpectNone("ID" + Id18Wrong("11010519491231002"));
  ExpectNone("ID9" + id);
  ExpectNone("ORDER20240115123456789");
  ExpectNone("INV" + Luhn("622202020000123"));  // bank cards glued to letters still do not fire
  ExpectNone("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

TEST(Evasion, ObfuscatedEmail) {
  for (const char* text :
       {"alice(at)example.com", "alice (at) example.com", "alice[at]example[dot]com",
        "alice [at] example [dot] com", "ALICE(AT)EXAMPLE(DOT)COM", "alice{at}mail.example.org",
        "alice<at>example.com", "alice at example dot com", "write bob.smith at mail dot co dot uk",
        "alice(at)example(dot)com。"}) {
    ExpectOnly(Detector::kEmail, text);
  }
  ExpectOnly(Detector::kEmail, FullWidth("alice(at)example.com"));
}

TEST(Evasion, ObfuscatedEmailNearMisses) {
  for (const char* text :
       {"look at example.com", "meet at noon", "we are at home dot", "(at) example.com",
        "alice(at)localhost", "alice(at)example.c", "alice(at)example.123", "alice(at)",
        "alice (at)  example.com", "at at at at", "the cat at the mat dot", "alice(at)-x.com",
        "alice(at(example.com", "price (at) 3.50", "alice at example dot 42"}) {
    ExpectNone(text);
  }
}

TEST(Evasion, FoldIsIdentityOnPlainText) {
  std::string out;
  EXPECT_FALSE(Fold("plain ASCII 123", out));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(Fold("中文文本没有全角数字", out));
  EXPECT_TRUE(Fold(FullWidth("A1") + "中" + kZwsp + "x", out));
  EXPECT_EQ(out, "A1中x");
  EXPECT_FALSE(Fold("\xEF\xBC", out));  // truncated sequence: left alone
}

// ---- ScanRequest: every field that leaves (issue 12) ----

core::CompletionRequest Minimal() {
  core::CompletionRequest r;
  r.model = "m";
  r.messages.resize(1);
  r.messages[0].role = "user";
  r.messages[0].text = "hello";
  return r;
}

TEST(ScanRequest, EveryOutboundFieldIsScanned) {
  const std::string id = Id18("11010519491231002");
  const std::string q = "\"" + id + "\"";
  using Setter = void (*)(core::CompletionRequest&, const std::string&, const std::string&);
  const std::vector<std::pair<const char*, Setter>> fields = {
      {"text", [](auto& r, auto& v, auto&) { r.messages[0].text = "x " + v; }},
      {"name", [](auto& r, auto& v, auto&) { r.messages[0].name = v; }},
      {"tool_call_id", [](auto& r, auto& v, auto&) { r.messages[0].tool_call_id = v; }},
      {"tool_calls arguments",
       [](auto& r, auto& v, auto&) {
         r.messages[0].tool_calls_json =
             R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"id\":\")" + v +
             R"(\"}"}}])";
       }},
      {"tool_calls arguments, \\u-escaped",
       [](auto& r, auto& v, auto&) {
         std::string esc;
         for (char c : v) {
           esc += (c >= '0' && c <= '9') ? std::string("\\\\u003") + c : std::string(1, c);
         }
         r.messages[0].tool_calls_json =
             R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"id\":\")" +
             esc + R"(\"}"}}])";
       }},
      {"image url",
       [](auto& r, auto& v, auto&) {
         r.messages[0].content_parts_json =
             R"([{"type":"image_url","image_url":{"url":"https://x.example/a?id=)" + v + R"("}}])";
       }},
      {"content part, other member",
       [](auto& r, auto& v, auto&) {
         r.messages[0].content_parts_json =
             R"([{"type":"file","file":{"filename":")" + v + R"(.pdf"}}])";
       }},
      {"tools description",
       [](auto& r, auto& v, auto&) {
         r.tools_json =
             R"([{"type":"function","function":{"name":"f","description":"for )" + v + R"("}}])";
       }},
      {"tools parameters enum",
       [](auto& r, auto&, auto& quoted) {
         r.tools_json =
             R"([{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"enum":[)" +
             quoted + "]}}}}}]";
       }},
      {"tools parameters key",
       [](auto& r, auto&, auto& quoted) {
         r.tools_json =
             R"([{"type":"function","function":{"name":"f","parameters":{"properties":{)" + quoted +
             ":{}}}}}]";
       }},
      {"tool_choice",
       [](auto& r, auto& v, auto&) {
         r.tool_choice_json = R"({"type":"function","function":{"name":"f)" + v + R"("}})";
       }},
      {"user", [](auto& r, auto& v, auto&) { r.user = v; }},
      {"stop",
       [](auto& r, auto& v, auto&) {
         r.stop = {"a", v};
       }},
      {"response_format schema",
       [](auto& r, auto&, auto& quoted) {
         r.passthrough = meridian::testing::Members(
             R"("response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"const":)" +
             quoted + "}}}");
       }},
      {"metadata",
       [](auto& r, auto&, auto& quoted) {
         r.passthrough = meridian::testing::Members(R"("metadata":{"k":)" + quoted + "}");
       }},
      {"integer member",
       [](auto& r, auto& v, auto&) {
         r.passthrough = meridian::testing::Members(R"("x_ext":)" + v.substr(0, 17) + "");
       }},
  };
  for (const auto& [what, set] : fields) {
    core::CompletionRequest r = Minimal();
    set(r, id, q);
    const RequestScan scan = ScanRequest(r);
    if (std::string_view(what) == "integer member") {
      // 17 digits of an 18-digit ID are no ID; an integer bank card is.
      EXPECT_EQ(scan.detectors_mask, 0u) << what;
      core::CompletionRequest card = Minimal();
      card.passthrough = meridian::testing::Members(R"("x_ext":)" + Luhn("622202020000123"));
      EXPECT_EQ(ScanRequest(card).detectors_mask, B(Detector::kBankCard)) << what;
      continue;
    }
    EXPECT_EQ(scan.detectors_mask, B(Detector::kCnResidentId)) << what;
    EXPECT_EQ(Classify(DataClass::kNone, scan).effective, DataClass::kSensitivePersonal) << what;
  }
}

TEST(ScanRequest, TextSplitAcrossAdjacentPartsIsFound) {
  const std::string id = Id18("11010519491231002");
  core::CompletionRequest r = Minimal();
  r.messages[0].text = id.substr(0, 9) + "\n" + id.substr(9);  // what the decoder makes
  r.messages[0].content_parts_json = R"([{"type":"text","text":")" + id.substr(0, 9) +
                                     R"("},{"type":"text","text":")" + id.substr(9) + R"("}])";
  EXPECT_EQ(Scan(r.messages[0].text), 0u);
  EXPECT_EQ(ScanRequest(r).detectors_mask, B(Detector::kCnResidentId));
}

TEST(ScanRequest, PartKindsAndMediaPayloads) {
  core::CompletionRequest r = Minimal();
  // Media parts are reported by kind; a data: URL is scanned like any other string.
  r.messages[0].content_parts_json =
      R"([{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,)" +
      Id18("11010519491231002") +
      R"("}},{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}])";
  const RequestScan scan = ScanRequest(r);
  EXPECT_EQ(scan.detectors_mask, B(Detector::kCnResidentId));
  EXPECT_EQ(scan.part_kinds, policy::Bit(PartKind::kText) | policy::Bit(PartKind::kImage) |
                                 policy::Bit(PartKind::kAudio));
  // A text data URL is scanned.
  r.messages[0].content_parts_json = R"([{"type":"file","file":{"file_data":"data:text/plain,)" +
                                     Id18("11010519491231002") + R"("}}])";
  EXPECT_EQ(ScanRequest(r).detectors_mask, B(Detector::kCnResidentId));
}

TEST(ScanRequest, CleanRequestsStayClean) {
  core::CompletionRequest r = Minimal();
  r.messages[0].text = "Summarise order 20240115093045 for 2 items at 3.50";
  r.messages[0].tool_calls_json =
      R"([{"id":"call_abc123","type":"function","function":{"name":"lookup","arguments":"{\"order\":20240115093045,\"qty\":2}"}}])";
  r.tools_json =
      R"([{"type":"function","function":{"name":"lookup","description":"Look up an order","parameters":{"type":"object","properties":{"order":{"type":"integer"}}}}}])";
  r.user = "user-8c1f2a";
  r.stop = {"\n\n"};
  r.passthrough = meridian::testing::Members(R"("seed":7,"metadata":{"session":"s-2024-01-15"})");
  EXPECT_EQ(ScanRequest(r).detectors_mask, 0u);
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
