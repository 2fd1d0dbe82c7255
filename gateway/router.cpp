#include "gateway/router.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <memory>

#include "gateway/log.h"
#include "providers/anthropic/anthropic_adapter.h"
#include "providers/dashscope/dashscope_adapter.h"
#include "providers/openai/openai_adapter.h"
#include "providers/sim/sim_provider.h"

namespace meridian::gateway {
namespace {

/// What a failed attempt means for the rest of the decision, before anything reached the
/// client (after the commit point nothing moves: the stream ends with an error event).
struct Verdict {
  bool next = false;    ///< try the decision's next candidate
  bool counts = false;  ///< the failure is the provider's: it counts against its health
  bool trip = false;    ///< open the provider's circuit at once
};

Verdict Judge(const core::Status& s) {
  using core::StatusCode;
  // The upstream judged the request itself (invalid, too large, content filter): any provider
  // would, so the client gets that answer unchanged.
  if (s.code == StatusCode::kInvalidArgument || s.code == StatusCode::kPayloadTooLarge) {
    // Except the gateway's own adapter refusing a part or input it cannot send: another may.
    if (s.reason == "unsupported_content_part" || s.reason == "unsupported_input") {
      return {.next = true};
    }
    return {};
  }
  // A provider that rejects the gateway's key (revoked, or no access) is the provider's
  // fault, never the client's: route around it at once.
  if (s.reason == "upstream_unauthorized" || s.reason == "upstream_forbidden" ||
      s.reason == "upstream_billing") {
    return {.next = true, .counts = true, .trip = true};
  }
  // Everything else is the provider failing to serve: 5xx, 429, timeouts, resets, a body or
  // stream that cannot be understood, a 404 for the model (a provider misconfiguration).
  return {.next = true, .counts = true};
}

/// The cancellation of an attempt under a provider's max_duration_ms: the request's own
/// (client gone, deadline, drain) forwarded, or the cap's timer. Shared with the timer's
/// handler, which may run after the attempt returned.
struct CappedAttempt {
  providers::CancelToken token;
  bool expired = false;
};

/// Runs one attempt; with a max_duration_ms it is cancelled when that passes, and reported as
/// the provider's timeout (retryable before the commit point, like any other).
asio::awaitable<providers::AttemptResult> RunAttempt(providers::Provider& adapter,
                                                     const core::CompletionRequest& request,
                                                     const providers::Target& target,
                                                     providers::ChunkSink& sink,
                                                     providers::CancelToken& cancel) {
  const std::chrono::milliseconds cap = target.provider->max_duration;
  if (cap.count() <= 0) co_return co_await adapter.Complete(request, target, sink, cancel);
  auto attempt = std::make_shared<CappedAttempt>();
  asio::steady_timer timer(co_await asio::this_coro::executor, cap);
  timer.async_wait([attempt](const boost::system::error_code& ec) {
    if (ec) return;  // the attempt ended first
    attempt->expired = true;
    attempt->token.Cancel();
  });
  cancel.OnCancel([attempt] { attempt->token.Cancel(); });
  providers::AttemptResult r = co_await adapter.Complete(request, target, sink, attempt->token);
  cancel.Clear();
  timer.cancel();
  if (attempt->expired && !cancel.cancelled()) {
    r.status = core::Status::Error(core::StatusCode::kUpstreamTimeout,
                                   "provider '" + target.provider->id +
                                       "' did not finish within its max_duration_ms (" +
                                       std::to_string(cap.count()) + " ms)",
                                   "upstream_max_duration");
    r.status.retryable = true;
  }
  co_return r;
}

}  // namespace

AdapterSet::AdapterSet(asio::any_io_executor executor, std::shared_ptr<asio::ssl::context> tls,
                       providers::ClientLimits limits)
    : client_(std::make_unique<providers::HttpClient>(executor, std::move(tls), limits)),
      sim_(std::make_unique<providers::SimProvider>(executor)),
      openai_(providers::MakeOpenAiAdapter(*client_)),
      dashscope_(providers::MakeDashScopeAdapter(*client_)),
      anthropic_(providers::MakeAnthropicAdapter(*client_)) {}

AdapterSet::AdapterSet(std::unique_ptr<providers::Provider> only) : only_(std::move(only)) {}

AdapterSet::~AdapterSet() = default;

providers::Provider& AdapterSet::For(providers::UpstreamKind kind) {
  if (only_) return *only_;
  switch (kind) {
    case providers::UpstreamKind::kSim:
      return *sim_;
    case providers::UpstreamKind::kOpenAi:
    case providers::UpstreamKind::kAzureOpenAi:
    case providers::UpstreamKind::kOpenAiCompatible:
      return *openai_;
    case providers::UpstreamKind::kDashScope:
      return *dashscope_;
    case providers::UpstreamKind::kAnthropic:
      return *anthropic_;
  }
  return *openai_;
}

asio::awaitable<RouteOutcome> Route(const policy::Decision& decision, const RoutingTable& table,
                                    const core::CompletionRequest& request, AdapterSet& adapters,
                                    providers::ChunkSink& sink, providers::CancelToken& cancel,
                                    AttemptGate* gate) {
  RouteOutcome out;
  const policy::Snapshot& snapshot = *decision.snapshot;
  const std::optional<std::uint32_t> model = policy::Lookup(snapshot.model_ids, request.model);
  for (policy::ProviderIndex p : decision.candidates_after) {
    // A circuit that opened since the decision, or is half-open with its probe taken by
    // another request: the next candidate (still inside the decision's set).
    if (!table.health->Admit(p, model, std::chrono::steady_clock::now())) continue;
    if (gate != nullptr) {
      core::Status allowed = co_await gate->Check(decision, p);
      if (!allowed.ok()) {
        table.health->Abandon(p, model);  // nothing was tried: a probe goes to the next request
        out.attempts.push_back({p, allowed, std::chrono::microseconds(0), {}});
        out.status = std::move(allowed);
        continue;
      }
    }
    const policy::Provider& provider = snapshot.providers[p];
    providers::Target target;
    target.provider = &table.profiles[p];
    if (const std::string* upstream = provider.UpstreamModel(request.model)) {
      target.upstream_model = *upstream;
    }
    target.credential = table.credentials[p];
    if (table.endpoints[p]) target.endpoint = &*table.endpoints[p];
    sink.BeginAttempt(provider.id);
    const auto started = std::chrono::steady_clock::now();
    providers::AttemptResult r =
        co_await RunAttempt(adapters.For(target.provider->kind), request, target, sink, cancel);
    const auto now = std::chrono::steady_clock::now();
    if (r.status.ok() && !r.emitted) {
      // A body or stream that parsed but held no completion (a model list, a bare [DONE]): the
      // provider answered nothing, which is its failure, not an empty answer to the client.
      r.status = core::Status::Error(core::StatusCode::kBadUpstream,
                                     "provider '" + provider.id + "' answered without a completion",
                                     "upstream_empty_answer");
      r.status.retryable = true;
    }
    out.attempts.push_back({p, r.status,
                            std::chrono::duration_cast<std::chrono::microseconds>(now - started),
                            std::move(r.processing_echo)});
    if (r.status.ok()) {
      table.health->RecordSuccess(p, model);
      out.status = core::Status::Ok();
      out.served_by = p;
      co_return out;
    }
    out.status = r.status;
    if (r.status.code == core::StatusCode::kCancelled || cancel.cancelled()) {
      table.health->Abandon(p, model);
      co_return out;
    }
    // Only the provider's own failures count against its health; a request the upstream
    // rejected as invalid says nothing about the provider.
    const Verdict verdict = Judge(r.status);
    if (!verdict.counts) table.health->Abandon(p, model);
    if (verdict.trip) {
      table.health->Trip(p, model, now);
      Log(LogLevel::kWarning, "provider '" + provider.id + "' taken out of rotation for " +
                                  std::to_string(HealthTracker::kOpenFor.count()) +
                                  " s: it rejected the gateway's credentials (" + r.status.reason +
                                  "); check " + provider.credential_env);
    } else if (verdict.counts &&
               table.health->RecordFailure(p, model, now, r.status.retry_after_s)) {
      // Operators need to see this: the policy routes around the provider for this model.
      Log(LogLevel::kWarning,
          "provider '" + provider.id + "' taken out of rotation for model '" + request.model +
              "' for " +
              std::to_string(r.status.retry_after_s ? *r.status.retry_after_s
                                                    : HealthTracker::kOpenFor.count()) +
              " s (then one probe request) after " + std::to_string(HealthTracker::kTripAfter) +
              " consecutive failures or a failed probe; the last: " + r.status.reason + ": " +
              r.status.message);
    }
    if (sink.committed() || !verdict.next) co_return out;
    sink.Reset();
  }
  if (out.attempts.empty()) {
    out.status = core::Status::Error(core::StatusCode::kUnavailable,
                                     "no healthy candidate among the providers the policy allows",
                                     "no_healthy_candidate");
  }
  co_return out;
}

}  // namespace meridian::gateway
