// Boost.JSON values <-> compact JSON text, shared by every codec that reads a client's or an
// upstream's JSON and writes it on (pure).
#pragma once

#include <array>
#include <boost/json/value.hpp>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace meridian::core {

inline std::string_view Sv(boost::json::string_view s) {
  return {s.data(), s.size()};
}
inline std::string_view Sv(const boost::json::string& s) {
  return {s.data(), s.size()};
}

template <typename Int>
void AppendInt(std::string& out, Int v) {
  std::array<char, 24> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), end);
}

/// Shortest round-trip form, keeping a decimal point so floats stay floats upstream. Returns
/// false for infinities (the parser yields them for literals like 1e400), which JSON cannot
/// spell; "null" is written in their place.
bool AppendDouble(std::string& out, double d);

/// Compact JSON of `v`. Own writer rather than json::serialize so numbers keep a conventional
/// form (serialize prints 0.7 as "7E-1") and escaping matches AppendJsonString. Returns false
/// if a number could not be represented (see AppendDouble).
[[nodiscard]] bool AppendJsonValue(std::string& out, const boost::json::value& v);
[[nodiscard]] bool AppendJsonArray(std::string& out, const boost::json::array& a);

/// Integral JSON numbers, including 1e3 or 5.0 that a client's serializer produced.
bool AsInteger(const boost::json::value& v, std::int64_t& out);

}  // namespace meridian::core
