// The exchange: one completion request's life from "caller identified, request decoded" to
// "one report", written once for every front end. It reserves the audit record, admits the
// request (classify, decide, refuse), takes a concurrency slot, routes it within the
// decision's candidates, maps cancellation (client, caller deadline, drain) to the final
// status, tells the front end's ResponseWriter what to put on the wire, and reports the
// request (metrics and its audit line) exactly once.
//
// A front end owns only its wire codec and identity extraction: it decodes a
// core::CompletionRequest, fills a CallerContext, and implements a ResponseWriter. Runs on a
// worker thread (WorkerContext), like the adapters it calls.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/core/completion.h"
#include "gateway/core/request.h"
#include "gateway/core/request_id.h"
#include "gateway/core/status.h"
#include "gateway/gateway_metrics.h"
#include "gateway/pipeline.h"
#include "gateway/worker.h"
#include "providers/provider.h"

namespace meridian::gateway {

/// Why a request in progress was cancelled.
enum class CancelCause : std::uint8_t {
  kNone,
  kClient,    ///< the client went away, or a write to it failed
  kDeadline,  ///< the caller's own deadline passed (gRPC)
  kDrain,     ///< the gateway's drain deadline passed
  kDrainCut,  ///< the drain deadline passed and the client was not reading: connection cut
};

/// The cancellation of one exchange: the token the router and adapters watch, and the first
/// cause (a drain cut refines a drain). Single-threaded: on the exchange's worker only.
class Cancellation {
 public:
  void Cancel(CancelCause why) {
    if (cause_ == CancelCause::kNone ||
        (why == CancelCause::kDrainCut && cause_ == CancelCause::kDrain)) {
      cause_ = why;
    }
    token_.Cancel();
  }
  bool cancelled() const { return token_.cancelled(); }
  CancelCause cause() const { return cause_; }
  providers::CancelToken& token() { return token_; }

 private:
  providers::CancelToken token_;
  CancelCause cause_ = CancelCause::kNone;
};

/// Who is calling, as the front end established it from trusted sources only.
struct CallerContext {
  RequestReport::FrontEnd front_end = RequestReport::FrontEnd::kHttp;
  core::RequestId id;
  std::string tenant;  ///< tenant id (reports, logs)
  std::string key_id;  ///< the credential's id (identity::KeyId), per-key limits
  /// The tenant's rate limits (null: none); owned by `identities`.
  const config::TenantLimitsConfig* limits = nullptr;
  /// The tenants the caller was authenticated against, held for the request's life.
  IdentitiesPtr identities;
  policy::RequestAttributes attrs;  ///< AttributesOf(tenant, region) + declared class/consent
  std::string traceparent;          ///< as received ("" when none): the upstream gets a child
  /// The caller's own deadline (gRPC); max: none.
  std::chrono::system_clock::time_point deadline = std::chrono::system_clock::time_point::max();
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

/// The front end's side of one answer. Exactly one of Refuse, Finish (after Commit) or
/// Complete ends it. Every method runs on the exchange's worker.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  /// No answer: `status` (not ok) before anything reached the client. `admission` is null
  /// when refused before the decision; `provider` is the last provider tried ("" if none).
  virtual boost::asio::awaitable<void> Refuse(const core::Status& status,
                                              const Admission* admission,
                                              std::string_view provider) = 0;
  /// A streamed answer commits: its head (decision, provider) and the upstream's start
  /// (`start`, may be null) may be written now or with the next Write. False: the client is
  /// gone.
  virtual boost::asio::awaitable<bool> Commit(const Admission& admission, std::string_view provider,
                                              const core::Chunk* start) = 0;
  /// One chunk of a committed stream. False: the client is gone.
  virtual boost::asio::awaitable<bool> Write(const core::Chunk& chunk) = 0;
  /// Ends a committed stream: ok, or the error that cut it short.
  virtual boost::asio::awaitable<void> Finish(const core::Status& status) = 0;
  /// A non-streamed answer, whole.
  virtual boost::asio::awaitable<void> Complete(const Admission& admission,
                                                std::string_view provider,
                                                const core::Completion& answer) = 0;
  /// The status the client got, in the front end's terms (HTTP status, gRPC code), for the
  /// report; `final` is what the exchange ended with.
  virtual int WireStatus(const core::Status& final) const = 0;
};

struct ExchangeResult {
  core::Status status;   ///< how the exchange ended (ok: the answer completed)
  std::string provider;  ///< the last provider tried ("" if none)
  std::optional<double> ttft_ms;
  bool decided = false;  ///< a policy decision was made (and reported)
};

/// Runs one exchange on `worker`. `table` is the routing table the front end established the
/// caller with; `cancel` is watched by the front end too (it cancels with kClient).
boost::asio::awaitable<ExchangeResult> Exchange(GatewayState& state, WorkerContext& worker,
                                                RoutingTablePtr table, const CallerContext& caller,
                                                core::CompletionRequest request,
                                                ResponseWriter& writer, Cancellation& cancel);

/// The final status of a request cancelled for `cause` (kNone: `routed`, the router's).
core::Status CancelledStatus(CancelCause cause, const core::Status& routed,
                             std::uint32_t retry_after_s);

}  // namespace meridian::gateway
