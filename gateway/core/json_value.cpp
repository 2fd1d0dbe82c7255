#include "gateway/core/json_value.h"

#include <cmath>
#include <limits>

#include "gateway/core/json_text.h"

namespace meridian::core {

namespace json = boost::json;

bool AppendDouble(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";
    return false;
  }
  std::array<char, 32> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), d);
  std::string_view text(buf.data(), static_cast<std::size_t>(end - buf.data()));
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
  return true;
}

bool AppendJsonValue(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      return true;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return true;
    case json::kind::int64:
      AppendInt(out, v.get_int64());
      return true;
    case json::kind::uint64:
      AppendInt(out, v.get_uint64());
      return true;
    case json::kind::double_:
      return AppendDouble(out, v.get_double());
    case json::kind::string:
      AppendJsonString(out, Sv(v.get_string()));
      return true;
    case json::kind::array:
      return AppendJsonArray(out, v.get_array());
    case json::kind::object: {
      bool finite = true;
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(out, Sv(kv.key()));
        out += ':';
        finite &= AppendJsonValue(out, kv.value());
      }
      out += '}';
      return finite;
    }
  }
  return true;
}

bool AppendJsonArray(std::string& out, const json::array& a) {
  bool finite = true;
  out += '[';
  bool first = true;
  for (const auto& e : a) {
    if (!first) out += ',';
    first = false;
    finite &= AppendJsonValue(out, e);
  }
  out += ']';
  return finite;
}

bool AsInteger(const json::value& v, std::int64_t& out) {
  if (v.is_int64()) {
    out = v.get_int64();
    return true;
  }
  if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return false;
    }
    out = static_cast<std::int64_t>(v.get_uint64());
    return true;
  }
  if (v.is_double()) {
    const double d = v.get_double();
    // 2^63 is exact as a double; anything at or beyond it does not fit.
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || std::trunc(d) != d) {
      return false;
    }
    out = static_cast<std::int64_t>(d);
    return true;
  }
  return false;
}

}  // namespace meridian::core
