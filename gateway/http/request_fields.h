// Field checks shared by the HTTP request decoders (Chat Completions, Responses): OpenAI's
// error wording and `param` paths ("messages[2].content"), so every ingress API refuses a bad
// field the way OpenAI does. Internal to gateway/http's codecs. Pure.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/status.h"

namespace meridian::http::fields {

/// Deepest JSON nesting accepted in a request body (objects and arrays count one level each).
/// Real requests need about 10; the cap bounds parser work on hostile input.
inline constexpr std::size_t kMaxJsonDepth = 64;

/// Most `stop` sequences, as in OpenAI.
inline constexpr std::size_t kMaxStopSequences = 4;

/// kInvalidArgument with `param` and `reason` (an OpenAI-style code).
core::Status Invalid(std::string param, std::string message, std::string reason);
/// "null", "a boolean", "an integer", "a decimal number", "a string", "an array", "an object".
const char* Describe(const boost::json::value& v);
core::Status Missing(std::string param);
core::Status WrongType(std::string param, std::string_view expected, const boost::json::value& got);
core::Status BadValue(std::string param, std::string_view why);
core::Status NumberTooLarge(std::string param);
core::Status EmptyArray(std::string param);
core::Status TooLong(std::string param, std::size_t max, std::size_t got);
/// "base[i]", "base.name".
std::string Index(std::string_view base, std::size_t i);
std::string Member(std::string_view base, std::string_view name);
bool AsNumber(const boost::json::value& v, double& out);
/// A bound as a message shows it ("2", "0.5", "inf").
std::string FormatBound(double d);
core::Status IntegerIn(const boost::json::value& v, std::string param, std::int64_t min,
                       std::int64_t max, std::int64_t& out);
core::Status NumberIn(const boost::json::value& v, std::string param, double min, double max,
                      double& out);
/// An optional string member of `o` at `path`: absent and null both mean "not given".
core::Status OptionalString(const boost::json::object& o, std::string_view key,
                            const std::string& path, std::string& out);
/// The `model` field: a non-empty string (a model alias of the policy).
core::Status Model(const boost::json::value& v, std::string& out);
/// A required string member `key` of `o` at `path`.
core::Status RequiredString(const boost::json::object& o, std::string_view key,
                            const std::string& path, std::string& out);
/// kInvalidArgument `unsupported_parameter`: a field this gateway cannot honour.
core::Status Unsupported(std::string param, std::string why);
/// An optional boolean: null leaves `out` unset.
core::Status OptionalBool(const boost::json::value& v, std::string param, std::optional<bool>& out);

/// OpenAI's `stop`: a string or up to kMaxStopSequences strings, appended to `out`.
core::Status Stop(const boost::json::value& v, std::vector<std::string>& out);
/// OpenAI's `stream_options` (`v` null when absent): only with `stream`; `include_usage`
/// read into `include_usage` (include_obfuscation is accepted and ignored: the gateway never
/// obfuscates).
core::Status StreamOptions(const boost::json::value* v, bool stream, bool& include_usage);
/// A string `tool_choice`: one of none, auto, required.
core::Status ToolChoiceMode(const boost::json::value& v);

/// Parses `body` (at most kMaxJsonDepth deep; every node in an arena that dies with the call)
/// and hands its top-level object to `decode`. Malformed JSON is `invalid_json` with an empty
/// param; another top-level value is `invalid_type`.
core::Status WithJsonObject(std::string_view body,
                            const std::function<core::Status(const boost::json::object&)>& decode);

/// WithJsonObject into `out`, which is reset first and again on failure (no half-decoded
/// value is handed back).
template <class Out>
core::Status DecodeInto(std::string_view body, Out& out,
                        core::Status (*decode)(const boost::json::object&, Out&)) {
  out = Out{};
  core::Status s =
      WithJsonObject(body, [&out, decode](const boost::json::object& o) { return decode(o, out); });
  if (!s.ok()) out = Out{};
  return s;
}

}  // namespace meridian::http::fields
