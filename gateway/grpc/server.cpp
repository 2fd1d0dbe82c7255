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
#include "gateway/exchange.h"
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

namespace meridian::grpcfe {

// The front end is built on the gateway's shared layer (exchange, runtime, pipeline, state).
using namespace meridian::gateway;  // NOLINT(google-build-using-namespace)
namespace asio = boost::asio;
namespace v1 = meridian::v1;
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
  IdentitiesPtr identities;  ///< owns `tenant`
  const identity::Tenant* tenant = nullptr;
  std::string key_id;  ///< the credential's (identity::KeyId)
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
/// `authorization: Bearer <key>` metadata. The region's settings come from `table`, the one
/// the call is decided on.
Caller Identify(GatewayState& state, const RoutingTable& table,
                const grpcfe::ClientCertVerifier* verifier,
                const grpc::CallbackServerContext& ctx) {
  Caller c;
  c.identities = state.Callers();
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
    c.tenant = c.identities->tenants.AuthenticateCertificate(id.uris, id.common_name, &c.key_id);
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
    c.tenant = c.identities->tenants.Authenticate(*authorization, &c.key_id);
    if (c.tenant == nullptr) {
      c.error = identity::UnknownApiKey();
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
  const policy::Settings& settings = table.policy->settings;
  const std::vector<std::string_view> claims = MetadataCopies(ctx, c.identities->region_header);
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
};

double MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
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

template <class M>
void Serialize(const M& message, grpc::ByteBuffer& out) {
  bool own = false;
  (void)grpc::SerializationTraits<M>::Serialize(message, &out, &own);
}

/// Cross-thread state of one call: owned jointly by the reactor (until OnDone) and the
/// coroutine serving it on a worker. Fields are touched only on the worker's executor;
/// gRPC-thread callbacks post there.
struct Bridge {
  Bridge(asio::any_io_executor executor, grpc::ServerWriteReactor<grpc::ByteBuffer>* reactor)
      : ex(std::move(executor)), wake(ex, asio::steady_timer::time_point::max()), stream(reactor) {}

  /// Writes `out` on the stream and waits for OnWriteDone. False once the call is cancelled
  /// or broken.
  asio::awaitable<bool> Write() {
    if (cancel.cancelled()) co_return false;
    write_pending = true;
    wire.Clear();
    Serialize(out, wire);
    MERIDIAN_TSAN_RELEASE(stream);
    stream->StartWrite(&wire);
    // Even when cancelled, wait for the write to come back: gRPC still owns `wire` until then
    // and Finish must not overtake it.
    while (write_pending) co_await wake.async_wait(kTuple);
    co_return !cancel.cancelled();
  }
  /// On the worker, from OnWriteDone.
  void WriteDone(bool ok) {
    write_pending = false;
    if (!ok) cancel.Cancel(CancelCause::kClient);
    wake.cancel();
  }

  asio::any_io_executor ex;
  asio::steady_timer wake;  ///< never expires by itself: cancel() wakes the coroutine
  grpc::ServerWriteReactor<grpc::ByteBuffer>* stream;  ///< Generate's reactor; null for Complete
  Cancellation cancel;
  bool write_pending = false;
  v1::GenerateResponse out;  ///< the message being written
  grpc::ByteBuffer wire;     ///< `out` serialised: the write in flight; lives until OnDone
};

/// Everything the worker needs to serve an identified, decoded call.
struct Job {
  RoutingTablePtr table;
  CallerContext caller;
  core::CompletionRequest request;
  std::string client_request_id;
  CallLog log;
};

ErrorContext ContextOf(const Admission* a, const std::string& request_id) {
  ErrorContext c;
  c.request_id = request_id;
  if (a == nullptr) return c;
  if (a->table) c.policy_version = a->table->policy->version;
  if (const auto* route = a->route()) c.rule = route->id;
  c.guards = a->guards;
  return c;
}

/// The gRPC side of an exchange: decision and provider as initial metadata, the Start message
/// and stream messages (Generate), the CompleteResponse (Complete). The call's status is
/// recorded here and given to the reactor's Finish once the exchange has reported.
class CallWriter final : public ResponseWriter {
 public:
  CallWriter(grpc::CallbackServerContext& ctx, Bridge& b, const Job& job, grpc::ByteBuffer* resp)
      : ctx_(ctx),
        b_(b),
        request_id_(job.caller.id.text),
        client_request_id_(job.client_request_id),
        model_(job.request.model),
        embed_(job.request.op == core::Operation::kEmbed),
        resp_(resp) {}

  asio::awaitable<void> Refuse(const core::Status& status, const Admission* admission,
                               std::string_view provider) override {
    Announce(admission, provider);
    status_ = grpcfe::ToGrpcStatus(status, ContextOf(admission, request_id_));
    co_return;
  }
  asio::awaitable<bool> Commit(const Admission& admission, std::string_view provider,
                               const core::Chunk* start) override {
    admission_ = &admission;
    Announce(&admission, provider);
    *start_.mutable_decision() = DecisionOf(admission, provider);
    start_.set_id("chatcmpl-" + request_id_);
    start_.set_model(model_);
    start_.set_created(UnixNow());
    if (start == nullptr) co_return true;
    b_.out.Clear();
    *b_.out.mutable_start() = start_;
    co_return co_await b_.Write();
  }
  asio::awaitable<bool> Write(const core::Chunk& chunk) override {
    if (!grpcfe::ToGenerateResponse(chunk, start_, b_.out)) co_return true;
    co_return co_await b_.Write();
  }
  asio::awaitable<void> Finish(const core::Status& status) override {
    status_ = grpcfe::ToGrpcStatus(status, ContextOf(admission_, request_id_));
    co_return;
  }
  asio::awaitable<void> Complete(const Admission& admission, std::string_view provider,
                                 const core::Completion& answer) override {
    Announce(&admission, provider);
    if (embed_) {
      v1::EmbedResponse resp;
      grpcfe::ToEmbedResponse(answer, resp);
      *resp.mutable_decision() = DecisionOf(admission, provider);
      resp.set_model(model_);
      Serialize(resp, *resp_);
      status_ = grpc::Status::OK;
      co_return;
    }
    v1::CompleteResponse resp;
    grpcfe::ToCompleteResponse(answer, resp);
    *resp.mutable_decision() = DecisionOf(admission, provider);
    resp.set_id("chatcmpl-" + request_id_);
    resp.set_model(model_);
    resp.set_created(UnixNow());
    Serialize(resp, *resp_);
    status_ = grpc::Status::OK;
    co_return;
  }
  int WireStatus(const core::Status& final) const override {
    return static_cast<int>(grpcfe::ToGrpcCode(final.code));
  }
  const grpc::Status& status() const { return status_; }

 private:
  /// Initial metadata: the decision (when there is one) and the provider that answered or
  /// was tried last.
  void Announce(const Admission* a, std::string_view provider) {
    if (a != nullptr) {
      for (const auto& [name, value] : a->limit_headers) ctx_.AddInitialMetadata(name, value);
    }
    if (a != nullptr && a->table) {
      ctx_.AddInitialMetadata("x-meridian-policy-version", a->table->policy->version);
      if (const auto* route = a->route())
        ctx_.AddInitialMetadata("x-meridian-policy-rule", route->id);
      if (!a->guards.empty()) ctx_.AddInitialMetadata("x-meridian-policy-guards", a->guards);
      if (!a->raised_by.empty()) {
        ctx_.AddInitialMetadata("x-meridian-data-class-raised", a->RaisedByHeader());
      }
    }
    if (!provider.empty()) ctx_.AddInitialMetadata("x-meridian-provider", std::string(provider));
  }
  v1::Decision DecisionOf(const Admission& a, std::string_view provider) const {
    v1::Decision d;
    d.set_request_id(request_id_);
    d.set_client_request_id(client_request_id_);
    d.set_provider(std::string(provider));
    if (const auto* route = a.route()) d.set_rule(route->id);
    for (const auto& g : policy::GuardIds(a.decision)) d.add_guards(g);
    d.set_policy_version(a.table->policy->version);
    d.set_data_class(grpcfe::ToProto(a.decision.data_class));
    for (const auto& kind : a.raised_by) d.add_raised_by(kind);
    d.set_region(a.decision.region.ToString());
    d.set_region_source(std::string(policy::Name(a.decision.region_source)));
    return d;
  }

  grpc::CallbackServerContext& ctx_;
  Bridge& b_;
  std::string request_id_;
  std::string client_request_id_;
  std::string model_;
  bool embed_;              ///< an Embed call: the answer is an EmbedResponse
  grpc::ByteBuffer* resp_;  ///< Complete's (or Embed's) response; null for Generate
  const Admission* admission_ = nullptr;
  v1::Start start_;
  grpc::Status status_;
};

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

/// A streaming call refused before it started: finishes with `status` and deletes itself.
class RefusedWrite final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedWrite(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

using RawService = v1::Assistant::WithRawCallbackMethod_Generate<
    v1::Assistant::WithRawCallbackMethod_Complete<v1::Assistant::WithRawCallbackMethod_ListModels<
        v1::Assistant::WithRawCallbackMethod_Embed<v1::Assistant::Service>>>>;

/// Decodes one call's request message into the exchange's request (GenerateRequest for
/// Generate and Complete, EmbedRequest for Embed).
using Decoder = std::function<core::Status(core::CompletionRequest&, grpcfe::Declared&)>;

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
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                  grpc::ByteBuffer* resp) override;

  GatewayState& state() { return state_; }

  /// Starts a Generate (`resp` null) or Complete call on `reactor`: on the gRPC thread,
  /// identity and decoding; then the exchange on a worker, which finishes the reactor. A call
  /// refused before the exchange is finished here. `bridge` (the reactor's) is set before the
  /// worker starts; it stays null when the call is refused.
  template <class Reactor>
  void Start(Reactor& reactor, std::shared_ptr<Bridge>& bridge, grpc::CallbackServerContext& ctx,
             const Decoder& decode, const std::string& client_request_id, grpc::ByteBuffer* resp,
             std::string_view method);

 private:
  /// The synchronous part of a call: identity, validation. On failure returns nullopt with
  /// `error` set.
  std::optional<Job> Prepare(grpc::CallbackServerContext& ctx, const Decoder& decode,
                             const std::string& client_request_id, grpc::Status& error,
                             CallLog& log);
  template <class Reactor>
  asio::awaitable<void> Serve(Reactor& reactor, grpc::CallbackServerContext& ctx, Job job,
                              WorkerContext& worker, std::shared_ptr<Bridge> b,
                              grpc::ByteBuffer* resp);

  GatewayState& state_;
  WorkerPool& workers_;
  std::unique_ptr<grpcfe::ClientCertVerifier> verifier_;  ///< null: no client certificates
};

std::optional<Job> GrpcServer::Service::Prepare(grpc::CallbackServerContext& ctx,
                                                const Decoder& decode,
                                                const std::string& client_request_id,
                                                grpc::Status& error, CallLog& log) {
  state_.counters.grpc_requests.fetch_add(1, std::memory_order_relaxed);
  // Ids come from the worker threads' generators elsewhere; here a per-call random id.
  static thread_local std::mt19937_64 rng(std::random_device{}());
  Job job;
  job.caller.front_end = RequestReport::FrontEnd::kGrpc;
  job.caller.start = log.start;
  job.caller.id = core::RequestId::From(rng());
  const std::string& request_id = job.caller.id.text;
  log.request_id = request_id;
  ctx.AddInitialMetadata("x-request-id", request_id);
  auto refuse = [&](const core::Status& st) {
    error = grpcfe::ToGrpcStatus(st, {request_id, {}, {}, {}});
    return std::nullopt;
  };
  job.table = state_.Table();
  if (!job.table) return refuse(NotReady());
  if (state_.draining.load(std::memory_order_relaxed)) {
    return refuse(ShuttingDown(state_.config.limits.retry_after_s));
  }
  const Caller caller = Identify(state_, *job.table, verifier_.get(), ctx);
  if (!caller.error.ok()) return refuse(caller.error);
  log.tenant = caller.tenant->id;
  job.caller.tenant = caller.tenant->id;
  job.caller.key_id = caller.key_id;
  job.caller.limits = caller.tenant->limits ? &*caller.tenant->limits : nullptr;
  job.caller.identities = caller.identities;
  grpcfe::Declared declared;
  if (auto st = decode(job.request, declared); !st.ok()) return refuse(st);
  if (const auto tp = Metadata(ctx, "traceparent")) job.caller.traceparent.assign(*tp);
  job.caller.attrs = AttributesOf(*caller.tenant, caller.region);
  if (declared.data_class) job.caller.attrs.data_class = declared.data_class;
  if (declared.consent) job.caller.attrs.consent = *declared.consent;
  job.caller.deadline = ctx.deadline();
  job.client_request_id = client_request_id;
  job.log = log;
  return job;
}

template <class Reactor>
void GrpcServer::Service::Start(Reactor& reactor, std::shared_ptr<Bridge>& bridge,
                                grpc::CallbackServerContext& ctx, const Decoder& decode,
                                const std::string& client_request_id, grpc::ByteBuffer* resp,
                                std::string_view method) {
  grpc::Status error;
  CallLog log;
  log.method = method;
  std::optional<Job> job = Prepare(ctx, decode, client_request_id, error, log);
  if (!job) {
    Finished(state_, error, log);
    reactor.Finish(error);
    return;
  }
  WorkerContext& worker = workers_.NextWorker();
  grpc::ServerWriteReactor<grpc::ByteBuffer>* stream = nullptr;
  if constexpr (std::is_base_of_v<grpc::ServerWriteReactor<grpc::ByteBuffer>, Reactor>) {
    stream = &reactor;
  }
  bridge = std::make_shared<Bridge>(worker.executor(), stream);
  asio::co_spawn(bridge->ex, Serve(reactor, ctx, std::move(*job), worker, bridge, resp),
                 asio::detached);
}

template <class Reactor>
asio::awaitable<void> GrpcServer::Service::Serve(Reactor& reactor, grpc::CallbackServerContext& ctx,
                                                 Job job, WorkerContext& worker,
                                                 std::shared_ptr<Bridge> b,
                                                 grpc::ByteBuffer* resp) {
  CallWriter writer(ctx, *b, job, resp);
  const ExchangeResult result = co_await Exchange(state_, worker, std::move(job.table), job.caller,
                                                  std::move(job.request), writer, b->cancel);
  job.log.provider = result.provider;
  job.log.ttft_ms = result.ttft_ms;
  Finished(state_, writer.status(), job.log);
  MERIDIAN_TSAN_RELEASE(&reactor);
  reactor.Finish(writer.status());  // the last use of the reactor: OnDone may delete it now
}

// ---- Generate (server streaming) and Complete (unary): one reactor each call ----

/// What a reactor adds for its kind: Generate's writes come back through the bridge.
template <class Reactor>
class CallReactor : public Reactor {
 protected:
  std::shared_ptr<Bridge> bridge_;
};

template <>
class CallReactor<grpc::ServerWriteReactor<grpc::ByteBuffer>>
    : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  void OnWriteDone(bool ok) override {
    MERIDIAN_TSAN_ACQUIRE(this);
    asio::post(bridge_->ex, [b = bridge_, ok] { b->WriteDone(ok); });
  }

 protected:
  std::shared_ptr<Bridge> bridge_;
};

/// One Generate, Complete or Embed call: started on the gRPC thread (Service::Start), served
/// on a worker, deleted by gRPC once finished.
template <class Reactor>
class ExchangeCall final : public CallReactor<Reactor> {
 public:
  ExchangeCall(GrpcServer::Service& service, grpc::CallbackServerContext* ctx,
               const Decoder& decode, const std::string& client_request_id, grpc::ByteBuffer* resp,
               std::string_view method) {
    service.Start(*this, this->bridge_, *ctx, decode, client_request_id, resp, method);
  }
  void OnCancel() override {
    MERIDIAN_TSAN_ACQUIRE(this);
    if (auto b = this->bridge_) {
      asio::post(b->ex, [b] { b->cancel.Cancel(CancelCause::kClient); });
    }
  }
  void OnDone() override {
    MERIDIAN_TSAN_ACQUIRE(this);
    delete this;
  }
};

using GenerateCall = ExchangeCall<grpc::ServerWriteReactor<grpc::ByteBuffer>>;
using UnaryCall = ExchangeCall<grpc::ServerUnaryReactor>;  // Complete and Embed

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
  const Decoder decode = [&req](core::CompletionRequest& out, grpcfe::Declared& declared) {
    return grpcfe::DecodeGenerateRequest(req, /*stream=*/true, out, declared);
  };
  return new GenerateCall(*this, ctx, decode, req.client_request_id(), nullptr, "Generate");
}

grpc::ServerUnaryReactor* GrpcServer::Service::Complete(grpc::CallbackServerContext* ctx,
                                                        const grpc::ByteBuffer* raw,
                                                        grpc::ByteBuffer* resp) {
  v1::GenerateRequest req;
  if (auto st = ParseMessage(*raw, req); !st.ok())
    return RefusedUnary(*ctx, state_, st, "Complete");
  const Decoder decode = [&req](core::CompletionRequest& out, grpcfe::Declared& declared) {
    return grpcfe::DecodeGenerateRequest(req, /*stream=*/false, out, declared);
  };
  return new UnaryCall(*this, ctx, decode, req.client_request_id(), resp, "Complete");
}

grpc::ServerUnaryReactor* GrpcServer::Service::Embed(grpc::CallbackServerContext* ctx,
                                                     const grpc::ByteBuffer* raw,
                                                     grpc::ByteBuffer* resp) {
  v1::EmbedRequest req;
  if (auto st = ParseMessage(*raw, req); !st.ok()) return RefusedUnary(*ctx, state_, st, "Embed");
  const Decoder decode = [&req](core::CompletionRequest& out, grpcfe::Declared& declared) {
    return grpcfe::DecodeEmbedRequest(req, out, declared);
  };
  return new UnaryCall(*this, ctx, decode, req.client_request_id(), resp, "Embed");
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
  const Caller caller = Identify(state_, *table, verifier_.get(), *ctx);
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

}  // namespace meridian::grpcfe
