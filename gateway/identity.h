// Identity: who is calling (API key -> tenant), which peers are trusted proxies, where the
// user is (region and how that was established), and the per-request headers a tenant may
// set. Pure: no sockets, no clocks; the front end passes the peer address and header values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/file_diagnostic.h"
#include "config/gateway_config.h"
#include "gateway/core/status.h"
#include "policy/model.h"
#include "policy/regions.h"
#include "policy/snapshot.h"

namespace meridian::identity {

/// Request headers a tenant may set (lower case, as HTTP/2 and Beast's lookups use them).
inline constexpr std::string_view kDataClassHeader = "x-meridian-data-class";
inline constexpr std::string_view kConsentHeader = "x-meridian-consent";

// --- Digests ---

using Sha256Digest = std::array<std::uint8_t, 32>;

/// SHA-256 of `data`. Aborts if OpenSSL cannot compute it (a broken installation): failing
/// closed, since a fallback digest could match a configured one.
Sha256Digest Sha256(std::string_view data);

/// Lower-case hex of `bytes`.
std::string ToHex(std::span<const std::uint8_t> bytes);

/// Exactly 64 hex digits (either case) -> digest; nullopt for anything else.
std::optional<Sha256Digest> ParseSha256Hex(std::string_view hex);

// --- Tenants and API keys ---

/// The id of one credential, for per-key limits and logs: "k" and the first 16 hex digits of
/// an API key's SHA-256 (the start of its api_key_sha256 entry: nothing secret), or "c" and
/// those of the SHA-256 of the certificate identity (URI SAN or CN) that matched.
std::string KeyId(char kind, const Sha256Digest& digest);

/// What the policy needs to know about the caller (see policy::RequestAttributes).
struct Tenant {
  std::string id;
  policy::RegionSet regions;  ///< user regions a trusted proxy may assert for this tenant
  std::optional<policy::RegionCode> default_region;  ///< the binding; nullopt: unknown
  std::optional<policy::DataClass> default_data_class;
  std::vector<std::string> flags;  ///< tenant flag names (RequestAttributes::tenant_flags)
  std::uint32_t mechanisms = 0;    ///< Bit(policy::Mechanism) mask
  std::uint32_t consent = 0;       ///< Bit(policy::Consent) mask: the tenant's default
  /// Its mTLS clients may state the user's region per request (gRPC), within `regions`.
  bool trust_region_claim = false;
  std::optional<config::TenantLimitsConfig> limits;  ///< `limits:`; nullopt: none
};

/// The tenants of a gateway config and their API key digests. Immutable after construction,
/// so one registry may be shared by all threads; a reload builds a new one. Returned pointers
/// stay valid for the registry's lifetime.
///
/// Why a hash-map lookup is safe here: the map is keyed by SHA-256 of the presented key, not
/// by the key. Timing differences in the lookup can reveal at most something about that
/// digest — which the caller computed from its own guess and cannot steer toward a stored
/// one without a preimage attack — so they leak nothing about configured keys. The final
/// match is still a constant-time comparison of the full digest (CRYPTO_memcmp), so accepting
/// or rejecting never depends on where two digests first differ.
class TenantRegistry {
 public:
  TenantRegistry() = default;
  /// From a validated config (LoadGatewayConfig* reported no errors). A digest that is not
  /// 64 hex digits (impossible after validation) is skipped: it can never authenticate.
  explicit TenantRegistry(const std::vector<config::TenantConfig>& tenants);

  /// The tenant of an `Authorization` header value: `Bearer <key>`, the scheme in any case,
  /// exactly one space, a key without whitespace. nullptr when the value is missing,
  /// malformed, another scheme, or the key is unknown (all answered 401 alike).
  /// `key_id`, when given, receives the credential's id for per-key limits (KeyId).
  const Tenant* Authenticate(std::string_view authorization_header_value,
                             std::string* key_id = nullptr) const;
  /// The tenant of a raw API key (e.g. from gRPC metadata); nullptr if empty or unknown.
  const Tenant* AuthenticateKey(std::string_view key, std::string* key_id = nullptr) const;

  /// The tenant bound to a client certificate that the TLS layer has already verified: the
  /// first of its URI SANs (certificate order) that a tenant lists in client_cert_uris, else
  /// its subject CN in client_cert_cns. nullptr when neither is bound to a tenant.
  const Tenant* AuthenticateCertificate(const std::vector<std::string>& uri_sans,
                                        std::string_view common_name,
                                        std::string* key_id = nullptr) const;

  /// The tenant with this id, or nullptr.
  const Tenant* Find(std::string_view id) const;
  const std::vector<Tenant>& tenants() const { return tenants_; }

 private:
  struct Key {
    Sha256Digest digest;
    std::size_t tenant;  ///< index into tenants_
  };

  std::vector<Tenant> tenants_;
  /// Bucketed by the digest's first 8 bytes (already uniformly distributed).
  std::unordered_multimap<std::uint64_t, Key> keys_;
  policy::NameIndex by_id_;
  policy::NameIndex by_cert_uri_;
  policy::NameIndex by_cert_cn_;
};

// --- Addresses and trusted proxies ---

/// An IPv4 or IPv6 address. IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d), which is how
/// a dual-stack socket reports IPv4 peers, so 10.1.2.3 and ::ffff:10.1.2.3 are equal.
class IpAddress {
 public:
  /// "10.1.2.3", "::1", "::ffff:10.1.2.3"; no brackets, port or zone ("%eth0").
  static std::optional<IpAddress> Parse(std::string_view text);
  /// 4 bytes (IPv4) or 16 bytes (IPv6), network order, as Asio's to_bytes() gives them.
  static std::optional<IpAddress> FromBytes(std::span<const std::uint8_t> bytes);

  /// True for IPv4 and IPv4-mapped IPv6.
  bool IsV4() const;
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  /// "10.1.2.3" for IPv4 (and IPv4-mapped), "2001:db8::1" otherwise.
  std::string ToString() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  friend class Cidr;
  /// As IPv4 dotted quad (for IPv4 and mapped addresses) or as IPv6 text.
  std::string Format(bool as_v4) const;

  std::array<std::uint8_t, 16> bytes_{};
};

/// An address prefix: "10.0.0.0/8", "::1/128", or a bare address for one host.
class Cidr {
 public:
  /// nullopt for invalid text, with the reason in `*why` when given. Bits set beyond the
  /// prefix ("10.0.0.1/8") are an error, not silently cleared: the operator meant either
  /// the host or the network, and guessing wrong changes who is trusted.
  static std::optional<Cidr> Parse(std::string_view text, std::string* why = nullptr);

  /// An IPv4 prefix contains IPv4 and IPv4-mapped addresses alike.
  bool Contains(const IpAddress& address) const;
  unsigned PrefixLength() const;  ///< as written (0..32 for IPv4, 0..128 for IPv6)
  std::string ToString() const;   ///< "10.0.0.0/8"

 private:
  Cidr() = default;  // would contain every address: only Parse makes one

  IpAddress network_;
  unsigned prefix_ = 0;  ///< over the 128-bit (mapped) form
  bool v4_ = false;      ///< written as IPv4 (its length counts 32 bits)
};

/// Parses config.trusted_proxies.cidrs, reporting each invalid one at its position in `file`
/// (the gateway config). A /0 prefix is refused: it would let any client assert its region.
std::vector<Cidr> ParseTrustedProxies(const config::GatewayConfig& config, const std::string& file,
                                      std::vector<config::FileDiagnostic>& errors);

/// True if `peer` is inside one of `trusted`.
bool IsTrusted(const IpAddress& peer, const std::vector<Cidr>& trusted);

// --- Region ---

/// Where the user is, how that was established, and what happened to the region header.
struct RegionDecision {
  std::optional<policy::RegionCode> region;  ///< nullopt: unknown (the policy's default)
  policy::RegionSource source = policy::RegionSource::kUnknown;
  /// A region header came from a peer that is not a trusted proxy (count it: a client
  /// trying to choose its own region, or a proxy missing from trusted_proxies).
  bool header_ignored_untrusted = false;
  /// A trusted proxy sent a value that is not a region code or not one of the tenant's
  /// regions (count it: a proxy or tenant misconfiguration).
  bool header_rejected_not_allowed = false;
  /// A trusted source sent the region more than once (several headers or a comma list) and
  /// the copies disagreed: the most restrictive was taken (source kConflict). Count it.
  bool conflicting_copies = false;
  std::string note;  ///< one line for logs and explanations
};

/// Establishes the user's region from trusted signals only:
///  1. a region header from a trusted peer, when it is a region code (surrounding
///     whitespace and letter case ignored) within tenant.regions -> kTrustedProxy;
///  2. otherwise the tenant's default_region -> kTenantBinding;
///  3. otherwise unknown -> kUnknown.
/// A header from an untrusted peer, or an unusable one from a trusted peer, falls through
/// to 2 with the matching flag set; it never fails the request.
RegionDecision EstablishRegion(const Tenant& tenant, const IpAddress& peer,
                               std::optional<std::string_view> region_header,
                               const std::vector<Cidr>& trusted);

/// The region of a caller that is its own trusted source (a gRPC device backend holding a
/// client certificate): a per-request `claim` counts only when `claim_trusted` (the tenant has
/// trust_region_claim and the caller authenticated with its certificate) and only when it is
/// one of tenant.regions -> kTrustedProxy. Otherwise as EstablishRegion: the binding, else
/// unknown; an untrusted claim sets header_ignored_untrusted, an unusable trusted one
/// header_rejected_not_allowed.
RegionDecision EstablishClaimedRegion(const Tenant& tenant, std::optional<std::string_view> claim,
                                      bool claim_trusted);

// --- Tracing ---

/// The `traceparent` to send upstream for a request that arrived with `incoming` (W3C Trace
/// Context: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", lower case, ids not all
/// zero): the same trace id and flags with `span_id` (16 hex digits, the gateway's span) as
/// the parent. Empty when `incoming` is absent or invalid (an invalid header is ignored, as
/// the specification requires, not rejected).
std::string ChildTraceparent(std::string_view incoming, std::uint64_t span_id);

// --- Per-request headers ---

/// `x-meridian-data-class: <name>` (a data class name: none, personal, sensitive_personal,
/// important, core; whitespace and letter case ignored) into `out`. An invalid value is
/// kInvalidArgument (400) with param kDataClassHeader; `out` is then unchanged.
core::Status ParseDataClassHeader(std::string_view value, std::optional<policy::DataClass>& out);

/// `x-meridian-consent: cross_border_separate, sensitive_separate` (comma-separated consent
/// names; whitespace, letter case and empty items ignored) into a Bit(policy::Consent) mask.
/// An empty value is valid and means no consent, so a request can withdraw the tenant's
/// default. An unknown name is kInvalidArgument (400) with param kConsentHeader; `consent_mask`
/// is then unchanged.
core::Status ParseConsentHeader(std::string_view value, std::uint32_t& consent_mask);

// --- Duplicated and conflicting signals (reference §3.1: the most restrictive wins) ---

/// Every copy of a header: one entry per header line (or metadata entry), in arrival order.
using HeaderCopies = std::span<const std::string_view>;

/// EstablishRegion over every copy of the region header. Each copy may itself be a comma
/// list (RFC 9110 list syntax); when the trusted values disagree the result is the most
/// restrictive by settings.region_restrictiveness (policy::ResolveRegion, source kConflict)
/// and conflicting_copies is set; a copy that is not a usable region for the tenant counts as
/// settings.unknown_region_as beside the usable ones. One copy behaves as EstablishRegion.
RegionDecision EstablishRegion(const Tenant& tenant, const IpAddress& peer, HeaderCopies copies,
                               const std::vector<Cidr>& trusted, const policy::Settings& settings);

/// The same for a certificate-bound region claim (gRPC metadata).
RegionDecision EstablishClaimedRegion(const Tenant& tenant, HeaderCopies copies, bool claim_trusted,
                                      const policy::Settings& settings);

/// ParseDataClassHeader over every copy (and every comma-separated item): the highest class
/// wins. Any invalid item is kInvalidArgument (400). `conflicting` is set when the items name
/// different classes.
core::Status ParseDataClassHeaders(HeaderCopies copies, std::optional<policy::DataClass>& out,
                                   bool& conflicting);

/// ParseConsentHeader over every copy: a consent counts only if EVERY copy grants it (absent
/// if any copy says absent). `conflicting` is set when the copies differ.
core::Status ParseConsentHeaders(HeaderCopies copies, std::uint32_t& consent_mask,
                                 bool& conflicting);

/// A request carrying `credentials` credentials (Authorization header lines, api-key /
/// x-api-key headers, authorization metadata entries): more than one is kInvalidArgument
/// (400, reason "multiple_credentials") — the gateway never picks one of two identities.
core::Status CheckSingleCredential(std::size_t credentials);

/// A credential no tenant holds: kUnauthenticated "invalid_api_key" (every front end).
core::Status UnknownApiKey();

}  // namespace meridian::identity
