// JSON helpers shared by the provider codecs (pure): bounded parse options, tolerant member
// access (null counts as absent; integral doubles count as integers), and small writers.
#pragma once

#include <array>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "gateway/core/chunk.h"
#include "gateway/core/json_text.h"
#include "gateway/core/request.h"

namespace meridian::providers::jsonutil {

namespace json = boost::json;
using core::AppendJsonString;

// Chunk payloads are shallow; the default depth (32) would still do, this leaves room for
// verbose non-streaming bodies without allowing unbounded recursion.
inline json::parse_options ParseOptions() {
  json::parse_options opt;
  opt.max_depth = 64;
  return opt;
}

inline void AppendInt(std::string& out, std::int64_t v) {
  std::array<char, 24> buf{};
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), r.ptr);
}

inline void AppendKey(std::string& out, std::string_view key) {
  out.push_back(',');
  AppendJsonString(out, key);
  out.push_back(':');
}

inline const json::value* Member(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

inline std::string_view StringMember(const json::object& o, std::string_view key) {
  const json::value* v = Member(o, key);
  if (v == nullptr || !v->is_string()) return {};
  const json::string& s = v->get_string();
  return {s.data(), s.size()};
}

inline std::optional<std::int64_t> ToInt(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    const std::uint64_t u = v.get_uint64();
    return u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
               ? std::numeric_limits<std::int64_t>::max()
               : static_cast<std::int64_t>(u);
  }
  if (v.is_double()) {
    const double d = v.get_double();
    // Some engines print counters as 12.0; anything else is not a count.
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

inline std::optional<std::int64_t> IntMember(const json::object& o, std::string_view key) {
  const json::value* v = Member(o, key);
  return v == nullptr ? std::nullopt : ToInt(*v);
}

inline const json::object* ObjectMember(const json::object& o, std::string_view key) {
  const json::value* v = Member(o, key);
  return v == nullptr ? nullptr : v->if_object();
}

inline const json::array* ArrayMember(const json::object& o, std::string_view key) {
  const json::value* v = Member(o, key);
  return v == nullptr ? nullptr : v->if_array();
}

inline std::string_view TrimWs(std::string_view s) {
  constexpr std::string_view kWs = " \t\r\n";
  const std::size_t b = s.find_first_not_of(kWs);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kWs) - b + 1);
}

inline void AppendDouble(std::string& out, double v) {
  std::array<char, 32> buf{};
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), r.ptr);
}

/// Writes `,"<token_limit_key>":N,"temperature":T,"top_p":P,"stop":[...]` for the fields the
/// request sets (non-finite numbers are left out; stop is always an array).
inline void AppendSampling(std::string& out, const core::CompletionRequest& req,
                           std::string_view token_limit_key) {
  if (const auto limit = req.TokenLimit()) {
    AppendKey(out, token_limit_key);
    AppendInt(out, *limit);
  }
  if (req.temperature && std::isfinite(*req.temperature)) {
    AppendKey(out, "temperature");
    AppendDouble(out, *req.temperature);
  }
  if (req.top_p && std::isfinite(*req.top_p)) {
    AppendKey(out, "top_p");
    AppendDouble(out, *req.top_p);
  }
  if (!req.stop.empty()) {
    AppendKey(out, "stop");
    out.push_back('[');
    for (std::size_t i = 0; i < req.stop.size(); ++i) {
      if (i != 0) out.push_back(',');
      AppendJsonString(out, req.stop[i]);
    }
    out.push_back(']');
  }
}

/// The names a vendor gives the token counts of its usage object.
struct UsageKeys {
  std::string_view prompt;              ///< "prompt_tokens" / "input_tokens"
  std::string_view completion;          ///< "completion_tokens" / "output_tokens"
  std::string_view completion_details;  ///< object holding reasoning_tokens
};

/// A usage object as core::Usage; total_tokens defaults to prompt + completion, and the
/// reasoning / cached counts are set only when the vendor reports them.
inline core::Usage ParseUsage(const UsageKeys& keys, const json::object& u) {
  core::Usage usage;
  usage.prompt_tokens = IntMember(u, keys.prompt).value_or(0);
  usage.completion_tokens = IntMember(u, keys.completion).value_or(0);
  usage.total_tokens =
      IntMember(u, "total_tokens").value_or(usage.prompt_tokens + usage.completion_tokens);
  if (const auto* d = ObjectMember(u, keys.completion_details)) {
    usage.reasoning_tokens = IntMember(*d, "reasoning_tokens");
  }
  if (const auto* d = ObjectMember(u, "prompt_tokens_details")) {
    usage.cached_tokens = IntMember(*d, "cached_tokens");
  }
  return usage;
}

/// `text` parsed with ParseOptions(); nullopt when it is not valid JSON.
inline std::optional<json::value> ParseJson(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(text, ec, {}, ParseOptions());
  if (ec) return std::nullopt;
  return v;
}

/// A status with its retryability (whether the router may try the next candidate).
inline core::Status UpstreamStatus(core::StatusCode code, std::string message, std::string reason,
                                   bool retryable) {
  core::Status s = core::Status::Error(code, std::move(message), std::move(reason));
  s.retryable = retryable;
  return s;
}

/// The upstream sent something that is not JSON where JSON belongs.
inline core::Status InvalidJson(std::string_view what) {
  return core::Status::Error(core::StatusCode::kBadUpstream, std::string(what),
                             "upstream_invalid_json");
}

/// The upstream connection ended before the stream's end (`what` says which end); retryable
/// only while nothing reached the client.
inline core::Status TruncatedStream(std::string_view what, bool nothing_emitted) {
  return UpstreamStatus(core::StatusCode::kBadUpstream, std::string(what),
                        "upstream_truncated_stream", nothing_emitted);
}

/// A non-negative decimal number of seconds (`Retry-After: 1.5`); nullopt for anything else
/// (HTTP-dates, negative, junk).
inline std::optional<double> ParseSeconds(std::string_view s) {
  s = TrimWs(s);
  if (s.empty()) return std::nullopt;
  double v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::fixed);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v) || v < 0) {
    return std::nullopt;
  }
  return v;
}

/// Seconds rounded up, saturating at the uint32 maximum.
inline std::uint32_t CeilSeconds(double v) {
  const double c = std::ceil(v);
  constexpr double kMax = std::numeric_limits<std::uint32_t>::max();
  return c >= kMax ? std::numeric_limits<std::uint32_t>::max() : static_cast<std::uint32_t>(c);
}

/// The terminal kError chunk carrying `s`.
/// A client's own body (core::NativeBody::json) as an object with `model` set to
/// `upstream_model`, for a vendor of that format; nullopt when it is not a JSON object.
inline std::optional<json::object> NativeBodyWithModel(std::string_view native_json,
                                                       std::string_view upstream_model) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(native_json.data(), native_json.size()), ec);
  json::object* body = ec ? nullptr : v.if_object();
  if (body == nullptr) return std::nullopt;
  (*body)["model"] = json::string_view(upstream_model.data(), upstream_model.size());
  return std::move(*body);
}

inline core::Chunk ErrorChunk(const core::Status& s) {
  core::Chunk c;
  c.kind = core::Chunk::Kind::kError;
  c.error = s;
  return c;
}

/// For an adapter that cannot send every content part: text and refusal parts pass; an
/// image_url part passes when `image_problem(part)` returns "" (else it says why not); any
/// other part, or such an image, is an invalid-request status (`unsupported_content_part`, so
/// the router may try another provider) naming the part and its position, before anything is
/// sent. Ok when every part can be sent.
template <class ImageProblem>
core::Status CheckContentParts(const core::CompletionRequest& req, std::string_view provider_id,
                               ImageProblem image_problem) {
  for (std::size_t i = 0; i < req.messages.size(); ++i) {
    const std::string& raw = req.messages[i].content_parts_json;
    if (raw.empty()) continue;
    const auto parts = ParseJson(raw);
    if (!parts || !parts->is_array()) continue;  // the decoders produce arrays: never
    const json::array& list = parts->get_array();
    for (std::size_t j = 0; j < list.size(); ++j) {
      const json::object* o = list[j].if_object();
      const std::string_view type = o != nullptr ? StringMember(*o, "type") : std::string_view{};
      if (type == "text" || type == "refusal") continue;
      const std::string at =
          "messages[" + std::to_string(i) + "].content[" + std::to_string(j) + "]";
      if (type == "image_url") {
        const std::string why = image_problem(*o);
        if (why.empty()) continue;
        return core::Status::Error(core::StatusCode::kInvalidArgument,
                                   "provider '" + std::string(provider_id) +
                                       "' cannot send this image (" + why +
                                       "); the request was not sent",
                                   "unsupported_content_part", at + ".image_url.url");
      }
      return core::Status::Error(core::StatusCode::kInvalidArgument,
                                 "provider '" + std::string(provider_id) +
                                     "' cannot send content parts of type '" + std::string(type) +
                                     "'; the request was not sent",
                                 "unsupported_content_part", at + ".type");
    }
  }
  return core::Status::Ok();
}

}  // namespace meridian::providers::jsonutil
