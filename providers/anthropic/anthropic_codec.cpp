#include "providers/anthropic/anthropic_codec.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <utility>

#include "gateway/core/json_text.h"
#include "providers/common/json_util.h"
#include "providers/common/sanitize.h"

namespace meridian::providers::anthropic {
namespace {

using namespace jsonutil;  // NOLINT(google-build-using-namespace): shared helpers

// Anthropic reports no completion-details object; cached input is read separately.
constexpr UsageKeys kAnthropicUsage{"input_tokens", "output_tokens", "output_tokens_details"};

namespace json = boost::json;
using core::Chunk;
using core::Status;
using core::StatusCode;

std::int64_t SatAdd(std::int64_t a, std::int64_t b) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  if (b > 0 && a > kMax - b) return kMax;
  if (b < 0 && a < kMin - b) return kMin;
  return a + b;
}

// ---------------------------------------------------------------------------------------
// Request writing

// One user/assistant turn being assembled; blocks are serialised JSON objects.
struct Turn {
  std::string role;
  std::vector<std::string> blocks;
  std::string sole_text;  ///< the text when the turn is exactly one text block
  bool sole_is_text = false;
};

void AddTextBlock(Turn& t, std::string_view text) {
  if (text.empty()) return;  // the API rejects empty text blocks
  std::string b = "{\"type\":\"text\",\"text\":";
  AppendJsonString(b, text);
  b.push_back('}');
  t.sole_is_text = t.blocks.empty();
  t.sole_text.assign(text);
  t.blocks.push_back(std::move(b));
}

void AddBlock(Turn& t, std::string block) {
  t.sole_is_text = false;
  t.blocks.push_back(std::move(block));
}

void AppendTurn(std::string& out, const Turn& t) {
  out += "{\"role\":";
  AppendJsonString(out, t.role);
  AppendKey(out, "content");
  if (t.blocks.size() == 1 && t.sole_is_text) {
    AppendJsonString(out, t.sole_text);
  } else if (t.blocks.empty()) {
    out += "\"\"";
  } else {
    out.push_back('[');
    for (std::size_t i = 0; i < t.blocks.size(); ++i) {
      if (i != 0) out.push_back(',');
      out += t.blocks[i];
    }
    out.push_back(']');
  }
  out.push_back('}');
}

// `arguments` as a JSON object text: a string is parsed, an object taken as-is, else {}.
std::string ToolInput(const json::value* arguments) {
  if (arguments != nullptr && arguments->is_object()) return json::serialize(*arguments);
  if (arguments != nullptr && arguments->is_string()) {
    const json::string& s = arguments->get_string();
    if (const auto v = ParseJson({s.data(), s.size()}); v && v->is_object()) {
      return json::serialize(*v);
    }
  }
  return "{}";
}

void AddToolUseBlocks(Turn& t, std::string_view tool_calls_json) {
  const auto v = ParseJson(tool_calls_json);
  const json::array* calls = v ? v->if_array() : nullptr;
  if (calls == nullptr) return;
  for (const json::value& item : *calls) {
    const json::object* call = item.if_object();
    if (call == nullptr) continue;
    const std::string_view type = StringMember(*call, "type");
    const json::object* fn = ObjectMember(*call, "function");
    if ((!type.empty() && type != "function") || fn == nullptr) continue;
    std::string b = "{\"type\":\"tool_use\",\"id\":";
    AppendJsonString(b, StringMember(*call, "id"));
    AppendKey(b, "name");
    AppendJsonString(b, StringMember(*fn, "name"));
    AppendKey(b, "input");
    b += ToolInput(Member(*fn, "arguments"));
    b.push_back('}');
    AddBlock(t, std::move(b));
  }
}

/// What an OpenAI image_url part becomes: {"type":"image","source":...}; "" when it cannot be
/// sent (`why` says what is wrong).
std::string ImageBlock(const json::object& part, std::string& why) {
  const json::object* image = ObjectMember(part, "image_url");
  const std::string_view url = image != nullptr ? StringMember(*image, "url") : std::string_view{};
  std::string b = R"({"type":"image","source":)";
  if (url.starts_with("https://") || url.starts_with("http://")) {
    b += R"({"type":"url","url":)";
    AppendJsonString(b, url);
    b += "}}";
    return b;
  }
  constexpr std::string_view kData = "data:";
  constexpr std::string_view kBase64 = ";base64,";
  const std::size_t marker = url.find(kBase64);
  if (!url.starts_with(kData) || marker == std::string_view::npos) {
    why = "an image must be an http(s) URL or a base64 data: URL";
    return {};
  }
  const std::string_view media = url.substr(kData.size(), marker - kData.size());
  bool known = false;
  for (std::string_view m : kImageMediaTypes) known = known || m == media;
  if (!known) {
    why = "image type '" + std::string(media) + "' is not one of image/jpeg, png, gif, webp";
    return {};
  }
  b += R"({"type":"base64","media_type":)";
  AppendJsonString(b, media);
  AppendKey(b, "data");
  AppendJsonString(b, url.substr(marker + kBase64.size()));
  b += "}}";
  return b;
}

/// The parts of `m`, when they hold an image: text and image blocks in order. False when the
/// message has no image (its text is sent as one block).
bool AddPartBlocks(Turn& t, const core::Message& m) {
  if (m.content_parts_json.empty()) return false;
  const auto v = ParseJson(m.content_parts_json);
  const json::array* parts = v ? v->if_array() : nullptr;
  if (parts == nullptr) return false;
  bool has_image = false;
  for (const json::value& p : *parts) {
    const json::object* o = p.if_object();
    has_image = has_image || (o != nullptr && StringMember(*o, "type") == "image_url");
  }
  if (!has_image) return false;
  for (const json::value& p : *parts) {
    const json::object* o = p.if_object();
    if (o == nullptr) continue;
    const std::string_view type = StringMember(*o, "type");
    if (type == "text" || type == "refusal") {
      AddTextBlock(t, StringMember(*o, type == "text" ? "text" : "refusal"));
    } else if (type == "image_url") {
      std::string why;
      if (std::string block = ImageBlock(*o, why); !block.empty()) AddBlock(t, std::move(block));
    }
  }
  return true;
}

void AddToolResultBlock(Turn& t, const core::Message& m) {
  std::string b = "{\"type\":\"tool_result\",\"tool_use_id\":";
  AppendJsonString(b, m.tool_call_id);
  if (!m.text.empty()) {
    AppendKey(b, "content");
    AppendJsonString(b, m.text);
  }
  b.push_back('}');
  AddBlock(t, std::move(b));
}

// OpenAI tools → Anthropic tools; returns the number of tools written (0: nothing written).
std::size_t AppendTools(std::string& out, std::string_view tools_json) {
  const auto v = ParseJson(tools_json);
  const json::array* tools = v ? v->if_array() : nullptr;
  if (tools == nullptr) return 0;
  std::string arr;
  std::size_t n = 0;
  for (const json::value& item : *tools) {
    const json::object* tool = item.if_object();
    if (tool == nullptr || StringMember(*tool, "type") != "function") continue;
    const json::object* fn = ObjectMember(*tool, "function");
    if (fn == nullptr || StringMember(*fn, "name").empty()) continue;
    arr += n++ == 0 ? "{\"name\":" : ",{\"name\":";
    AppendJsonString(arr, StringMember(*fn, "name"));
    if (const std::string_view d = StringMember(*fn, "description"); !d.empty()) {
      AppendKey(arr, "description");
      AppendJsonString(arr, d);
    }
    AppendKey(arr, "input_schema");
    const json::object* params = ObjectMember(*fn, "parameters");
    arr += params != nullptr ? json::serialize(*params) : std::string("{\"type\":\"object\"}");
    arr.push_back('}');
  }
  if (n == 0) return 0;
  AppendKey(out, "tools");
  out.push_back('[');
  out += arr;
  out.push_back(']');
  return n;
}

// OpenAI tool_choice → Anthropic tool_choice text; empty when it has no equivalent.
std::string ToolChoice(std::string_view tool_choice_json) {
  const auto v = ParseJson(tool_choice_json);
  if (!v) return {};
  if (v->is_string()) {
    const json::string& s = v->get_string();
    if (s == "auto") return R"({"type":"auto"})";
    if (s == "none") return R"({"type":"none"})";
    if (s == "required") return R"({"type":"any"})";
    return {};
  }
  if (const json::object* o = v->if_object()) {
    const json::object* fn = ObjectMember(*o, "function");
    const std::string_view name = fn != nullptr ? StringMember(*fn, "name") : std::string_view{};
    if (StringMember(*o, "type") == "function" && !name.empty()) {
      std::string c = "{\"type\":\"tool\",\"name\":";
      AppendJsonString(c, name);
      c.push_back('}');
      return c;
    }
  }
  return {};
}

// ---------------------------------------------------------------------------------------
// Response reading

// Anthropic usage → core::Usage: cached input counts as prompt tokens, as in OpenAI.
core::Usage ToUsage(const json::object& u) {
  core::Usage usage = ParseUsage(kAnthropicUsage, u);
  const std::optional<std::int64_t> cache_read = IntMember(u, "cache_read_input_tokens");
  const std::int64_t cache_creation = IntMember(u, "cache_creation_input_tokens").value_or(0);
  usage.prompt_tokens = SatAdd(SatAdd(usage.prompt_tokens, cache_read.value_or(0)), cache_creation);
  if (cache_read) usage.cached_tokens = *cache_read;
  usage.total_tokens = SatAdd(usage.prompt_tokens, usage.completion_tokens);
  if (const std::string_view geo = StringMember(u, "inference_geo"); !geo.empty()) {
    usage.processing_echo = "inference_geo=" + std::string(geo);
  }
  return usage;
}

Chunk StartChunk(std::string_view id, std::string_view model) {
  Chunk c;
  c.kind = Chunk::Kind::kStart;
  c.id = std::string(id);
  c.model = std::string(model);
  return c;
}

Chunk FinishChunk(std::string_view stop_reason) {
  Chunk c;
  c.kind = Chunk::Kind::kFinish;
  c.finish_reason = std::string(MapStopReason(stop_reason));
  return c;
}

// [{"index":i,"id":id,"type":"function","function":{"name":name,"arguments":arguments}}]
std::string ToolCallHeader(std::int64_t index, std::string_view id, std::string_view name,
                           std::string_view arguments) {
  std::string s = "[{\"index\":";
  AppendInt(s, index);
  AppendKey(s, "id");
  AppendJsonString(s, id);
  s += ",\"type\":\"function\",\"function\":{\"name\":";
  AppendJsonString(s, name);
  AppendKey(s, "arguments");
  AppendJsonString(s, arguments);
  s += "}}]";
  return s;
}

// A non-negative number of seconds, rounded up; nullopt for anything else (HTTP-dates).
std::optional<std::uint32_t> RetryAfterSeconds(std::string_view header) {
  const auto seconds = ParseSeconds(header);
  if (!seconds) return std::nullopt;
  return CeilSeconds(*seconds);
}

}  // namespace

// -----------------------------------------------------------------------------------------
// Request

core::Status CheckContentParts(const core::CompletionRequest& req, std::string_view provider_id) {
  return jsonutil::CheckContentParts(req, provider_id, [](const json::object& part) {
    std::string why;
    (void)ImageBlock(part, why);
    return why;
  });
}

std::string BuildMessagesRequestBody(const core::CompletionRequest& req,
                                     std::string_view upstream_model, bool stream,
                                     std::int64_t default_max_tokens) {
  std::string system;
  std::vector<Turn> turns;
  for (const core::Message& m : req.messages) {
    if (m.role == "system" || m.role == "developer") {
      if (m.text.empty()) continue;
      if (!system.empty()) system += "\n\n";
      system += m.text;
      continue;
    }
    const std::string_view role = m.role == "assistant" ? "assistant" : "user";
    if (turns.empty() || turns.back().role != role) {
      turns.emplace_back();
      turns.back().role = role;
    }
    Turn& t = turns.back();
    if (m.role == "tool") {
      AddToolResultBlock(t, m);
    } else {
      if (!AddPartBlocks(t, m)) AddTextBlock(t, m.text);
      if (m.role == "assistant" && !m.tool_calls_json.empty()) {
        AddToolUseBlocks(t, m.tool_calls_json);
      }
    }
  }

  std::int64_t max_tokens = default_max_tokens > 0 ? default_max_tokens : kDefaultMaxTokens;
  if (const auto limit = req.TokenLimit()) max_tokens = *limit;

  std::string out;
  out.reserve(256);
  out += "{\"model\":";
  AppendJsonString(out, upstream_model);
  AppendKey(out, "max_tokens");
  AppendInt(out, max_tokens);
  if (!system.empty()) {
    AppendKey(out, "system");
    AppendJsonString(out, system);
  }
  AppendKey(out, "messages");
  out.push_back('[');
  for (std::size_t i = 0; i < turns.size(); ++i) {
    if (i != 0) out.push_back(',');
    AppendTurn(out, turns[i]);
  }
  out.push_back(']');

  std::string tool_choice;
  if (!req.tools_json.empty() && AppendTools(out, req.tools_json) > 0 &&
      !req.tool_choice_json.empty()) {
    tool_choice = ToolChoice(req.tool_choice_json);
    if (!tool_choice.empty()) {
      AppendKey(out, "tool_choice");
      out += tool_choice;
    }
  }
  const bool forced_tool = tool_choice.find(R"("type":"any")") != std::string::npos ||
                           tool_choice.find(R"("type":"tool")") != std::string::npos;
  const std::int64_t budget = std::max(kMinThinkingBudget, max_tokens / 2);
  const bool thinking = req.enable_thinking.value_or(false) && !forced_tool && budget < max_tokens;
  if (thinking) {
    out += ",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":";
    AppendInt(out, budget);
    out.push_back('}');
  }

  // Sampling through the shared writer; the token cap is written above (always required) and
  // stop goes out as stop_sequences.
  core::CompletionRequest sampling;
  if (!thinking) sampling.temperature = req.temperature;
  if (!thinking || (req.top_p && *req.top_p >= 0.95)) sampling.top_p = req.top_p;
  AppendSampling(out, sampling, "max_tokens");
  if (!req.stop.empty()) {
    AppendKey(out, "stop_sequences");
    out.push_back('[');
    for (std::size_t i = 0; i < req.stop.size(); ++i) {
      if (i != 0) out.push_back(',');
      AppendJsonString(out, req.stop[i]);
    }
    out.push_back(']');
  }
  if (stream) out += ",\"stream\":true";
  out.push_back('}');
  return out;
}

// -----------------------------------------------------------------------------------------
// Errors

std::string_view MapStopReason(std::string_view stop_reason) {
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
    return "length";
  }
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return "stop";  // end_turn, stop_sequence, pause_turn, unknown
}

Status MapAnthropicError(int http_status, std::string_view body,
                         std::string_view retry_after_header) {
  std::string type;
  std::string message;
  try {
    if (const auto v = ParseJson(body)) {
      if (const json::object* o = v->if_object()) {
        if (const json::object* e = ObjectMember(*o, "error")) {
          type = std::string(StringMember(*e, "type"));
          message = std::string(StringMember(*e, "message"));
        }
      }
    }
  } catch (const std::exception&) {
  }
  const std::string safe_type = SanitizeUpstreamText(type, 128);
  const std::string safe_msg = SanitizeUpstreamText(message);
  auto detailed = [&] {
    std::string m = http_status > 0 ? "upstream returned HTTP " + std::to_string(http_status)
                                    : std::string("upstream error");
    if (!safe_type.empty()) m += " (" + safe_type + ")";
    if (!safe_msg.empty()) m += ": " + safe_msg;
    return m;
  };
  const std::string_view t = type;
  // error.type decides; the HTTP status only when the type is missing or unknown.
  constexpr std::string_view kKnown[] = {
      "rate_limit_error",     "overloaded_error",     "api_error",     "timeout_error",
      "authentication_error", "permission_error",     "billing_error", "not_found_error",
      "request_too_large",    "invalid_request_error"};
  const bool known = std::find(std::begin(kKnown), std::end(kKnown), t) != std::end(kKnown);
  const int h = known ? -1 : http_status;

  Status s;
  if (t == "rate_limit_error" || h == 429) {
    s = UpstreamStatus(StatusCode::kRateLimited, detailed(), "upstream_rate_limited", true);
  } else if (t == "overloaded_error" || h == 529) {
    s = UpstreamStatus(StatusCode::kUnavailable, detailed(), "upstream_overloaded", true);
  } else if (t == "timeout_error" || h == 504 || h == 408) {
    s = UpstreamStatus(StatusCode::kUpstreamTimeout, detailed(), "upstream_timeout", true);
  } else if (t == "api_error" || (h >= 500 && h <= 599)) {
    s = UpstreamStatus(StatusCode::kUnavailable, detailed(), "upstream_unavailable", true);
  } else if (t == "authentication_error" || h == 401) {
    s = UpstreamStatus(StatusCode::kBadUpstream, "upstream rejected the gateway's credentials",
                       "upstream_unauthorized", false);
  } else if (t == "permission_error" || h == 403) {
    s = UpstreamStatus(StatusCode::kBadUpstream, "upstream denied access to the gateway's account",
                       "upstream_forbidden", false);
  } else if (t == "billing_error" || h == 402) {
    s = UpstreamStatus(StatusCode::kBadUpstream,
                       "upstream account of the gateway has a billing problem", "upstream_billing",
                       false);
  } else if (t == "not_found_error" || h == 404) {
    s = UpstreamStatus(StatusCode::kBadUpstream, "upstream endpoint or model not found",
                       "upstream_not_found", false);
  } else if (t == "request_too_large" || h == 413) {
    s = UpstreamStatus(StatusCode::kPayloadTooLarge, detailed(), "upstream_payload_too_large",
                       false);
  } else if (t == "invalid_request_error" || h == 400) {
    s = UpstreamStatus(StatusCode::kInvalidArgument, detailed(), "upstream_invalid_request", false);
  } else if (h >= 400 && h <= 499) {
    s = UpstreamStatus(StatusCode::kBadUpstream, detailed(), "upstream_client_error", false);
  } else {
    s = UpstreamStatus(StatusCode::kBadUpstream, detailed(), "upstream_error", false);
  }
  if (s.retryable) s.retry_after_s = RetryAfterSeconds(retry_after_header);
  return s;
}

// -----------------------------------------------------------------------------------------
// Streaming

Status AnthropicStreamDecoder::Fail(Status status, std::vector<Chunk>& out) {
  done_ = true;
  emitted_ = true;
  out.push_back(ErrorChunk(status));
  return status;
}

void AnthropicStreamDecoder::EnsureStarted(std::string_view id, std::string_view model,
                                           std::vector<Chunk>& out) {
  if (started_) return;
  out.push_back(StartChunk(id, model));
  started_ = true;
  emitted_ = true;
}

std::int64_t AnthropicStreamDecoder::ToolIndex(std::int64_t block_index) const {
  for (const auto& [block, tool] : tool_blocks_) {
    if (block == block_index) return tool;
  }
  return -1;
}

std::string NativeMessagesRequestBody(std::string_view native_json,
                                      std::string_view upstream_model) {
  const auto body = NativeBodyWithModel(native_json, upstream_model);
  return body ? json::serialize(*body) : std::string();
}

Status AnthropicStreamDecoder::Decode(const SseEvent& event, std::vector<Chunk>& out) {
  if (done_) return Status::Ok();
  const std::size_t before = out.size();
  Status st = DecodeEvent(event, out);
  native_.Carry(event, st, out, before);
  return st;
}

Status AnthropicStreamDecoder::DecodeEvent(const SseEvent& event, std::vector<Chunk>& out) {
  if (done_) return Status::Ok();
  const std::string_view payload = TrimWs(event.data);
  if (event.event == "error") {
    Status s = MapAnthropicError(0, payload);
    s.retryable = s.retryable && !emitted_;
    return Fail(std::move(s), out);
  }
  if (payload.empty()) return Status::Ok();
  try {
    const auto v = ParseJson(payload);
    const json::object* obj = v ? v->if_object() : nullptr;
    if (obj == nullptr) return Fail(InvalidJson("upstream sent invalid JSON in stream"), out);
    const std::string_view type =
        event.event.empty() ? StringMember(*obj, "type") : std::string_view(event.event);

    auto read_usage = [this](const json::object* u) {
      if (u == nullptr) return;
      usage_seen_ = true;
      if (auto n = IntMember(*u, "input_tokens")) input_tokens_ = n;
      if (auto n = IntMember(*u, "output_tokens")) output_tokens_ = n;
      if (auto n = IntMember(*u, "cache_read_input_tokens")) cache_read_tokens_ = n;
      if (auto n = IntMember(*u, "cache_creation_input_tokens")) cache_creation_tokens_ = n;
      if (const std::string_view geo = StringMember(*u, "inference_geo"); !geo.empty()) {
        inference_geo_.assign(geo);
      }
    };
    auto delta = [&out](std::string content, std::string reasoning, std::string tool_calls) {
      if (content.empty() && reasoning.empty() && tool_calls.empty()) return;
      Chunk d;
      d.kind = Chunk::Kind::kDelta;
      d.content = std::move(content);
      d.reasoning = std::move(reasoning);
      d.tool_calls_json = std::move(tool_calls);
      out.push_back(std::move(d));
    };

    if (type == "error") {
      Status s = MapAnthropicError(0, payload);
      s.retryable = s.retryable && !emitted_;
      return Fail(std::move(s), out);
    }
    if (type == "message_start") {
      const json::object* msg = ObjectMember(*obj, "message");
      if (msg == nullptr) return Status::Ok();
      EnsureStarted(StringMember(*msg, "id"), StringMember(*msg, "model"), out);
      read_usage(ObjectMember(*msg, "usage"));
      return Status::Ok();
    }
    if (type == "content_block_start") {
      const json::object* block = ObjectMember(*obj, "content_block");
      if (block == nullptr) return Status::Ok();
      const std::string_view block_type = StringMember(*block, "type");
      if (block_type == "text") {
        EnsureStarted({}, {}, out);
        delta(std::string(StringMember(*block, "text")), {}, {});
      } else if (block_type == "thinking") {
        EnsureStarted({}, {}, out);
        delta({}, std::string(StringMember(*block, "thinking")), {});
      } else if (block_type == "tool_use") {
        EnsureStarted({}, {}, out);
        const std::int64_t tool = static_cast<std::int64_t>(tool_blocks_.size());
        tool_blocks_.emplace_back(IntMember(*obj, "index").value_or(-1), tool);
        const json::object* input = ObjectMember(*block, "input");
        const std::string args =
            input != nullptr && !input->empty() ? json::serialize(*input) : std::string();
        delta({}, {},
              ToolCallHeader(tool, StringMember(*block, "id"), StringMember(*block, "name"), args));
      }
      return Status::Ok();  // redacted_thinking, server tools, ...: nothing to forward
    }
    if (type == "content_block_delta") {
      const json::object* d = ObjectMember(*obj, "delta");
      if (d == nullptr) return Status::Ok();
      const std::string_view delta_type = StringMember(*d, "type");
      if (delta_type == "text_delta") {
        EnsureStarted({}, {}, out);
        delta(std::string(StringMember(*d, "text")), {}, {});
      } else if (delta_type == "thinking_delta") {
        EnsureStarted({}, {}, out);
        delta({}, std::string(StringMember(*d, "thinking")), {});
      } else if (delta_type == "input_json_delta") {
        const std::int64_t tool = ToolIndex(IntMember(*obj, "index").value_or(-1));
        const std::string_view partial = StringMember(*d, "partial_json");
        if (tool < 0 || partial.empty()) return Status::Ok();
        std::string s = "[{\"index\":";
        AppendInt(s, tool);
        s += ",\"function\":{\"arguments\":";
        AppendJsonString(s, partial);
        s += "}}]";
        delta({}, {}, std::move(s));
      }
      return Status::Ok();  // signature_delta, citations_delta, unknown
    }
    if (type == "message_delta") {
      if (const json::object* d = ObjectMember(*obj, "delta")) {
        if (const std::string_view r = StringMember(*d, "stop_reason"); !r.empty()) {
          stop_reason_.assign(r);
        }
      }
      read_usage(ObjectMember(*obj, "usage"));
      return Status::Ok();
    }
    if (type == "message_stop") {
      EnsureStarted({}, {}, out);
      out.push_back(FinishChunk(stop_reason_));
      if (usage_seen_) {
        json::object u;
        if (input_tokens_) u["input_tokens"] = *input_tokens_;
        if (output_tokens_) u["output_tokens"] = *output_tokens_;
        if (cache_read_tokens_) u["cache_read_input_tokens"] = *cache_read_tokens_;
        if (cache_creation_tokens_) u["cache_creation_input_tokens"] = *cache_creation_tokens_;
        if (!inference_geo_.empty()) u["inference_geo"] = inference_geo_;
        Chunk c;
        c.kind = Chunk::Kind::kUsage;
        c.usage = ToUsage(u);
        out.push_back(std::move(c));
      }
      done_ = true;
      return Status::Ok();
    }
    return Status::Ok();  // ping, content_block_stop, unknown event types
  } catch (const std::exception&) {
    return Fail(Status::Error(StatusCode::kInternal, "failed to decode upstream stream event"),
                out);
  }
}

Status AnthropicStreamDecoder::Finish(std::vector<Chunk>& out) {
  if (done_) return Status::Ok();
  return Fail(TruncatedStream("upstream stream ended before message_stop", !emitted_), out);
}

// -----------------------------------------------------------------------------------------
// Non-streaming

Status DecodeMessagesResponse(std::string_view body, std::vector<Chunk>& out) {
  auto fail = [&out](Status s) {
    out.push_back(ErrorChunk(s));
    return s;
  };
  try {
    const auto v = ParseJson(body);
    const json::object* obj = v ? v->if_object() : nullptr;
    if (obj == nullptr) return fail(InvalidJson("upstream sent invalid JSON"));
    if (StringMember(*obj, "type") == "error") return fail(MapAnthropicError(0, body));
    const json::array* content = ArrayMember(*obj, "content");
    if (content == nullptr) {
      return fail(Status::Error(StatusCode::kBadUpstream, "upstream response has no content",
                                "upstream_no_output"));
    }
    out.push_back(StartChunk(StringMember(*obj, "id"), StringMember(*obj, "model")));
    Chunk d;
    d.kind = Chunk::Kind::kDelta;
    std::string calls;
    std::int64_t tool = 0;
    for (const json::value& item : *content) {
      const json::object* block = item.if_object();
      if (block == nullptr) continue;
      const std::string_view type = StringMember(*block, "type");
      if (type == "text") {
        d.content += StringMember(*block, "text");
      } else if (type == "thinking") {
        d.reasoning += StringMember(*block, "thinking");
      } else if (type == "tool_use") {
        const json::object* input = ObjectMember(*block, "input");
        std::string one =
            ToolCallHeader(tool++, StringMember(*block, "id"), StringMember(*block, "name"),
                           input != nullptr ? json::serialize(*input) : std::string("{}"));
        // Splice the single-element arrays into one array.
        calls += calls.empty() ? "[" : ",";
        calls.append(one, 1, one.size() - 2);
      }
    }
    if (!calls.empty()) d.tool_calls_json = calls + "]";
    if (!d.content.empty() || !d.reasoning.empty() || !d.tool_calls_json.empty()) {
      out.push_back(std::move(d));
    }
    out.push_back(FinishChunk(StringMember(*obj, "stop_reason")));
    if (const json::object* usage = ObjectMember(*obj, "usage")) {
      Chunk u;
      u.kind = Chunk::Kind::kUsage;
      u.usage = ToUsage(*usage);
      out.push_back(std::move(u));
    }
    return Status::Ok();
  } catch (const std::exception&) {
    return fail(Status::Error(StatusCode::kInternal, "failed to decode upstream response"));
  }
}

}  // namespace meridian::providers::anthropic
