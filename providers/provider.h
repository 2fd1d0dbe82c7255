// The provider interface: translate a CompletionRequest to a vendor's wire format, stream the
// answer back as core::Chunks. Adapters are created per worker thread (one io_context each) and
// are not thread-safe; they never outlive their io_context.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "gateway/core/chunk.h"
#include "gateway/core/request.h"
#include "gateway/core/status.h"

namespace meridian::providers {

namespace asio = boost::asio;

/// Cancellation of one request, owned by the front end. When the client goes away (or a
/// deadline passes) the front end calls Cancel(): the hook an adapter installed closes its
/// upstream connection or stops its timer, so the upstream request ends promptly.
/// Single-threaded: used only on the request's io_context.
class CancelToken {
 public:
  bool cancelled() const { return cancelled_; }
  void Cancel() {
    if (cancelled_) return;
    cancelled_ = true;
    if (hook_) std::exchange(hook_, nullptr)();
  }
  /// Installs the action that aborts the current upstream work (replacing any previous one).
  /// Runs at once if already cancelled.
  void OnCancel(std::function<void()> hook) {
    if (cancelled_) {
      hook();
      return;
    }
    hook_ = std::move(hook);
  }
  void Clear() { hook_ = nullptr; }

 private:
  bool cancelled_ = false;
  std::function<void()> hook_;
};

/// Where chunks go. Awaiting Emit is backpressure: a slow client slows the upstream read.
class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  /// Delivers one chunk; false when the consumer is gone (the adapter stops and returns
  /// kCancelled).
  virtual asio::awaitable<bool> Emit(const core::Chunk& chunk) = 0;
  /// True once any byte of the answer has reached the client: from then on no other provider
  /// may be tried.
  virtual bool committed() const = 0;
  /// Discards what an uncommitted sink collected from a failed attempt, before the next one.
  virtual void Reset() = 0;
  /// The router is about to try the provider `provider_id` (front ends name it in their
  /// response headers).
  virtual void BeginAttempt(std::string_view provider_id) { (void)provider_id; }
};

struct Endpoint;

/// The wire protocol an upstream speaks.
enum class UpstreamKind : std::uint8_t {
  kSim,               ///< the built-in simulated engine
  kOpenAi,            ///< api.openai.com
  kAzureOpenAi,       ///< Azure OpenAI (api-key header, deployments, api-version)
  kOpenAiCompatible,  ///< local engines: vLLM, llama.cpp, SGLang, MLX-LM, Ollama
  kDashScope,         ///< Alibaba DashScope, native protocol
  kAnthropic,         ///< Anthropic Messages
};

/// What an adapter needs to know of the provider it calls. The routing table builds one per
/// provider from the policy, so adapters never see policy types.
struct UpstreamProfile {
  std::string id;
  UpstreamKind kind = UpstreamKind::kSim;
  std::string api_version;                    ///< azure_openai
  std::string anthropic_version;              ///< anthropic
  std::int64_t max_tokens_default = 4096;     ///< anthropic: max_tokens when the request has none
  std::int64_t sim_tokens = 24;               ///< sim
  std::int64_t sim_delay_ms = 0;              ///< sim
  std::chrono::milliseconds max_duration{0};  ///< cap on one attempt; 0: none
  /// openai / openai_compatible: a Responses API request goes to POST {base}/responses as
  /// the client's own body (core::NativeBody kOpenAiResponses) instead of a translation.
  bool responses_api = false;
};

/// One attempt against one provider of the decision.
struct Target {
  const UpstreamProfile* provider = nullptr;
  const Endpoint* endpoint = nullptr;  ///< parsed provider URL (null for sim)
  std::string upstream_model;          ///< the provider's name for the requested alias
  std::string credential;              ///< resolved secret; never logged
};

/// Result of an attempt. `status.retryable` says whether the router may try the next
/// candidate (it does so only if the sink is not committed).
struct AttemptResult {
  core::Status status;
  bool emitted = false;  ///< the adapter emitted at least one chunk
  /// Where a response header said the request was processed, "<header>=<value>" (Azure's
  /// "x-ms-region=East US 2"); "" when none did. (Body echoes come in core::Usage.)
  std::string processing_echo;
};

class Provider {
 public:
  virtual ~Provider() = default;
  /// Runs the request against `target` and emits chunks in order: kStart, kDelta*, kFinish,
  /// kUsage?. Emits nothing before the upstream has accepted the request (HTTP 200 and a
  /// first event), so a failure up to then can fall back. Never emits kError: failures are
  /// returned.
  virtual asio::awaitable<AttemptResult> Complete(const core::CompletionRequest& request,
                                                  const Target& target, ChunkSink& sink,
                                                  CancelToken& cancel) = 0;
};

}  // namespace meridian::providers
