// libFuzzer: the scanner that decodes OpenAI content chunks without a JSON DOM
// (providers/openai/chunk_scan.h) against the full decoder.
//
// The input is a stream of payloads, one per line, after a fixed role chunk that starts the
// stream. Two OpenAiStreamDecoders decode it, one with the scanner and one without
// (full_decode_only): every Decode must return the same status and emit the same chunks, and
// Finish the same. And the whole input, as one payload: whatever ScanContentChunk accepts,
// the full decoder decodes (after a start) to one content delta with the same text, or to
// nothing when the text is empty.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "providers/openai/chunk_scan.h"
#include "providers/openai/openai_codec.h"

namespace {

using meridian::core::Chunk;
using meridian::core::Status;
namespace oai = meridian::providers::openai;

constexpr std::string_view kRole =
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})";

bool Same(const Status& a, const Status& b) {
  return a.code == b.code && a.message == b.message && a.reason == b.reason &&
         a.retryable == b.retryable;
}

bool Same(const Chunk& a, const Chunk& b) {
  return a.kind == b.kind && a.id == b.id && a.model == b.model && a.created == b.created &&
         a.content == b.content && a.reasoning == b.reasoning &&
         a.tool_calls_json == b.tool_calls_json && a.finish_reason == b.finish_reason &&
         a.usage.prompt_tokens == b.usage.prompt_tokens &&
         a.usage.completion_tokens == b.usage.completion_tokens &&
         a.usage.total_tokens == b.usage.total_tokens && Same(a.error, b.error);
}

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckSame(const std::vector<Chunk>& a, const std::vector<Chunk>& b) {
  Check(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) Check(Same(a[i], b[i]));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  oai::OpenAiStreamDecoder scanned;
  oai::OpenAiStreamDecoder full(/*full_decode_only=*/true);
  std::vector<Chunk> a, b;
  Check(Same(scanned.Decode(kRole, a), full.Decode(kRole, b)));
  std::size_t begin = 0;
  while (begin <= input.size()) {
    std::size_t end = input.find('\n', begin);
    if (end == std::string_view::npos) end = input.size();
    const std::string_view payload = input.substr(begin, end - begin);
    Check(Same(scanned.Decode(payload, a), full.Decode(payload, b)));
    CheckSame(a, b);
    begin = end + 1;
  }
  Check(Same(scanned.Finish(a), full.Finish(b)));
  CheckSame(a, b);

  if (const auto content = oai::ScanContentChunk(input)) {
    oai::OpenAiStreamDecoder reference(/*full_decode_only=*/true);
    std::vector<Chunk> out;
    Check(reference.Decode(kRole, out).ok());
    out.clear();
    Check(reference.Decode(input, out).ok());
    if (content->empty()) {
      Check(out.empty());
    } else {
      Check(out.size() == 1 && out[0].kind == Chunk::Kind::kDelta && out[0].content == *content &&
            out[0].reasoning.empty() && out[0].tool_calls_json.empty());
    }
  }
  return 0;
}
