#include "gateway/core/completion.h"

#include <boost/json/parse.hpp>

#include "gateway/core/json_value.h"

namespace meridian::core {

namespace json = boost::json;

std::string_view Completion::FinishReason() const {
  if (!finish_reason.empty()) return finish_reason;
  return tool_calls.empty() ? "stop" : "tool_calls";
}

void CompletionAggregator::Add(const Chunk& chunk) {
  c_.native += chunk.native;
  switch (chunk.kind) {
    case Chunk::Kind::kStart:
      return;
    case Chunk::Kind::kDelta:
      c_.content += chunk.content;
      c_.reasoning += chunk.reasoning;
      if (!chunk.tool_calls_json.empty()) MergeToolCalls(chunk.tool_calls_json);
      return;
    case Chunk::Kind::kFinish:
      if (!chunk.finish_reason.empty()) c_.finish_reason = chunk.finish_reason;
      return;
    case Chunk::Kind::kUsage:
      c_.usage = chunk.usage;
      c_.has_usage = true;
      return;
    case Chunk::Kind::kError:
      if (!c_.error) c_.error = chunk.error;
      return;
    case Chunk::Kind::kEmbedding:
      c_.embeddings[chunk.index] = chunk.embedding;
      return;
  }
}

bool ParseToolFragments(std::string_view text, std::vector<ToolFragment>& out) {
  boost::system::error_code ec;
  const json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_array()) return false;
  const json::array& items = v.get_array();
  out.clear();
  out.reserve(items.size());
  for (std::size_t pos = 0; pos < items.size(); ++pos) {
    const json::object* item = items[pos].if_object();
    if (item == nullptr) return false;
    ToolFragment& f = out.emplace_back();
    // `index` is required by OpenAI; engines that omit it send one call per position.
    f.index = static_cast<std::int64_t>(pos);
    if (const json::value* idx = item->if_contains("index")) {
      if (!AsInteger(*idx, f.index)) return false;
    }
    auto read = [](std::string& field, const json::value* src) {
      if (src != nullptr && src->is_string()) field.assign(Sv(src->get_string()));
    };
    read(f.id, item->if_contains("id"));
    read(f.type, item->if_contains("type"));
    if (const json::value* fn = item->if_contains("function"); fn != nullptr && fn->is_object()) {
      read(f.name, fn->get_object().if_contains("name"));
      if (const json::value* args = fn->get_object().if_contains("arguments");
          args != nullptr && !args->is_null()) {
        // Some engines send parsed arguments; clients always expect a JSON string.
        if (args->is_string()) {
          f.arguments.assign(Sv(args->get_string()));
        } else if (!AppendJsonValue(f.arguments, *args)) {
          return false;
        }
      }
    }
  }
  return true;
}

void CompletionAggregator::MergeToolCalls(std::string_view text) {
  std::vector<ToolFragment> fragments;
  if (!ParseToolFragments(text, fragments)) {
    if (!c_.error) {
      c_.error = Status::Error(StatusCode::kBadUpstream, "upstream sent malformed tool_calls",
                               "malformed_tool_calls");
    }
    return;
  }
  for (ToolFragment& f : fragments) {
    ToolCall& call = c_.tool_calls[f.index];
    if (call.id.empty()) call.id = std::move(f.id);
    if (call.type.empty()) call.type = std::move(f.type);
    if (call.name.empty()) call.name = std::move(f.name);
    call.arguments += f.arguments;
  }
}

}  // namespace meridian::core
