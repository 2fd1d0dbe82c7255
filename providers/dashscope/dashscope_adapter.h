// Adapter for Alibaba Cloud Model Studio's native DashScope text-generation API (kind
// `dashscope`). The codec (dashscope_codec.h) is pure; it runs in the HTTP shell all vendors share
// (providers/common/http_attempt.h). The request path is built from the provider endpoint: the
// region host ("https://dashscope.aliyuncs.com") or the SDK's base URL ending in /api/v1.
#pragma once

#include <memory>

#include "providers/common/http_client.h"
#include "providers/provider.h"

namespace meridian::providers {

std::unique_ptr<Provider> MakeDashScopeAdapter(HttpClient& client);

}  // namespace meridian::providers
