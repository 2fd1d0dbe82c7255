// Anthropic Messages API answers on the client side of the gateway: the `message` object, the
// event stream Anthropic sends (message_start ... message_stop, wire-protocols.md §3.2) and its
// error shape (§3.3), built from any provider's chunks. Pure: no I/O, no exceptions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/completion.h"
#include "gateway/core/status.h"
#include "gateway/http/error_mapping.h"

namespace meridian::http {

/// What every answer to one request shares.
struct MessageHead {
  std::string id;     ///< "msg_<hex>"
  std::string model;  ///< the alias the client asked for
};

/// Anthropic's stop_reason for an OpenAI finish_reason: stop -> end_turn, length ->
/// max_tokens, tool_calls -> tool_use, content_filter -> refusal.
std::string_view StopReason(std::string_view finish_reason);

/// The non-streaming `message`: content blocks thinking (when the model reasoned), text, then
/// tool_use (`input` the parsed arguments; arguments that are not a JSON object become {}),
/// stop_reason and usage (input_tokens, output_tokens). An Anthropic upstream's own message
/// (answer.native) is returned as it came with the head's id and model.
std::string RenderMessage(const MessageHead& head, const core::Completion& answer);

/// A failure as Anthropic answers it: the HTTP status of ToHttpError, body
/// `{"type":"error","error":{"type","message","code"}}` with Anthropic's error types
/// (invalid_request_error, authentication_error, permission_error, not_found_error,
/// request_too_large, rate_limit_error, overloaded_error for 503, api_error) and the gateway's
/// reason in `code` (Anthropic's SDKs ignore members they do not know).
HttpError ToAnthropicError(const core::Status& status);

/// Re-encodes a provider's chunk stream as Messages API events: message_start, then per block
/// (thinking, text, tool_use) content_block_start / content_block_delta (thinking_delta,
/// text_delta, input_json_delta) / content_block_stop, then message_delta (stop_reason and the
/// usage) and message_stop; or, after a failure, one `error` event.
///
/// When the stream's first chunk carries an Anthropic upstream's own events
/// (core::Chunk::native: the request went as the client's Messages body), the stream is those
/// events as they came, message_start's id and model replaced by the head's; the chunks'
/// decoded fields are then not re-encoded, and a failure still ends it with one `error`
/// event.
class MessagesStreamEncoder {
 public:
  explicit MessagesStreamEncoder(MessageHead head);

  /// message_start; once, before anything else. Called by Encode, Done and Error when needed
  /// (a stream of an upstream's own events has its own).
  void Start(std::string& out);
  void Encode(const core::Chunk& c, std::string& out);
  /// Closes the open block, then message_delta and message_stop.
  void Done(std::string& out);
  /// An `error` event; nothing follows it.
  void Error(const core::Status& status, std::string& out);
  bool finished() const { return finished_; }

 private:
  enum class Kind : std::uint8_t { kNone, kThinking, kText, kToolUse };

  void Event(std::string_view type, std::string_view fields, std::string& out);
  void Native(std::string_view events, std::string& out);
  void OpenBlock(Kind kind, std::string_view block_json, std::string& out);
  void CloseBlock(std::string& out);
  void Delta(std::string_view delta_json, std::string& out);
  void ToolDeltas(std::string_view json, std::string& out);

  MessageHead head_;
  Kind open_ = Kind::kNone;
  std::int64_t open_tool_ = -1;  ///< the upstream tool index of the open tool_use block
  std::size_t blocks_ = 0;       ///< blocks opened so far; the open one is blocks_ - 1
  std::string finish_reason_;
  core::Usage usage_;
  bool started_ = false;
  bool finished_ = false;
  bool native_ = false;  ///< forwarding the upstream's own events
};

}  // namespace meridian::http
