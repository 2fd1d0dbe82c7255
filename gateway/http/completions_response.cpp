#include "gateway/http/completions_response.h"

#include <string>

#include "gateway/core/json_text.h"
#include "gateway/core/json_value.h"
#include "gateway/http/chat_response.h"
#include "gateway/http/error_mapping.h"

namespace meridian::http {

using core::AppendInt;
using core::AppendJsonString;

std::string RenderTextCompletion(const core::Completion& answer, std::string_view id,
                                 std::int64_t created, std::string_view model) {
  std::string out = "{\"id\":";
  AppendJsonString(out, id);
  out += ",\"object\":\"text_completion\",\"created\":";
  AppendInt(out, created);
  out += ",\"model\":";
  AppendJsonString(out, model);
  out += ",\"choices\":[{\"text\":";
  AppendJsonString(out, answer.content);
  out += ",\"index\":0,\"logprobs\":null,\"finish_reason\":";
  // A chat answer that is only tool calls has no place here; it ends as a stop.
  const std::string_view finish = answer.FinishReason();
  AppendJsonString(out, finish == "tool_calls" ? std::string_view("stop") : finish);
  out += "}],\"usage\":";
  AppendUsage(out, answer.usage);
  out += '}';
  return out;
}

CompletionsStreamEncoder::CompletionsStreamEncoder(std::string_view id, std::int64_t created,
                                                   std::string_view model, bool include_usage)
    : include_usage_(include_usage) {
  prefix_ = "data: {\"id\":";
  AppendJsonString(prefix_, id);
  prefix_ += ",\"object\":\"text_completion\",\"created\":";
  AppendInt(prefix_, created);
  prefix_ += ",\"model\":";
  AppendJsonString(prefix_, model);
  prefix_ += ',';
}

void CompletionsStreamEncoder::AppendChoice(std::string& out, std::string_view text,
                                            std::string_view finish) {
  out += prefix_;
  out += "\"choices\":[{\"text\":";
  AppendJsonString(out, text);
  out += ",\"index\":0,\"logprobs\":null,\"finish_reason\":";
  if (finish.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, finish);
  }
  out += "}]}\n\n";
}

void CompletionsStreamEncoder::Encode(const core::Chunk& c, std::string& out) {
  if (finished_) return;
  switch (c.kind) {
    case core::Chunk::Kind::kStart:
      return;
    case core::Chunk::Kind::kDelta:
      if (!c.content.empty()) AppendChoice(out, c.content, {});
      return;  // reasoning and tool calls have no place in a text completion
    case core::Chunk::Kind::kFinish: {
      const std::string_view finish = c.finish_reason.empty() || c.finish_reason == "tool_calls"
                                          ? std::string_view("stop")
                                          : std::string_view(c.finish_reason);
      AppendChoice(out, {}, finish);
      return;
    }
    case core::Chunk::Kind::kUsage:
      if (!include_usage_) return;
      out += prefix_;
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

void CompletionsStreamEncoder::Done(std::string& out) {
  if (finished_) return;
  finished_ = true;
  out += "data: [DONE]\n\n";
}

void CompletionsStreamEncoder::Error(const core::Status& status, std::string& out) {
  if (finished_) return;
  finished_ = true;
  out += "data: ";
  AppendErrorJson(status, out);
  out += "\n\n";
}

}  // namespace meridian::http
