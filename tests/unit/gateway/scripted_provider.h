// A provider that follows a script per provider id, without sockets: the router's and the
// exchange's unit tests put it behind an AdapterSet in place of every adapter.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <string>
#include <vector>

#include "providers/provider.h"

namespace meridian::gateway {

namespace asio = boost::asio;

/// The providers of the scripted tests' policies (all `sim`, model "chat", streaming): a, b (whose
/// attempts are capped at 50 ms), c, and outside, which no decision of theirs includes.
inline constexpr const char* kScriptedProviders = R"(providers:
  - id: a
    kind: sim
    models: {chat: up}
    capabilities: [streaming]
  - id: b
    kind: sim
    models: {chat: up}
    capabilities: [streaming]
    max_duration_ms: 50
  - id: c
    kind: sim
    models: {chat: up}
    capabilities: [streaming]
  - id: outside
    kind: sim
    models: {chat: up}
    capabilities: [streaming]
)";

/// What the scripted provider does for one provider id.
struct Script {
  core::Status status = core::Status::Ok();  ///< returned at the end
  int deltas = 2;                            ///< content chunks emitted before returning
  bool hang = false;                         ///< wait until cancelled (then return kCancelled)
  bool silent = false;                       ///< emit nothing at all, not even the start
  bool hang_after_deltas = false;            ///< after the deltas, wait until cancelled
};

inline core::Status Failure(core::StatusCode code, std::string reason) {
  auto s = core::Status::Error(code, "scripted failure", std::move(reason));
  s.retryable = code != core::StatusCode::kInvalidArgument;
  return s;
}

class ScriptedProvider final : public providers::Provider {
 public:
  explicit ScriptedProvider(asio::any_io_executor ex) : ex_(std::move(ex)) {}
  std::map<std::string, Script> scripts;
  std::vector<std::string> calls;  ///< provider ids, in order

  asio::awaitable<providers::AttemptResult> Complete(const core::CompletionRequest& request,
                                                     const providers::Target& target,
                                                     providers::ChunkSink& sink,
                                                     providers::CancelToken& cancel) override {
    (void)request;
    calls.push_back(target.provider->id);
    const Script s = scripts[target.provider->id];
    providers::AttemptResult r;
    if (s.hang) {
      r.status = co_await UntilCancelled(cancel);
      co_return r;
    }
    core::Chunk start;
    start.kind = core::Chunk::Kind::kStart;
    if (!s.silent) {
      r.emitted = true;
      (void)co_await sink.Emit(start);
    }
    for (int i = 0; i < s.deltas; ++i) {
      core::Chunk d;
      d.kind = core::Chunk::Kind::kDelta;
      d.content = target.provider->id + "-" + std::to_string(i);
      (void)co_await sink.Emit(d);
    }
    if (s.hang_after_deltas) {
      r.status = co_await UntilCancelled(cancel);
      co_return r;
    }
    r.status = s.status;
    co_return r;
  }

 private:
  /// Waits until the request is cancelled; returns the adapter's kCancelled.
  asio::awaitable<core::Status> UntilCancelled(providers::CancelToken& cancel) {
    asio::steady_timer forever(ex_, asio::steady_timer::time_point::max());
    if (cancel.cancelled()) forever.expires_at(asio::steady_timer::time_point::min());
    cancel.OnCancel([&forever] { forever.cancel(); });
    (void)co_await forever.async_wait(asio::as_tuple(asio::use_awaitable));
    cancel.Clear();
    co_return core::Status::Error(core::StatusCode::kCancelled, "cancelled", "cancelled");
  }

  asio::any_io_executor ex_;
};

}  // namespace meridian::gateway
