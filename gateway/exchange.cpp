#include "gateway/exchange.h"

#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <utility>

#include "gateway/log.h"
#include "gateway/meter.h"
#include "gateway/quota.h"
#include "gateway/router.h"

namespace meridian::gateway {

namespace asio = boost::asio;

namespace {

double MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

/// A streamed answer: the upstream's start (id, model: the role chunk) says nothing yet, so
/// the answer commits with the first chunk that carries something (content, reasoning, a tool
/// call, a finish, usage). An upstream failing right after its first event (invalid JSON, a
/// reset, an error event) therefore still falls back to the next candidate.
class StreamSink final : public providers::ChunkSink {
 public:
  StreamSink(ResponseWriter& writer, const Admission& admission, Cancellation& cancel,
             std::chrono::steady_clock::time_point start)
      : writer_(writer), admission_(admission), cancel_(cancel), start_(start) {}

  void BeginAttempt(std::string_view provider_id) override { provider_ = provider_id; }
  bool committed() const override { return committed_; }
  void Reset() override {
    pending_start_.reset();
    usage_.reset();
    output_bytes_ = 0;
  }

  asio::awaitable<bool> Emit(const core::Chunk& chunk) override {
    if (failed_ || cancel_.cancelled()) co_return false;
    if (chunk.kind == core::Chunk::Kind::kUsage) usage_ = chunk.usage;
    output_bytes_ += chunk.content.size() + chunk.reasoning.size() + chunk.tool_calls_json.size();
    if (!committed_ && chunk.kind == core::Chunk::Kind::kStart) {
      pending_start_ = chunk;
      co_return true;
    }
    if (!committed_ && chunk.kind == core::Chunk::Kind::kDelta && chunk.content.empty() &&
        chunk.reasoning.empty() && chunk.tool_calls_json.empty()) {
      co_return true;  // an empty delta before anything was sent
    }
    if (!committed_) {
      const bool ok = co_await Commit();
      if (!ok) co_return false;
    }
    const bool written = co_await writer_.Write(chunk);
    if (!written) co_return Fail();
    co_return true;
  }

  /// Commits with what arrived so far (also for an answer that completed with nothing but
  /// its start: the client gets an empty, complete stream).
  asio::awaitable<bool> Commit() {
    committed_ = true;
    ttft_ms_ = MsSince(start_);
    const core::Chunk* start = pending_start_ ? &*pending_start_ : nullptr;
    const bool ok = co_await writer_.Commit(admission_, provider_, start);
    pending_start_.reset();
    if (!ok) co_return Fail();
    co_return true;
  }

  const std::string& provider() const { return provider_; }
  const std::optional<core::Usage>& usage() const { return usage_; }
  std::optional<double> ttft_ms() const { return ttft_ms_; }
  /// Text the answer produced so far (content, reasoning, tool calls), in bytes.
  std::size_t output_bytes() const { return output_bytes_; }

 private:
  bool Fail() {
    failed_ = true;
    cancel_.Cancel(CancelCause::kClient);
    return false;
  }

  ResponseWriter& writer_;
  const Admission& admission_;
  Cancellation& cancel_;
  std::chrono::steady_clock::time_point start_;
  std::string provider_;
  std::optional<core::Chunk> pending_start_;
  std::optional<core::Usage> usage_;
  std::optional<double> ttft_ms_;
  std::size_t output_bytes_ = 0;
  bool committed_ = false;
  bool failed_ = false;
};

/// A non-streamed answer: collected whole, never committed, so any retryable failure may fall
/// back to the next candidate.
class CollectSink final : public providers::ChunkSink {
 public:
  explicit CollectSink(Cancellation& cancel) : cancel_(cancel) {}
  void BeginAttempt(std::string_view provider_id) override { provider_ = provider_id; }
  bool committed() const override { return false; }
  void Reset() override { aggregator_ = core::CompletionAggregator{}; }
  asio::awaitable<bool> Emit(const core::Chunk& chunk) override {
    aggregator_.Add(chunk);
    co_return !cancel_.cancelled();
  }
  const std::string& provider() const { return provider_; }
  const core::Completion& answer() const { return aggregator_.completion(); }

 private:
  Cancellation& cancel_;
  core::CompletionAggregator aggregator_;
  std::string provider_;
};

/// What an answer used, for the rate limits: the usage the provider reported, else an
/// estimate from the request and the text produced; nothing when no provider answered.
double UsedTokens(const core::CompletionRequest& request, const std::optional<core::Usage>& usage,
                  std::size_t output_bytes, bool answered) {
  if (usage) return static_cast<double>(usage->prompt_tokens + usage->completion_tokens);
  if (!answered) return 0;
  return static_cast<double>(EstimatePromptTokens(request) + TokensOfText(output_bytes));
}

}  // namespace

core::Status CancelledStatus(CancelCause cause, const core::Status& routed,
                             std::uint32_t retry_after_s) {
  switch (cause) {
    case CancelCause::kNone:
      return routed;
    case CancelCause::kClient:
      return core::Status::Error(core::StatusCode::kCancelled, "the request was cancelled",
                                 "cancelled");
    case CancelCause::kDeadline:
      return core::Status::Error(core::StatusCode::kUpstreamTimeout,
                                 "the call's deadline passed before the answer was complete",
                                 "deadline_exceeded");
    case CancelCause::kDrain:
      return ShuttingDown(retry_after_s);
    case CancelCause::kDrainCut: {
      auto st = ShuttingDown(retry_after_s);
      st.reason = "drain_deadline";
      return st;
    }
  }
  return routed;
}

asio::awaitable<ExchangeResult> Exchange(GatewayState& state, WorkerContext& worker,
                                         RoutingTablePtr table, const CallerContext& caller,
                                         core::CompletionRequest request, ResponseWriter& writer,
                                         Cancellation& cancel) {
  ExchangeResult result;
  // W3C trace context: the upstream call becomes a child of the gateway's span, whose id is
  // the request id's random part (so traces and logs join on it).
  if (!caller.traceparent.empty()) {
    request.traceparent = identity::ChildTraceparent(caller.traceparent, caller.id.bits);
  }
  // The audit trail takes the request before it is decided (fail closed: no record, no answer).
  if (!ReserveAudit(state)) {
    result.status = AuditUnavailable(state);
    co_await writer.Refuse(result.status, nullptr, {});
    co_return result;
  }
  RequestReport report;
  report.front_end = caller.front_end;
  report.request_id = caller.id.text;
  report.tenant = caller.tenant;
  report.model = request.model;
  report.decided_unix_ms = UnixMillisNow();
  // The export meter: what has been exported this year feeds the decision (`meter`
  // conditions); unknown when the store cannot say (such conditions are then false).
  store::ExportMeterStore* const meter = worker.meter();
  policy::RequestAttributes attrs = caller.attrs;
  store::MeterCounts meter_read;
  const int meter_year = CstYear(report.decided_unix_ms);
  if (meter != nullptr) {
    meter_read = co_await meter->Read(caller.tenant, meter_year);
    if (meter_read.status.ok()) {
      attrs.meter_non_sensitive = meter_read.non_sensitive;
      attrs.meter_sensitive = meter_read.sensitive;
      if (state.metrics) {
        state.metrics->SetMeterReading(caller.tenant, meter_read.non_sensitive,
                                       meter_read.sensitive);
      }
    } else {
      Log(LogLevel::kWarning, "export meter of tenant '" + caller.tenant +
                                  "' unreadable, decided as unknown: " + meter_read.status.message);
    }
  }
  Admission admission = Admit(state, std::move(table), attrs, request);
  report.admission = &admission;
  result.decided = true;
  auto finish = [&](const core::Status& final) {
    result.status = final;
    report.status.code = final.code;
    report.status.reason = final.reason;
    report.wire_status = writer.WireStatus(final);
    report.total = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - caller.start);
    ReportDecided(state, report);
  };
  if (!admission.status.ok()) {
    co_await writer.Refuse(admission.status, &admission, {});
    finish(admission.status);
    co_return result;
  }
  // Admission: bound the completions in flight.
  core::Status refused;
  const auto slot = InFlightSlot::Acquire(state, refused);
  if (!slot) {
    co_await writer.Refuse(refused, &admission, {});
    finish(refused);
    co_return result;
  }

  // Rate limits and token budgets: the request's cost is reserved now and settled once the
  // answer says what it used.
  QuotaPlan quota;
  store::BucketStore* const buckets = caller.limits != nullptr ? worker.buckets() : nullptr;
  if (buckets != nullptr) {
    quota = PlanQuota(*caller.limits, caller.tenant, caller.key_id, request.user,
                      EstimateTokens(request, caller.limits->default_max_tokens),
                      report.decided_unix_ms);
    const core::Status limited =
        co_await TakeQuota(state, *buckets, quota, caller.tenant, admission.limit_headers);
    if (!limited.ok()) {
      co_await writer.Refuse(limited, &admission, {});
      finish(limited);
      co_return result;
    }
  }
  std::optional<LeaseRenewal> renewal;
  if (quota.leased) {
    renewal.emplace(worker.executor(), *buckets, quota, state.config.store.lease_ttl);
  }
  // The drain deadline and the caller's deadline end the request where it stands.
  ScopedDrainHook drain_hook(worker.drain_hooks(), [&cancel](DrainPhase phase) {
    if (phase == DrainPhase::kDeadline) cancel.Cancel(CancelCause::kDrain);
  });
  // Only a caller with a deadline (gRPC) pays for the timer. `armed` is cleared when the
  // exchange ends, in case the timer fired with its handler still queued.
  struct Deadline {
    asio::steady_timer timer;
    std::shared_ptr<Cancellation*> armed;
    ~Deadline() {
      *armed = nullptr;
      timer.cancel();
    }
  };
  std::optional<Deadline> deadline;
  if (caller.deadline != std::chrono::system_clock::time_point::max()) {
    deadline.emplace(asio::steady_timer(worker.executor()),
                     std::make_shared<Cancellation*>(&cancel));
    deadline->timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        caller.deadline - std::chrono::system_clock::now()));
    deadline->timer.async_wait([armed = deadline->armed](const boost::system::error_code& ec) {
      if (!ec && *armed != nullptr) (*armed)->Cancel(CancelCause::kDeadline);
    });
  }

  const std::uint32_t retry_after_s = state.config.limits.retry_after_s;
  const policy::Decision& decision = admission.decision;
  std::optional<ExportGate> gate;
  if (meter != nullptr)
    gate.emplace(state, *meter, caller.tenant, request.user, meter_year, meter_read);
  if (request.stream) {
    StreamSink sink(writer, admission, cancel, caller.start);
    RouteOutcome outcome = co_await Route(decision, *admission.table, request, worker.adapters(),
                                          sink, cancel.token(), gate ? &*gate : nullptr);
    report.attempts = std::move(outcome.attempts);
    report.served_by = outcome.served_by;
    report.new_individual = gate && gate->added();
    result.provider = sink.provider();
    // An answer that completed with nothing but its start still commits (an empty stream); a
    // failed commit cancels (kClient), which the final status then says.
    if (outcome.status.ok() && !cancel.cancelled() && !sink.committed()) {
      (void)co_await sink.Commit();
    }
    const core::Status final = CancelledStatus(cancel.cause(), outcome.status, retry_after_s);
    report.usage = sink.usage();
    // Settled and released before the client's last byte: a client sending its next request
    // as soon as this one ends finds its place and its tokens back.
    if (buckets != nullptr) {
      renewal.reset();
      co_await SettleQuota(
          *buckets, quota,
          UsedTokens(request, report.usage, sink.output_bytes(), sink.committed()));
    }
    if (sink.committed()) {
      co_await writer.Finish(final);
    } else {
      co_await writer.Refuse(final, &admission, result.provider);
    }
    result.ttft_ms = sink.ttft_ms();
    if (result.ttft_ms) {
      report.ttft = std::chrono::microseconds(static_cast<std::int64_t>(*result.ttft_ms * 1000));
    }
    finish(final);
    co_return result;
  }
  CollectSink sink(cancel);
  RouteOutcome outcome = co_await Route(decision, *admission.table, request, worker.adapters(),
                                        sink, cancel.token(), gate ? &*gate : nullptr);
  report.attempts = std::move(outcome.attempts);
  report.served_by = outcome.served_by;
  report.new_individual = gate && gate->added();
  result.provider = sink.provider();
  const core::Completion& answer = sink.answer();
  if (answer.has_usage) report.usage = answer.usage;
  core::Status final = CancelledStatus(cancel.cause(), outcome.status, retry_after_s);
  // The answer can still be unusable (an error chunk, malformed tool-call fragments).
  if (final.ok() && answer.error) final = *answer.error;
  if (buckets != nullptr) {
    renewal.reset();
    co_await SettleQuota(*buckets, quota,
                         UsedTokens(request, report.usage,
                                    answer.content.size() + answer.reasoning.size(), final.ok()));
  }
  if (final.ok()) {
    co_await writer.Complete(admission, result.provider, answer);
  } else {
    co_await writer.Refuse(final, &admission, result.provider);
  }
  finish(final);
  co_return result;
}

}  // namespace meridian::gateway
