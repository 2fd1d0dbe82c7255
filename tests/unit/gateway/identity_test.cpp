#include "gateway/identity.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/gateway_config.h"

namespace meridian::identity {
namespace {

using policy::RegionCode;
using policy::RegionSource;

RegionCode Code(std::string_view code) {
  return *RegionCode::Parse(code);
}

IpAddress Ip(std::string_view text) {
  const auto ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.has_value()) << text;
  return ip.value_or(IpAddress{});
}

Cidr MustCidr(std::string_view text) {
  std::string why;
  const auto c = Cidr::Parse(text, &why);
  EXPECT_TRUE(c.has_value()) << text << ": " << why;
  return *c;
}

std::string CidrError(std::string_view text) {
  std::string why;
  EXPECT_FALSE(Cidr::Parse(text, &why).has_value()) << text;
  return why;
}

// --- Digests ---

TEST(DigestTest, Sha256KnownVectors) {
  EXPECT_EQ(ToHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(DigestTest, ParseHex) {
  const auto lower =
      ParseSha256Hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ASSERT_TRUE(lower.has_value());
  EXPECT_EQ(*lower, Sha256("abc"));
  EXPECT_EQ(ParseSha256Hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
            lower);
  EXPECT_FALSE(ParseSha256Hex("ba7816bf").has_value());
  EXPECT_FALSE(ParseSha256Hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ag"));
  EXPECT_FALSE(ParseSha256Hex("").has_value());
}

// --- Tenants and API keys ---

config::TenantConfig TenantWithKeys(std::string id, std::vector<std::string_view> keys) {
  config::TenantConfig t;
  t.id.value = std::move(id);
  for (const std::string_view key : keys) {
    t.api_key_sha256.push_back({ToHex(Sha256(key)), {}});
  }
  return t;
}

class TenantRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::TenantConfig demo = TenantWithKeys("demo", {"demo-key", "demo-key-rotated"});
    demo.regions = {Code("CN"), Code("HK")};
    demo.default_region = Code("CN");
    demo.default_data_class = policy::DataClass::kSensitivePersonal;
    demo.tenant_flags = {{"public_facing_cn", {}}, {"beta", {}}};
    demo.mechanisms = policy::Bit(policy::Mechanism::kCnSccFiled);
    demo.consent = policy::Bit(policy::Consent::kSensitiveSeparate);
    // A malformed digest (cannot pass config validation) never authenticates.
    demo.api_key_sha256.push_back({"not-hex", {}});
    registry_ = TenantRegistry({demo, TenantWithKeys("other", {"other-key"})});
  }

  const Tenant* Auth(std::string_view header) const { return registry_.Authenticate(header); }

  TenantRegistry registry_;
};

TEST_F(TenantRegistryTest, ValidKeyFindsItsTenant) {
  const Tenant* t = Auth("Bearer demo-key");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->id, "demo");
  EXPECT_TRUE(t->regions.test(Code("CN").index()));
  EXPECT_TRUE(t->regions.test(Code("HK").index()));
  EXPECT_EQ(t->regions.count(), 2u);
  EXPECT_EQ(t->default_region, Code("CN"));
  EXPECT_EQ(t->default_data_class, policy::DataClass::kSensitivePersonal);
  EXPECT_EQ(t->flags, (std::vector<std::string>{"public_facing_cn", "beta"}));
  EXPECT_EQ(t->mechanisms, policy::Bit(policy::Mechanism::kCnSccFiled));
  EXPECT_EQ(t->consent, policy::Bit(policy::Consent::kSensitiveSeparate));

  EXPECT_EQ(Auth("Bearer demo-key-rotated"), t);  // every listed key works
  ASSERT_NE(Auth("Bearer other-key"), nullptr);
  EXPECT_EQ(Auth("Bearer other-key")->id, "other");
}

TEST_F(TenantRegistryTest, SchemeIsCaseInsensitive) {
  EXPECT_NE(Auth("bearer demo-key"), nullptr);
  EXPECT_NE(Auth("BEARER demo-key"), nullptr);
  EXPECT_NE(Auth("bEaReR demo-key"), nullptr);
}

TEST_F(TenantRegistryTest, RejectsWrongMissingAndMalformed) {
  EXPECT_EQ(Auth("Bearer wrong-key"), nullptr);
  EXPECT_EQ(Auth("Bearer DEMO-KEY"), nullptr);  // keys are case-sensitive
  EXPECT_EQ(Auth(""), nullptr);
  EXPECT_EQ(Auth("Basic ZGVtbzpkZW1vLWtleQ=="), nullptr);
  EXPECT_EQ(Auth("Basic demo-key"), nullptr);
  EXPECT_EQ(Auth("Bearer"), nullptr);
  EXPECT_EQ(Auth("Bearer "), nullptr);
  EXPECT_EQ(Auth("Bearer  demo-key"), nullptr);  // exactly one space
  EXPECT_EQ(Auth("Bearer\tdemo-key"), nullptr);
  EXPECT_EQ(Auth("Bearer demo-key "), nullptr);
  EXPECT_EQ(Auth("Bearerdemo-key"), nullptr);
  EXPECT_EQ(Auth("demo-key"), nullptr);
  EXPECT_EQ(Auth("Token demo-key"), nullptr);
  EXPECT_EQ(Auth("Bearer not-hex"), nullptr);
}

TEST_F(TenantRegistryTest, RawKeyVariant) {
  ASSERT_NE(registry_.AuthenticateKey("demo-key"), nullptr);
  EXPECT_EQ(registry_.AuthenticateKey("demo-key")->id, "demo");
  EXPECT_EQ(registry_.AuthenticateKey("Bearer demo-key"), nullptr);
  EXPECT_EQ(registry_.AuthenticateKey(""), nullptr);
  EXPECT_EQ(registry_.AuthenticateKey("nope"), nullptr);
}

TEST_F(TenantRegistryTest, FindById) {
  ASSERT_NE(registry_.Find("other"), nullptr);
  EXPECT_EQ(registry_.Find("other")->id, "other");
  EXPECT_EQ(registry_.Find("nobody"), nullptr);
  EXPECT_EQ(registry_.tenants().size(), 2u);
}

TEST(TenantRegistryEmptyTest, AuthenticatesNobody) {
  const TenantRegistry empty;
  EXPECT_EQ(empty.Authenticate("Bearer x"), nullptr);
  EXPECT_EQ(empty.AuthenticateKey("x"), nullptr);
}

// --- Addresses ---

TEST(IpAddressTest, ParsesBothFamilies) {
  EXPECT_TRUE(Ip("10.1.2.3").IsV4());
  EXPECT_EQ(Ip("10.1.2.3").ToString(), "10.1.2.3");
  EXPECT_FALSE(Ip("::1").IsV4());
  EXPECT_EQ(Ip("::1").ToString(), "::1");
  EXPECT_EQ(Ip("2001:DB8::1").ToString(), "2001:db8::1");
  // IPv4-mapped IPv6 is the same address as the IPv4 one.
  EXPECT_EQ(Ip("::ffff:10.1.2.3"), Ip("10.1.2.3"));
  EXPECT_TRUE(Ip("::ffff:10.1.2.3").IsV4());
  EXPECT_EQ(Ip("::ffff:10.1.2.3").ToString(), "10.1.2.3");
}

TEST(IpAddressTest, RejectsInvalidText) {
  for (const std::string_view bad :
       {"", "1.2.3", "1.2.3.256", "::g", "[::1]", "fe80::1%eth0", "10.0.0.1:80", "localhost",
        " 10.0.0.1", "1.2.3.4.5", "0123456789abcdef0123456789abcdef0123456789abcdef"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).has_value()) << bad;
  }
}

TEST(IpAddressTest, FromBytes) {
  const std::array<std::uint8_t, 4> v4 = {192, 0, 2, 7};
  ASSERT_TRUE(IpAddress::FromBytes(v4).has_value());
  EXPECT_EQ(*IpAddress::FromBytes(v4), Ip("192.0.2.7"));
  std::array<std::uint8_t, 16> v6{};
  v6[15] = 1;
  EXPECT_EQ(*IpAddress::FromBytes(v6), Ip("::1"));
  const std::array<std::uint8_t, 5> odd{};
  EXPECT_FALSE(IpAddress::FromBytes(odd).has_value());
}

TEST(CidrTest, Ipv4) {
  const Cidr c = MustCidr("10.0.0.0/8");
  EXPECT_TRUE(c.Contains(Ip("10.0.0.0")));
  EXPECT_TRUE(c.Contains(Ip("10.255.255.255")));
  EXPECT_FALSE(c.Contains(Ip("11.0.0.0")));
  EXPECT_FALSE(c.Contains(Ip("9.255.255.255")));
  EXPECT_FALSE(c.Contains(Ip("::a00:1")));  // IPv4-compatible, not mapped: another address
  EXPECT_EQ(c.ToString(), "10.0.0.0/8");
  EXPECT_EQ(c.PrefixLength(), 8u);

  const Cidr odd = MustCidr("172.16.0.0/12");  // prefix not on a byte boundary
  EXPECT_TRUE(odd.Contains(Ip("172.31.255.255")));
  EXPECT_FALSE(odd.Contains(Ip("172.32.0.0")));
  EXPECT_FALSE(odd.Contains(Ip("172.15.255.255")));
}

TEST(CidrTest, Ipv6) {
  const Cidr loopback = MustCidr("::1/128");
  EXPECT_TRUE(loopback.Contains(Ip("::1")));
  EXPECT_FALSE(loopback.Contains(Ip("::2")));
  EXPECT_FALSE(loopback.Contains(Ip("127.0.0.1")));
  const Cidr doc = MustCidr("2001:db8::/32");
  EXPECT_TRUE(doc.Contains(Ip("2001:db8:ffff::1")));
  EXPECT_FALSE(doc.Contains(Ip("2001:db9::1")));
  EXPECT_FALSE(doc.Contains(Ip("10.0.0.1")));
  EXPECT_EQ(doc.ToString(), "2001:db8::/32");
  EXPECT_EQ(doc.PrefixLength(), 32u);
}

TEST(CidrTest, MappedPeersMatchIpv4Prefixes) {
  const Cidr c = MustCidr("10.0.0.0/8");
  EXPECT_TRUE(c.Contains(Ip("::ffff:10.1.2.3")));
  EXPECT_FALSE(c.Contains(Ip("::ffff:11.1.2.3")));
  // And a mapped prefix written in IPv6 covers plain IPv4 peers.
  const Cidr mapped = MustCidr("::ffff:0:0/96");
  EXPECT_TRUE(mapped.Contains(Ip("192.0.2.1")));
  EXPECT_FALSE(mapped.Contains(Ip("::1")));
  EXPECT_EQ(mapped.PrefixLength(), 96u);
  EXPECT_EQ(mapped.ToString(), "::ffff:0.0.0.0/96");
}

TEST(CidrTest, BareAddressIsOneHost) {
  const Cidr v4 = MustCidr("127.0.0.1");
  EXPECT_EQ(v4.PrefixLength(), 32u);
  EXPECT_TRUE(v4.Contains(Ip("127.0.0.1")));
  EXPECT_FALSE(v4.Contains(Ip("127.0.0.2")));
  const Cidr v6 = MustCidr("fd00::5");
  EXPECT_EQ(v6.ToString(), "fd00::5/128");
  EXPECT_TRUE(v6.Contains(Ip("fd00::5")));
  EXPECT_FALSE(v6.Contains(Ip("fd00::6")));
}

TEST(CidrTest, Invalid) {
  EXPECT_EQ(CidrError("10.0.0.0/33"), "the prefix length must be a number from 0 to 32");
  EXPECT_EQ(CidrError("::/129"), "the prefix length must be a number from 0 to 128");
  EXPECT_EQ(CidrError("10.0.0.0/"), "the prefix length must be a number from 0 to 32");
  EXPECT_EQ(CidrError("10.0.0.0/x"), "the prefix length must be a number from 0 to 32");
  EXPECT_EQ(CidrError("10.0.0.0/-1"), "the prefix length must be a number from 0 to 32");
  EXPECT_EQ(CidrError("10.0.0.0/8/8"), "the prefix length must be a number from 0 to 32");
  EXPECT_EQ(CidrError("ten/8"), "'ten' is not an IP address");
  EXPECT_EQ(CidrError(""), "'' is not an IP address");
  EXPECT_EQ(CidrError("10.0.0.1/8"),
            "'10.0.0.1/8' has address bits set beyond the /8 prefix: write the network address, "
            "or the host address alone");
  EXPECT_EQ(CidrError("fd00::1/64"),
            "'fd00::1/64' has address bits set beyond the /64 prefix: write the network "
            "address, or the host address alone");
  EXPECT_FALSE(Cidr::Parse("1.2.3.4/40").has_value());  // without a reason wanted
}

TEST(CidrTest, ZeroPrefixParsesButIsNotAcceptedAsTrustedProxies) {
  EXPECT_TRUE(MustCidr("0.0.0.0/0").Contains(Ip("203.0.113.9")));
  config::GatewayConfig config;
  config.trusted_proxies.cidrs = {
      {"10.0.0.0/8", {2, 11}}, {"0.0.0.0/0", {2, 23}}, {"10.0.0.1/8", {3, 5}}, {"::1", {4, 5}}};
  std::vector<config::FileDiagnostic> errors;
  const std::vector<Cidr> trusted = ParseTrustedProxies(config, "gw.yaml", errors);
  ASSERT_EQ(trusted.size(), 2u);
  EXPECT_EQ(trusted[0].ToString(), "10.0.0.0/8");
  EXPECT_EQ(trusted[1].ToString(), "::1/128");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(config::FormatDiagnostic(errors[0]),
            "gw.yaml:2:23: trusted_proxies: '0.0.0.0/0' would let every client assert its own "
            "region: list the proxies' addresses");
  EXPECT_EQ(config::FormatDiagnostic(errors[1]),
            "gw.yaml:3:5: trusted_proxies: '10.0.0.1/8' has address bits set beyond the /8 "
            "prefix: write the network address, or the host address alone");
}

// --- Region ---

class EstablishRegionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tenant_.id = "demo";
    tenant_.regions.set(Code("CN").index());
    tenant_.regions.set(Code("HK").index());
    tenant_.default_region = Code("CN");
    unbound_ = tenant_;
    unbound_.default_region.reset();
    trusted_ = {MustCidr("10.0.0.0/8"), MustCidr("::1/128")};
  }

  RegionDecision Establish(const Tenant& t, std::string_view peer,
                           std::optional<std::string_view> header) const {
    return EstablishRegion(t, Ip(peer), header, trusted_);
  }

  Tenant tenant_;
  Tenant unbound_;
  std::vector<Cidr> trusted_;
};

TEST_F(EstablishRegionTest, TrustedProxyAssertsAnAllowedRegion) {
  const RegionDecision d = Establish(tenant_, "10.1.2.3", "HK");
  EXPECT_EQ(d.region, Code("HK"));
  EXPECT_EQ(d.source, RegionSource::kTrustedProxy);
  EXPECT_FALSE(d.header_ignored_untrusted);
  EXPECT_FALSE(d.header_rejected_not_allowed);
  EXPECT_EQ(d.note, "region HK from trusted proxy 10.1.2.3");

  // Whitespace and case are tolerated; an IPv6 proxy and a mapped IPv4 peer are trusted.
  EXPECT_EQ(Establish(tenant_, "::1", " hk ").region, Code("HK"));
  EXPECT_EQ(Establish(unbound_, "::ffff:10.9.9.9", "CN").source, RegionSource::kTrustedProxy);
}

TEST_F(EstablishRegionTest, SpoofedHeaderFromUntrustedPeerIsIgnored) {
  const RegionDecision d = Establish(tenant_, "203.0.113.9", "HK");
  EXPECT_EQ(d.region, Code("CN"));
  EXPECT_EQ(d.source, RegionSource::kTenantBinding);
  EXPECT_TRUE(d.header_ignored_untrusted);
  EXPECT_FALSE(d.header_rejected_not_allowed);
  EXPECT_EQ(d.note,
            "region header from untrusted peer 203.0.113.9 ignored; region CN from tenant 'demo' "
            "binding");

  const RegionDecision unknown = Establish(unbound_, "::2", "HK");
  EXPECT_FALSE(unknown.region.has_value());
  EXPECT_EQ(unknown.source, RegionSource::kUnknown);
  EXPECT_TRUE(unknown.header_ignored_untrusted);
  EXPECT_EQ(unknown.note, "region header from untrusted peer ::2 ignored; region unknown");
}

TEST_F(EstablishRegionTest, TrustedProxyAssertingAnotherRegionIsRejected) {
  const RegionDecision d = Establish(tenant_, "10.0.0.1", "US");
  EXPECT_EQ(d.region, Code("CN"));
  EXPECT_EQ(d.source, RegionSource::kTenantBinding);
  EXPECT_FALSE(d.header_ignored_untrusted);
  EXPECT_TRUE(d.header_rejected_not_allowed);
  EXPECT_EQ(d.note,
            "region header 'US' from trusted proxy 10.0.0.1 is not one of tenant 'demo' regions; "
            "region CN from tenant 'demo' binding");
}

TEST_F(EstablishRegionTest, TrustedProxySendingAnInvalidValueIsRejected) {
  for (const std::string_view bad : {"ZZ", "China", "", "C N"}) {
    const RegionDecision d = Establish(unbound_, "10.0.0.1", bad);
    EXPECT_FALSE(d.region.has_value()) << bad;
    EXPECT_EQ(d.source, RegionSource::kUnknown) << bad;
    EXPECT_TRUE(d.header_rejected_not_allowed) << bad;
  }
  EXPECT_EQ(Establish(unbound_, "10.0.0.1", "ZZ").note,
            "region header 'ZZ' from trusted proxy 10.0.0.1 is not a region code; region unknown");
}

TEST_F(EstablishRegionTest, NoHeader) {
  const RegionDecision bound = Establish(tenant_, "10.0.0.1", std::nullopt);
  EXPECT_EQ(bound.region, Code("CN"));
  EXPECT_EQ(bound.source, RegionSource::kTenantBinding);
  EXPECT_FALSE(bound.header_ignored_untrusted);
  EXPECT_FALSE(bound.header_rejected_not_allowed);
  EXPECT_EQ(bound.note, "region CN from tenant 'demo' binding");

  const RegionDecision unknown = Establish(unbound_, "203.0.113.9", std::nullopt);
  EXPECT_FALSE(unknown.region.has_value());
  EXPECT_EQ(unknown.source, RegionSource::kUnknown);
  EXPECT_FALSE(unknown.header_ignored_untrusted);
  EXPECT_EQ(unknown.note, "region unknown");
}

TEST_F(EstablishRegionTest, NoTrustedProxiesConfigured) {
  const RegionDecision d = EstablishRegion(tenant_, Ip("10.0.0.1"), "HK", {});
  EXPECT_EQ(d.source, RegionSource::kTenantBinding);
  EXPECT_TRUE(d.header_ignored_untrusted);
}

// --- Per-request headers ---

TEST(DataClassHeaderTest, ValidNames) {
  std::optional<policy::DataClass> out;
  EXPECT_TRUE(ParseDataClassHeader("sensitive_personal", out).ok());
  EXPECT_EQ(out, policy::DataClass::kSensitivePersonal);
  EXPECT_TRUE(ParseDataClassHeader(" Personal ", out).ok());
  EXPECT_EQ(out, policy::DataClass::kPersonal);
  EXPECT_TRUE(ParseDataClassHeader("none", out).ok());
  EXPECT_EQ(out, policy::DataClass::kNone);
}

TEST(DataClassHeaderTest, InvalidIsA400NamingTheHeader) {
  std::optional<policy::DataClass> out = policy::DataClass::kCore;
  for (const std::string_view bad : {"secret", "", "personal,core", ">= personal"}) {
    const core::Status s = ParseDataClassHeader(bad, out);
    EXPECT_EQ(s.code, core::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.param, "x-meridian-data-class");
    EXPECT_EQ(s.reason, "invalid_header");
  }
  EXPECT_EQ(out, policy::DataClass::kCore);  // unchanged
  EXPECT_EQ(ParseDataClassHeader("secret", out).message,
            "x-meridian-data-class: 'secret' is not a data class (expected one of: none, "
            "personal, sensitive_personal, important, core)");
  // A long value is not reflected whole.
  const core::Status long_value = ParseDataClassHeader(std::string(1000, 'x'), out);
  EXPECT_LT(long_value.message.size(), 200u);
}

TEST(ConsentHeaderTest, ValidLists) {
  std::uint32_t mask = 0;
  EXPECT_TRUE(ParseConsentHeader("cross_border_separate, sensitive_separate", mask).ok());
  EXPECT_EQ(mask, policy::Bit(policy::Consent::kCrossBorderSeparate) |
                      policy::Bit(policy::Consent::kSensitiveSeparate));
  EXPECT_TRUE(ParseConsentHeader(" , SENSITIVE_SEPARATE,", mask).ok());
  EXPECT_EQ(mask, policy::Bit(policy::Consent::kSensitiveSeparate));
  EXPECT_TRUE(ParseConsentHeader("", mask).ok());  // explicitly none
  EXPECT_EQ(mask, 0u);
}

TEST(ConsentHeaderTest, UnknownNameIsA400NamingTheHeader) {
  std::uint32_t mask = 7;
  const core::Status s = ParseConsentHeader("cross_border_separate, marketing", mask);
  EXPECT_EQ(s.code, core::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.param, "x-meridian-consent");
  EXPECT_EQ(s.reason, "invalid_header");
  EXPECT_EQ(s.message,
            "x-meridian-consent: 'marketing' is not a consent name (expected: "
            "cross_border_separate, sensitive_separate)");
  EXPECT_EQ(mask, 7u);  // unchanged
}

}  // namespace
}  // namespace meridian::identity

namespace meridian::identity {
namespace {

TEST(TraceparentTest, ChildKeepsTraceAndFlagsWithTheGatewaysSpan) {
  EXPECT_EQ(ChildTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                             0x1234abcd5678ef00ull),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-1234abcd5678ef00-01");
  // A future version with extra fields is read as version 00 (the specification's rule).
  EXPECT_EQ(ChildTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra", 1),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000001-00");
}

TEST(TraceparentTest, InvalidHeadersAreIgnored) {
  for (const std::string_view bad : {
           "", "garbage",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // forbidden version
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 has no extras
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",     // short trace id
       }) {
    EXPECT_EQ(ChildTraceparent(bad, 7), "") << bad;
  }
}

}  // namespace
}  // namespace meridian::identity
