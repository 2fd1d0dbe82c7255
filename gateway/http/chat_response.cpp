#include "gateway/http/chat_response.h"

#include <string>

#include "gateway/core/json_text.h"
#include "gateway/core/json_value.h"
#include "gateway/http/error_mapping.h"

namespace meridian::http {
namespace {

using core::AppendInt;
using core::AppendJsonString;

}  // namespace

void AppendUsage(std::string& out, const core::Usage& u) {
  out += "{\"prompt_tokens\":";
  AppendInt(out, u.prompt_tokens);
  out += ",\"completion_tokens\":";
  AppendInt(out, u.completion_tokens);
  out += ",\"total_tokens\":";
  // Some providers omit the total; clients expect it to be the sum.
  AppendInt(out, u.total_tokens != 0 ? u.total_tokens : u.prompt_tokens + u.completion_tokens);
  if (u.cached_tokens) {
    out += ",\"prompt_tokens_details\":{\"cached_tokens\":";
    AppendInt(out, *u.cached_tokens);
    out += '}';
  }
  if (u.reasoning_tokens) {
    out += ",\"completion_tokens_details\":{\"reasoning_tokens\":";
    AppendInt(out, *u.reasoning_tokens);
    out += '}';
  }
  out += '}';
}

// -----------------------------------------------------------------------------------------
// Streaming

ChatStreamEncoder::ChatStreamEncoder(std::string_view id, std::int64_t created,
                                     std::string_view model, bool include_usage)
    : include_usage_(include_usage) {
  prefix_ = "data: {\"id\":";
  AppendJsonString(prefix_, id);
  prefix_ += ",\"object\":\"chat.completion.chunk\",\"created\":";
  AppendInt(prefix_, created);
  prefix_ += ",\"model\":";
  AppendJsonString(prefix_, model);
  prefix_ += ',';
}

void ChatStreamEncoder::AppendPrefix(std::string& out) const {
  out += prefix_;
}

void ChatStreamEncoder::AppendSuffix(std::string& out) const {
  out += include_usage_ ? ",\"usage\":null}\n\n" : "}\n\n";
}

void ChatStreamEncoder::EnsureStarted(std::string& out) {
  if (started_) return;
  started_ = true;
  AppendPrefix(out);
  out +=
      "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
      "\"logprobs\":null,\"finish_reason\":null}]";
  AppendSuffix(out);
}

void ChatStreamEncoder::Encode(const core::Chunk& c, std::string& out) {
  if (finished_) return;
  switch (c.kind) {
    case core::Chunk::Kind::kStart:
      EnsureStarted(out);
      return;
    case core::Chunk::Kind::kDelta: {
      if (c.content.empty() && c.reasoning.empty() && c.tool_calls_json.empty()) return;
      EnsureStarted(out);
      AppendPrefix(out);
      out += "\"choices\":[{\"index\":0,\"delta\":{";
      bool first = true;
      auto sep = [&] {
        if (!first) out += ',';
        first = false;
      };
      if (!c.reasoning.empty()) {
        sep();
        out += "\"reasoning_content\":";
        AppendJsonString(out, c.reasoning);
      }
      if (!c.content.empty()) {
        sep();
        out += "\"content\":";
        AppendJsonString(out, c.content);
      }
      if (!c.tool_calls_json.empty()) {
        sep();
        out += "\"tool_calls\":";
        out += c.tool_calls_json;
      }
      out += "},\"logprobs\":null,\"finish_reason\":null}]";
      AppendSuffix(out);
      return;
    }
    case core::Chunk::Kind::kFinish:
      EnsureStarted(out);
      AppendPrefix(out);
      out += "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":";
      AppendJsonString(out, c.finish_reason.empty() ? std::string_view("stop")
                                                    : std::string_view(c.finish_reason));
      out += "}]";
      AppendSuffix(out);
      return;
    case core::Chunk::Kind::kUsage:
      if (!include_usage_) return;
      AppendPrefix(out);
      out += "\"choices\":[],\"usage\":";
      AppendUsage(out, c.usage);
      out += "}\n\n";
      return;
    case core::Chunk::Kind::kError:
      Error(c.error, out);
      return;
    case core::Chunk::Kind::kEmbedding:  // embeddings are never streamed
      return;
  }
}

void ChatStreamEncoder::Done(std::string& out) {
  if (finished_) return;
  finished_ = true;
  out += "data: [DONE]\n\n";
}

void ChatStreamEncoder::Error(const core::Status& status, std::string& out) {
  if (finished_) return;
  finished_ = true;
  out += "data: ";
  AppendErrorJson(status, out);
  out += "\n\n";
}

// -----------------------------------------------------------------------------------------
// Non-streaming

std::string RenderChatCompletion(const core::Completion& answer, std::string_view id,
                                 std::int64_t created, std::string_view model) {
  std::string out;
  out.reserve(256 + answer.content.size() + answer.reasoning.size());
  out += "{\"id\":";
  AppendJsonString(out, id);
  out += ",\"object\":\"chat.completion\",\"created\":";
  AppendInt(out, created);
  out += ",\"model\":";
  AppendJsonString(out, model);
  out += ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":";
  if (answer.content.empty() && !answer.tool_calls.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, answer.content);
  }
  if (!answer.reasoning.empty()) {
    out += ",\"reasoning_content\":";
    AppendJsonString(out, answer.reasoning);
  }
  if (!answer.tool_calls.empty()) {
    out += ",\"tool_calls\":[";
    bool first = true;
    for (const auto& [index, call] : answer.tool_calls) {
      if (!first) out += ',';
      first = false;
      out += "{\"id\":";
      // Clients echo the id back in the tool message; give them one if the engine did not.
      AppendJsonString(out, call.id.empty() ? "call_" + std::to_string(index) : call.id);
      out += ",\"type\":";
      AppendJsonString(out, call.type.empty() ? std::string_view("function") : call.type);
      out += ",\"function\":{\"name\":";
      AppendJsonString(out, call.name);
      out += ",\"arguments\":";
      AppendJsonString(out, call.arguments);
      out += "}}";
    }
    out += ']';
  }
  out += ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":";
  AppendJsonString(out, answer.FinishReason());
  out += "}],\"usage\":";
  AppendUsage(out, answer.usage);
  out += '}';
  return out;
}

namespace {

void AppendModel(std::string& out, std::string_view alias, std::int64_t created) {
  out += "{\"id\":";
  AppendJsonString(out, alias);
  out += ",\"object\":\"model\",\"created\":";
  AppendInt(out, created);
  out += ",\"owned_by\":\"meridian\"}";
}

}  // namespace

std::string ModelsListJson(const std::vector<std::string>& aliases, std::int64_t created) {
  std::string out = "{\"object\":\"list\",\"data\":[";
  for (std::size_t i = 0; i < aliases.size(); ++i) {
    if (i != 0) out += ',';
    AppendModel(out, aliases[i], created);
  }
  out += "]}";
  return out;
}

std::string ModelJson(std::string_view alias, std::int64_t created) {
  std::string out;
  AppendModel(out, alias, created);
  return out;
}

}  // namespace meridian::http
