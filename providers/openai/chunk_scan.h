// A scanner for the one stream payload that makes up almost every streamed answer: an OpenAI
// `chat.completion.chunk` whose single choice carries a `delta.content` string and nothing
// else that matters. It recognises that shape without building a JSON DOM (a Boost.JSON
// parse plus the lookups were most of the gateway's per-event cost: docs/performance.md) and
// declines everything else, which the full decoder (OpenAiStreamDecoder) then handles. Pure.
//
// The shape, in any member order, each member at most once, strict JSON (RFC 8259: valid
// UTF-8, escapes, no control characters in strings), nothing after the object:
//   {"id": s, "object": s, "created": int, "model": s, "system_fingerprint": s|null,
//    "service_tier": s|null, "obfuscation": s, "usage": null,
//    "choices": [{"index": 0, "delta": {"content": s|null, "role": s, "refusal": null},
//                 "logprobs": null, "finish_reason": null}]}
// Any other member, value type, a second choice, a duplicate member -> declined. Whatever it
// accepts, the full decoder decodes to the same content (tests/fuzz/chunk_scan_fuzz.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace meridian::providers::openai {

/// The decoded `choices[0].delta.content` ("" when null) of a payload of the shape above;
/// nullopt when the payload has any other shape.
std::optional<std::string> ScanContentChunk(std::string_view payload);

}  // namespace meridian::providers::openai
