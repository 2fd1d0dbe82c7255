// libFuzzer: the Anthropic Messages codec (providers/anthropic/anthropic_codec.h).
//
// Input layout: byte 0 — bits 0..6: the size of the Feed pieces (1..128 bytes), bit 7: feed
// the whole stream in one piece instead. The rest is an upstream SSE byte stream:
//   SseParser -> AnthropicStreamDecoder::Decode per event -> Finish
// with the shared chunk-order checks (chunk_invariants.h): kStart before deltas, at most one
// kFinish and one kUsage, kError terminal, nothing after done(), Decode returns the error
// exactly when it emitted kError, and after Finish() the stream is terminated.
// The same bytes are also given whole to DecodeMessagesResponse (a complete, terminated chunk
// sequence or an error) and to MapAnthropicError with several HTTP statuses and Retry-After
// values (never Ok, always a message, bounded; retry_after_s only when retryable).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "chunk_invariants.h"
#include "providers/anthropic/anthropic_codec.h"
#include "providers/common/sse_parser.h"

namespace {

using meridian::core::Chunk;
using meridian::core::Status;
using meridian::providers::SseEvent;
namespace an = meridian::providers::anthropic;

void RunStream(std::string_view stream, std::size_t piece) {
  an::AnthropicStreamDecoder decoder;
  SseEvent late;
  late.event = "message_stop";
  late.data = R"({"type":"message_stop"})";
  meridian::fuzz::RunStreamChecked(decoder, stream, piece, late);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t piece = (data[0] & 0x80) != 0 ? rest.size() + 1 : 1 + (data[0] & 0x7f);

  RunStream(rest, piece);

  std::vector<Chunk> chunks;
  const Status s = an::DecodeMessagesResponse(rest, chunks);
  meridian::fuzz::CheckWholeResponse(chunks, s);

  for (const int http_status : {0, 200, 400, 401, 403, 404, 413, 429, 500, 503, 529}) {
    for (const std::string_view retry_after :
         {std::string_view{}, std::string_view("7"), std::string_view("-1"),
          std::string_view("99999999999999999999"),
          std::string_view("Wed, 21 Oct 2015 07:28:00 GMT")}) {
      const Status e = an::MapAnthropicError(http_status, rest, retry_after);
      meridian::fuzz::CheckErrorStatus(e);
      MERIDIAN_FUZZ_CHECK(e.message.size() <= 2048);
      // Retry-After is only kept for retryable failures, and "7" means 7 seconds.
      if (!e.retryable) MERIDIAN_FUZZ_CHECK(!e.retry_after_s);
      if (e.retryable && retry_after == "7") MERIDIAN_FUZZ_CHECK(e.retry_after_s == 7u);
    }
  }
  return 0;
}
