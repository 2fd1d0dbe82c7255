#include "gateway/http/completions_request.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <limits>
#include <string>
#include <utility>

#include "gateway/core/json_value.h"
#include "gateway/http/chat_request.h"
#include "gateway/http/request_fields.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::AppendJsonValue;
using core::Status;
using core::Sv;
using fields::BadValue;
using fields::Index;
using fields::IntegerIn;
using fields::Invalid;
using fields::Missing;
using fields::NumberIn;
using fields::NumberTooLarge;
using fields::TooLong;
using fields::Unsupported;
using fields::WrongType;

Status DecodePrompt(const json::value& v, std::string& text) {
  if (v.is_string()) {
    text.assign(Sv(v.get_string()));
    return Status::Ok();
  }
  if (!v.is_array()) return WrongType("prompt", "a string or an array of one string", v);
  const json::array& arr = v.get_array();
  if (arr.size() != 1) {
    return Unsupported("prompt",
                       "one prompt per request: several prompts ask for several "
                       "choices, which this gateway does not serve.");
  }
  if (!arr[0].is_string()) {
    return Unsupported("prompt[0]", "token-id prompts are not supported: send the prompt text.");
  }
  text.assign(Sv(arr[0].get_string()));
  return Status::Ok();
}

Status DecodeBody(const json::object& body, core::CompletionRequest& out) {
  bool have_model = false;
  bool have_prompt = false;
  core::Message prompt;
  prompt.role = "user";
  const json::value* stream_options = nullptr;
  for (const auto& kv : body) {
    const std::string_view key = Sv(kv.key());
    const json::value& v = kv.value();
    const std::string param(key);
    if (key == "model") {
      if (!v.is_string()) return WrongType(param, "a string", v);
      if (v.get_string().empty()) return BadValue(param, "must not be empty.");
      out.model.assign(Sv(v.get_string()));
      have_model = true;
    } else if (key == "prompt") {
      if (auto s = DecodePrompt(v, prompt.text); !s.ok()) return s;
      have_prompt = true;
    } else if (v.is_null()) {
      continue;
    } else if (key == "stream") {
      if (!v.is_bool()) return WrongType(param, "a boolean", v);
      out.stream = v.get_bool();
    } else if (key == "stream_options") {
      if (!v.is_object()) return WrongType(param, "an object", v);
      stream_options = &v;
    } else if (key == "max_tokens") {
      std::int64_t n = 0;
      if (auto s = IntegerIn(v, param, 1, std::numeric_limits<std::int64_t>::max(), n); !s.ok()) {
        return s;
      }
      out.max_tokens = n;
    } else if (key == "temperature" || key == "top_p") {
      double d = 0;
      if (auto s = NumberIn(v, param, 0, key == "temperature" ? 2 : 1, d); !s.ok()) return s;
      (key == "temperature" ? out.temperature : out.top_p) = d;
    } else if (key == "stop") {
      if (v.is_string()) {
        out.stop.emplace_back(Sv(v.get_string()));
        continue;
      }
      if (!v.is_array()) return WrongType(param, "a string or an array of strings", v);
      const json::array& arr = v.get_array();
      if (arr.size() > kMaxStopSequences) return TooLong(param, kMaxStopSequences, arr.size());
      for (std::size_t i = 0; i < arr.size(); ++i) {
        if (!arr[i].is_string()) return WrongType(Index(param, i), "a string", arr[i]);
        out.stop.emplace_back(Sv(arr[i].get_string()));
      }
    } else if (key == "user") {
      if (!v.is_string()) return WrongType(param, "a string", v);
      out.user.assign(Sv(v.get_string()));
    } else if (key == "n" || key == "best_of") {
      std::int64_t n = 0;
      if (auto s = IntegerIn(v, param, 1, 1, n); !s.ok()) return s;
    } else if (key == "seed" || key == "frequency_penalty" || key == "presence_penalty" ||
               key == "logit_bias") {
      if (key == "seed") {
        std::int64_t n = 0;
        if (auto s = IntegerIn(v, param, std::numeric_limits<std::int64_t>::min(),
                               std::numeric_limits<std::int64_t>::max(), n);
            !s.ok()) {
          return s;
        }
      } else if (key == "logit_bias") {
        if (!v.is_object()) return WrongType(param, "an object", v);
      } else {
        double d = 0;
        if (auto s = NumberIn(v, param, -2, 2, d); !s.ok()) return s;
      }
      core::PassthroughMember& m = out.passthrough.emplace_back();
      m.key = param;
      if (!AppendJsonValue(m.json, v)) return NumberTooLarge(param);
    } else if (key == "echo") {
      if (!v.is_bool()) return WrongType(param, "a boolean", v);
      if (v.get_bool()) {
        return Unsupported(param,
                           "'echo' is not supported: a chat model does not return the "
                           "prompt.");
      }
    } else if (key == "suffix" || key == "logprobs") {
      return Unsupported(param, "'" + param + "' is not supported through this gateway.");
    } else {
      return Invalid(param, "Unknown parameter: '" + param + "'.", "unknown_parameter");
    }
  }
  if (!have_model) return Missing("model");
  if (!have_prompt) return Missing("prompt");
  if (stream_options != nullptr) {
    if (!out.stream) {
      return Invalid("stream_options",
                     "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                     "invalid_value");
    }
    if (const json::value* iu = stream_options->get_object().if_contains("include_usage")) {
      std::optional<bool> include;
      if (auto s = fields::OptionalBool(*iu, "stream_options.include_usage", include); !s.ok()) {
        return s;
      }
      out.include_usage = include.value_or(false);
    }
  }
  if (!out.max_tokens) out.max_tokens = 16;  // OpenAI's default for this API
  out.messages.push_back(std::move(prompt));
  return Status::Ok();
}

}  // namespace

core::Status DecodeCompletionsRequest(std::string_view body, core::CompletionRequest& out) {
  return fields::DecodeInto(body, out, &DecodeBody);
}

}  // namespace meridian::http
