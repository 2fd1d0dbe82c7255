// Adapter for Alibaba Cloud Model Studio's native DashScope text-generation API (kind
// `dashscope`). The codec (dashscope_codec.h) is pure; it runs in the HTTP shell all vendors share
// (providers/common/http_attempt.h).
#pragma once

#include "providers/common/http_client.h"
#include "providers/provider.h"

namespace meridian::providers {

class DashScopeAdapter final : public Provider {
 public:
  explicit DashScopeAdapter(HttpClient& client) : client_(client) {}

  /// The request path for a provider endpoint: the region host ("https://dashscope.aliyuncs.com")
  /// or the SDK's base URL ending in /api/v1 ("https://dashscope.aliyuncs.com/api/v1").
  static std::string GenerationPath(std::string_view base_path);

  asio::awaitable<AttemptResult> Complete(const core::CompletionRequest& request,
                                          const Target& target, ChunkSink& sink,
                                          CancelToken& cancel) override;

 private:
  HttpClient& client_;
};

}  // namespace meridian::providers
