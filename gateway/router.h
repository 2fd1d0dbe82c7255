// The router: walks a decision's candidates in order and falls back only within them.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/routing_table.h"
#include "policy/decide.h"
#include "providers/common/http_client.h"
#include "providers/provider.h"

namespace meridian::gateway {

namespace asio = boost::asio;

/// One upstream attempt, for the audit record and the response headers.
struct Attempt {
  policy::ProviderIndex provider = 0;
  core::Status status;
  std::chrono::microseconds duration{0};
  std::string processing_echo;  ///< a response header's echo (providers::AttemptResult)
};

struct RouteOutcome {
  core::Status status;  ///< ok when a provider completed the answer
  std::optional<policy::ProviderIndex> served_by;
  std::vector<Attempt> attempts;
};

/// The adapters of one worker thread (one io_context): not thread-safe.
class AdapterSet {
 public:
  AdapterSet(asio::any_io_executor executor, std::shared_ptr<asio::ssl::context> tls,
             providers::ClientLimits limits);
  /// Every kind served by `only`, and no HTTP client (the router's unit tests: a scripted
  /// provider, no sockets).
  explicit AdapterSet(std::unique_ptr<providers::Provider> only);
  ~AdapterSet();
  providers::Provider& For(providers::UpstreamKind kind);
  providers::HttpClient& client() { return *client_; }

 private:
  std::unique_ptr<providers::Provider> only_;
  std::unique_ptr<providers::HttpClient> client_;
  std::unique_ptr<providers::Provider> sim_;
  std::unique_ptr<providers::Provider> openai_;
  std::unique_ptr<providers::Provider> dashscope_;
  std::unique_ptr<providers::Provider> anthropic_;
};

/// Asked before each attempt: ok to try the provider, or why not (the attempt is recorded with
/// that status and the next candidate is tried).
class AttemptGate {
 public:
  virtual ~AttemptGate() = default;
  virtual asio::awaitable<core::Status> Check(const policy::Decision& decision,
                                              policy::ProviderIndex provider) = 0;
};

/// Tries `decision.candidates_after` in order. A failure moves on to the next candidate only
/// if it is retryable (connect error, timeout, 429, 5xx) and nothing has reached the client;
/// it never leaves the decision's set. Cancellation stops at once.
asio::awaitable<RouteOutcome> Route(const policy::Decision& decision, const RoutingTable& table,
                                    const core::CompletionRequest& request, AdapterSet& adapters,
                                    providers::ChunkSink& sink, providers::CancelToken& cancel,
                                    AttemptGate* gate = nullptr);

}  // namespace meridian::gateway
