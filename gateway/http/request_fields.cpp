#include "gateway/http/request_fields.h"

#include <array>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <charconv>
#include <limits>
#include <utility>

#include "gateway/core/json_value.h"

namespace meridian::http::fields {

namespace json = boost::json;
using core::AsInteger;
using core::Status;
using core::StatusCode;
using core::Sv;

Status Invalid(std::string param, std::string message, std::string reason) {
  return Status::Error(StatusCode::kInvalidArgument, std::move(message), std::move(reason),
                       std::move(param));
}

const char* Describe(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a decimal number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

Status Missing(std::string param) {
  std::string msg = "Missing required parameter: '" + param + "'.";
  return Invalid(std::move(param), std::move(msg), "missing_required_parameter");
}

Status WrongType(std::string param, std::string_view expected, const json::value& got) {
  std::string msg = "Invalid type for '" + param + "': expected " + std::string(expected) +
                    ", but got " + Describe(got) + " instead.";
  return Invalid(std::move(param), std::move(msg), "invalid_type");
}

Status BadValue(std::string param, std::string_view why) {
  std::string msg = "Invalid value for '" + param + "': " + std::string(why);
  return Invalid(std::move(param), std::move(msg), "invalid_value");
}

Status NumberTooLarge(std::string param) {
  std::string msg = "Invalid value for '" + param + "': contains a number too large to represent.";
  return Invalid(std::move(param), std::move(msg), "invalid_value");
}

Status EmptyArray(std::string param) {
  std::string msg = "Invalid '" + param +
                    "': empty array. Expected an array with minimum length 1, but got an empty "
                    "array instead.";
  return Invalid(std::move(param), std::move(msg), "empty_array");
}

Status TooLong(std::string param, std::size_t max, std::size_t got) {
  std::string msg =
      "Invalid '" + param + "': array too long. Expected an array with maximum length " +
      std::to_string(max) + ", but got an array with length " + std::to_string(got) + " instead.";
  return Invalid(std::move(param), std::move(msg), "array_above_max_length");
}

std::string Index(std::string_view base, std::size_t i) {
  std::string s(base);
  s += '[';
  s += std::to_string(i);
  s += ']';
  return s;
}

std::string Member(std::string_view base, std::string_view name) {
  std::string s(base);
  s += '.';
  s += name;
  return s;
}

bool AsNumber(const json::value& v, double& out) {
  if (v.is_int64()) {
    out = static_cast<double>(v.get_int64());
  } else if (v.is_uint64()) {
    out = static_cast<double>(v.get_uint64());
  } else if (v.is_double()) {
    out = v.get_double();
  } else {
    return false;
  }
  return true;
}

std::string FormatBound(double d) {
  std::string s;
  std::array<char, 32> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), d);
  s.assign(buf.data(), end);
  return s;
}

Status IntegerIn(const json::value& v, std::string param, std::int64_t min, std::int64_t max,
                 std::int64_t& out) {
  if (!AsInteger(v, out)) return WrongType(std::move(param), "an integer", v);
  if (out < min || out > max) {
    const std::string why =
        max == std::numeric_limits<std::int64_t>::max()
            ? "must be at least " + std::to_string(min) + "."
            : "must be between " + std::to_string(min) + " and " + std::to_string(max) + ".";
    return BadValue(std::move(param), why);
  }
  return Status::Ok();
}

Status NumberIn(const json::value& v, std::string param, double min, double max, double& out) {
  if (!AsNumber(v, out)) return WrongType(std::move(param), "a number", v);
  if (!(out >= min && out <= max)) {
    return BadValue(std::move(param),
                    "must be between " + FormatBound(min) + " and " + FormatBound(max) + ".");
  }
  return Status::Ok();
}

// Optional string member of a message: absent and null both mean "not given".
Status OptionalString(const json::object& o, std::string_view key, const std::string& path,
                      std::string& out) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr || v->is_null()) return Status::Ok();
  if (!v->is_string()) return WrongType(Member(path, key), "a string", *v);
  out.assign(Sv(v->get_string()));
  return Status::Ok();
}

Status OptionalBool(const json::value& v, std::string param, std::optional<bool>& out) {
  if (v.is_null()) return Status::Ok();
  if (!v.is_bool()) return WrongType(std::move(param), "a boolean", v);
  out = v.get_bool();
  return Status::Ok();
}

Status RequiredString(const json::object& o, std::string_view key, const std::string& path,
                      std::string& out) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) return Missing(Member(path, key));
  if (!v->is_string()) return WrongType(Member(path, key), "a string", *v);
  out.assign(Sv(v->get_string()));
  return Status::Ok();
}

Status Unsupported(std::string param, std::string why) {
  return Invalid(std::move(param), std::move(why), "unsupported_parameter");
}

Status Stop(const json::value& v, std::vector<std::string>& out) {
  if (v.is_string()) {
    out.emplace_back(Sv(v.get_string()));
    return Status::Ok();
  }
  if (!v.is_array()) return WrongType("stop", "a string or an array of strings", v);
  const json::array& arr = v.get_array();
  if (arr.size() > kMaxStopSequences) return TooLong("stop", kMaxStopSequences, arr.size());
  for (std::size_t i = 0; i < arr.size(); ++i) {
    if (!arr[i].is_string()) return WrongType(Index("stop", i), "a string", arr[i]);
    out.emplace_back(Sv(arr[i].get_string()));
  }
  return Status::Ok();
}

Status StreamOptions(const json::value* v, bool stream, bool& include_usage) {
  if (v == nullptr) return Status::Ok();
  if (!stream) {
    return Invalid("stream_options",
                   "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                   "invalid_value");
  }
  if (const json::value* iu = v->get_object().if_contains("include_usage")) {
    std::optional<bool> include;
    if (auto s = OptionalBool(*iu, "stream_options.include_usage", include); !s.ok()) return s;
    include_usage = include.value_or(false);
  }
  return Status::Ok();
}

Status Model(const json::value& v, std::string& out) {
  if (!v.is_string()) return WrongType("model", "a string", v);
  if (v.get_string().empty()) return BadValue("model", "must not be empty.");
  out.assign(Sv(v.get_string()));
  return Status::Ok();
}

Status ToolChoiceMode(const json::value& v) {
  const auto& s = v.get_string();
  if (s != "none" && s != "auto" && s != "required") {
    return BadValue("tool_choice", "'" + std::string(Sv(s)) +
                                       "'. Supported values are: 'none', 'auto', and "
                                       "'required'.");
  }
  return Status::Ok();
}

Status WithJsonObject(std::string_view body,
                      const std::function<Status(const json::object&)>& decode) {
  // Every node of the DOM dies with this call, so a bump allocator seeded from the stack
  // avoids a malloc per node; large bodies spill into heap blocks it frees at once.
  std::array<unsigned char, 4096> initial{};
  json::monotonic_resource arena(initial.data(), initial.size());
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;

  boost::system::error_code ec;
  const json::value root =
      json::parse(json::string_view(body.data(), body.size()), ec, &arena, options);
  if (ec) {
    if (ec == json::error::too_deep) {
      return Invalid({},
                     "request body is not valid JSON: nesting deeper than " +
                         std::to_string(kMaxJsonDepth) + " levels",
                     "invalid_json");
    }
    return Invalid({}, "request body is not valid JSON: " + ec.message(), "invalid_json");
  }
  const json::object* obj = root.if_object();
  if (obj == nullptr) {
    return Invalid(
        {},
        std::string("request body must be a JSON object, but got ") + Describe(root) + " instead.",
        "invalid_type");
  }
  return decode(*obj);
}

}  // namespace meridian::http::fields
