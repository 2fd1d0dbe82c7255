#include "gateway/http/embeddings_request.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "gateway/core/json_value.h"
#include "gateway/http/request_fields.h"

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::Status;
using core::Sv;
using fields::BadValue;
using fields::IntegerIn;
using fields::Invalid;
using fields::Missing;
using fields::WrongType;

constexpr std::int64_t kMaxTokenId = std::numeric_limits<std::int32_t>::max();

/// One input given as token ids at `param`.
Status TokenIds(const json::array& arr, const std::string& param, std::vector<std::int64_t>& out) {
  if (arr.empty()) return fields::EmptyArray(param);
  out.reserve(arr.size());
  for (std::size_t i = 0; i < arr.size(); ++i) {
    std::int64_t id = 0;
    if (auto s = IntegerIn(arr[i], fields::Index(param, i), 0, kMaxTokenId, id); !s.ok()) return s;
    out.push_back(id);
  }
  return Status::Ok();
}

Status Input(const json::value& v, core::EmbeddingInput& out) {
  if (v.is_string()) {
    if (v.get_string().empty()) return BadValue("input", "must not be an empty string.");
    out.texts.emplace_back(Sv(v.get_string()));
    return Status::Ok();
  }
  if (!v.is_array()) {
    return WrongType("input", "a string, an array of strings or an array of token ids", v);
  }
  const json::array& arr = v.get_array();
  if (arr.empty()) return fields::EmptyArray("input");
  if (arr.size() > kMaxEmbeddingInputs) {
    return fields::TooLong("input", kMaxEmbeddingInputs, arr.size());
  }
  // The first element says which form this is; every other must be the same.
  if (arr[0].is_string()) {
    out.texts.reserve(arr.size());
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const std::string param = fields::Index("input", i);
      if (!arr[i].is_string()) return WrongType(param, "a string, like input[0]", arr[i]);
      if (arr[i].get_string().empty()) return BadValue(param, "must not be an empty string.");
      out.texts.emplace_back(Sv(arr[i].get_string()));
    }
    return Status::Ok();
  }
  if (arr[0].is_array()) {
    out.tokens.resize(arr.size());
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const std::string param = fields::Index("input", i);
      if (!arr[i].is_array())
        return WrongType(param, "an array of token ids, like input[0]", arr[i]);
      if (auto s = TokenIds(arr[i].get_array(), param, out.tokens[i]); !s.ok()) return s;
    }
    return Status::Ok();
  }
  if (arr[0].is_number()) {
    out.tokens.resize(1);
    return TokenIds(arr, "input", out.tokens[0]);
  }
  return WrongType("input[0]", "a string, a token id or an array of token ids", arr[0]);
}

Status DecodeBody(const json::object& body, core::CompletionRequest& out) {
  out.op = core::Operation::kEmbed;
  bool have_model = false;
  bool have_input = false;
  for (const auto& kv : body) {
    const std::string_view key = Sv(kv.key());
    const json::value& v = kv.value();
    const std::string param(key);
    if (key == "model") {
      if (auto s = fields::Model(v, out.model); !s.ok()) return s;
      have_model = true;
    } else if (key == "input") {
      if (auto s = Input(v, out.embedding); !s.ok()) return s;
      have_input = true;
    } else if (v.is_null()) {
      continue;
    } else if (key == "dimensions") {
      std::int64_t n = 0;
      if (auto s = IntegerIn(v, param, 1, std::numeric_limits<std::int64_t>::max(), n); !s.ok()) {
        return s;
      }
      out.embedding.dimensions = n;
    } else if (key == "encoding_format") {
      if (!v.is_string()) return WrongType(param, "a string", v);
      const std::string_view format = Sv(v.get_string());
      if (format != "float" && format != "base64") {
        return BadValue(param, "must be 'float' or 'base64'.");
      }
      out.embedding.base64 = format == "base64";
    } else if (key == "user") {
      if (!v.is_string()) return WrongType(param, "a string", v);
      out.user.assign(Sv(v.get_string()));
    } else {
      return Invalid(param, "Unknown parameter: '" + param + "'.", "unknown_parameter");
    }
  }
  if (!have_model) return Missing("model");
  if (!have_input) return Missing("input");
  return Status::Ok();
}

}  // namespace

core::Status DecodeEmbeddingsRequest(std::string_view body, core::CompletionRequest& out) {
  return fields::DecodeInto(body, out, &DecodeBody);
}

}  // namespace meridian::http
