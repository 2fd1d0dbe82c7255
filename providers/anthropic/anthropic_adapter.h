// Adapter for the Anthropic Messages API (kind `anthropic`). The codec (anthropic_codec.h) is
// pure; it runs in the HTTP shell all vendors share (providers/common/http_attempt.h).
#pragma once

#include "providers/common/http_client.h"
#include "providers/provider.h"

namespace meridian::providers {

class AnthropicAdapter final : public Provider {
 public:
  explicit AnthropicAdapter(HttpClient& client) : client_(client) {}

  /// The request path for a provider endpoint: the API origin ("https://api.anthropic.com",
  /// as the SDK's base URL) or one ending in /v1.
  static std::string MessagesPath(std::string_view base_path);

  asio::awaitable<AttemptResult> Complete(const core::CompletionRequest& request,
                                          const Target& target, ChunkSink& sink,
                                          CancelToken& cancel) override;

 private:
  HttpClient& client_;
};

}  // namespace meridian::providers
