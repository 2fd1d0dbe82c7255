// Upstream text made safe to show a client or a log (pure): providers' error messages can echo
// the gateway's credentials ("Incorrect API key provided: sk-...") and carry any bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace meridian::providers {

/// Replaces key-like tokens in upstream text with "[redacted]", replaces control characters
/// and invalid UTF-8, collapses whitespace and bounds the result to `max_bytes`. Every
/// vendor codec passes upstream error text through it.
std::string SanitizeUpstreamText(std::string_view text, std::size_t max_bytes = 512);

/// Cuts `s` to at most `max_bytes` without splitting a UTF-8 sequence.
void TruncateUtf8(std::string& s, std::size_t max_bytes);

inline bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace meridian::providers
