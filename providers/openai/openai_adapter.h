// Adapter for the OpenAI wire family: kinds `openai`, `azure_openai` and `openai_compatible`
// (vLLM, llama.cpp, SGLang, MLX-LM, Ollama). The codec (openai_codec.h) is pure; it runs in
// the HTTP shell all vendors share (providers/common/http_attempt.h).
#pragma once

#include "providers/common/http_client.h"
#include "providers/provider.h"

namespace meridian::providers {

class OpenAiAdapter final : public Provider {
 public:
  explicit OpenAiAdapter(HttpClient& client) : client_(client) {}

  asio::awaitable<AttemptResult> Complete(const core::CompletionRequest& request,
                                          const Target& target, ChunkSink& sink,
                                          CancelToken& cancel) override;

 private:
  HttpClient& client_;
};

}  // namespace meridian::providers
