#include "gateway/pipeline.h"

#include <chrono>
#include <utility>

#include "policy/explain.h"

namespace meridian::gateway {
namespace {

std::string DenyMessage(const policy::Decision& d, const core::CompletionRequest& request,
                        const std::string& guards) {
  const policy::Snapshot& s = *d.snapshot;
  const std::string route = d.route ? "route '" + s.routes[*d.route].id + "'" : "";
  switch (d.reason) {
    case policy::Reason::kDeniedByGuard:
      return s.guards[*d.deny_guard].deny_reason + " (guard " + s.guards[*d.deny_guard].id + ")";
    case policy::Reason::kNoRuleMatched:
      return "no routing rule allows this request (region " + d.region.ToString() +
             "); requests are denied by default";
    case policy::Reason::kEmptyAfterGuards:
      return "guards " + guards + " leave none of the providers " + route + " allows";
    case policy::Reason::kCapabilityUnavailable:
      return "model '" + request.model + "' is not available from the providers " + route +
             " allows" + (d.guards_applied.empty() ? "" : " after guards " + guards);
    case policy::Reason::kNone:
      break;
  }
  return "denied by policy";
}

}  // namespace

policy::RequestAttributes AttributesOf(const identity::Tenant& t,
                                       const identity::RegionDecision& region) {
  policy::RequestAttributes a;
  a.tenant = t.id;
  a.data_class = t.default_data_class;
  a.consent = t.consent;
  a.tenant_flags = t.flags;
  a.mechanisms = t.mechanisms;
  a.region = region.region;
  a.region_source = region.source;
  return a;
}

void CountRegionSignals(GatewayState& state, const identity::RegionDecision& region) {
  if (region.header_ignored_untrusted) {
    state.counters.region_header_ignored_untrusted.fetch_add(1, std::memory_order_relaxed);
  }
  if (region.header_rejected_not_allowed) {
    state.counters.region_header_rejected.fetch_add(1, std::memory_order_relaxed);
  }
}

Admission Admit(GatewayState& state, RoutingTablePtr table, policy::RequestAttributes attrs,
                const core::CompletionRequest& request) {
  Admission a;
  a.table = std::move(table);
  const policy::Snapshot& snapshot = *a.table->policy;
  attrs.model = request.model;
  if (!request.tools_json.empty()) {
    attrs.required_capabilities |= policy::Bit(policy::Capability::kTools);
  }
  // The classifier may raise the declared class (request, else tenant default, else the
  // policy's default) when the messages hold personal data; it never lowers it.
  const policy::DataClass declared =
      attrs.data_class.value_or(snapshot.settings.default_data_class);
  const classifier::Classification classified = classifier::Classify(declared, request.messages);
  if (classified.raised) {
    attrs.data_class = classified.effective;
    for (std::size_t d = 0; d < classifier::kDetectorCount; ++d) {
      if ((classified.detectors_mask & (1u << d)) == 0) continue;
      a.raised_by += (a.raised_by.empty() ? "" : ",") +
                     std::string(classifier::Name(static_cast<classifier::Detector>(d)));
    }
    state.counters.classifier_raises.fetch_add(1, std::memory_order_relaxed);
  }

  a.decision = policy::Decide(attrs, a.table->policy,
                              a.table->health->Unhealthy(std::chrono::steady_clock::now()));
  for (const auto& g : policy::GuardIds(a.decision)) a.guards += (a.guards.empty() ? "" : ",") + g;
  if (a.decision.allowed) return a;

  if (!policy::Lookup(snapshot.model_ids, request.model)) {
    a.status = core::Status::Error(core::StatusCode::kNotFound,
                                   "The model '" + request.model + "' does not exist",
                                   "model_not_found", "model");
  } else if (a.decision.Unavailable()) {
    a.status = core::Status::Error(core::StatusCode::kUnavailable,
                                   "every provider the policy allows is currently unavailable",
                                   "no_healthy_candidate");
    a.status.retry_after_s = state.config.limits.retry_after_s;
  } else {
    state.counters.policy_denials.fetch_add(1, std::memory_order_relaxed);
    a.status =
        core::Status::Error(core::StatusCode::kPermissionDenied,
                            DenyMessage(a.decision, request, a.guards), a.decision.ReasonCode());
  }
  return a;
}

std::vector<std::string> AllowedModels(const RoutingTable& table, const identity::Tenant& tenant,
                                       const identity::RegionDecision& region) {
  std::vector<std::string> aliases;
  const auto unhealthy = policy::ProviderSet{};
  for (const auto& alias : table.policy->model_names) {
    policy::RequestAttributes a = AttributesOf(tenant, region);
    a.model = alias;
    if (policy::Decide(a, table.policy, unhealthy).allowed) aliases.push_back(alias);
  }
  return aliases;
}

std::optional<InFlightSlot> InFlightSlot::Acquire(GatewayState& state, core::Status& refused) {
  if (state.in_flight.fetch_add(1, std::memory_order_acq_rel) >=
      static_cast<std::int64_t>(state.config.limits.max_concurrent_streams)) {
    state.in_flight.fetch_sub(1, std::memory_order_acq_rel);
    state.counters.concurrency_rejections.fetch_add(1, std::memory_order_relaxed);
    refused = core::Status::Error(core::StatusCode::kUnavailable,
                                  "too many concurrent requests; retry shortly", "overloaded");
    refused.retry_after_s = state.config.limits.retry_after_s;
    return std::nullopt;
  }
  return InFlightSlot(state.in_flight);
}

core::Status NotReady() {
  return core::Status::Error(core::StatusCode::kUnavailable, "no policy loaded", "not_ready");
}

}  // namespace meridian::gateway
