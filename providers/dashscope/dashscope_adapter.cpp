#include "providers/dashscope/dashscope_adapter.h"

#include "providers/common/embeddings.h"
#include "providers/common/http_attempt.h"
#include "providers/common/json_util.h"
#include "providers/dashscope/dashscope_codec.h"

namespace meridian::providers {

namespace {

/// `path` (kGenerationPath, kEmbeddingPath) under the configured endpoint, which may name the
/// host alone or the host with its "/api/v1".
std::string ServicePath(std::string_view base_path, std::string_view path) {
  constexpr std::string_view kApiV1 = "/api/v1";
  if (base_path.ends_with(kApiV1)) {
    base_path.remove_suffix(kApiV1.size());
  }
  return std::string(base_path) + std::string(path);
}

void SetAuth(const Target& target, http::request<http::string_body>& req) {
  req.set(http::field::content_type, dashscope::kContentType);
  if (!target.credential.empty()) {
    req.set(http::field::authorization, "Bearer " + target.credential);
  }
}

}  // namespace

/// DashScope's native codec in the shared HTTP shell (http_attempt.h). Not in the anonymous
/// namespace: the shell's coroutine frames hold it.
struct DashScopeVendor {
  core::Status Prepare(const core::CompletionRequest& request, const Target& target,
                       http::request<http::string_body>& req) const {
    if (auto st = dashscope::CheckContentParts(request, target.provider->id); !st.ok()) return st;
    req.target(ServicePath(target.endpoint->base_path, dashscope::NeedsMultimodal(request)
                                                           ? dashscope::kMultimodalPath
                                                           : dashscope::kGenerationPath));
    SetAuth(target, req);
    if (request.stream) req.set(dashscope::kSseHeaderName, dashscope::kSseHeaderValue);
    req.body() =
        dashscope::BuildGenerationRequestBody(request, target.upstream_model, request.stream);
    return core::Status::Ok();
  }
  core::Status PrepareEmbeddings(const core::CompletionRequest& request, const Target& target,
                                 http::request<http::string_body>& req) const {
    if (auto st = embeddings::RefuseTokenInputs(request, target.provider->id); !st.ok()) {
      return st;
    }
    req.target(ServicePath(target.endpoint->base_path, dashscope::kEmbeddingPath));
    SetAuth(target, req);
    req.body() = dashscope::BuildEmbeddingRequestBody(request, target.upstream_model);
    return core::Status::Ok();
  }
  /// Model Studio's text-embedding models take at most 10 texts per call.
  std::size_t EmbeddingBatch() const { return dashscope::kMaxEmbeddingTexts; }
  core::Status DecodeEmbeddings(const core::CompletionRequest& request, std::string_view body,
                                std::vector<core::Chunk>& out) const {
    return dashscope::DecodeEmbeddingResponse(body, request.embedding.size(), out);
  }
  core::Status MapError(int status, std::string_view body, const UpstreamResponse&) const {
    return dashscope::MapDashScopeError(status, body);
  }
  core::Status DecodeBody(std::string_view body, std::vector<core::Chunk>& out) const {
    return dashscope::DecodeGenerationResponse(body, out);
  }
  dashscope::DashScopeStreamDecoder StreamDecoder() const {
    return dashscope::DashScopeStreamDecoder(/*incremental_output=*/true);
  }
};

std::unique_ptr<Provider> MakeDashScopeAdapter(HttpClient& client) {
  return std::make_unique<HttpProvider<DashScopeVendor>>(client);
}

}  // namespace meridian::providers
