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
  }
}

void CompletionAggregator::MergeToolCalls(std::string_view text) {
  auto malformed = [this] {
    if (!c_.error) {
      c_.error = Status::Error(StatusCode::kBadUpstream, "upstream sent malformed tool_calls",
                               "malformed_tool_calls");
    }
  };
  boost::system::error_code ec;
  const json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_array()) return malformed();
  const json::array& items = v.get_array();
  for (std::size_t pos = 0; pos < items.size(); ++pos) {
    const json::object* item = items[pos].if_object();
    if (item == nullptr) return malformed();
    // `index` is required by OpenAI; engines that omit it send one call per position.
    std::int64_t index = static_cast<std::int64_t>(pos);
    if (const json::value* idx = item->if_contains("index")) {
      if (!AsInteger(*idx, index)) return malformed();
    }
    ToolCall& call = c_.tool_calls[index];
    auto set_once = [](std::string& field, const json::value* src) {
      if (field.empty() && src != nullptr && src->is_string()) field.assign(Sv(src->get_string()));
    };
    set_once(call.id, item->if_contains("id"));
    set_once(call.type, item->if_contains("type"));
    if (const json::value* fn = item->if_contains("function"); fn != nullptr && fn->is_object()) {
      set_once(call.name, fn->get_object().if_contains("name"));
      if (const json::value* args = fn->get_object().if_contains("arguments");
          args != nullptr && !args->is_null()) {
        // Some engines send parsed arguments; clients always expect a JSON string.
        if (args->is_string()) {
          call.arguments += Sv(args->get_string());
        } else if (!AppendJsonValue(call.arguments, *args)) {
          return malformed();
        }
      }
    }
  }
}

}  // namespace meridian::core
