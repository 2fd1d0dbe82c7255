// Adapter for the OpenAI wire family: kinds `openai`, `azure_openai` and `openai_compatible`
// (vLLM, llama.cpp, SGLang, MLX-LM, Ollama). The codec (openai_codec.h) is pure; it runs in
// the HTTP shell all vendors share (providers/common/http_attempt.h).
#pragma once

#include <memory>

#include "providers/common/http_client.h"
#include "providers/provider.h"

namespace meridian::providers {

std::unique_ptr<Provider> MakeOpenAiAdapter(HttpClient& client);

}  // namespace meridian::providers
