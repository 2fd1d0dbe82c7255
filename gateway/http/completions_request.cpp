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
using fields::IntegerIn;
using fields::Invalid;
using fields::Missing;
using fields::NumberIn;
using fields::NumberTooLarge;
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
      if (auto s = fields::Model(v, out.model); !s.ok()) return s;
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
      if (auto s = fields::Stop(v, out.stop); !s.ok()) return s;
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
  if (auto s = fields::StreamOptions(stream_options, out.stream, out.include_usage); !s.ok()) {
    return s;
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
