// OpenAI Embeddings requests (POST /v1/embeddings) on the client side of the gateway. Pure:
// no I/O.
#pragma once

#include <cstddef>
#include <string_view>

#include "gateway/core/request.h"
#include "gateway/core/status.h"

namespace meridian::http {

/// Most inputs in one request, as in OpenAI.
inline constexpr std::size_t kMaxEmbeddingInputs = 2048;

/// Decodes and validates an Embeddings request body into `out` (overwritten; op = kEmbed).
///
/// - `model` (required); `input` (required): a non-empty string, an array of 1 to
///   kMaxEmbeddingInputs non-empty strings, an array of token ids (one input), or an array of
///   non-empty token-id arrays; token ids are integers from 0 to 2^31 - 1.
/// - `dimensions`: an integer >= 1; `encoding_format`: "float" (the default) or "base64";
///   `user`: a string.
/// - Any other field is refused (`unknown_parameter`), as OpenAI does.
core::Status DecodeEmbeddingsRequest(std::string_view body, core::CompletionRequest& out);

}  // namespace meridian::http
