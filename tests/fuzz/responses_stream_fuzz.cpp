// libFuzzer: the OpenAI Responses API upstream codec (providers/openai/openai_codec.h:
// ResponsesStreamDecoder, DecodeResponsesBody), used for a Responses request to a provider
// with responses_api.
//
// Input layout: byte 0 — bits 0..6: the size of the Feed pieces (1..128 bytes), bit 7: feed
// the whole stream in one piece instead. The rest is an upstream SSE byte stream:
//   SseParser -> ResponsesStreamDecoder::Decode per event -> Finish
// with the shared chunk-order checks (chunk_invariants.h). Then the events carried on the
// chunks (Chunk::native) are checked: until a failure, their concatenation is always a prefix
// of the events as framed on the wire, in order, none lost or repeated, and once the stream
// completed it is all of them. The same bytes are also given whole to DecodeResponsesBody (a
// complete, terminated chunk sequence or an error; the body rides on kStart).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chunk_invariants.h"
#include "providers/common/native_events.h"
#include "providers/common/sse_parser.h"
#include "providers/openai/openai_codec.h"

namespace {

using meridian::core::Chunk;
using meridian::core::Status;
using meridian::providers::SseEvent;
namespace oai = meridian::providers::openai;

void CheckCarried(std::string_view stream, std::size_t piece) {
  meridian::providers::SseParser parser;
  std::vector<SseEvent> events;
  for (std::size_t pos = 0; pos < stream.size(); pos += piece) {
    if (!parser.Feed(stream.substr(pos, piece), events)) break;
  }
  (void)parser.Finish();
  oai::ResponsesStreamDecoder decoder;
  std::vector<Chunk> chunks;
  std::string framed;
  std::string carried;
  for (const SseEvent& e : events) {
    if (decoder.done()) break;
    const std::size_t first = chunks.size();
    const Status s = decoder.Decode(e, chunks);
    if (!s.ok()) return;  // the front end reports a failure itself: nothing more to compare
    meridian::providers::AppendSseFrame(framed, e.event, e.data);
    for (std::size_t i = first; i < chunks.size(); ++i) carried += chunks[i].native;
    MERIDIAN_FUZZ_CHECK(framed.starts_with(carried));
  }
  if (decoder.done()) MERIDIAN_FUZZ_CHECK(carried == framed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t piece = (data[0] & 0x80) != 0 ? rest.size() + 1 : 1 + (data[0] & 0x7f);

  oai::ResponsesStreamDecoder decoder;
  SseEvent late;
  late.event = "response.completed";
  late.data = R"({"type":"response.completed","response":{"id":"r","status":"completed"}})";
  meridian::fuzz::RunStreamChecked(decoder, rest, piece, late);
  CheckCarried(rest, piece);

  std::vector<Chunk> chunks;
  const Status s = oai::DecodeResponsesBody(rest, chunks);
  meridian::fuzz::CheckWholeResponse(chunks, s);
  if (s.ok()) MERIDIAN_FUZZ_CHECK(!chunks.empty() && chunks.front().native == rest);
  return 0;
}
