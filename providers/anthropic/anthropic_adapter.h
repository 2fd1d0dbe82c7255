// Adapter for the Anthropic Messages API (kind `anthropic`). The codec (anthropic_codec.h) is
// pure; it runs in the HTTP shell all vendors share (providers/common/http_attempt.h). The
// request path is built from the provider endpoint: the API origin ("https://api.anthropic.com",
// as the SDK's base URL) or one ending in /v1.
#pragma once

#include <memory>

#include "providers/common/http_client.h"
#include "providers/provider.h"

namespace meridian::providers {

std::unique_ptr<Provider> MakeAnthropicAdapter(HttpClient& client);

}  // namespace meridian::providers
