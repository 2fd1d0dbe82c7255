// Value types of the policy model shared by the compiler, Decide and callers.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace meridian::policy {

/// Data classification, ordered: none < personal < sensitive_personal < important < core.
enum class DataClass : std::uint8_t { kNone, kPersonal, kSensitivePersonal, kImportant, kCore };

enum class ProviderKind : std::uint8_t {
  kOpenAi,
  kAzureOpenAi,
  kDashScope,
  kAnthropic,
  kOpenAiCompatible,
  kSim
};

enum class CnFiling : std::uint8_t { kFiled, kRegistered, kNone };
enum class EuTransferBasis : std::uint8_t { kEea, kAdequacy, kScc, kNone };

/// Cross-border transfer mechanisms a tenant holds (bit flags).
enum class Mechanism : std::uint8_t {
  kCnSa,        ///< CAC security assessment passed
  kCnSccFiled,  ///< CAC standard contract signed and filed
  kCnCert,      ///< personal-information-protection certification
  kGbaSc,       ///< GBA Standard Contract (mainland GBA cities <-> Hong Kong)
  kMoSc,        ///< Macau cooperation arrangement (terms unverified)
  kEuScc,       ///< EU standard contractual clauses
  kEuBcr,       ///< EU binding corporate rules
};

/// Consent the individual gave, as attested by the tenant (bit flags).
enum class Consent : std::uint8_t { kCrossBorderSeparate, kSensitiveSeparate };

/// What a request needs of a provider beyond the model alias (bit flags).
enum class Capability : std::uint8_t {
  kTools,
  kVision,
  kThinking,
  kStreaming,
  kJsonMode,
  kEmbeddings
};

/// How the user's region was established; recorded in every decision.
enum class RegionSource : std::uint8_t {
  kUnknown,        ///< no trusted signal: the policy's unknown_region_as applies
  kTenantBinding,  ///< the tenant's contract / API-key binding
  kTrustedProxy,   ///< a header set by a configured trusted proxy
  kIdpClaim,       ///< a signed claim from the tenant's identity provider
  kIngress,        ///< the regional ingress the request arrived at
  kCertificate,    ///< the client certificate's tenant binding
  kConflict,       ///< trusted signals disagreed: the most restrictive was taken
};

template <class E>
constexpr std::uint32_t Bit(E e) {
  return 1u << static_cast<unsigned>(e);
}

/// Name tables: the spelling used in policy files, request JSON and explanations.
inline constexpr std::array<std::string_view, 5> kDataClassNames = {
    "none", "personal", "sensitive_personal", "important", "core"};
inline constexpr std::array<std::string_view, 6> kProviderKindNames = {
    "openai", "azure_openai", "dashscope", "anthropic", "openai_compatible", "sim"};
inline constexpr std::array<std::string_view, 3> kCnFilingNames = {"filed", "registered", "none"};
inline constexpr std::array<std::string_view, 4> kEuTransferBasisNames = {"eea", "adequacy", "scc",
                                                                          "none"};
inline constexpr std::array<std::string_view, 7> kMechanismNames = {
    "cn_sa", "cn_scc_filed", "cn_cert", "gba_sc", "mo_sc", "eu_scc", "eu_bcr"};
inline constexpr std::array<std::string_view, 2> kConsentNames = {"cross_border_separate",
                                                                  "sensitive_separate"};
inline constexpr std::array<std::string_view, 6> kCapabilityNames = {
    "tools", "vision", "thinking", "streaming", "json_mode", "embeddings"};
inline constexpr std::array<std::string_view, 7> kRegionSourceNames = {
    "unknown",     "tenant_binding",           "trusted_proxy", "idp_claim", "ingress",
    "certificate", "conflict_most_restrictive"};
/// Tenant flags every policy knows; policies may declare more under `tenant_flags:`.
inline constexpr std::array<std::string_view, 3> kBuiltinTenantFlags = {"ciio", "public_facing_cn",
                                                                        "require_zdr"};

/// Looks `name` up in a name table; the enum value is the index.
template <class E, std::size_t N>
constexpr std::optional<E> ParseName(const std::array<std::string_view, N>& names,
                                     std::string_view name) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<E>(i);
  }
  return std::nullopt;
}

template <std::size_t N, class E>
constexpr std::string_view NameOf(const std::array<std::string_view, N>& names, E e) {
  return names[static_cast<std::size_t>(e)];
}

constexpr std::string_view Name(DataClass c) {
  return NameOf(kDataClassNames, c);
}
constexpr std::string_view Name(ProviderKind k) {
  return NameOf(kProviderKindNames, k);
}
constexpr std::string_view Name(CnFiling f) {
  return NameOf(kCnFilingNames, f);
}
constexpr std::string_view Name(EuTransferBasis b) {
  return NameOf(kEuTransferBasisNames, b);
}
constexpr std::string_view Name(RegionSource s) {
  return NameOf(kRegionSourceNames, s);
}

/// The rule for ids (providers, guards, routes, tenants): 1-128 characters, letters, digits,
/// '.', '_' or '-', starting with a letter or digit. Tenant ids in gateway configs follow it
/// too, so every tenant a config declares can be named by a policy.
constexpr bool IsValidId(std::string_view s) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (s.empty() || s.size() > 128 || !alnum(s[0])) return false;
  for (char c : s) {
    if (!alnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

/// Comparison operators written in conditions: ">= personal", "< 100000".
enum class CompareOp : std::uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

template <class T>
constexpr bool Compare(CompareOp op, T lhs, T rhs) {
  switch (op) {
    case CompareOp::kEq:
      return lhs == rhs;
    case CompareOp::kNe:
      return lhs != rhs;
    case CompareOp::kLt:
      return lhs < rhs;
    case CompareOp::kLe:
      return lhs <= rhs;
    case CompareOp::kGt:
      return lhs > rhs;
    case CompareOp::kGe:
      return lhs >= rhs;
  }
  return false;
}

}  // namespace meridian::policy
