// What both front ends (HTTP and gRPC) do between "who is calling and what do they ask" and
// "send it upstream": the caller's policy attributes, classification, the policy decision,
// the refusal to answer when there is none, and admission against the concurrency limit.
// No I/O: a front end turns the result into its own headers/metadata and status.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/classifier.h"
#include "gateway/core/request.h"
#include "gateway/core/status.h"
#include "gateway/gateway_state.h"
#include "gateway/identity.h"
#include "policy/decide.h"

namespace meridian::gateway {

/// The policy attributes a tenant contributes (defaults, flags, mechanisms, consent) plus the
/// established region. The vectors it points into live in the tenant registry.
policy::RequestAttributes AttributesOf(const identity::Tenant& tenant,
                                       const identity::RegionDecision& region);

/// Counts the region signals a front end ignored or rejected.
void CountRegionSignals(GatewayState& state, const identity::RegionDecision& region);

/// The outcome of admitting one completion request.
struct Admission {
  /// Not ok: answer with it (unknown model, no healthy provider, policy denial). The decision
  /// fields below are still filled in (front ends report rule and guards on refusals too).
  core::Status status;
  RoutingTablePtr table;
  policy::Decision decision;
  /// Detector (and content part) kinds that raised the class ("cn_resident_id", "image");
  /// empty when the class was not raised. Never the matched values. Joined only on the wire
  /// (RaisedByHeader).
  std::vector<std::string> raised_by;
  std::string guards;  ///< ids of the guards applied, comma-separated
  policy::DataClass declared = policy::DataClass::kPersonal;  ///< before the classifier
  /// x-ratelimit-* headers of the caller's rate limits (gateway/quota.h), once taken.
  std::vector<std::pair<std::string, std::string>> limit_headers;

  const policy::Route* route() const { return decision.MatchedRoute(); }
  /// x-meridian-data-class-raised: "<effective class>; by=<kind>,<kind>" ("" when not raised).
  std::string RaisedByHeader() const;
};

/// The capabilities a request needs, from what it asks for (never from what it claims):
/// `tools` for tool definitions, `vision` for image or video parts (`part_kinds`, a mask of
/// core::PartKind bits), `streaming` for `stream: true`, `thinking` for enable_thinking: true,
/// `json_mode` for a `response_format` other than {"type":"text"}, `embeddings` for an
/// embeddings request.
std::uint32_t RequiredCapabilities(const core::CompletionRequest& request,
                                   std::uint32_t part_kinds);

/// Classifies the messages (raising attrs.data_class, never lowering it), decides, and maps
/// a refusal to its status. `attrs` is the caller's (region, tenant, declared class, consent);
/// its model and capabilities are filled in from `request`. Counts raises and denials.
Admission Admit(GatewayState& state, RoutingTablePtr table, policy::RequestAttributes attrs,
                const core::CompletionRequest& request);

/// The model aliases this caller could be routed to with its tenant defaults and region.
std::vector<std::string> AllowedModels(const RoutingTable& table, const identity::Tenant& tenant,
                                       const identity::RegionDecision& region);

/// A place among the completions in flight (limits.max_concurrent_streams), released on
/// destruction. Acquire fails with kUnavailable ("overloaded", Retry-After) when full.
class InFlightSlot {
 public:
  static std::optional<InFlightSlot> Acquire(GatewayState& state, core::Status& refused);
  InFlightSlot(InFlightSlot&& other) noexcept : n_(std::exchange(other.n_, nullptr)) {}
  InFlightSlot& operator=(InFlightSlot&&) = delete;
  ~InFlightSlot() {
    if (n_ != nullptr) n_->fetch_sub(1, std::memory_order_acq_rel);
  }

 private:
  explicit InFlightSlot(std::atomic<std::int64_t>& n) : n_(&n) {}
  std::atomic<std::int64_t>* n_;
};

/// The status of a request that arrives while no policy is loaded.
core::Status NotReady();
/// The status of a request the gateway's drain ends (or refuses): UNAVAILABLE, Retry-After.
core::Status ShuttingDown(std::uint32_t retry_after_s);

/// Reserves the audit record of a request about to be decided (always true without an audit
/// log). False in fail-closed mode when the audit trail cannot take it: answer AuditUnavailable.
bool ReserveAudit(GatewayState& state);
struct RequestReport;
/// Records a request that reached a decision: its metrics and (exactly once per ReserveAudit)
/// its audit line. From any thread.
void ReportDecided(GatewayState& state, RequestReport& report);
std::int64_t UnixMillisNow();
core::Status AuditUnavailable(const GatewayState& state);

}  // namespace meridian::gateway
