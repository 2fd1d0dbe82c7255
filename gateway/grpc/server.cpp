#include "gateway/grpc/server.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "gateway/core/request_id.h"
#include "gateway/gateway_metrics.h"
#include "gateway/grpc/client_cert.h"
#include "gateway/grpc/grpc_codec.h"
#include "gateway/log.h"
#include "gateway/pipeline.h"
#include "gateway/router.h"
#include "meridian/v1/assistant.grpc.pb.h"
#include "policy/explain.h"

// gRPC's core (a Debian package, not built with -fsanitize=thread) synchronises a reactor's
// operations internally, where ThreadSanitizer cannot see it. These annotations state that
// synchronisation: everything the worker did before handing the reactor an operation
// (StartWrite, Finish) happens before gRPC's callbacks for it (OnWriteDone, OnCancel, OnDone).
#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);  // NOLINT
extern "C" void __tsan_release(void* addr);  // NOLINT
#define MERIDIAN_TSAN_ACQUIRE(p) __tsan_acquire(p)
#define MERIDIAN_TSAN_RELEASE(p) __tsan_release(p)
#else
#define MERIDIAN_TSAN_ACQUIRE(p) static_cast<void>(p)
#define MERIDIAN_TSAN_RELEASE(p) static_cast<void>(p)
#endif

namespace meridian::gateway {

namespace v1 = meridian::v1;
using grpcfe::ErrorContext;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Who is calling, established on the gRPC thread from the TLS session and metadata.
struct Caller {
  const identity::Tenant* tenant = nullptr;
  identity::RegionDecision region;
  core::Status error;
};

std::optional<std::string_view> Metadata(const grpc::CallbackServerContext& ctx,
                                         std::string_view name) {
  const auto& md = ctx.client_metadata();
  const auto it = md.find(grpc::string_ref(name.data(), name.size()));
  if (it == md.end()) return std::nullopt;
  return std::string_view(it->second.data(), it->second.size());
}

/// Every value of metadata key `name`, in arrival order.
std::vector<std::string_view> MetadataCopies(const grpc::CallbackServerContext& ctx,
                                             std::string_view name) {
  std::vector<std::string_view> out;
  const auto& md = ctx.client_metadata();
  for (auto [it, end] = md.equal_range(grpc::string_ref(name.data(), name.size())); it != end;
       ++it) {
    out.emplace_back(it->second.data(), it->second.size());
  }
  return out;
}

/// The caller's tenant: from its client certificate when the listener takes them (verified
/// against client_ca_file here, so failures are UNAUTHENTICATED with a reason), else from
/// `authorization: Bearer <key>` metadata.
Caller Identify(GatewayState& state, const grpcfe::ClientCertVerifier* verifier,
                const grpc::CallbackServerContext& ctx) {
  Caller c;
  // Two credentials name two identities: refused, never first-wins.
  c.error = identity::CheckSingleCredential(MetadataCopies(ctx, "authorization").size() +
                                            MetadataCopies(ctx, "x-api-key").size() +
                                            MetadataCopies(ctx, "api-key").size());
  if (!c.error.ok()) {
    state.counters.multiple_credentials.fetch_add(1, std::memory_order_relaxed);
    return c;
  }
  bool via_certificate = false;
  const auto auth = ctx.auth_context();
  std::vector<grpc::string_ref> leaf;
  if (verifier != nullptr && auth)
    leaf = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (!leaf.empty()) {
    std::string chain;
    for (const auto& v : auth->FindPropertyValues(GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME)) {
      chain.append(v.data(), v.size());
    }
    grpcfe::CertIdentity id;
    c.error =
        verifier->Verify(std::string_view(leaf.front().data(), leaf.front().size()), chain, id);
    if (!c.error.ok()) return c;
    c.tenant = state.tenants.AuthenticateCertificate(id.uris, id.common_name);
    if (c.tenant == nullptr) {
      c.error = core::Status::Error(
          core::StatusCode::kUnauthenticated,
          "client certificate (CN '" + id.common_name + "'" +
              (id.uris.empty() ? std::string() : ", URI '" + id.uris.front() + "'") +
              ") is not bound to any tenant (client_cert_uris / client_cert_cns)",
          "unknown_client_certificate");
      return c;
    }
    via_certificate = true;
  } else if (verifier != nullptr && state.config.grpc->tls->require_client_cert) {
    c.error = core::Status::Error(core::StatusCode::kUnauthenticated,
                                  "a client certificate is required (mTLS)",
                                  "client_certificate_required");
    return c;
  } else if (const auto authorization = Metadata(ctx, "authorization")) {
    c.tenant = state.tenants.Authenticate(*authorization);
    if (c.tenant == nullptr) {
      c.error = core::Status::Error(core::StatusCode::kUnauthenticated, "unknown API key",
                                    "invalid_api_key");
      return c;
    }
  } else {
    c.error = core::Status::Error(
        core::StatusCode::kUnauthenticated,
        verifier != nullptr ? "no credentials: present a client certificate bound to a tenant, "
                              "or send metadata authorization: Bearer <key>"
                            : "missing API key: send metadata authorization: Bearer <key>",
        "missing_credentials");
    return c;
  }
  // Only a tenant's own certificate may claim the user's region, and only if the tenant is
  // trusted to; API-key callers cannot.
  const auto table = state.Table();
  const policy::Settings settings = table ? table->policy->settings : policy::Settings{};
  const std::vector<std::string_view> claims =
      MetadataCopies(ctx, state.config.trusted_proxies.region_header);
  c.region = identity::EstablishClaimedRegion(
      *c.tenant, claims, via_certificate && c.tenant->trust_region_claim, settings);
  CountRegionSignals(state, c.region);
  return c;
}

/// What the access line of a call says.
struct CallLog {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::string request_id;
  std::string_view method;
  std::string tenant;
  std::string provider;
  std::optional<double> ttft_ms;
  std::int64_t decided_unix_ms = 0;
};

double MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

/// Metrics (and the audit record) of a call that reached a policy decision.
void ReportCall(GatewayState& state, const Admission& a, const core::Status& final,
                RouteOutcome* outcome, std::optional<core::Usage> usage,
                std::optional<double> ttft_ms, const CallLog& log) {
  RequestReport r;
  r.front_end = RequestReport::FrontEnd::kGrpc;
  r.admission = &a;
  r.request_id = log.request_id;
  r.tenant = log.tenant;
  r.wire_status = static_cast<int>(grpcfe::ToGrpcCode(final.code));
  r.decided_unix_ms = log.decided_unix_ms;
  r.status.reason = final.reason;
  if (outcome != nullptr) {
    r.attempts = std::move(outcome->attempts);
    r.served_by = outcome->served_by;
  }
  r.status.code = final.code;
  r.usage = usage;
  if (ttft_ms) r.ttft = std::chrono::microseconds(static_cast<std::int64_t>(*ttft_ms * 1000));
  r.total = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                  log.start);
  ReportDecided(state, r);
}

/// Counts a finished call and writes its access line.
void Finished(GatewayState& state, const grpc::Status& st, const CallLog& log) {
  const auto i = static_cast<std::size_t>(st.error_code());
  if (i < state.counters.grpc_responses.size()) {
    state.counters.grpc_responses[i].fetch_add(1, std::memory_order_relaxed);
  }
  std::string reason;
  if (!st.ok()) {
    if (const auto info = grpcfe::ErrorInfoOf(st)) reason = info->reason();
  }
  LogAccess({.request_id = log.request_id,
             .front_end = "grpc",
             .method = log.method,
             .path = "meridian.v1.Assistant",
             .tenant = log.tenant,
             .status = static_cast<int>(st.error_code()),
             .reason = reason,
             .provider = log.provider,
             .duration_ms = MsSince(log.start),
             .ttft_ms = log.ttft_ms});
}

/// Cross-thread state of one call: owned jointly by the reactor (until OnDone) and the
/// coroutine serving it on a worker. Fields are touched only on the worker's executor;
/// gRPC-thread callbacks post there.
struct Bridge {
  explicit Bridge(asio::any_io_executor executor)
      : ex(std::move(executor)), wake(ex, asio::steady_timer::time_point::max()) {}

  /// Runs on the worker: the client went away or a write failed.
  void Cancel() {
    cancelled = true;
    cancel.Cancel();
    wake.cancel();
  }

  asio::any_io_executor ex;
  asio::steady_timer wake;  ///< never expires by itself: cancel() wakes the coroutine
  providers::CancelToken cancel;
  bool write_pending = false;
  bool cancelled = false;
  bool deadline_hit = false;
  bool shutdown = false;     ///< ended by the gateway's drain deadline
  v1::GenerateResponse out;  ///< the message being built
  grpc::ByteBuffer wire;     ///< `out` serialised: the write in flight; lives until OnDone
};

/// Cancels the request when the call's deadline passes (the deadline caps the upstream).
asio::awaitable<void> WatchDeadline(std::shared_ptr<Bridge> b,
                                    std::chrono::system_clock::time_point deadline,
                                    std::shared_ptr<asio::steady_timer> timer) {
  const auto left = deadline - std::chrono::system_clock::now();
  timer->expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(left));
  auto [ec] = co_await timer->async_wait(kTuple);
  if (ec) co_return;  // the call ended first
  b->deadline_hit = true;
  b->Cancel();
}

/// At the drain deadline a call still running ends with UNAVAILABLE "shutting_down".
DrainHooks::Hook DrainHookFor(const std::shared_ptr<Bridge>& bridge) {
  return [weak = std::weak_ptr<Bridge>(bridge)](DrainPhase phase) {
    auto b = weak.lock();
    if (!b || phase != DrainPhase::kDeadline) return;
    b->shutdown = true;
    b->Cancel();
  };
}

/// Everything the worker needs to serve an admitted call.
struct Job {
  core::CompletionRequest request;
  Admission admission;
  std::optional<InFlightSlot> slot;
  v1::Decision decision;
  std::string request_id;
  std::chrono::system_clock::time_point deadline;
  CallLog log;
};

core::Status CancelStatus(const Bridge& b, std::uint32_t retry_after_s) {
  if (b.shutdown) {
    auto st = core::Status::Error(core::StatusCode::kUnavailable,
                                  "the gateway is shutting down; retry the call", "shutting_down");
    st.retry_after_s = retry_after_s;
    return st;
  }
  if (b.deadline_hit) {
    return core::Status::Error(core::StatusCode::kUpstreamTimeout,
                               "the call's deadline passed before the answer was complete",
                               "deadline_exceeded");
  }
  return core::Status::Error(core::StatusCode::kCancelled, "the call was cancelled", "cancelled");
}

ErrorContext ContextOf(const Admission& a, const std::string& request_id) {
  ErrorContext c;
  c.request_id = request_id;
  if (a.table) c.policy_version = a.table->policy->version;
  if (const auto* route = a.route()) c.rule = route->id;
  c.guards = a.guards;
  return c;
}

void FillDecision(const Admission& a, const identity::RegionDecision& region,
                  const v1::GenerateRequest& req, const std::string& request_id, v1::Decision& d) {
  d.set_request_id(request_id);
  d.set_client_request_id(req.client_request_id());
  if (const auto* route = a.route()) d.set_rule(route->id);
  for (const auto& g : policy::GuardIds(a.decision)) d.add_guards(g);
  d.set_policy_version(a.table->policy->version);
  d.set_data_class(grpcfe::ToProto(a.decision.data_class));
  for (const auto& kind : a.raised_by) d.add_raised_by(kind);
  d.set_region(a.decision.region.ToString());
  (void)region;
  d.set_region_source(std::string(policy::Name(a.decision.region_source)));
}

/// The methods are registered raw (bytes in, bytes out): gRPC's generated handlers answer a
/// request message that does not parse with an empty UNIMPLEMENTED, as if the method did not
/// exist. Parsed here, it is the client's error: INVALID_ARGUMENT naming the message type.
template <class M>
core::Status ParseMessage(const grpc::ByteBuffer& raw, M& out) {
  grpc::ByteBuffer copy(raw);  // the slices are reference-counted: no bytes are copied
  if (grpc::SerializationTraits<M>::Deserialize(&copy, &out).ok()) return core::Status::Ok();
  return core::Status::Error(
      core::StatusCode::kInvalidArgument,
      "the request is not a valid " + M::descriptor()->full_name() + " message (protobuf encoding)",
      "invalid_message");
}

template <class M>
void Serialize(const M& message, grpc::ByteBuffer& out) {
  bool own = false;
  (void)grpc::SerializationTraits<M>::Serialize(message, &out, &own);
}

/// A streaming call refused before it started: finishes with `status` and deletes itself.
class RefusedWrite final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedWrite(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

using RawService =
    v1::Assistant::WithRawCallbackMethod_Generate<v1::Assistant::WithRawCallbackMethod_Complete<
        v1::Assistant::WithRawCallbackMethod_ListModels<v1::Assistant::Service>>>;

}  // namespace

class GrpcServer::Service final : public RawService {
 public:
  Service(GatewayState& state, WorkerPool& workers,
          std::unique_ptr<grpcfe::ClientCertVerifier> verifier)
      : state_(state), workers_(workers), verifier_(std::move(verifier)) {}

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Generate(grpc::CallbackServerContext* ctx,
                                                       const grpc::ByteBuffer* raw) override;
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                     grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const grpc::ByteBuffer* raw,
                                       grpc::ByteBuffer* resp) override;

  GatewayState& state() { return state_; }

  /// The synchronous part of Generate/Complete, on the gRPC thread: identity, validation,
  /// decision, admission. On failure returns nullopt with `error` and `context` set.
  std::optional<Job> Prepare(grpc::CallbackServerContext& ctx, const v1::GenerateRequest& req,
                             bool stream, grpc::Status& error, CallLog& log);

 private:
  GatewayState& state_;
  WorkerPool& workers_;
  std::unique_ptr<grpcfe::ClientCertVerifier> verifier_;  ///< null: no client certificates
  friend class GenerateCall;
  friend class CompleteCall;
};

std::optional<Job> GrpcServer::Service::Prepare(grpc::CallbackServerContext& ctx,
                                                const v1::GenerateRequest& req, bool stream,
                                                grpc::Status& error, CallLog& log) {
  state_.counters.grpc_requests.fetch_add(1, std::memory_order_relaxed);
  // Ids come from the worker threads' generators elsewhere; here a per-call random id.
  static thread_local std::mt19937_64 rng(std::random_device{}());
  const core::RequestId id = core::RequestId::From(rng());
  const std::string& request_id = id.text;
  log.request_id = request_id;
  ctx.AddInitialMetadata("x-request-id", request_id);
  auto table = state_.Table();
  if (!table) {
    error = grpcfe::ToGrpcStatus(NotReady(), {request_id, {}, {}, {}});
    return std::nullopt;
  }
  if (state_.draining.load(std::memory_order_relaxed)) {
    auto st = core::Status::Error(core::StatusCode::kUnavailable,
                                  "the gateway is shutting down; retry the call", "shutting_down");
    st.retry_after_s = state_.config.limits.retry_after_s;
    error = grpcfe::ToGrpcStatus(st, {request_id, {}, {}, {}});
    return std::nullopt;
  }
  const Caller caller = Identify(state_, verifier_.get(), ctx);
  if (!caller.error.ok()) {
    error = grpcfe::ToGrpcStatus(caller.error, {request_id, {}, {}, {}});
    return std::nullopt;
  }
  log.tenant = caller.tenant->id;
  Job job;
  job.request_id = request_id;
  grpcfe::Declared declared;
  if (auto st = grpcfe::DecodeGenerateRequest(req, stream, job.request, declared); !st.ok()) {
    error = grpcfe::ToGrpcStatus(st, {request_id, {}, {}, {}});
    return std::nullopt;
  }
  if (const auto tp = Metadata(ctx, "traceparent")) {
    job.request.traceparent = identity::ChildTraceparent(*tp, id.bits);
  }
  policy::RequestAttributes attrs = AttributesOf(*caller.tenant, caller.region);
  if (declared.data_class) attrs.data_class = declared.data_class;
  if (declared.consent) attrs.consent = *declared.consent;
  // The audit trail takes the call before it is decided (fail closed: no record, no answer).
  if (!ReserveAudit(state_)) {
    error = grpcfe::ToGrpcStatus(AuditUnavailable(state_), {request_id, {}, {}, {}});
    return std::nullopt;
  }
  log.decided_unix_ms = UnixMillisNow();
  Admission admission = Admit(state_, std::move(table), std::move(attrs), job.request);
  const ErrorContext context = ContextOf(admission, request_id);
  if (!admission.status.ok()) {
    ReportCall(state_, admission, admission.status, nullptr, std::nullopt, std::nullopt, log);
    error = grpcfe::ToGrpcStatus(admission.status, context);
    return std::nullopt;
  }
  core::Status refused;
  auto slot = InFlightSlot::Acquire(state_, refused);
  if (!slot) {
    ReportCall(state_, admission, refused, nullptr, std::nullopt, std::nullopt, log);
    error = grpcfe::ToGrpcStatus(refused, context);
    return std::nullopt;
  }
  FillDecision(admission, caller.region, req, request_id, job.decision);
  ctx.AddInitialMetadata("x-meridian-policy-version", context.policy_version);
  if (!context.rule.empty()) ctx.AddInitialMetadata("x-meridian-policy-rule", context.rule);
  if (!context.guards.empty()) ctx.AddInitialMetadata("x-meridian-policy-guards", context.guards);
  if (!admission.raised_by.empty()) {
    ctx.AddInitialMetadata("x-meridian-data-class-raised", admission.RaisedByHeader());
  }
  job.admission = std::move(admission);
  job.slot.emplace(std::move(*slot));
  job.deadline = ctx.deadline();
  job.log = log;
  return job;
}

// ---- Generate: server streaming ----

class GenerateCall final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  GenerateCall(GrpcServer::Service& service, grpc::CallbackServerContext* ctx,
               const v1::GenerateRequest* req)
      : service_(service), ctx_(ctx) {
    grpc::Status error;
    CallLog log;
    log.method = "Generate";
    std::optional<Job> job = service.Prepare(*ctx, *req, true, error, log);
    if (!job) {
      Finished(service_.state(), error, log);
      Finish(error);
      return;
    }
    WorkerContext& worker = service.workers_.NextWorker();
    bridge_ = std::make_shared<Bridge>(worker.executor());
    asio::co_spawn(bridge_->ex, Serve(std::move(*job), worker, bridge_), asio::detached);
  }

  void OnWriteDone(bool ok) override {
    MERIDIAN_TSAN_ACQUIRE(this);
    asio::post(bridge_->ex, [b = bridge_, ok] {
      b->write_pending = false;
      if (!ok) {
        b->Cancel();
      } else {
        b->wake.cancel();
      }
    });
  }
  void OnCancel() override {
    MERIDIAN_TSAN_ACQUIRE(this);
    if (bridge_) asio::post(bridge_->ex, [b = bridge_] { b->Cancel(); });
  }
  void OnDone() override {
    MERIDIAN_TSAN_ACQUIRE(this);
    delete this;
  }

 private:
  class Sink;
  asio::awaitable<void> Serve(Job job, WorkerContext& worker, std::shared_ptr<Bridge> b);

  /// On the worker: writes b->out and waits for OnWriteDone. False once the call is
  /// cancelled or broken.
  asio::awaitable<bool> Write(Bridge& b) {
    if (b.cancelled) co_return false;
    b.write_pending = true;
    b.wire.Clear();
    Serialize(b.out, b.wire);
    MERIDIAN_TSAN_RELEASE(this);
    StartWrite(&b.wire);
    // Even when cancelled, wait for the write to come back: gRPC still owns b.out until then
    // and Finish must not overtake it.
    while (b.write_pending) co_await b.wake.async_wait(kTuple);
    co_return !b.cancelled;
  }

  GrpcServer::Service& service_;
  grpc::CallbackServerContext* ctx_;
  std::shared_ptr<Bridge> bridge_;
};

class GenerateCall::Sink final : public providers::ChunkSink {
 public:
  Sink(GenerateCall& call, Bridge& b, v1::Start start)
      : call_(call), b_(b), start_(std::move(start)) {}
  void BeginAttempt(std::string_view provider_id) override {
    start_.mutable_decision()->set_provider(std::string(provider_id));
  }
  bool committed() const override { return committed_; }
  void Reset() override { start_pending_ = false; }
  asio::awaitable<bool> Emit(const core::Chunk& chunk) override {
    if (b_.cancelled) co_return false;
    if (chunk.kind == core::Chunk::Kind::kUsage) usage_ = chunk.usage;
    // The upstream's start (its role chunk) says nothing yet: the call commits with the first
    // message after it, so a failure right after the start still falls back (as over HTTP).
    if (chunk.kind == core::Chunk::Kind::kStart && !committed_) {
      start_pending_ = true;
      co_return true;
    }
    if (!grpcfe::ToGenerateResponse(chunk, start_, b_.out)) co_return true;
    if (!committed_) {
      // The answer commits with its first message: initial metadata names the provider.
      call_.ctx_->AddInitialMetadata("x-meridian-provider", start_.decision().provider());
      committed_ = true;
      ttft_ms_ = MsSince(started_);
      if (std::exchange(start_pending_, false)) {
        v1::GenerateResponse first = std::move(b_.out);
        b_.out.Clear();
        *b_.out.mutable_start() = start_;
        if (!co_await call_.Write(b_)) co_return false;
        b_.out = std::move(first);
      }
    }
    co_return co_await call_.Write(b_);
  }
  const std::string& provider() const { return start_.decision().provider(); }
  std::optional<double> ttft_ms() const { return ttft_ms_; }
  const std::optional<core::Usage>& usage() const { return usage_; }

 private:
  GenerateCall& call_;
  Bridge& b_;
  v1::Start start_;
  bool start_pending_ = false;  ///< a start chunk came: its message goes out with the commit
  bool committed_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::optional<double> ttft_ms_;
  std::optional<core::Usage> usage_;
};

asio::awaitable<void> GenerateCall::Serve(Job job, WorkerContext& worker,
                                          std::shared_ptr<Bridge> b) {
  auto deadline_timer = std::make_shared<asio::steady_timer>(b->ex);
  if (job.deadline != std::chrono::system_clock::time_point::max()) {
    asio::co_spawn(b->ex, WatchDeadline(b, job.deadline, deadline_timer), asio::detached);
  }
  ScopedDrainHook drain_hook(worker.drain_hooks(), DrainHookFor(b));
  v1::Start start;
  *start.mutable_decision() = job.decision;
  start.set_id("chatcmpl-" + job.request_id);
  start.set_model(job.request.model);
  start.set_created(UnixNow());
  Sink sink(*this, *b, std::move(start));
  RouteOutcome outcome = co_await Route(job.admission.decision, *job.admission.table, job.request,
                                        worker.adapters(), sink, b->cancel);
  deadline_timer->cancel();
  core::Status final = outcome.status;
  if (b->cancelled || b->deadline_hit) {
    final = CancelStatus(*b, service_.state().config.limits.retry_after_s);
  }
  if (!final.ok() && !sink.committed() && !sink.provider().empty()) {
    ctx_->AddInitialMetadata("x-meridian-provider", sink.provider());
  }
  const grpc::Status st = grpcfe::ToGrpcStatus(final, ContextOf(job.admission, job.request_id));
  job.log.provider = sink.provider();
  job.log.ttft_ms = sink.ttft_ms();
  ReportCall(service_.state(), job.admission, final, &outcome, sink.usage(), sink.ttft_ms(),
             job.log);
  Finished(service_.state(), st, job.log);
  MERIDIAN_TSAN_RELEASE(this);
  Finish(st);  // the last use of `this`: OnDone may delete it from now on
}

namespace {

/// Counts and logs a call whose request message did not parse, and returns its status.
grpc::Status RefuseUnparsable(GatewayState& state, const core::Status& why,
                              std::string_view method) {
  state.counters.grpc_requests.fetch_add(1, std::memory_order_relaxed);
  CallLog log;
  log.method = method;
  const grpc::Status st = grpcfe::ToGrpcStatus(why);
  Finished(state, st, log);
  return st;
}

/// A unary call whose request message did not parse, finished at once.
grpc::ServerUnaryReactor* RefusedUnary(grpc::CallbackServerContext& ctx, GatewayState& state,
                                       const core::Status& why, std::string_view method) {
  auto* reactor = ctx.DefaultReactor();
  reactor->Finish(RefuseUnparsable(state, why, method));
  return reactor;
}

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* GrpcServer::Service::Generate(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw) {
  v1::GenerateRequest req;
  if (auto st = ParseMessage(*raw, req); !st.ok()) {
    return new RefusedWrite(RefuseUnparsable(state_, st, "Generate"));
  }
  return new GenerateCall(*this, ctx, &req);
}

// ---- Complete: unary ----

class CompleteCall final : public grpc::ServerUnaryReactor {
 public:
  CompleteCall(GrpcServer::Service& service, grpc::CallbackServerContext* ctx,
               const v1::GenerateRequest* req, grpc::ByteBuffer* resp)
      : service_(service), ctx_(ctx), resp_(resp) {
    grpc::Status error;
    CallLog log;
    log.method = "Complete";
    std::optional<Job> job = service.Prepare(*ctx, *req, false, error, log);
    if (!job) {
      Finished(service_.state(), error, log);
      Finish(error);
      return;
    }
    WorkerContext& worker = service.workers_.NextWorker();
    bridge_ = std::make_shared<Bridge>(worker.executor());
    asio::co_spawn(bridge_->ex, Serve(std::move(*job), worker, bridge_), asio::detached);
  }
  void OnCancel() override {
    MERIDIAN_TSAN_ACQUIRE(this);
    if (bridge_) asio::post(bridge_->ex, [b = bridge_] { b->Cancel(); });
  }
  void OnDone() override {
    MERIDIAN_TSAN_ACQUIRE(this);
    delete this;
  }

 private:
  class Sink final : public providers::ChunkSink {
   public:
    explicit Sink(Bridge& b) : b_(b) {}
    void BeginAttempt(std::string_view provider_id) override { provider_ = provider_id; }
    bool committed() const override { return false; }
    void Reset() override { builder_.Reset(); }
    asio::awaitable<bool> Emit(const core::Chunk& chunk) override {
      if (chunk.kind == core::Chunk::Kind::kUsage) usage_ = chunk.usage;
      builder_.Add(chunk);
      co_return !b_.cancelled;
    }
    grpcfe::CompleteBuilder builder_;
    std::string provider_;
    std::optional<core::Usage> usage_;

   private:
    Bridge& b_;
  };

  asio::awaitable<void> Serve(Job job, WorkerContext& worker, std::shared_ptr<Bridge> b) {
    auto deadline_timer = std::make_shared<asio::steady_timer>(b->ex);
    if (job.deadline != std::chrono::system_clock::time_point::max()) {
      asio::co_spawn(b->ex, WatchDeadline(b, job.deadline, deadline_timer), asio::detached);
    }
    ScopedDrainHook drain_hook(worker.drain_hooks(), DrainHookFor(b));
    Sink sink(*b);
    RouteOutcome outcome = co_await Route(job.admission.decision, *job.admission.table, job.request,
                                          worker.adapters(), sink, b->cancel);
    deadline_timer->cancel();
    core::Status final = outcome.status;
    if (b->cancelled || b->deadline_hit) {
      final = CancelStatus(*b, service_.state().config.limits.retry_after_s);
    }
    if (!sink.provider_.empty()) ctx_->AddInitialMetadata("x-meridian-provider", sink.provider_);
    if (final.ok()) {
      v1::CompleteResponse resp = std::move(sink.builder_.response());
      job.decision.set_provider(sink.provider_);
      *resp.mutable_decision() = std::move(job.decision);
      resp.set_id("chatcmpl-" + job.request_id);
      resp.set_model(job.request.model);
      resp.set_created(UnixNow());
      Serialize(resp, *resp_);
    }
    const grpc::Status st = grpcfe::ToGrpcStatus(final, ContextOf(job.admission, job.request_id));
    job.log.provider = sink.provider_;
    ReportCall(service_.state(), job.admission, final, &outcome, sink.usage_, std::nullopt,
               job.log);
    Finished(service_.state(), st, job.log);
    MERIDIAN_TSAN_RELEASE(this);
    Finish(st);  // the last use of `this`
  }

  GrpcServer::Service& service_;
  grpc::CallbackServerContext* ctx_;
  grpc::ByteBuffer* resp_;
  std::shared_ptr<Bridge> bridge_;
};

grpc::ServerUnaryReactor* GrpcServer::Service::Complete(grpc::CallbackServerContext* ctx,
                                                        const grpc::ByteBuffer* raw,
                                                        grpc::ByteBuffer* resp) {
  v1::GenerateRequest req;
  if (auto st = ParseMessage(*raw, req); !st.ok())
    return RefusedUnary(*ctx, state_, st, "Complete");
  return new CompleteCall(*this, ctx, &req, resp);
}

// ---- ListModels: answered on the gRPC thread (pure work) ----

grpc::ServerUnaryReactor* GrpcServer::Service::ListModels(grpc::CallbackServerContext* ctx,
                                                          const grpc::ByteBuffer* raw,
                                                          grpc::ByteBuffer* wire) {
  v1::ListModelsRequest req;
  if (auto st = ParseMessage(*raw, req); !st.ok()) {
    return RefusedUnary(*ctx, state_, st, "ListModels");
  }
  state_.counters.grpc_requests.fetch_add(1, std::memory_order_relaxed);
  auto* reactor = ctx->DefaultReactor();
  CallLog log;
  log.method = "ListModels";
  auto finish = [&](const grpc::Status& st) {
    Finished(state_, st, log);
    reactor->Finish(st);
    return reactor;
  };
  auto table = state_.Table();
  if (!table) return finish(grpcfe::ToGrpcStatus(NotReady()));
  const Caller caller = Identify(state_, verifier_.get(), *ctx);
  if (!caller.error.ok()) return finish(grpcfe::ToGrpcStatus(caller.error));
  v1::ListModelsResponse resp;
  for (auto& alias : AllowedModels(*table, *caller.tenant, caller.region)) {
    resp.add_models(std::move(alias));
  }
  resp.set_policy_version(table->policy->version);
  Serialize(resp, *wire);
  return finish(grpc::Status::OK);
}

// ---- the server ----

GrpcServer::GrpcServer(GatewayState& state, WorkerPool& workers)
    : state_(state), workers_(workers) {}

GrpcServer::~GrpcServer() {
  Shutdown(std::chrono::milliseconds(0));
}

core::Status GrpcServer::Start() {
  const config::GrpcConfig& cfg = *state_.config.grpc;
  std::shared_ptr<grpc::ServerCredentials> creds;
  std::unique_ptr<grpcfe::ClientCertVerifier> verifier;
  if (cfg.plaintext) {
    Log(LogLevel::kWarning,
        "gRPC listener " + cfg.listen.ToString() +
            " is PLAINTEXT (grpc.plaintext: true): no TLS, no client certificates; API keys "
            "cross the network in clear. Development only.");
    creds = grpc::InsecureServerCredentials();
  } else {
    const config::GrpcTlsConfig& tls = *cfg.tls;
    // Client certificates are requested but verified per call (client_cert.h), so that a
    // missing or untrusted one is answered UNAUTHENTICATED with a reason rather than with a
    // failed handshake the client sees only as UNAVAILABLE. The handshake still proves the
    // client holds the certificate's key.
    grpc_ssl_client_certificate_request_type request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    if (!tls.client_ca_file.empty()) {
      request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY;
      if (auto st = grpcfe::ClientCertVerifier::Create(ReadFile(tls.client_ca_file), verifier);
          !st.ok()) {
        st.message = tls.client_ca_file + ": " + st.message;
        return st;
      }
    }
    grpc::SslServerCredentialsOptions options(request);
    if (!tls.client_ca_file.empty()) options.pem_root_certs = ReadFile(tls.client_ca_file);
    options.pem_key_cert_pairs.push_back({ReadFile(tls.key_file), ReadFile(tls.cert_file)});
    creds = grpc::SslServerCredentials(options);
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  service_ = std::make_unique<Service>(state_, workers_, std::move(verifier));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(cfg.listen.ToString(), creds, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(cfg.max_message_bytes));
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    return core::Status::Error(core::StatusCode::kInternal,
                               "cannot listen for gRPC on " + cfg.listen.ToString() +
                                   " (address in use, or an unreadable/invalid certificate)");
  }
  port_ = static_cast<unsigned short>(port);
  SetServing(true);
  return core::Status::Ok();
}

namespace {

void SetHealth(grpc::Server& server, bool serving) {
  if (auto* health = server.GetHealthCheckService()) {
    health->SetServingStatus(serving);
    health->SetServingStatus("meridian.v1.Assistant", serving);
  }
}

}  // namespace

void GrpcServer::SetServing(bool serving) {
  std::lock_guard lock(server_mu_);
  if (server_) SetHealth(*server_, serving);
}

void GrpcServer::Shutdown(std::chrono::milliseconds grace) {
  std::lock_guard lock(server_mu_);
  if (!server_) return;
  SetHealth(*server_, false);
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
}

}  // namespace meridian::gateway
