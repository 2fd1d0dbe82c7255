// Micro-benchmarks of the streaming hot path's pure parts: the upstream SSE parser, the
// OpenAI stream decoder, the client-side SSE encoder, and the HTTP request decoder. Inputs are
// what the shared benchmark's fake upstream sends (50 content deltas + role + finish + usage +
// [DONE]) and a typical chat request.
//   build/release/tests/codec_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "gateway/http/chat_request.h"
#include "gateway/http/chat_response.h"
#include "providers/common/sse_parser.h"
#include "providers/openai/openai_codec.h"

namespace {

using meridian::core::Chunk;

std::string UpstreamStream() {
  const std::string head =
      R"({"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1741569952,"model":"fake-model","choices":[{"index":0,"delta":)";
  std::string s =
      "data: " + head + R"({"role":"assistant","content":""},"finish_reason":null}]})" + "\n\n";
  for (int i = 0; i < 50; ++i) {
    s += "data: " + head + R"({"content":" tok)" + std::to_string(i) +
         R"("},"finish_reason":null}]})" + "\n\n";
  }
  s += "data: " + head + R"({},"finish_reason":"stop"}]})" + "\n\n";
  s +=
      R"(data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1741569952,"model":"fake-model","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":50,"total_tokens":59}})"
      "\n\n";
  s += "data: [DONE]\n\n";
  return s;
}

const std::string kRequest =
    R"({"model":"fake-model","stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"max_tokens":256,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write one sentence about the sea, please, in plain English."}]})";

void BM_SseParse(benchmark::State& state) {
  const std::string bytes = UpstreamStream();
  std::vector<meridian::providers::SseEvent> events;
  for (auto _ : state) {
    meridian::providers::SseParser parser;
    events.clear();
    parser.Feed(bytes, events);
    benchmark::DoNotOptimize(events.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes.size()));
  state.counters["events"] = static_cast<double>(events.size());
}
BENCHMARK(BM_SseParse);

// Arg 0: with the DOM-free scanner for content deltas (what serves); 1: full decode only.
void BM_OpenAiStreamDecode(benchmark::State& state) {
  meridian::providers::SseParser parser;
  std::vector<meridian::providers::SseEvent> events;
  parser.Feed(UpstreamStream(), events);
  std::vector<Chunk> chunks;
  const bool full_decode_only = state.range(0) != 0;
  for (auto _ : state) {
    meridian::providers::openai::OpenAiStreamDecoder decoder(full_decode_only);
    chunks.clear();
    for (const auto& e : events) (void)decoder.Decode(e.data, chunks);
    benchmark::DoNotOptimize(chunks.data());
  }
  state.counters["events_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(events.size()),
      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_OpenAiStreamDecode)->Arg(0)->Arg(1)->ArgName("full_decode_only");

void BM_ClientSseEncode(benchmark::State& state) {
  meridian::providers::SseParser parser;
  std::vector<meridian::providers::SseEvent> events;
  parser.Feed(UpstreamStream(), events);
  std::vector<Chunk> chunks;
  meridian::providers::openai::OpenAiStreamDecoder decoder;
  for (const auto& e : events) (void)decoder.Decode(e.data, chunks);
  std::string out;
  for (auto _ : state) {
    meridian::http::ChatStreamEncoder encoder("chatcmpl-req_0123456789abcdef", 1741569952,
                                              "fake-model", true);
    out.clear();
    for (const auto& c : chunks) encoder.Encode(c, out);
    encoder.Done(out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["chunks_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(chunks.size()),
      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ClientSseEncode);

void BM_DecodeChatRequest(benchmark::State& state) {
  for (auto _ : state) {
    meridian::core::CompletionRequest req;
    auto st = meridian::http::DecodeChatRequest(kRequest, req);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(req.messages.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kRequest.size()));
}
BENCHMARK(BM_DecodeChatRequest);

}  // namespace

BENCHMARK_MAIN();
