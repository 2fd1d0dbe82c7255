// OpenAI Responses API answers on the client side of the gateway: the `response` object and
// the streaming event sequence OpenAI sends (response.created ... response.completed), built
// from a provider's chunks, whatever API the provider spoke. Pure: no I/O, no clocks
// (`created_at` is passed in), no exceptions escape.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/completion.h"
#include "gateway/core/status.h"
#include "gateway/http/responses_request.h"

namespace meridian::http {

/// What every response object of one request shares.
struct ResponseHead {
  std::string id;         ///< "resp_<hex>"
  std::string item_base;  ///< "<hex>": items are msg_<hex>_<n>, rs_<hex>_<n>, fc_<hex>_<n>
  std::int64_t created_at = 0;
  std::string model;  ///< the alias the client asked for
  ResponsesEcho echo;
};

/// The non-streaming `response` object of `answer`: output items in OpenAI's order (reasoning,
/// message, function calls), `status` completed, or incomplete with incomplete_details.reason
/// max_output_tokens / content_filter when the provider stopped for length or a filter;
/// `store` false; usage in Responses terms (input/output tokens with their details). OpenAI's
/// own response object (answer.native: the request went to its Responses API) is returned as
/// it came with the head's id and model.
std::string RenderResponse(const ResponseHead& head, const core::Completion& answer);

/// Re-encodes a provider's chunk stream as Responses API server-sent events (`event: <type>`
/// and `data: {..., "type", "sequence_number"}`), each item opened, filled and closed as
/// OpenAI does: output_item.added, content_part.added, *.delta, *.done, content_part.done,
/// output_item.done; the stream ends with exactly one of response.completed,
/// response.incomplete or response.failed, whose `response` holds every output item.
///
/// When the stream's first chunk carries OpenAI's own Responses events (core::Chunk::native),
/// the stream is those events as they came, the `response` objects of response.created,
/// .in_progress, .completed, .incomplete and .failed given the head's id and model; a failure
/// after them is a response.failed continuing their sequence numbers.
class ResponsesStreamEncoder {
 public:
  explicit ResponsesStreamEncoder(ResponseHead head);

  /// response.created and response.in_progress; once, before anything else.
  void Start(std::string& out);
  /// The events for `c`: text, reasoning and tool-call deltas open and fill items (a delta of
  /// another kind closes the item before it); kFinish and kUsage are kept for the end; kError
  /// is Error().
  void Encode(const core::Chunk& c, std::string& out);
  /// Closes the open items, then response.completed (response.incomplete after a length or
  /// content_filter finish).
  void Done(std::string& out);
  /// response.failed carrying `status` (its reason as `code`); items stay as they were.
  void Error(const core::Status& status, std::string& out);
  /// Done() or Error() was written; every later call appends nothing.
  bool finished() const { return finished_; }

 private:
  enum class Kind : std::uint8_t { kMessage, kReasoning, kFunction };
  struct Item {
    Kind kind;
    std::string id;
    std::string text;  ///< message or reasoning text; function arguments
    std::string call_id;
    std::string name;
    std::int64_t tool_index = 0;
    bool done = false;
  };

  void Event(std::string_view type, std::string fields_json, std::string& out);
  void Native(std::string_view events, std::string& out);
  Item& Open(Kind kind, std::string& out);
  void Close(std::size_t index, std::string& out);
  void CloseOpen(std::string& out, bool keep_functions);
  void ToolDeltas(std::string_view json, std::string& out);
  std::string Response(std::string_view status, const std::string& extra_json) const;

  ResponseHead head_;
  std::vector<Item> items_;
  std::uint64_t sequence_ = 0;
  std::string finish_reason_;
  core::Usage usage_;
  bool has_usage_ = false;
  bool started_ = false;
  bool finished_ = false;
  bool native_ = false;  ///< forwarding the upstream's own events
};

}  // namespace meridian::http
