#include "gateway/gateway_metrics.h"

#include <atomic>
#include <unordered_map>

#include "gateway/classifier.h"
#include "gateway/gateway_state.h"
#include "gateway/meter.h"
#include "gateway/process_metrics.h"

namespace meridian::gateway {
namespace {

std::atomic<std::uint64_t> g_next_instance{1};

constexpr std::array<std::string_view, 2> kFrontEnds = {"http", "grpc"};

std::string_view DecisionName(const policy::Decision& d) {
  if (d.allowed) return "allowed";
  if (d.Unavailable()) return "unavailable";
  return "denied";
}

double Seconds(std::chrono::microseconds us) {
  return static_cast<double>(us.count()) / 1e6;
}

}  // namespace

std::string_view OutcomeName(core::StatusCode code) {
  using C = core::StatusCode;
  switch (code) {
    case C::kOk:
      return "ok";
    case C::kInvalidArgument:
      return "invalid_argument";
    case C::kUnauthenticated:
      return "unauthenticated";
    case C::kPermissionDenied:
      return "permission_denied";
    case C::kNotFound:
      return "not_found";
    case C::kMethodNotAllowed:
      return "method_not_allowed";
    case C::kPayloadTooLarge:
      return "payload_too_large";
    case C::kRateLimited:
      return "rate_limited";
    case C::kHeadersTooLarge:
      return "headers_too_large";
    case C::kCancelled:
      return "cancelled";
    case C::kInternal:
      return "internal";
    case C::kBadUpstream:
      return "bad_upstream";
    case C::kUnavailable:
      return "unavailable";
    case C::kUpstreamTimeout:
      return "upstream_timeout";
    case C::kNotImplemented:
      return "not_implemented";
    case C::kRequestTimeout:
      return "request_timeout";
  }
  return "unknown";
}

struct GatewayMetrics::Cache {
  std::uint64_t instance = 0;
  std::string version;
  std::unordered_map<std::uint64_t, metrics::Counter*> counters;
  std::unordered_map<std::uint64_t, metrics::Histogram*> histograms;
  /// Per tenant (from the config, so bounded): "tenant\0outcome" / "tenant\0in|out".
  std::unordered_map<std::string, metrics::Counter*> tenant_counters;
};

GatewayMetrics::Cache& GatewayMetrics::ThreadCache(const policy::Snapshot& snapshot) {
  thread_local Cache cache;
  if (cache.instance != instance_ || cache.version != snapshot.version) {
    cache.counters.clear();
    cache.histograms.clear();
    cache.tenant_counters.clear();
    cache.instance = instance_;
    cache.version = snapshot.version;
  }
  return cache;
}

GatewayMetrics::GatewayMetrics(const GatewayState& state)
    : instance_(g_next_instance.fetch_add(1)),
      requests_(registry_.AddCounter(
          "meridian_requests_total",
          "Requests that reached a policy decision, by front end, user region, decision, the "
          "provider that answered (or was tried last; none when denied) and outcome.",
          {"front_end", "region", "decision", "provider", "outcome"})),
      duration_(registry_.AddHistogram("meridian_request_duration_seconds",
                                       "Time from the decision to the end of the answer.",
                                       {"front_end"}, metrics::DefaultLatencyBuckets())),
      ttft_(registry_.AddHistogram(
          "meridian_time_to_first_token_seconds",
          "Time from the decision to the first byte of the answer reaching the client (streams).",
          {"front_end"}, metrics::DefaultLatencyBuckets())),
      attempts_(registry_.AddCounter("meridian_upstream_attempts_total",
                                     "Upstream attempts by provider and outcome.",
                                     {"provider", "outcome"})),
      fallbacks_(registry_.AddCounter(
          "meridian_upstream_fallbacks_total",
          "Fallbacks to the next allowed provider, by the provider that failed and the cause.",
          {"provider", "cause"})),
      tokens_(registry_.AddCounter("meridian_tokens_total",
                                   "Tokens by provider and direction (in: prompt, out: "
                                   "completion), as the provider reported them.",
                                   {"provider", "direction"})),
      raises_(registry_.AddCounter(
          "meridian_classifier_raises_by_detector_total",
          "Requests whose data class a PII detector raised, by detector kind.", {"detector"})),
      admin_(registry_.AddCounter("meridian_admin_requests_total",
                                  "Requests answered by the admin listener (probes, scrapes, "
                                  "reloads), by route and status; not counted as HTTP traffic.",
                                  {"path", "code"})),
      rate_limited_(registry_.AddCounter(
          "meridian_rate_limited_total",
          "Requests refused (429) by a tenant's rate limit or token budget, by tenant, scope "
          "(tenant, key, subject) and limit.",
          {"tenant", "scope", "limit"})),
      store_failures_(registry_.AddCounter(
          "meridian_store_failures_total",
          "Rate-limit checks the shared state store could not answer, by what the request got "
          "(fail_open: admitted unchecked; fail_closed: refused with 503).",
          {"outcome"})),
      meter_events_(registry_.AddCounter(
          "meridian_export_meter_events_total",
          "The cross-border export meter: individuals added (added_non_sensitive, "
          "added_sensitive), exports refused (export_needs_subject, export_meter_band_reached, "
          "export_meter_unavailable) and exported without a subject (exported_uncounted).",
          {"event"})),
      tenant_requests_(registry_.AddCounter(
          "meridian_tenant_requests_total",
          "Requests that reached a policy decision, by tenant (from the config) and outcome.",
          {"tenant", "outcome"})),
      tenant_tokens_(registry_.AddCounter(
          "meridian_tenant_tokens_total",
          "Tokens the providers reported, by tenant and direction (in: prompt, out: completion).",
          {"tenant", "direction"})),
      meter_individuals_(registry_.AddGauge(
          "meridian_xborder_individuals",
          "The cross-border export meter as last read: distinct individuals exported this CST "
          "year, by tenant and class (non_sensitive, sensitive). The law's bands: 10,000 "
          "sensitive; 100,000 and 1,000,000 non-sensitive.",
          {"tenant", "class"})),
      attempt_duration_(registry_.AddHistogram(
          "meridian_upstream_attempt_duration_seconds",
          "Upstream attempts by provider: from sending the request to the end of the answer (or "
          "of the attempt, when it failed).",
          {"provider"}, metrics::DefaultLatencyBuckets())),
      provider_ttft_(registry_.AddHistogram(
          "meridian_provider_time_to_first_token_seconds",
          "Streams by the provider that answered: from the decision to the first byte of the "
          "answer reaching the client.",
          {"provider"}, metrics::DefaultLatencyBuckets())),
      decisions_by_rule_(registry_.AddCounter(
          "meridian_decisions_total",
          "Policy decisions by the rule that decided: the matched route, or the guard that "
          "denied (none: the default deny). Rules come from the policy, so the set is bounded.",
          {"rule", "decision"})),
      guard_applied_(registry_.AddCounter(
          "meridian_guard_applications_total",
          "Guards that applied to a decision (narrowed the allowed providers or denied), by "
          "guard id.",
          {"guard"})),
      echo_mismatches_(registry_.AddCounter(
          "meridian_residency_echo_mismatch_total",
          "Answers whose provider said it processed them outside the processing locations the "
          "policy declares for it (or somewhere the gateway cannot place), by provider.",
          {"provider"})),
      quarantined_(registry_.AddGauge(
          "meridian_provider_quarantined",
          "1 while a provider is out of rotation after a residency echo mismatch "
          "(on_echo_mismatch: quarantine), until POST /admin/quarantine/release.",
          {"provider"})) {
  for (std::size_t d = 0; d < classifier::kDetectorCount; ++d) {
    raise_by_detector_.push_back(
        &raises_.With({classifier::Name(static_cast<classifier::Detector>(d))}));
  }
  const Counters& c = state.counters;
  auto counter = [this](const char* name, const char* help, const std::atomic<std::uint64_t>& v) {
    registry_.AddCounterCallback(name, help, [&v] { return static_cast<double>(v.load()); });
  };
  counter("meridian_http_requests_total", "HTTP requests received.", c.requests);
  counter("meridian_grpc_requests_total", "gRPC calls received.", c.grpc_requests);
  counter("meridian_policy_denials_total", "Requests denied by the policy.", c.policy_denials);
  counter("meridian_classifier_raises_total",
          "Requests whose data class the PII classifier raised.", c.classifier_raises);
  counter("meridian_region_header_ignored_total",
          "Region headers (or gRPC region claims) ignored because the sender is not trusted.",
          c.region_header_ignored_untrusted);
  counter("meridian_region_header_rejected_total",
          "Region headers from trusted senders outside the tenant's allowed regions.",
          c.region_header_rejected);
  counter("meridian_conflicting_signals_total",
          "Requests whose region, data-class or consent signal came in disagreeing copies "
          "(resolved to the most restrictive).",
          c.conflicting_signals);
  counter("meridian_multiple_credentials_total",
          "Requests refused (400) for carrying more than one credential.", c.multiple_credentials);
  counter("meridian_client_disconnects_total", "Clients that went away mid-request.",
          c.client_disconnects);
  counter("meridian_slow_clients_total",
          "Requests answered 408: begun but not received within the header or body timeout.",
          c.slow_clients);
  counter("meridian_concurrency_rejections_total",
          "Requests rejected with 503 because max_concurrent_streams was reached.",
          c.concurrency_rejections);
  const auto* draining = &state.draining;
  registry_.AddGaugeCallback("meridian_draining",
                             "1 while the gateway drains for shutdown (SIGTERM), else 0.",
                             [draining] { return draining->load() ? 1.0 : 0.0; });
  const GatewayState* st = &state;
  registry_.AddGaugeFamilyCallback(
      "meridian_provider_circuit_state",
      "Circuit breaker per provider and model alias of the loaded policy: 0 closed, 1 half-open "
      "(a probe may go), 2 open (routed around; also a provider disabled for a missing "
      "credential).",
      {"provider", "model"}, [st] {
        metrics::Registry::Samples out;
        const RoutingTablePtr table = st->Table();
        if (!table || !table->health) return out;
        const auto now = std::chrono::steady_clock::now();
        const policy::Snapshot& snap = *table->policy;
        for (std::size_t p = 0; p < snap.providers.size(); ++p) {
          for (std::size_t m = 0; m < snap.model_names.size(); ++m) {
            const auto circuit = table->health->State(static_cast<policy::ProviderIndex>(p),
                                                      static_cast<std::uint32_t>(m), now);
            out.push_back({{snap.providers[p].id, snap.model_names[m]},
                           static_cast<double>(static_cast<int>(circuit))});
          }
        }
        return out;
      });
  registry_.SetInfo("meridian_build_info", "The gateway's version and source revision.",
                    {{"version", MERIDIAN_VERSION}, {"revision", MERIDIAN_REVISION}});
  auto process = [this](const char* name, const char* help, bool is_counter,
                        double (*get)(const ProcessStats&)) {
    auto fn = [get] { return get(ReadProcessStats()); };
    if (is_counter) {
      registry_.AddCounterCallback(name, help, fn);
    } else {
      registry_.AddGaugeCallback(name, help, fn);
    }
  };
  process("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", true,
          [](const ProcessStats& p) { return p.cpu_seconds; });
  process("process_resident_memory_bytes", "Resident memory size in bytes.", false,
          [](const ProcessStats& p) { return static_cast<double>(p.resident_bytes); });
  process("process_virtual_memory_bytes", "Virtual memory size in bytes.", false,
          [](const ProcessStats& p) { return static_cast<double>(p.virtual_bytes); });
  process("process_open_fds", "Number of open file descriptors.", false,
          [](const ProcessStats& p) { return static_cast<double>(p.open_fds); });
  process("process_max_fds", "Maximum number of open file descriptors.", false,
          [](const ProcessStats& p) { return static_cast<double>(p.max_fds); });
  process("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
          false, [](const ProcessStats& p) { return p.start_time_seconds; });
  const auto* in_flight = &state.in_flight;
  registry_.AddGaugeCallback("meridian_in_flight_requests",
                             "Completions (streams and JSON answers) being served.",
                             [in_flight] { return static_cast<double>(in_flight->load()); });
}

void GatewayMetrics::Record(const RequestReport& r) {
  const policy::Decision& d = r.admission->decision;
  const policy::Snapshot& s = *d.snapshot;
  Cache& cache = ThreadCache(s);
  const auto fe = static_cast<std::uint64_t>(r.front_end);
  constexpr std::uint64_t kNone = 0xffff;
  // The provider that answered, else the one tried last.
  std::uint64_t provider = kNone;
  if (r.served_by) {
    provider = *r.served_by;
  } else if (!r.attempts.empty()) {
    provider = r.attempts.back().provider;
  }
  const std::uint64_t decision = d.allowed ? 0 : d.Unavailable() ? 1 : 2;
  const auto outcome = static_cast<std::uint64_t>(r.status.code);
  const std::uint64_t key = fe | (std::uint64_t{d.region.index()} << 2) | (decision << 18) |
                            (provider << 20) | (outcome << 36);
  metrics::Counter*& req = cache.counters[key];
  if (req == nullptr) {
    req = &requests_.With(
        {kFrontEnds[fe], d.region.ToString(), DecisionName(d),
         provider == kNone ? std::string_view("none") : std::string_view(s.providers[provider].id),
         OutcomeName(r.status.code)});
  }
  req->Inc();

  if (!r.tenant.empty()) {
    std::string tk(r.tenant);
    tk += '\0';
    tk += OutcomeName(r.status.code);
    metrics::Counter*& tr = cache.tenant_counters[tk];
    if (tr == nullptr) tr = &tenant_requests_.With({r.tenant, OutcomeName(r.status.code)});
    tr->Inc();
    if (r.usage) {
      for (int dir = 0; dir < 2; ++dir) {
        const std::int64_t n = dir == 0 ? r.usage->prompt_tokens : r.usage->completion_tokens;
        if (n <= 0) continue;
        tk.resize(r.tenant.size() + 1);
        tk += dir == 0 ? "\1in" : "\1out";
        metrics::Counter*& tt = cache.tenant_counters[tk];
        if (tt == nullptr) tt = &tenant_tokens_.With({r.tenant, dir == 0 ? "in" : "out"});
        tt->Add(static_cast<std::uint64_t>(n));
      }
    }
  }

  metrics::Histogram*& dur = cache.histograms[fe];
  if (dur == nullptr) dur = &duration_.With({kFrontEnds[fe]});
  dur->Observe(Seconds(r.total));
  if (r.ttft) {
    metrics::Histogram*& t = cache.histograms[fe | 4];
    if (t == nullptr) t = &ttft_.With({kFrontEnds[fe]});
    t->Observe(Seconds(*r.ttft));
  }
  // Per provider: TTFT of the one that answered, the duration of every attempt actually sent.
  constexpr std::uint64_t kProviderTtft = 1ull << 40, kAttemptDuration = 2ull << 40;
  if (r.ttft && r.served_by) {
    metrics::Histogram*& t = cache.histograms[kProviderTtft | *r.served_by];
    if (t == nullptr) t = &provider_ttft_.With({s.providers[*r.served_by].id});
    t->Observe(Seconds(*r.ttft));
  }
  for (const Attempt& a : r.attempts) {
    if (IsExportGateRefusal(a.status)) continue;  // nothing was sent
    metrics::Histogram*& h = cache.histograms[kAttemptDuration | a.provider];
    if (h == nullptr) h = &attempt_duration_.With({s.providers[a.provider].id});
    h->Observe(Seconds(a.duration));
  }
  // By rule (the matched route or the denying guard) and by guard applied.
  constexpr std::uint64_t kRule = 4ull << 60, kGuard = 5ull << 60;
  {
    std::uint64_t rule_key = kRule | (decision << 32) | 0xffffffffull;
    std::string_view rule = "none";
    if (const auto* route = d.MatchedRoute()) {
      rule = route->id;
      rule_key = kRule | (decision << 32) | *d.route;
    } else if (d.deny_guard) {
      rule = s.guards[*d.deny_guard].id;
      rule_key = kRule | (decision << 32) | (1ull << 31) | *d.deny_guard;
    }
    metrics::Counter*& rc = cache.counters[rule_key];
    if (rc == nullptr) rc = &decisions_by_rule_.With({rule, DecisionName(d)});
    rc->Inc();
  }
  for (const std::uint16_t g : d.guards_applied) {
    metrics::Counter*& gc = cache.counters[kGuard | g];
    if (gc == nullptr) gc = &guard_applied_.With({s.guards[g].id});
    gc->Inc();
  }
  constexpr std::uint64_t kAttempt = 1ull << 60, kFallback = 2ull << 60, kTokens = 3ull << 60;
  for (std::size_t i = 0; i < r.attempts.size(); ++i) {
    const Attempt& a = r.attempts[i];
    const auto code = static_cast<std::uint64_t>(a.status.code);
    metrics::Counter*& att = cache.counters[kAttempt | (std::uint64_t{a.provider} << 8) | code];
    if (att == nullptr) {
      att = &attempts_.With({s.providers[a.provider].id, OutcomeName(a.status.code)});
    }
    att->Inc();
    if (i + 1 < r.attempts.size()) {  // a later attempt followed: this one fell back
      metrics::Counter*& fb = cache.counters[kFallback | (std::uint64_t{a.provider} << 8) | code];
      if (fb == nullptr) {
        fb = &fallbacks_.With({s.providers[a.provider].id, OutcomeName(a.status.code)});
      }
      fb->Inc();
    }
  }
  if (r.usage && r.served_by) {
    for (std::uint64_t dir = 0; dir < 2; ++dir) {
      metrics::Counter*& tok = cache.counters[kTokens | (std::uint64_t{*r.served_by} << 8) | dir];
      if (tok == nullptr) {
        tok = &tokens_.With({s.providers[*r.served_by].id, dir == 0 ? "in" : "out"});
      }
      const std::int64_t n = dir == 0 ? r.usage->prompt_tokens : r.usage->completion_tokens;
      if (n > 0) tok->Add(static_cast<std::uint64_t>(n));
    }
  }
}

void GatewayMetrics::RecordRaise(std::uint32_t mask) {
  for (std::size_t d = 0; d < raise_by_detector_.size(); ++d) {
    if ((mask & (1u << d)) != 0) raise_by_detector_[d]->Inc();
  }
}

void GatewayMetrics::RecordAdmin(std::string_view path, unsigned status) {
  // Rare (probes every few seconds): the child is looked up by name, under the family's lock.
  admin_.With({path, std::to_string(status)}).Inc();
}

void GatewayMetrics::RecordRateLimited(std::string_view tenant, std::string_view scope,
                                       std::string_view limit) {
  // On refusals only; tenants come from the config, so the label set stays bounded.
  rate_limited_.With({tenant, scope, limit}).Inc();
}

void GatewayMetrics::RecordEchoMismatch(std::string_view provider) {
  echo_mismatches_.With({provider}).Inc();
}

void GatewayMetrics::SetQuarantined(std::string_view provider, bool quarantined) {
  quarantined_.With({provider}).Set(quarantined ? 1 : 0);
}

void GatewayMetrics::RecordStoreFailure(bool fail_open) {
  store_failures_.With({fail_open ? "fail_open" : "fail_closed"}).Inc();
}

void GatewayMetrics::RecordMeter(std::string_view event) {
  meter_events_.With({event}).Inc();
}

void GatewayMetrics::SetMeterReading(std::string_view tenant, std::uint64_t non_sensitive,
                                     std::uint64_t sensitive) {
  // Tenants come from the config: bounded. Looked up under the family's lock, once per request
  // of a tenant the meter applies to.
  meter_individuals_.With({tenant, "non_sensitive"}).Set(static_cast<std::int64_t>(non_sensitive));
  meter_individuals_.With({tenant, "sensitive"}).Set(static_cast<std::int64_t>(sensitive));
}

void GatewayMetrics::SetPolicyVersion(const std::string& version) {
  registry_.SetInfo("meridian_policy_info", "The policy version serving now.",
                    {{"version", version}});
}

}  // namespace meridian::gateway
