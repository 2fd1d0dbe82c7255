// Embedding vectors as the OpenAI wire carries them with `encoding_format: "base64"`: the
// little-endian IEEE-754 float32 bytes of the vector, base64-encoded (RFC 4648, with padding).
// Pure.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace meridian::core {

/// Appends the base64 text (RFC 4648, padded) of `bytes`.
void AppendBase64(std::string& out, std::string_view bytes);

/// Appends the base64 text of `v`'s float32 little-endian bytes.
void AppendFloat32Base64(std::string& out, std::span<const float> v);

/// Decodes such a text into `out` (replaced); false when it is not padded base64 (RFC 4648
/// alphabet) or its length is not a whole number of float32 values.
bool DecodeFloat32Base64(std::string_view text, std::vector<float>& out);

}  // namespace meridian::core
