// Text forms the classifier must see through, shared by the unit and integration tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace meridian::testing {

/// The UTF-8 full-width form (U+FF01..FF5E) of printable ASCII text: "1" -> "１".
inline std::string FullWidth(std::string_view ascii) {
  std::string out;
  for (char c : ascii) {
    const auto cp = static_cast<std::uint32_t>(0xFEE0 + static_cast<unsigned char>(c));
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

}  // namespace meridian::testing
