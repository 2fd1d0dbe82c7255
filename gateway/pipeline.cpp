#include "gateway/pipeline.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <utility>

#include "gateway/audit.h"
#include "gateway/gateway_metrics.h"
#include "gateway/log.h"
#include "gateway/meter.h"
#include "gateway/residency_echo.h"
#include "policy/explain.h"

namespace meridian::gateway {
namespace {

// The required capabilities that no provider left after the guards offers for the model
// (the providers Decide excluded "by capability"), as "'vision', 'tools'"; empty when every
// one of them is offered by some provider and only the model is missing.
std::string MissingCapabilities(const policy::Decision& d, std::uint32_t required,
                                std::optional<std::uint32_t> model) {
  const policy::Snapshot& s = *d.snapshot;
  std::string out;
  for (std::size_t bit = 0; bit < policy::kCapabilityNames.size(); ++bit) {
    if ((required & (1u << bit)) == 0) continue;
    bool offered = false;
    for (const policy::Exclusion& e : d.excluded) {
      if (e.by != policy::Exclusion::By::kCapability) continue;
      offered = offered || (model && s.model_capability[*model][bit].test(e.provider));
    }
    if (!offered) {
      out += (out.empty() ? "'" : ", '") + std::string(policy::kCapabilityNames[bit]) + "'";
    }
  }
  return out;
}

std::string DenyMessage(const policy::Decision& d, const core::CompletionRequest& request,
                        const policy::RequestAttributes& attrs, const std::string& guards) {
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
    case policy::Reason::kCapabilityUnavailable: {
      const std::string after = d.guards_applied.empty() ? "" : " after guards " + guards;
      const auto model = policy::Lookup(s.model_ids, request.model);
      bool any_serves = false;
      for (const policy::Exclusion& e : d.excluded) {
        any_serves = any_serves || (e.by == policy::Exclusion::By::kCapability && model &&
                                    s.serving_model[*model].test(e.provider));
      }
      if (!any_serves) {
        return "model '" + request.model + "' is not available from the providers " + route +
               " allows" + after;
      }
      return "the request needs capability " +
             MissingCapabilities(d, attrs.required_capabilities, model) + ", which no provider " +
             route + " allows offers for model '" + request.model + "'" + after;
    }
    case policy::Reason::kNone:
      break;
  }
  return "denied by policy";
}

// `response_format` asks for JSON output ({"type":"json_object"} or {"type":"json_schema",..}),
// which only a provider with json_mode honours; {"type":"text"} asks for nothing.
bool AsksForJson(const core::CompletionRequest& request) {
  for (const core::PassthroughMember& m : request.passthrough) {
    if (m.key != "response_format") continue;
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(m.json, ec);
    const boost::json::object* o = ec ? nullptr : v.if_object();
    const boost::json::value* type = o != nullptr ? o->if_contains("type") : nullptr;
    return type != nullptr && type->is_string() && type->get_string() != "text";
  }
  return false;
}

}  // namespace

std::uint32_t RequiredCapabilities(const core::CompletionRequest& request,
                                   std::uint32_t part_kinds) {
  using policy::Bit;
  using policy::Capability;
  std::uint32_t required = 0;
  if (!request.tools_json.empty()) required |= Bit(Capability::kTools);
  if ((part_kinds & (Bit(core::PartKind::kImage) | Bit(core::PartKind::kVideo))) != 0) {
    required |= Bit(Capability::kVision);
  }
  if (request.stream) required |= Bit(Capability::kStreaming);
  if (request.enable_thinking == true) required |= Bit(Capability::kThinking);
  if (AsksForJson(request)) required |= Bit(Capability::kJsonMode);
  if (request.op == core::Operation::kEmbed) required |= Bit(Capability::kEmbeddings);
  return required;
}

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
  if (region.conflicting_copies) {
    state.counters.conflicting_signals.fetch_add(1, std::memory_order_relaxed);
  }
}

std::string Admission::RaisedByHeader() const {
  if (raised_by.empty()) return {};
  std::string out = std::string(policy::Name(decision.data_class)) + "; by=";
  for (std::size_t i = 0; i < raised_by.size(); ++i) {
    if (i > 0) out += ',';
    out += raised_by[i];
  }
  return out;
}

Admission Admit(GatewayState& state, RoutingTablePtr table, policy::RequestAttributes attrs,
                const core::CompletionRequest& request) {
  Admission a;
  a.table = std::move(table);
  const policy::Snapshot& snapshot = *a.table->policy;
  attrs.model = request.model;
  // The classifier walks everything the upstream request will carry and may raise the
  // declared class (request, else tenant default, else the policy's default); it never
  // lowers it. Media parts and token ids cannot be scanned: they imply
  // settings.image_data_class.
  const classifier::RequestScan scan = classifier::ScanRequest(request);
  using classifier::PartKind;
  attrs.required_capabilities |= RequiredCapabilities(request, scan.part_kinds);
  const policy::DataClass declared =
      attrs.data_class.value_or(snapshot.settings.default_data_class);
  a.declared = declared;
  const classifier::Classification classified = classifier::Classify(declared, scan);
  policy::DataClass effective = classified.effective;
  std::uint32_t media = 0;
  for (PartKind k :
       {PartKind::kImage, PartKind::kAudio, PartKind::kFile, PartKind::kVideo, PartKind::kTokens}) {
    if ((scan.part_kinds & policy::Bit(k)) != 0 && snapshot.settings.image_data_class > declared) {
      media |= policy::Bit(k);
      effective = std::max(effective, snapshot.settings.image_data_class);
    }
  }
  if (effective > declared) {
    attrs.data_class = effective;
    for (std::size_t d = 0; d < classifier::kDetectorCount; ++d) {
      if ((classified.detectors_mask & (1u << d)) == 0) continue;
      a.raised_by.emplace_back(classifier::Name(static_cast<classifier::Detector>(d)));
    }
    for (std::size_t k = 0; k < core::kPartKindCount; ++k) {
      if ((media & (1u << k)) == 0) continue;
      a.raised_by.emplace_back(core::Name(static_cast<PartKind>(k)));
    }
    state.counters.classifier_raises.fetch_add(1, std::memory_order_relaxed);
    if (state.metrics && classified.raised) state.metrics->RecordRaise(classified.detectors_mask);
  }

  a.decision =
      policy::Decide(attrs, a.table->policy,
                     a.table->health->Unhealthy(std::chrono::steady_clock::now(),
                                                policy::Lookup(snapshot.model_ids, request.model)) |
                         state.quarantine.Of(snapshot));
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
    a.status = core::Status::Error(core::StatusCode::kPermissionDenied,
                                   DenyMessage(a.decision, request, attrs, a.guards),
                                   a.decision.ReasonCode());
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

bool ReserveAudit(GatewayState& state) {
  return !state.audit || state.audit->Reserve();
}

core::Status AuditUnavailable(const GatewayState& state) {
  auto st = core::Status::Error(core::StatusCode::kUnavailable,
                                "the audit log cannot record requests right now; retry shortly",
                                "audit_unavailable");
  st.retry_after_s = state.config.limits.retry_after_s;
  return st;
}

std::int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void ReportDecided(GatewayState& state, RequestReport& r) {
  if (state.metrics) state.metrics->Record(r);
  const Admission& a = *r.admission;
  const policy::Decision& d = a.decision;
  const policy::Snapshot& s = *d.snapshot;
  // The residency echo of the provider that answered: its body's (usage) or a header's.
  std::string echo;
  EchoVerdict verdict = EchoVerdict::kNone;
  if (r.served_by) {
    if (r.usage) echo = r.usage->processing_echo;
    for (const auto& at : r.attempts) {
      if (echo.empty() && at.provider == *r.served_by) echo = at.processing_echo;
    }
    const policy::Provider& p = s.providers[*r.served_by];
    verdict = CheckEcho(echo, p.processing);
    if (verdict == EchoVerdict::kOutside || verdict == EchoVerdict::kUnrecognised) {
      if (state.metrics) state.metrics->RecordEchoMismatch(p.id);
      const policy::Route* route = d.MatchedRoute();
      Log(LogLevel::kWarning,
          "residency echo mismatch: provider '" + p.id + "' answered request " +
              std::string(r.request_id) + " (rule '" + (route ? route->id : std::string()) +
              "') saying " + echo + ", " +
              (verdict == EchoVerdict::kOutside ? "outside"
                                                : "which the gateway cannot place within") +
              " its declared processing " +
              (p.processing ? p.processing->ToString() : std::string("(not stated)")) +
              "; the answer was delivered");
      if (p.quarantine_on_echo_mismatch &&
          state.quarantine.Add({p.id, UnixMillisNow(), echo, std::string(r.request_id)})) {
        if (state.metrics) state.metrics->SetQuarantined(p.id, true);
        Log(LogLevel::kWarning, "provider '" + p.id +
                                    "' quarantined (on_echo_mismatch: quarantine): no request is "
                                    "routed to it until an operator releases it with POST "
                                    "/admin/quarantine/release?provider=" +
                                    p.id + " on the admin listener");
      }
    }
  }
  if (!state.audit) return;
  audit::Record rec;
  rec.time_unix_ms = r.decided_unix_ms;
  rec.request_id = r.request_id;
  rec.front_end = r.front_end == RequestReport::FrontEnd::kGrpc ? "grpc" : "http";
  rec.tenant = r.tenant;
  rec.model = r.model;
  // The provider's name for the alias: of the provider that answered, else the last one tried.
  std::optional<policy::ProviderIndex> upstream = r.served_by;
  if (!upstream && !r.attempts.empty()) upstream = r.attempts.back().provider;
  if (upstream) {
    if (const std::string* name = s.providers[*upstream].UpstreamModel(r.model)) {
      rec.upstream_model = *name;
    }
  }
  rec.region = d.region.ToString();
  rec.region_source = std::string(policy::Name(d.region_source));
  rec.declared_class = std::string(policy::Name(a.declared));
  rec.effective_class = std::string(policy::Name(d.data_class));
  rec.raised_by = a.raised_by;
  rec.allowed = d.allowed;
  rec.reason_code = d.ReasonCode();
  if (const auto* route = d.MatchedRoute()) {
    rec.rule = route->id;
  } else if (d.deny_guard) {
    rec.rule = s.guards[*d.deny_guard].id;
  }
  rec.guards = policy::GuardIds(d);
  for (const auto p : d.candidates_after) rec.candidates.push_back(s.providers[p].id);
  for (const auto& at : r.attempts) {
    if (Exports(s.providers[at.provider]) && !IsExportGateRefusal(at.status)) rec.exported = true;
    rec.attempts.push_back({s.providers[at.provider].id,
                            at.status.ok()             ? std::string("ok")
                            : at.status.reason.empty() ? std::string(OutcomeName(at.status.code))
                                                       : at.status.reason,
                            at.duration.count()});
  }
  rec.new_individual = r.new_individual;
  if (verdict != EchoVerdict::kNone) {
    rec.echo_said = std::move(echo);
    rec.echo_verdict = std::string(Name(verdict));
  }
  rec.status = r.wire_status;
  rec.status_reason = r.status.ok() ? std::string() : std::string(OutcomeName(r.status.code));
  if (!r.status.reason.empty()) rec.status_reason = r.status.reason;
  if (r.usage) {
    rec.prompt_tokens = r.usage->prompt_tokens;
    rec.completion_tokens = r.usage->completion_tokens;
    rec.total_tokens = r.usage->total_tokens;
  }
  if (r.ttft) rec.ttft_us = r.ttft->count();
  rec.total_us = r.total.count();
  rec.policy_version = s.version;
  state.audit->Submit(std::move(rec));
}

core::Status ShuttingDown(std::uint32_t retry_after_s) {
  auto st = core::Status::Error(core::StatusCode::kUnavailable,
                                "the gateway is shutting down; retry the request", "shutting_down");
  st.retry_after_s = retry_after_s;
  return st;
}

core::Status NotReady() {
  return core::Status::Error(core::StatusCode::kUnavailable, "no policy loaded", "not_ready");
}

}  // namespace meridian::gateway
