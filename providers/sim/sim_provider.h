// `sim`: a built-in simulated engine so the gateway runs with no upstream at all. Deterministic
// text (a function of the prompt), configurable token count and pacing, labelled as simulated.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include "providers/provider.h"

namespace meridian::providers {

class SimProvider final : public Provider {
 public:
  explicit SimProvider(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  /// Emits kStart, then (when the request enables thinking) a few reasoning deltas, then
  /// `sim_tokens` content deltas (capped by the request's token limit) `sim_delay_ms` apart,
  /// kFinish ("stop", or "length" when capped) and kUsage.
  asio::awaitable<AttemptResult> Complete(const core::CompletionRequest& request,
                                          const Target& target, ChunkSink& sink,
                                          CancelToken& cancel) override;

 private:
  asio::any_io_executor executor_;
};

}  // namespace meridian::providers
