// OpenAI legacy Completions requests (POST /v1/completions) on the client side of the gateway:
// a prompt, served by every provider as one user message of a chat. Pure: no I/O.
#pragma once

#include <string_view>

#include "gateway/core/request.h"
#include "gateway/core/status.h"

namespace meridian::http {

/// Decodes and validates a Completions request body into `out` (overwritten).
///
/// - `prompt`: a string, or an array of exactly one string, becomes one user message; token
///   arrays and several prompts (several choices) are refused.
/// - `max_tokens` defaults to 16, as OpenAI's does; `temperature`, `top_p`, `stop`, `stream`,
///   `stream_options.include_usage`, `user` as in chat; `seed`, `frequency_penalty`,
///   `presence_penalty`, `logit_bias` pass through; `n` and `best_of` must be 1.
/// - `suffix`, `echo: true` and `logprobs` are refused (`unsupported_parameter`): a chat model
///   cannot honour them; unknown fields are refused (`unknown_parameter`).
core::Status DecodeCompletionsRequest(std::string_view body, core::CompletionRequest& out);

}  // namespace meridian::http
