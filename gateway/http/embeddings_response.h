// OpenAI Embeddings answers: the `list` of `embedding` objects, from any provider's vectors.
// Pure: no I/O.
#pragma once

#include <string>
#include <string_view>

#include "gateway/core/completion.h"

namespace meridian::http {

/// `{"object":"list","data":[{"object":"embedding","index":i,"embedding":V}...],"model":M,
/// "usage":{"prompt_tokens":P,"total_tokens":T}}`: one item per vector in input order, V an
/// array of numbers (each float's shortest round-trip form) or, when `base64`, the base64 of
/// its little-endian float32 bytes; `model` is the alias the client asked for.
std::string RenderEmbeddings(const core::Completion& answer, std::string_view model, bool base64);

}  // namespace meridian::http
