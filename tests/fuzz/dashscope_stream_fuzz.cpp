// libFuzzer: the DashScope native codec (providers/dashscope/dashscope_codec.h).
//
// Input layout: byte 0 picks the mode — bit 0: incremental_output (true/false), bits 1..7:
// the size of the Feed pieces (1..128 bytes). The rest is an upstream SSE byte stream:
//   SseParser -> DashScopeStreamDecoder::Decode per event -> Finish
// with the shared chunk-order checks (chunk_invariants.h): kStart before deltas, at most one
// kFinish and one kUsage, kError terminal, nothing after done(), Decode returns the error
// exactly when it emitted kError, and after Finish() the stream is terminated.
// The same bytes are also given whole to DecodeGenerationResponse (a complete, terminated
// chunk sequence or an error) and to MapDashScopeError with several HTTP statuses (never Ok,
// always a message; upstream text bounded).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "chunk_invariants.h"
#include "providers/common/sse_parser.h"
#include "providers/dashscope/dashscope_codec.h"

namespace {

using meridian::core::Chunk;
using meridian::core::Status;
using meridian::providers::SseEvent;
namespace ds = meridian::providers::dashscope;

void RunStream(std::string_view stream, bool incremental, std::size_t piece) {
  ds::DashScopeStreamDecoder decoder(incremental);
  SseEvent late;
  late.data = R"({"output":{"text":"late","finish_reason":"stop"}})";
  meridian::fuzz::RunStreamChecked(decoder, stream, piece, late);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool incremental = (data[0] & 1) != 0;
  const std::size_t piece = 1 + (data[0] >> 1);
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  RunStream(rest, incremental, piece);

  std::vector<Chunk> chunks;
  const Status s = ds::DecodeGenerationResponse(rest, chunks);
  meridian::fuzz::CheckWholeResponse(chunks, s);

  for (const int http_status : {0, 200, 400, 401, 403, 404, 408, 413, 429, 500, 503, 504, 599}) {
    const Status e = ds::MapDashScopeError(http_status, rest);
    meridian::fuzz::CheckErrorStatus(e);
    // Upstream text is bounded (SanitizeUpstreamText: 512 bytes) plus a fixed prefix.
    MERIDIAN_FUZZ_CHECK(e.message.size() <= 2048);
  }
  return 0;
}
