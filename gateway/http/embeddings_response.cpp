#include "gateway/http/embeddings_response.h"

#include <array>
#include <charconv>

#include "gateway/core/float_vector.h"
#include "gateway/core/json_text.h"

namespace meridian::http {

std::string RenderEmbeddings(const core::Completion& answer, std::string_view model, bool base64) {
  std::string out;
  std::size_t floats = 0;
  for (const auto& [index, v] : answer.embeddings) floats += v.size();
  out.reserve(96 + floats * (base64 ? 6 : 12) + answer.embeddings.size() * 48);
  out += R"({"object":"list","data":[)";
  bool first = true;
  for (const auto& [index, v] : answer.embeddings) {
    if (!first) out.push_back(',');
    first = false;
    out += R"({"object":"embedding","index":)";
    out += std::to_string(index);
    out += R"(,"embedding":)";
    if (base64) {
      out.push_back('"');
      core::AppendFloat32Base64(out, v);
      out.push_back('"');
    } else {
      out.push_back('[');
      std::array<char, 32> buf{};
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i != 0) out.push_back(',');
        const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v[i]);
        out.append(buf.data(), r.ptr);
      }
      out.push_back(']');
    }
    out.push_back('}');
  }
  out += R"(],"model":)";
  core::AppendJsonString(out, model);
  out += R"(,"usage":{"prompt_tokens":)";
  out += std::to_string(answer.usage.prompt_tokens);
  out += R"(,"total_tokens":)";
  out += std::to_string(answer.usage.total_tokens);
  out += "}}";
  return out;
}

}  // namespace meridian::http
