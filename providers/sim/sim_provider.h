// `sim`: a built-in simulated engine so the gateway runs with no upstream at all. Deterministic
// text (a function of the prompt), configurable token count and pacing, labelled as simulated.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <string_view>
#include <vector>

#include "providers/provider.h"

namespace meridian::providers {

/// Vectors the sim gives when `dimensions` is not set.
inline constexpr std::int64_t kSimDimensions = 64;
/// The longest vector the sim makes (a longer `dimensions` is refused as invalid).
inline constexpr std::int64_t kSimMaxDimensions = 4096;

/// The sim's deterministic embedding of `text`: a hashed bag of words (ASCII letters folded to
/// lower case), normalised to unit length, so texts sharing words are near each other. Pure.
std::vector<float> SimEmbedding(std::string_view text, std::size_t dimensions);
/// The same over token ids (each id is a word).
std::vector<float> SimEmbedding(const std::vector<std::int64_t>& tokens, std::size_t dimensions);

class SimProvider final : public Provider {
 public:
  explicit SimProvider(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  /// Emits kStart, then (when the request enables thinking) a few reasoning deltas, then
  /// `sim_tokens` content deltas (capped by the request's token limit) `sim_delay_ms` apart,
  /// kFinish ("stop", or "length" when capped) and kUsage.
  ///
  /// An embeddings request (core::Operation::kEmbed) gets, after one `sim_delay_ms` pause,
  /// kStart, one unit-length vector per input (SimEmbedding) and kUsage.
  asio::awaitable<AttemptResult> Complete(const core::CompletionRequest& request,
                                          const Target& target, ChunkSink& sink,
                                          CancelToken& cancel) override;

 private:
  asio::awaitable<AttemptResult> Embed(const core::CompletionRequest& request, const Target& target,
                                       ChunkSink& sink, CancelToken& cancel);
  asio::any_io_executor executor_;
};

}  // namespace meridian::providers
