// PII classifier throughput on ~1 MiB of mixed text: mostly prose (English and Chinese) with
// digits, dates, timestamps, order numbers and some synthetic PII. Target: >= 500 MB/s per core.
#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <string_view>

#include "gateway/classifier.h"
#include "tests/unit/passthrough_members.h"

namespace {

using meridian::classifier::Classify;
using meridian::classifier::Scan;
using meridian::policy::DataClass;

const std::string& MixedText() {
  static const std::string text = [] {
    static constexpr std::array<std::string_view, 12> kPieces = {
        "The quarterly report was filed on 2024-01-15 at 09:30:45 and reviewed by the team. ",
        "Please summarise the following customer ticket and suggest a reply in a polite tone. ",
        "Order ORDER20240115123456789 shipped; tracking 9400100000000000000000 updated at "
        "1700000000000. ",
        "客户反馈：产品在2024年3月5日出现故障，请尽快处理并回复。 ",
        "Revenue grew 12.5% to 3,456,789 USD in Q3, compared with 2,987,654 USD a year ago. ",
        "Contact the on-call engineer at oncall@example.com if the build fails again. ",
        "Call 13812345678 or +86 139 1234 5678 for the delivery appointment. ",
        "Version 3.14.159 of the library fixes CVE-2023-12345 and improves HTTP/2 handling. ",
        "The meeting in Room B12 starts at 14:00; bring the Q4 roadmap and the budget sheet. ",
        "Invoice INV-2024-000123 totals 1,250.00 EUR, due within 30 days of 20240201. ",
        "Passport E12345678 and card 6222 0202 0000 1234 were mentioned in the old thread. ",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. ",
    };
    std::string out;
    out.reserve((1u << 20) + 256);
    // Mostly prose: PII pieces appear ~1 in 6 times via the rotation below.
    static constexpr std::array<std::size_t, 18> kOrder = {0, 1, 2, 3, 4, 8, 9,  11, 5,
                                                           0, 1, 3, 4, 7, 8, 11, 6,  10};
    std::size_t k = 0;
    while (out.size() < (1u << 20)) out += kPieces[kOrder[k++ % kOrder.size()]];
    return out;
  }();
  return text;
}

void BM_ScanMixed(benchmark::State& state) {
  const std::string& text = MixedText();
  for (auto _ : state) {
    benchmark::DoNotOptimize(Scan(text));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(text.size()));
}
BENCHMARK(BM_ScanMixed);

// Classify stops scanning once every detector has fired; this variant uses prose without PII
// so the whole text is always scanned.
void BM_ClassifyProseOnly(benchmark::State& state) {
  std::string text;
  while (text.size() < (1u << 20)) {
    text +=
        "The quarterly report was filed on 2024-01-15 at 09:30:45; revenue grew 12.5% to "
        "3,456,789 USD. 客户反馈：产品在2024年3月5日出现故障。 Order ORDER20240115123456789. ";
  }
  const std::array<std::string_view, 1> texts = {text};
  for (auto _ : state) {
    benchmark::DoNotOptimize(Classify(DataClass::kNone, texts));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(text.size()));
}
BENCHMARK(BM_ClassifyProseOnly);

// ASCII-only prose: no byte that folding rewrites, so one pass.
void BM_ScanAsciiProse(benchmark::State& state) {
  std::string text;
  while (text.size() < (1u << 20)) {
    text +=
        "The quarterly report was filed on 2024-01-15 at 09:30:45; revenue grew 12.5% to "
        "3,456,789 USD. Order ORDER20240115123456789 shipped, look at example.com for more. ";
  }
  for (auto _ : state) benchmark::DoNotOptimize(Scan(text));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(text.size()));
}
BENCHMARK(BM_ScanAsciiProse);

// A whole request as Admit scans it: messages, a tool turn, tool definitions, user, metadata.
void BM_ScanRequest(benchmark::State& state) {
  meridian::core::CompletionRequest r;
  r.model = "qwen-plus";
  r.messages.resize(3);
  r.messages[0].role = "system";
  r.messages[0].text = "You are a helpful assistant for a delivery service. Answer briefly.";
  r.messages[1].role = "user";
  r.messages[1].text = MixedText().substr(0, 2048);
  r.messages[2].role = "assistant";
  r.messages[2].content_null = true;
  r.messages[2].tool_calls_json =
      R"([{"id":"call_1","type":"function","function":{"name":"track","arguments":"{\"order\":\"ORDER20240115\"}"}}])";
  r.tools_json =
      R"([{"type":"function","function":{"name":"track","description":"Track an order","parameters":{"type":"object","properties":{"order":{"type":"string"}}}}}])";
  r.user = "user-8c1f2a";
  r.passthrough = meridian::testing::Members(R"("seed":7,"metadata":{"session":"s-1"})");
  std::size_t bytes = 0;
  for (const auto& m : r.messages) bytes += m.text.size() + m.tool_calls_json.size();
  bytes += r.tools_json.size() + meridian::testing::MembersJson(r).size();
  for (auto _ : state) benchmark::DoNotOptimize(meridian::classifier::ScanRequest(r));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_ScanRequest);

}  // namespace

BENCHMARK_MAIN();
