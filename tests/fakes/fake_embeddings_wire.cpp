// The fake upstream's embeddings APIs: OpenAI's POST /v1/embeddings (and Azure's deployment
// path, and the local engines', which copy it) and DashScope's native text-embedding API.
// Pure: a request into a plan, a plan into a body. Independent of the gateway's own codecs
// (its own base64, its own JSON), so a test compares two implementations of the wire.
#include <boost/json.hpp>
#include <cstring>
#include <string>

#include "tests/fakes/fake_vendor_wire.h"

namespace meridian::fakes {

std::vector<float> FakeOpenAiServer::EmbeddingOf(std::string_view input, int dimensions) {
  std::uint32_t h = 2166136261u;
  for (char c : input) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  std::vector<float> v(static_cast<std::size_t>(dimensions < 0 ? 0 : dimensions));
  for (std::size_t k = 0; k < v.size(); ++k) {
    const std::uint32_t x = (h >> (k % 16)) + static_cast<std::uint32_t>(k) * 37u;
    v[k] = static_cast<float>(static_cast<int>(x % 2048u) - 1024) / 1024.0f;
  }
  return v;
}

namespace wire {
namespace {

namespace json = boost::json;

std::string Base64(const std::string& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(bytes[i + k]); };
    out += kAlphabet[b(0) >> 2];
    out += kAlphabet[((b(0) & 3) << 4) | (b(1) >> 4)];
    out += kAlphabet[((b(1) & 15) << 2) | (b(2) >> 6)];
    out += kAlphabet[b(2) & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const auto b0 = static_cast<unsigned char>(bytes[i]);
    out += kAlphabet[b0 >> 2];
    out += kAlphabet[(b0 & 3) << 4];
    out += "==";
  } else if (rest == 2) {
    const auto b0 = static_cast<unsigned char>(bytes[i]);
    const auto b1 = static_cast<unsigned char>(bytes[i + 1]);
    out += kAlphabet[b0 >> 2];
    out += kAlphabet[((b0 & 3) << 4) | (b1 >> 4)];
    out += kAlphabet[(b1 & 15) << 2];
    out += '=';
  }
  return out;
}

/// The float32 bytes of `v`, least significant first (x86 and ARM are little-endian; the
/// fake runs on the test machine).
std::string LittleEndianBytes(const std::vector<float>& v) {
  std::string bytes(v.size() * 4, '\0');
  for (std::size_t k = 0; k < v.size(); ++k) {
    std::uint32_t u = 0;
    std::memcpy(&u, &v[k], 4);
    for (std::size_t b = 0; b < 4; ++b) bytes[4 * k + b] = static_cast<char>((u >> (8 * b)) & 0xff);
  }
  return bytes;
}

json::array Floats(const std::vector<float>& v) {
  json::array a;
  for (float f : v) a.emplace_back(static_cast<double>(f));
  return a;
}

ErrorReply OpenAiBad(Profile p, std::string message, const char* param) {
  return {
      400, ErrorBody(p, 400, {std::move(message), "invalid_request_error", nullptr, param}), {}};
}

ErrorReply DashScopeBad(std::string_view message, std::uint64_t seq) {
  return {400, DashScopeError("InvalidParameter", message, seq), {}};
}

}  // namespace

std::optional<ErrorReply> OpenAiEmbeddingsCheck(Profile p, const json::value& body,
                                                bool model_optional, int default_dims,
                                                std::uint64_t /*seq*/, EmbedPlan& plan) {
  const json::object* obj = body.if_object();
  if (obj == nullptr) {
    return OpenAiBad(p, "We could not parse the JSON body of your request.", nullptr);
  }
  if (const json::value* m = obj->if_contains("model"); m != nullptr && m->is_string()) {
    plan.model = std::string(m->get_string());
  }
  if (plan.model.empty() && !model_optional) {
    return OpenAiBad(p, "you must provide a model parameter", nullptr);
  }
  const json::value* input = obj->if_contains("input");
  if (input == nullptr) return OpenAiBad(p, "'input' is a required property", "input");
  auto token_ids = [](const json::array& a, std::string& out) {
    if (a.empty()) return false;
    for (const json::value& t : a) {
      if (!t.is_int64() || t.get_int64() < 0) return false;
      if (!out.empty()) out += ',';
      out += std::to_string(t.get_int64());
    }
    return true;
  };
  if (input->is_string() && !input->get_string().empty()) {
    plan.inputs.emplace_back(input->get_string());
  } else if (input->is_array() && !input->get_array().empty()) {
    const json::array& a = input->get_array();
    if (a[0].is_int64()) {
      std::string ids;
      if (!token_ids(a, ids)) return OpenAiBad(p, "'$.input' is invalid.", "input");
      plan.inputs.push_back(std::move(ids));
    } else {
      for (const json::value& e : a) {
        std::string item;
        if (e.is_string() && !e.get_string().empty()) {
          item = std::string(e.get_string());
        } else if (!e.is_array() || !token_ids(e.get_array(), item)) {
          return OpenAiBad(p, "'$.input' is invalid.", "input");
        }
        plan.inputs.push_back(std::move(item));
      }
    }
  } else {
    return OpenAiBad(p, "'$.input' is invalid.", "input");
  }
  plan.dimensions = default_dims;
  if (const json::value* d = obj->if_contains("dimensions"); d != nullptr && !d->is_null()) {
    if (!d->is_int64() || d->get_int64() < 1 || d->get_int64() > 4096) {
      return OpenAiBad(p, "Invalid value for 'dimensions'.", "dimensions");
    }
    plan.dimensions = static_cast<int>(d->get_int64());
  }
  if (const json::value* f = obj->if_contains("encoding_format"); f != nullptr && !f->is_null()) {
    if (!f->is_string() || (f->get_string() != "float" && f->get_string() != "base64")) {
      return OpenAiBad(p, "Invalid value for 'encoding_format'.", "encoding_format");
    }
    plan.base64 = f->get_string() == "base64";
  }
  return std::nullopt;
}

std::string OpenAiEmbeddingsBody(const EmbedPlan& plan, int tokens_per_input) {
  json::array data;
  for (std::size_t i = 0; i < plan.inputs.size(); ++i) {
    const std::vector<float> v = FakeOpenAiServer::EmbeddingOf(plan.inputs[i], plan.dimensions);
    json::value vec = plan.base64 ? json::value(Base64(LittleEndianBytes(v))) : Floats(v);
    data.push_back(json::object{
        {"object", "embedding"}, {"index", static_cast<std::int64_t>(i)}, {"embedding", vec}});
  }
  const auto tokens = static_cast<std::int64_t>(plan.inputs.size()) * tokens_per_input;
  return json::serialize(
      json::object{{"object", "list"},
                   {"data", std::move(data)},
                   {"model", plan.model},
                   {"usage", json::object{{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
}

std::optional<ErrorReply> DashScopeEmbeddingsCheck(const json::value& body, int default_dims,
                                                   std::uint64_t seq, EmbedPlan& plan) {
  const json::object* obj = body.if_object();
  if (obj == nullptr) return DashScopeBad("Required parameter(s) missing or invalid.", seq);
  const json::value* m = obj->if_contains("model");
  if (m == nullptr || !m->is_string() || m->get_string().empty()) {
    return DashScopeBad("Model not exist.", seq);
  }
  plan.model = std::string(m->get_string());
  const json::value* input = obj->if_contains("input");
  const json::value* texts =
      input != nullptr && input->is_object() ? input->get_object().if_contains("texts") : nullptr;
  if (texts == nullptr || !texts->is_array() || texts->get_array().empty()) {
    return DashScopeBad(
        "Required parameter(s) missing or invalid, please check the request "
        "parameters.",
        seq);
  }
  if (texts->get_array().size() > 10) {
    return DashScopeBad("batch size is invalid, it should not be larger than 10.", seq);
  }
  for (const json::value& t : texts->get_array()) {
    if (!t.is_string()) return DashScopeBad("input.texts should be a list of strings.", seq);
    plan.inputs.emplace_back(t.get_string());
  }
  plan.dimensions = default_dims;
  if (const json::value* params = obj->if_contains("parameters");
      params != nullptr && params->is_object()) {
    if (const json::value* d = params->get_object().if_contains("dimension"); d != nullptr) {
      if (!d->is_int64() || d->get_int64() < 1 || d->get_int64() > 4096) {
        return DashScopeBad("Value error, dimension is invalid.", seq);
      }
      plan.dimensions = static_cast<int>(d->get_int64());
    }
  }
  return std::nullopt;
}

std::string DashScopeEmbeddingsBody(const EmbedPlan& plan, int tokens_per_input,
                                    std::uint64_t seq) {
  json::array items;
  for (std::size_t i = plan.inputs.size(); i-- > 0;) {
    items.push_back(json::object{
        {"sparse_embedding", json::array{}},
        {"embedding", Floats(FakeOpenAiServer::EmbeddingOf(plan.inputs[i], plan.dimensions))},
        {"text_index", static_cast<std::int64_t>(i)}});
  }
  return json::serialize(json::object{
      {"output", json::object{{"embeddings", std::move(items)}}},
      {"usage", json::object{{"total_tokens",
                              static_cast<std::int64_t>(plan.inputs.size()) * tokens_per_input}}},
      {"request_id", DashScopeRequestId(seq)}});
}

}  // namespace wire
}  // namespace meridian::fakes
