// The gateway's Prometheus metrics (GET /metrics): the families of docs/operations.md, built on
// gateway/metrics.h. Children are created once and cached per thread under small integer keys
// (front end, region index, decision, provider index, outcome), so a request never looks a
// metric up by name; the cache is dropped when the policy version changes.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/status.h"
#include "gateway/metrics.h"
#include "gateway/pipeline.h"
#include "gateway/router.h"
#include "policy/decide.h"

namespace meridian::gateway {

struct GatewayState;

/// What happened to one request that reached a policy decision.
struct RequestReport {
  enum class FrontEnd : std::uint8_t { kHttp, kGrpc };
  FrontEnd front_end = FrontEnd::kHttp;
  const Admission* admission = nullptr;  ///< required: the decision and what led to it
  std::string_view request_id;
  std::string_view tenant;
  std::string_view model;  ///< the alias the client asked for
  int wire_status = 0;     ///< the HTTP status, or the gRPC status code, the client got
  std::int64_t decided_unix_ms = 0;
  std::vector<Attempt> attempts;
  std::optional<policy::ProviderIndex> served_by;
  bool new_individual = false;  ///< the export meter counted a new individual for it
  core::Status status;          ///< the final outcome the client saw
  std::optional<core::Usage> usage;
  std::optional<std::chrono::microseconds> ttft;
  std::chrono::microseconds total{0};
};

class GatewayMetrics {
 public:
  /// Registers every family; the existing counters of `state` are exported through callbacks,
  /// as are the circuit states of its routing table, the process_* metrics and the build.
  explicit GatewayMetrics(const GatewayState& state);

  /// Per request, from any thread.
  void Record(const RequestReport& report);
  /// Detector kinds (policy::Bit(classifier::Detector) mask) that raised a request's class.
  void RecordRaise(std::uint32_t detectors_mask);
  /// A provider's answer said it was processed outside its declared processing locations
  /// (gateway/residency_echo.h): meridian_residency_echo_mismatch_total{provider}.
  void RecordEchoMismatch(std::string_view provider);
  /// meridian_provider_quarantined{provider}: 1 while quarantined, 0 once released.
  void SetQuarantined(std::string_view provider, bool quarantined);
  /// The loaded policy version, as meridian_policy_info{version}.
  void SetPolicyVersion(const std::string& version);
  /// One answer of the admin listener (probes, scrapes, reloads), as
  /// meridian_admin_requests_total{path,code}: operations traffic is counted apart from the
  /// tenants' (meridian_http_requests_total / _responses_total). `path` is one of the admin
  /// routes or "other", so the label stays bounded.
  void RecordAdmin(std::string_view path, unsigned status);
  /// A request refused by a rate limit (gateway/quota.h): meridian_rate_limited_total.
  void RecordRateLimited(std::string_view tenant, std::string_view scope, std::string_view limit);
  /// A rate-limit check the store could not answer: meridian_store_failures_total{outcome}.
  void RecordStoreFailure(bool fail_open);
  /// An event of the export meter (gateway/meter.h): meridian_export_meter_events_total{event}.
  void RecordMeter(std::string_view event);
  /// The export meter's counts of `tenant` as last read (meridian_xborder_individuals).
  void SetMeterReading(std::string_view tenant, std::uint64_t non_sensitive,
                       std::uint64_t sensitive);

  std::string Render() const { return registry_.Render(); }
  metrics::Registry& registry() { return registry_; }

 private:
  struct Cache;
  Cache& ThreadCache(const policy::Snapshot& snapshot);

  const std::uint64_t instance_;
  metrics::Registry registry_;
  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& duration_;
  metrics::Family<metrics::Histogram>& ttft_;
  metrics::Family<metrics::Counter>& attempts_;
  metrics::Family<metrics::Counter>& fallbacks_;
  metrics::Family<metrics::Counter>& tokens_;
  metrics::Family<metrics::Counter>& raises_;
  metrics::Family<metrics::Counter>& admin_;
  metrics::Family<metrics::Counter>& rate_limited_;
  metrics::Family<metrics::Counter>& store_failures_;
  metrics::Family<metrics::Counter>& meter_events_;
  metrics::Family<metrics::Counter>& tenant_requests_;
  metrics::Family<metrics::Counter>& tenant_tokens_;
  metrics::Family<metrics::Gauge>& meter_individuals_;
  metrics::Family<metrics::Histogram>& attempt_duration_;
  metrics::Family<metrics::Histogram>& provider_ttft_;
  metrics::Family<metrics::Counter>& decisions_by_rule_;
  metrics::Family<metrics::Counter>& guard_applied_;
  metrics::Family<metrics::Counter>& echo_mismatches_;
  metrics::Family<metrics::Gauge>& quarantined_;
  std::vector<metrics::Counter*> raise_by_detector_;
};

/// Outcome label of a status: "ok", or the status code's name ("permission_denied", ...).
std::string_view OutcomeName(core::StatusCode code);

}  // namespace meridian::gateway
