#include "gateway/identity.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <utility>

#include "policy/decide.h"

namespace meridian::identity {
namespace {

// The 12 bytes that make an IPv6 address IPv4-mapped.
constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// Echoed request values are cut so a 400 never reflects a large header back.
constexpr std::size_t kMaxEchoedValue = 64;

constexpr std::string_view kWhitespace = " \t";

std::string_view Trim(std::string_view s) {
  const std::size_t first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) {
    return {};
  }
  return s.substr(first, s.find_last_not_of(kWhitespace) - first + 1);
}

char LowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), LowerAscii);
  return out;
}

std::string Echo(std::string_view value) {
  if (value.size() <= kMaxEchoedValue) {
    return std::string(value);
  }
  return std::string(value.substr(0, kMaxEchoedValue)) + "...";
}

template <std::size_t N>
std::string JoinNames(const std::array<std::string_view, N>& names) {
  std::string out;
  for (const std::string_view n : names) {
    out += (out.empty() ? "" : ", ") + std::string(n);
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::uint64_t BucketOf(const Sha256Digest& digest) {
  std::uint64_t bucket = 0;
  std::memcpy(&bucket, digest.data(), sizeof(bucket));
  return bucket;
}

}  // namespace

// --- Digests ---

Sha256Digest Sha256(std::string_view data) {
  // Fetched once: with EVP_sha256() OpenSSL 3 looks the implementation up again on every
  // digest (provider iteration, locks, name comparisons) — most of the cost of hashing a key.
  static const EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (kSha256 == nullptr) std::abort();
  Sha256Digest out{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &size, kSha256, nullptr) != 1 ||
      size != out.size()) {
    std::abort();
  }
  return out;
}

std::string ToHex(std::span<const std::uint8_t> bytes) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const std::uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0x0f];
  }
  return out;
}

std::optional<Sha256Digest> ParseSha256Hex(std::string_view hex) {
  Sha256Digest out{};
  if (hex.size() != out.size() * 2) {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return out;
}

// --- Tenants and API keys ---

TenantRegistry::TenantRegistry(const std::vector<config::TenantConfig>& tenants) {
  tenants_.reserve(tenants.size());
  for (const config::TenantConfig& c : tenants) {
    Tenant t;
    t.id = c.id.value;
    for (const policy::RegionCode r : c.regions) {
      t.regions.set(r.index());
    }
    t.default_region = c.default_region;
    t.default_data_class = c.default_data_class;
    for (const policy::LocatedString& f : c.tenant_flags) {
      t.flags.push_back(f.value);
    }
    t.mechanisms = c.mechanisms;
    t.consent = c.consent;
    t.trust_region_claim = c.trust_region_claim;
    t.limits = c.limits;
    const std::size_t index = tenants_.size();
    for (const policy::LocatedString& uri : c.client_cert_uris) {
      by_cert_uri_.emplace(uri.value, static_cast<std::uint32_t>(index));
    }
    for (const policy::LocatedString& cn : c.client_cert_cns) {
      by_cert_cn_.emplace(cn.value, static_cast<std::uint32_t>(index));
    }
    for (const policy::LocatedString& hex : c.api_key_sha256) {
      if (const auto digest = ParseSha256Hex(hex.value)) {
        keys_.emplace(BucketOf(*digest), Key{*digest, index});
      }
    }
    by_id_.emplace(t.id, static_cast<std::uint32_t>(index));
    tenants_.push_back(std::move(t));
  }
}

std::string KeyId(char kind, const Sha256Digest& digest) {
  std::string id(1, kind);
  id += ToHex(std::span<const std::uint8_t>(digest.data(), 8));
  return id;
}

const Tenant* TenantRegistry::AuthenticateCertificate(const std::vector<std::string>& uri_sans,
                                                      std::string_view common_name,
                                                      std::string* key_id) const {
  for (const std::string& uri : uri_sans) {
    if (const auto index = policy::Lookup(by_cert_uri_, uri)) {
      if (key_id != nullptr) *key_id = KeyId('c', Sha256(uri));
      return &tenants_[*index];
    }
  }
  if (common_name.empty()) {
    return nullptr;
  }
  const auto index = policy::Lookup(by_cert_cn_, common_name);
  if (index && key_id != nullptr) *key_id = KeyId('c', Sha256(common_name));
  return index ? &tenants_[*index] : nullptr;
}

const Tenant* TenantRegistry::Authenticate(std::string_view authorization_header_value,
                                           std::string* key_id) const {
  constexpr std::string_view kScheme = "bearer ";
  const std::string_view v = authorization_header_value;
  if (v.size() <= kScheme.size()) {
    return nullptr;
  }
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (LowerAscii(v[i]) != kScheme[i]) {
      return nullptr;
    }
  }
  const std::string_view key = v.substr(kScheme.size());
  // A second space, a tab or a line break is never part of a key we issued.
  if (std::any_of(key.begin(), key.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= ' '; })) {
    return nullptr;
  }
  return AuthenticateKey(key, key_id);
}

const Tenant* TenantRegistry::AuthenticateKey(std::string_view key, std::string* key_id) const {
  if (key.empty()) {
    return nullptr;
  }
  const Sha256Digest digest = Sha256(key);
  const auto [first, last] = keys_.equal_range(BucketOf(digest));
  for (auto it = first; it != last; ++it) {
    if (CRYPTO_memcmp(it->second.digest.data(), digest.data(), digest.size()) == 0) {
      if (key_id != nullptr) *key_id = KeyId('k', digest);
      return &tenants_[it->second.tenant];
    }
  }
  return nullptr;
}

const Tenant* TenantRegistry::Find(std::string_view id) const {
  const auto index = policy::Lookup(by_id_, id);
  return index ? &tenants_[*index] : nullptr;
}

// --- Addresses and trusted proxies ---

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  // inet_pton needs a terminated string; addresses are short, so a stack copy suffices.
  std::array<char, INET6_ADDRSTRLEN + 1> buf{};
  if (text.empty() || text.size() >= buf.size()) {
    return std::nullopt;
  }
  std::copy(text.begin(), text.end(), buf.begin());
  std::array<std::uint8_t, 16> bytes{};
  if (text.find(':') == std::string_view::npos) {
    std::array<std::uint8_t, 4> v4{};
    if (inet_pton(AF_INET, buf.data(), v4.data()) != 1) {
      return std::nullopt;
    }
    return FromBytes(v4);
  }
  if (inet_pton(AF_INET6, buf.data(), bytes.data()) != 1) {
    return std::nullopt;
  }
  return FromBytes(bytes);
}

std::optional<IpAddress> IpAddress::FromBytes(std::span<const std::uint8_t> bytes) {
  IpAddress a;
  if (bytes.size() == 4) {
    std::copy(kMappedPrefix.begin(), kMappedPrefix.end(), a.bytes_.begin());
    std::copy(bytes.begin(), bytes.end(), a.bytes_.begin() + kMappedPrefix.size());
  } else if (bytes.size() == 16) {
    std::copy(bytes.begin(), bytes.end(), a.bytes_.begin());
  } else {
    return std::nullopt;
  }
  return a;
}

bool IpAddress::IsV4() const {
  return std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), bytes_.begin());
}

std::string IpAddress::ToString() const {
  return Format(IsV4());
}

std::string IpAddress::Format(bool as_v4) const {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  const void* src = as_v4 ? bytes_.data() + kMappedPrefix.size() : bytes_.data();
  if (inet_ntop(as_v4 ? AF_INET : AF_INET6, src, buf.data(), buf.size()) == nullptr) {
    return {};
  }
  return buf.data();
}

std::optional<Cidr> Cidr::Parse(std::string_view text, std::string* why) {
  const auto fail = [why](std::string reason) -> std::optional<Cidr> {
    if (why != nullptr) {
      *why = std::move(reason);
    }
    return std::nullopt;
  };
  const std::size_t slash = text.find('/');
  const std::string_view address_text = text.substr(0, slash);
  const auto address = IpAddress::Parse(address_text);
  if (!address) {
    return fail("'" + std::string(address_text) + "' is not an IP address");
  }
  // An IPv4 prefix is written over 32 bits; held over the 128-bit mapped form.
  const bool v4 = address_text.find(':') == std::string_view::npos;
  const unsigned width = v4 ? 32 : 128;
  unsigned length = width;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
        length > width) {
      return fail("the prefix length must be a number from 0 to " + std::to_string(width));
    }
  }
  Cidr c;
  c.network_ = *address;
  c.prefix_ = length + (128 - width);
  c.v4_ = v4;
  const auto& bytes = c.network_.bytes();
  for (unsigned bit = c.prefix_; bit < 128; ++bit) {
    if (((static_cast<unsigned>(bytes[bit / 8]) >> (7 - bit % 8)) & 1u) != 0) {
      return fail("'" + std::string(text) + "' has address bits set beyond the /" +
                  std::to_string(length) + " prefix: write the network address, or the host " +
                  "address alone");
    }
  }
  return c;
}

bool Cidr::Contains(const IpAddress& address) const {
  const auto& a = address.bytes();
  const auto& n = network_.bytes();
  const unsigned full = prefix_ / 8;
  if (!std::equal(n.begin(), n.begin() + full, a.begin())) {
    return false;
  }
  const unsigned rest = prefix_ % 8;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<std::uint8_t>(0xffu << (8 - rest));
  return (a[full] & mask) == n[full];
}

unsigned Cidr::PrefixLength() const {
  return v4_ ? prefix_ - 96 : prefix_;
}

std::string Cidr::ToString() const {
  return network_.Format(v4_) + "/" + std::to_string(PrefixLength());
}

std::vector<Cidr> ParseTrustedProxies(const config::GatewayConfig& config, const std::string& file,
                                      std::vector<config::FileDiagnostic>& errors) {
  std::vector<Cidr> out;
  for (const policy::LocatedString& text : config.trusted_proxies.cidrs) {
    std::string why;
    const auto cidr = Cidr::Parse(text.value, &why);
    if (!cidr) {
      errors.push_back({file, text.pos, "trusted_proxies: " + why});
    } else if (cidr->PrefixLength() == 0) {
      errors.push_back({file, text.pos,
                        "trusted_proxies: '" + text.value +
                            "' would let every client assert its own region: list the "
                            "proxies' addresses"});
    } else {
      out.push_back(*cidr);
    }
  }
  return out;
}

bool IsTrusted(const IpAddress& peer, const std::vector<Cidr>& trusted) {
  return std::any_of(trusted.begin(), trusted.end(),
                     [&](const Cidr& c) { return c.Contains(peer); });
}

// --- Region ---

namespace {

// The region part shared by both front ends: `value` is asserted by a trusted source
// (`who`, for the note); falls back to the tenant binding.
RegionDecision FromTrustedValue(const Tenant& tenant, std::optional<std::string_view> value,
                                bool trusted, std::string_view what, const std::string& who) {
  RegionDecision d;
  if (value) {
    if (!trusted) {
      d.header_ignored_untrusted = true;
      d.note = std::string(what) + " from untrusted " + who + " ignored; ";
    } else {
      std::string code(Trim(*value));
      std::transform(code.begin(), code.end(), code.begin(), [](char c) {
        return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
      });
      const auto region = policy::RegionCode::Parse(code);
      if (region && tenant.regions.test(region->index())) {
        d.region = region;
        d.source = policy::RegionSource::kTrustedProxy;
        d.note = "region " + code + " from trusted " + who;
        return d;
      }
      d.header_rejected_not_allowed = true;
      d.note =
          std::string(what) + " '" + Echo(*value) + "' from trusted " + who +
          (region ? " is not one of tenant '" + tenant.id + "' regions" : " is not a region code") +
          "; ";
    }
  }
  if (tenant.default_region) {
    d.region = tenant.default_region;
    d.source = policy::RegionSource::kTenantBinding;
    d.note +=
        "region " + tenant.default_region->ToString() + " from tenant '" + tenant.id + "' binding";
  } else {
    d.note += "region unknown";
  }
  return d;
}

}  // namespace

RegionDecision EstablishRegion(const Tenant& tenant, const IpAddress& peer,
                               std::optional<std::string_view> region_header,
                               const std::vector<Cidr>& trusted) {
  const bool is_trusted = region_header && IsTrusted(peer, trusted);
  return FromTrustedValue(tenant, region_header, is_trusted, "region header",
                          std::string(is_trusted ? "proxy " : "peer ") + peer.ToString());
}

RegionDecision EstablishClaimedRegion(const Tenant& tenant, std::optional<std::string_view> claim,
                                      bool claim_trusted) {
  return FromTrustedValue(tenant, claim, claim_trusted, "region claim",
                          "client certificate of tenant '" + tenant.id + "'");
}

namespace {

// Every comma-separated, trimmed, non-empty item of every copy.
std::vector<std::string_view> ListItems(HeaderCopies copies) {
  std::vector<std::string_view> items;
  for (std::string_view v : copies) {
    while (!v.empty()) {
      const std::size_t comma = v.find(',');
      const std::string_view item = Trim(v.substr(0, comma));
      v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
      if (!item.empty()) items.push_back(item);
    }
  }
  return items;
}

RegionDecision FromTrustedCopies(const Tenant& tenant, HeaderCopies copies, bool trusted,
                                 std::string_view what, const std::string& who,
                                 const policy::Settings& settings) {
  if (copies.empty()) return FromTrustedValue(tenant, std::nullopt, trusted, what, who);
  const std::vector<std::string_view> items = ListItems(copies);
  if (copies.size() == 1 && items.size() <= 1) {
    return FromTrustedValue(tenant, copies.front(), trusted, what, who);
  }
  if (!trusted || items.empty()) {
    return FromTrustedValue(tenant, copies.front(), trusted, what, who);
  }
  std::vector<policy::RegionSignal> signals;
  bool rejected = false;
  for (std::string_view item : items) {
    std::string code(item);
    std::transform(code.begin(), code.end(), code.begin(), [](char c) {
      return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    });
    const auto region = policy::RegionCode::Parse(code);
    if (region && tenant.regions.test(region->index())) {
      signals.push_back({policy::RegionSource::kTrustedProxy, *region});
    } else {
      rejected = true;
    }
  }
  if (signals.empty()) return FromTrustedValue(tenant, copies.front(), trusted, what, who);
  // An unusable copy beside usable ones is not dropped: it counts as unknown, which the
  // policy treats as unknown_region_as.
  if (rejected)
    signals.push_back({policy::RegionSource::kTrustedProxy, settings.unknown_region_as});
  const policy::ResolvedRegion resolved = policy::ResolveRegion(signals, settings);
  RegionDecision d;
  d.region = resolved.region;
  d.source = resolved.source;
  d.header_rejected_not_allowed = rejected;
  d.conflicting_copies = resolved.source == policy::RegionSource::kConflict;
  d.note = std::string(what) + " sent " + std::to_string(items.size()) + " times by trusted " +
           who + "; " +
           (d.conflicting_copies ? "conflicting values, most restrictive " : "region ") +
           (d.region ? d.region->ToString() : std::string("unknown"));
  return d;
}

}  // namespace

RegionDecision EstablishRegion(const Tenant& tenant, const IpAddress& peer, HeaderCopies copies,
                               const std::vector<Cidr>& trusted, const policy::Settings& settings) {
  const bool is_trusted = !copies.empty() && IsTrusted(peer, trusted);
  return FromTrustedCopies(tenant, copies, is_trusted, "region header",
                           std::string(is_trusted ? "proxy " : "peer ") + peer.ToString(),
                           settings);
}

RegionDecision EstablishClaimedRegion(const Tenant& tenant, HeaderCopies copies, bool claim_trusted,
                                      const policy::Settings& settings) {
  return FromTrustedCopies(tenant, copies, claim_trusted, "region claim",
                           "client certificate of tenant '" + tenant.id + "'", settings);
}

// --- Tracing ---

std::string ChildTraceparent(std::string_view in, std::uint64_t span_id) {
  in = Trim(in);
  // version "00" is 55 characters; later versions may append fields after another '-'.
  if (in.size() < 55 || (in.size() > 55 && in[55] != '-') || in[2] != '-' || in[35] != '-' ||
      in[52] != '-') {
    return {};
  }
  auto hex = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  };
  const std::string_view version = in.substr(0, 2), trace = in.substr(3, 32),
                         parent = in.substr(36, 16), flags = in.substr(53, 2);
  if (!hex(version) || version == "ff" || !hex(trace) || !hex(parent) || !hex(flags) ||
      trace == std::string(32, '0') || parent == std::string(16, '0') ||
      (version == "00" && in.size() != 55)) {
    return {};
  }
  char span[17];
  std::snprintf(span, sizeof span, "%016llx", static_cast<unsigned long long>(span_id));  // NOLINT
  if (span_id == 0) span[15] = '1';
  return "00-" + std::string(trace) + "-" + span + "-" + std::string(flags);
}

// --- Per-request headers ---

core::Status ParseDataClassHeader(std::string_view value, std::optional<policy::DataClass>& out) {
  const auto parsed =
      policy::ParseName<policy::DataClass>(policy::kDataClassNames, Lower(Trim(value)));
  if (!parsed) {
    return core::Status::Error(
        core::StatusCode::kInvalidArgument,
        std::string(kDataClassHeader) + ": '" + Echo(value) +
            "' is not a data class (expected one of: " + JoinNames(policy::kDataClassNames) + ")",
        "invalid_header", std::string(kDataClassHeader));
  }
  out = parsed;
  return core::Status::Ok();
}

core::Status ParseConsentHeader(std::string_view value, std::uint32_t& consent_mask) {
  std::uint32_t mask = 0;
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view item = Trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    if (item.empty()) {
      continue;  // RFC 9110 list syntax: empty elements do not count
    }
    const auto consent = policy::ParseName<policy::Consent>(policy::kConsentNames, Lower(item));
    if (!consent) {
      return core::Status::Error(
          core::StatusCode::kInvalidArgument,
          std::string(kConsentHeader) + ": '" + Echo(item) +
              "' is not a consent name (expected: " + JoinNames(policy::kConsentNames) + ")",
          "invalid_header", std::string(kConsentHeader));
    }
    mask |= policy::Bit(*consent);
  }
  consent_mask = mask;
  return core::Status::Ok();
}

core::Status ParseDataClassHeaders(HeaderCopies copies, std::optional<policy::DataClass>& out,
                                   bool& conflicting) {
  conflicting = false;
  if (copies.empty()) return core::Status::Ok();
  const std::vector<std::string_view> items = ListItems(copies);
  if (copies.size() == 1 && items.size() <= 1) return ParseDataClassHeader(copies.front(), out);
  if (items.empty()) return ParseDataClassHeader("", out);
  std::optional<policy::DataClass> highest;
  for (std::string_view item : items) {
    std::optional<policy::DataClass> one;
    if (auto st = ParseDataClassHeader(item, one); !st.ok()) return st;
    if (highest && *one != *highest) conflicting = true;
    if (!highest || *one > *highest) highest = one;
  }
  out = highest;
  return core::Status::Ok();
}

core::Status ParseConsentHeaders(HeaderCopies copies, std::uint32_t& consent_mask,
                                 bool& conflicting) {
  conflicting = false;
  if (copies.empty()) return core::Status::Ok();
  std::optional<std::uint32_t> granted_by_all;
  for (std::string_view copy : copies) {
    std::uint32_t one = 0;
    if (auto st = ParseConsentHeader(copy, one); !st.ok()) return st;
    if (granted_by_all && one != *granted_by_all) conflicting = true;
    granted_by_all = granted_by_all ? (*granted_by_all & one) : one;
  }
  consent_mask = *granted_by_all;
  return core::Status::Ok();
}

core::Status UnknownApiKey() {
  return core::Status::Error(core::StatusCode::kUnauthenticated, "unknown API key",
                             "invalid_api_key");
}

core::Status CheckSingleCredential(std::size_t credentials) {
  if (credentials <= 1) return core::Status::Ok();
  return core::Status::Error(core::StatusCode::kInvalidArgument,
                             "the request carries " + std::to_string(credentials) +
                                 " credentials (Authorization, api-key, x-api-key); send exactly "
                                 "one",
                             "multiple_credentials", "authorization");
}

}  // namespace meridian::identity
