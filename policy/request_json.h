// The request shape of `meridian policy explain --request JSON` and of test vectors.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <vector>

#include "policy/decide.h"
#include "policy/snapshot.h"

namespace meridian::policy {

/// A request read from JSON, owning its strings. Fields:
///   tenant, model, city                      strings
///   region           "CN" or "unknown": shorthand for one tenant_binding signal
///   region_signals   [{"source": tenant_binding|trusted_proxy|idp_claim|ingress|certificate|
///                      ip_geo|client_header, "region": "CN"}]
///   data_class       none|personal|sensitive_personal|important|core (absent: policy default)
///   consent          {"cross_border_separate": bool, "sensitive_separate": bool}
///   tenant_flags     ["ciio", ...]           mechanisms   ["cn_scc_filed", ...]
///   meter            {"non_sensitive": int, "sensitive": int}
///   requires         ["tools", ...]          unhealthy    ["provider-id", ...]
struct ParsedRequest {
  std::string tenant;
  std::string city;
  std::string model;
  std::vector<std::string> tenant_flags;
  std::optional<RegionCode> region;
  RegionSource region_source = RegionSource::kUnknown;
  std::optional<DataClass> data_class;
  std::uint32_t consent = 0;
  std::uint32_t mechanisms = 0;
  std::optional<std::uint64_t> meter_non_sensitive;
  std::optional<std::uint64_t> meter_sensitive;
  std::uint32_t required_capabilities = 0;
  ProviderSet unhealthy;
  /// Signals that were not used, e.g. "client_header US (untrusted)".
  std::vector<std::string> ignored_signals;

  /// Views into this object; valid while it lives and is not modified.
  RequestAttributes Attributes() const;
};

/// What ParseRequestJson made of a request: the request, or the first problem found.
struct ParseRequestResult {
  std::optional<ParsedRequest> request;  ///< nullopt when `error` is set
  std::string error;  ///< names the field, e.g. "request.region: unknown region code 'XX'"
};

/// Parses and validates against the snapshot (field names, region codes, flag names, provider
/// ids).
ParseRequestResult ParseRequestJson(const boost::json::value& json, const Snapshot& snapshot);

}  // namespace meridian::policy
