#include "providers/common/sse_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "providers/common/content_type.h"

namespace meridian::providers {

// For readable gtest failure messages; found by argument-dependent lookup.
void PrintTo(const SseEvent& e, std::ostream* os) {
  std::string data;
  for (char c : e.data) {
    if (c == '\r') {
      data += "\\r";
    } else if (c == '\n') {
      data += "\\n";
    } else {
      data.push_back(c);
    }
  }
  *os << "{event=" << e.event << " data=" << data << " id=" << e.id
      << " retry=" << (e.retry ? std::to_string(*e.retry) : "-") << "}";
}

namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

SseEvent Ev(std::string event, std::string data, std::string id = {},
            std::optional<int> retry = std::nullopt) {
  return SseEvent{std::move(event), std::move(data), std::move(id), retry};
}

struct ParseResult {
  std::vector<SseEvent> events;
  bool ok = true;
  bool clean = true;
};

// Feeds `pieces` in order, then finishes the stream.
ParseResult ParsePieces(const std::vector<std::string_view>& pieces,
                        std::size_t max = SseParser::kDefaultMaxEventBytes) {
  SseParser parser(max);
  ParseResult r;
  for (auto p : pieces) r.ok = parser.Feed(p, r.events) && r.ok;
  r.clean = parser.Finish();
  return r;
}

ParseResult Parse(std::string_view bytes) {
  return ParsePieces({bytes});
}

std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// --------------------------------------------------------------------------------------------
// Fixtures from wire-protocols.md

// §1.5, byte-level stream with stream_options.include_usage [C].
constexpr std::string_view kOpenAiStream =
    R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}

data: [DONE]

)";

std::vector<SseEvent> OpenAiEvents() {
  return {
      Ev("",
         R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null})"),
      Ev("",
         R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null})"),
      Ev("",
         R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null})"),
      Ev("",
         R"({"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}})"),
      Ev("", "[DONE]"),
  };
}

// §2.4, DashScope native stream [V] (the "..." between frames 2 and 15 left out): no space
// after the colons, id lines, event:result, the :HTTP_STATUS/200 comment, no [DONE].
constexpr std::string_view kDashScopeStream =
    R"(id:1
event:result
:HTTP_STATUS/200
data:{"output":{"choices":[{"message":{"content":"我是","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":27,"output_tokens":1,"input_tokens":26,"prompt_tokens_details":{"cached_tokens":0}},"request_id":"d30a9914-ac97-9102-b746-ce0cb35e3fa2"}

id:2
event:result
:HTTP_STATUS/200
data:{"output":{"choices":[{"message":{"content":"通义千","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":30,"output_tokens":4,"input_tokens":26,"prompt_tokens_details":{"cached_tokens":0}},"request_id":"d30a9914-ac97-9102-b746-ce0cb35e3fa2"}

id:15
event:result
:HTTP_STATUS/200
data:{"output":{"choices":[{"message":{"content":"","role":"assistant"},"finish_reason":"stop"}]},"usage":{"total_tokens":92,"output_tokens":66,"input_tokens":26,"prompt_tokens_details":{"cached_tokens":0}},"request_id":"d30a9914-ac97-9102-b746-ce0cb35e3fa2"}

)";

std::vector<SseEvent> DashScopeEvents() {
  return {
      Ev("result",
         R"({"output":{"choices":[{"message":{"content":"我是","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":27,"output_tokens":1,"input_tokens":26,"prompt_tokens_details":{"cached_tokens":0}},"request_id":"d30a9914-ac97-9102-b746-ce0cb35e3fa2"})",
         "1"),
      Ev("result",
         R"({"output":{"choices":[{"message":{"content":"通义千","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":30,"output_tokens":4,"input_tokens":26,"prompt_tokens_details":{"cached_tokens":0}},"request_id":"d30a9914-ac97-9102-b746-ce0cb35e3fa2"})",
         "2"),
      Ev("result",
         R"({"output":{"choices":[{"message":{"content":"","role":"assistant"},"finish_reason":"stop"}]},"usage":{"total_tokens":92,"output_tokens":66,"input_tokens":26,"prompt_tokens_details":{"cached_tokens":0}},"request_id":"d30a9914-ac97-9102-b746-ce0cb35e3fa2"})",
         "15"),
  };
}

// §2.5, DashScope error inside a 200 stream [V, request_id abridged as in the reference].
constexpr std::string_view kDashScopeErrorStream =
    R"(id:1
event:error
:HTTP_STATUS/400
data:{"code":"InvalidParameter","message":"Required parameter(AppId) missing or invalid, please check the request parameters.","request_id":"d18bb1bc-…"}

)";

std::vector<SseEvent> DashScopeErrorEvents() {
  return {Ev(
      "error",
      R"({"code":"InvalidParameter","message":"Required parameter(AppId) missing or invalid, please check the request parameters.","request_id":"d18bb1bc-…"})",
      "1")};
}

// §3.2, Anthropic named events [V].
constexpr std::string_view kAnthropicStream =
    R"(event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-3-5-sonnet-20241022", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

)";

std::vector<SseEvent> AnthropicEvents() {
  return {
      Ev("message_start",
         R"({"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-3-5-sonnet-20241022", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}})"),
      Ev("content_block_start",
         R"({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})"),
      Ev("ping", R"({"type": "ping"})"),
      Ev("content_block_delta",
         R"({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}})"),
      Ev("content_block_delta",
         R"({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}})"),
      Ev("content_block_stop", R"({"type": "content_block_stop", "index": 0})"),
      Ev("message_delta",
         R"({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}})"),
      Ev("message_stop", R"({"type": "message_stop"})"),
  };
}

// A compact stream that mixes every line ending, comments, a BOM and multi-line data.
constexpr std::string_view kMixedStream =
    "\xEF\xBB\xBF: hi\r\nid: 7\rdata:a\r\ndata: b\n\r: c\revent:e\ndata:  x\r\n\r\n";

std::vector<SseEvent> MixedEvents() {
  return {Ev("", "a\nb", "7"), Ev("e", " x", "7")};
}

struct Fixture {
  std::string name;
  std::string bytes;
  std::vector<SseEvent> events;
};

std::vector<Fixture> AllFixtures() {
  std::vector<Fixture> base = {
      {"openai", std::string(kOpenAiStream), OpenAiEvents()},
      {"dashscope", std::string(kDashScopeStream), DashScopeEvents()},
      {"dashscope_error", std::string(kDashScopeErrorStream), DashScopeErrorEvents()},
      {"anthropic", std::string(kAnthropicStream), AnthropicEvents()},
  };
  std::vector<Fixture> all;
  for (const auto& f : base) {
    all.push_back(f);
    all.push_back({f.name + "_crlf", ReplaceAll(f.bytes, "\n", "\r\n"), f.events});
    all.push_back({f.name + "_cr", ReplaceAll(f.bytes, "\n", "\r"), f.events});
    all.push_back({f.name + "_bom", "\xEF\xBB\xBF" + f.bytes, f.events});
  }
  all.push_back({"mixed", std::string(kMixedStream), MixedEvents()});
  return all;
}

// --------------------------------------------------------------------------------------------

TEST(SseParser, FixturesInOneFeed) {
  for (const auto& f : AllFixtures()) {
    SCOPED_TRACE(f.name);
    const ParseResult r = Parse(f.bytes);
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.clean);
    EXPECT_EQ(r.events, f.events);
  }
}

TEST(SseParser, FixturesAtEverySplitPoint) {
  for (const auto& f : AllFixtures()) {
    SCOPED_TRACE(f.name);
    const std::string_view all = f.bytes;
    for (std::size_t i = 0; i <= all.size(); ++i) {
      const ParseResult r = ParsePieces({all.substr(0, i), all.substr(i)});
      ASSERT_TRUE(r.ok) << "split at " << i;
      ASSERT_TRUE(r.clean) << "split at " << i;
      ASSERT_EQ(r.events, f.events) << "split at " << i;
    }
  }
}

TEST(SseParser, FixturesByteByByte) {
  for (const auto& f : AllFixtures()) {
    SCOPED_TRACE(f.name);
    std::vector<std::string_view> pieces;
    const std::string_view all = f.bytes;
    for (std::size_t i = 0; i < all.size(); ++i) pieces.push_back(all.substr(i, 1));
    const ParseResult r = ParsePieces(pieces);
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.clean);
    EXPECT_EQ(r.events, f.events);
  }
}

TEST(SseParser, MixedFixtureAtEveryPairOfSplitPoints) {
  const std::string_view all = kMixedStream;
  for (std::size_t i = 0; i <= all.size(); ++i) {
    for (std::size_t j = i; j <= all.size(); ++j) {
      const ParseResult r = ParsePieces({all.substr(0, i), all.substr(i, j - i), all.substr(j)});
      ASSERT_EQ(r.events, MixedEvents()) << "splits at " << i << ", " << j;
      ASSERT_TRUE(r.clean);
    }
  }
}

TEST(SseParser, CrAtEndOfFeedAndLfAtStartOfNextIsOneLineEnd) {
  // Were the '\n' a second line end, it would be a blank line and dispatch "a" alone.
  EXPECT_THAT(ParsePieces({"data: a\r", "\ndata: b\n\n"}).events, ElementsAre(Ev("", "a\nb")));
  EXPECT_THAT(ParsePieces({"data: a\r", "", "\ndata: b\r", "\n\r", "\n"}).events,
              ElementsAre(Ev("", "a\nb")));
  // A '\r' followed by a later '\r' is two line ends.
  EXPECT_THAT(ParsePieces({"data: a\r", "\r"}).events, ElementsAre(Ev("", "a")));
}

TEST(SseParser, CrTerminatedEventDispatchesWithoutWaitingForMoreBytes) {
  SseParser parser;
  std::vector<SseEvent> out;
  ASSERT_TRUE(parser.Feed("data: a\r\r", out));
  EXPECT_THAT(out, ElementsAre(Ev("", "a")));
  out.clear();
  ASSERT_TRUE(parser.Feed("\ndata: b\n\n", out));  // that '\n' ends nothing: no extra blank
  EXPECT_THAT(out, ElementsAre(Ev("", "b")));
  EXPECT_TRUE(parser.Finish());
}

TEST(SseParser, FieldParsingRules) {
  // One leading space is stripped, not more; no space is fine.
  EXPECT_THAT(Parse("data:x\n\n").events, ElementsAre(Ev("", "x")));
  EXPECT_THAT(Parse("data: x\n\n").events, ElementsAre(Ev("", "x")));
  EXPECT_THAT(Parse("data:  x \n\n").events, ElementsAre(Ev("", " x ")));
  // Only the first colon separates; the rest belongs to the value.
  EXPECT_THAT(Parse("data: a:b: c\n\n").events, ElementsAre(Ev("", "a:b: c")));
  // Multi-line data, including empty lines of data.
  EXPECT_THAT(Parse("data: a\ndata:\ndata: b\n\n").events, ElementsAre(Ev("", "a\n\nb")));
  // A line without a colon is a field with an empty value.
  EXPECT_THAT(Parse("data\ndata\n\n").events, ElementsAre(Ev("", "\n")));
  // Unknown fields and field names that differ in case are ignored.
  EXPECT_THAT(Parse("foo: bar\nData: no\ndata: yes\n\n").events, ElementsAre(Ev("", "yes")));
  // The last event field wins.
  EXPECT_THAT(Parse("event: a\nevent: b\ndata: x\n\n").events, ElementsAre(Ev("b", "x")));
}

TEST(SseParser, CommentsAreIgnored) {
  EXPECT_THAT(Parse(": keep-alive\n\n:\n\n").events, IsEmpty());
  EXPECT_THAT(Parse(":HTTP_STATUS/200\ndata: x\n: between\ndata: y\n\n").events,
              ElementsAre(Ev("", "x\ny")));
  // Comments alone do not make a stream "unterminated".
  EXPECT_TRUE(Parse("data: x\n\n: trailing ping\n").clean);
}

TEST(SseParser, EventWithoutDataIsNotDispatched) {
  EXPECT_THAT(Parse("event: ping\n\n").events, IsEmpty());
  EXPECT_THAT(Parse("retry: 10\n\n").events, IsEmpty());
  // Its event name does not leak into the next event.
  EXPECT_THAT(Parse("event: ping\n\ndata: x\n\n").events, ElementsAre(Ev("", "x")));
  // But a bare data line is data (WHATWG): the event is dispatched with empty data.
  EXPECT_THAT(Parse("data:\n\n").events, ElementsAre(Ev("", "")));
  // Consecutive blank lines dispatch nothing extra.
  EXPECT_THAT(Parse("\n\n\ndata: x\n\n\n\n").events, ElementsAre(Ev("", "x")));
}

TEST(SseParser, IdRules) {
  // The last event ID persists until changed; an empty id resets it.
  EXPECT_THAT(Parse("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n").events,
              ElementsAre(Ev("", "a", "7"), Ev("", "b", "7"), Ev("", "c", "")));
  // An id with NUL is ignored.
  using namespace std::string_view_literals;
  EXPECT_THAT(Parse("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"sv).events,
              ElementsAre(Ev("", "a", "1"), Ev("", "b", "1")));
  // An id without data still updates the last event ID.
  EXPECT_THAT(Parse("id: 9\n\ndata: a\n\n").events, ElementsAre(Ev("", "a", "9")));
}

TEST(SseParser, RetryRules) {
  EXPECT_THAT(Parse("retry: 1500\ndata: a\n\ndata: b\n\n").events,
              ElementsAre(Ev("", "a", "", 1500), Ev("", "b")));
  EXPECT_THAT(Parse("retry: 15a\ndata: a\n\n").events, ElementsAre(Ev("", "a")));
  EXPECT_THAT(Parse("retry: -1\ndata: a\n\n").events, ElementsAre(Ev("", "a")));
  EXPECT_THAT(Parse("retry:\ndata: a\n\n").events, ElementsAre(Ev("", "a")));
  EXPECT_THAT(Parse("retry: 99999999999\ndata: a\n\n").events, ElementsAre(Ev("", "a")));
  EXPECT_THAT(Parse("retry: 0\ndata: a\n\n").events, ElementsAre(Ev("", "a", "", 0)));
}

TEST(SseParser, ByteOrderMarkOnlyAtStreamStart) {
  EXPECT_THAT(Parse("\xEF\xBB\xBF"
                    "data: x\n\n")
                  .events,
              ElementsAre(Ev("", "x")));
  // A second BOM is part of the field name, which is then unknown.
  EXPECT_THAT(Parse("\xEF\xBB\xBF\xEF\xBB\xBF"
                    "data: x\n\n")
                  .events,
              IsEmpty());
  // Not at the start: part of the value.
  EXPECT_THAT(Parse("data: \xEF\xBB\xBFx\n\n").events, ElementsAre(Ev("", "\xEF\xBB\xBFx")));
  // A partial BOM followed by something else is content, also when split.
  EXPECT_THAT(ParsePieces({"\xEF", "data: x\n\n"}).events, IsEmpty());
  EXPECT_THAT(ParsePieces({"\xEF\xBB", "\n", "data: x\n\n"}).events, ElementsAre(Ev("", "x")));
}

TEST(SseParser, UnterminatedEventAtEndOfStreamIsDropped) {
  ParseResult r = Parse("data: a\n\ndata: b\n");
  EXPECT_THAT(r.events, ElementsAre(Ev("", "a")));
  EXPECT_FALSE(r.clean);
  r = Parse("data: a\n\ndata: b");
  EXPECT_THAT(r.events, ElementsAre(Ev("", "a")));
  EXPECT_FALSE(r.clean);
  r = Parse("data: a\n\nevent: x\n");
  EXPECT_FALSE(r.clean);
  r = Parse("\xEF\xBB");
  EXPECT_FALSE(r.clean);
  r = Parse("");
  EXPECT_TRUE(r.clean);
  EXPECT_THAT(r.events, IsEmpty());
}

TEST(SseParser, FinishResetsForANewStream) {
  SseParser parser;
  std::vector<SseEvent> out;
  parser.Feed("id: 5\ndata: partial", out);
  EXPECT_FALSE(parser.Finish());
  parser.Feed(
      "\xEF\xBB\xBF"
      "data: x\n\n",
      out);
  EXPECT_THAT(out, ElementsAre(Ev("", "x")));  // the old id is forgotten, BOM skipped again
  EXPECT_TRUE(parser.Finish());
}

TEST(SseParser, OversizedEventIsAnError) {
  const std::string big(100, 'x');
  // Whole line in one Feed.
  {
    SseParser parser(64);
    std::vector<SseEvent> out;
    EXPECT_FALSE(parser.Feed("data: ok\n\ndata: " + big + "\n\ndata: later\n\n", out));
    EXPECT_FALSE(parser.ok());
    EXPECT_EQ(parser.status().code, core::StatusCode::kBadUpstream);
    EXPECT_EQ(parser.status().reason, "sse_event_too_large");
    EXPECT_THAT(out, ElementsAre(Ev("", "ok")));  // completed before the error
    EXPECT_FALSE(parser.Feed("data: more\n\n", out));
    EXPECT_EQ(out.size(), 1u);
    EXPECT_FALSE(parser.Finish());
    EXPECT_TRUE(parser.ok());
  }
  // A partial line that never ends.
  {
    SseParser parser(64);
    std::vector<SseEvent> out;
    bool ok = true;
    for (int i = 0; i < 10 && ok; ++i) ok = parser.Feed(std::string_view(big).substr(0, 10), out);
    EXPECT_FALSE(ok);
  }
  // Many small data lines adding up; also a huge comment does not count once it ends.
  {
    SseParser parser(64);
    std::vector<SseEvent> out;
    EXPECT_TRUE(parser.Feed(": " + big + "\n", out));
    std::string lines;
    for (int i = 0; i < 10; ++i) lines += "data: 123456789\n";
    EXPECT_FALSE(parser.Feed(lines, out));
  }
  // Each event is bounded, not the stream.
  {
    SseParser parser(64);
    std::vector<SseEvent> out;
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(parser.Feed("data: 0123456789012345678\n\n", out));
    EXPECT_EQ(out.size(), 100u);
  }
}

TEST(SseParser, DefaultLimitIsOneMebibyte) {
  const std::string chunk(64 * 1024, 'y');
  {
    SseParser parser;
    std::vector<SseEvent> out;
    ASSERT_TRUE(parser.Feed("data: ", out));
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(parser.Feed(chunk, out));  // 512 KiB
    ASSERT_TRUE(parser.Feed("\n\n", out));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].data.size(), 8 * chunk.size());
  }
  {
    SseParser parser;
    std::vector<SseEvent> out;
    bool ok = parser.Feed("data: ", out);
    for (int i = 0; i < 32 && ok; ++i) ok = parser.Feed(chunk, out);  // 2 MiB
    EXPECT_FALSE(ok);
    EXPECT_THAT(out, IsEmpty());
  }
}

TEST(SseParser, ManyCrOnlyEventsInOneFeed) {
  std::string stream;
  for (int i = 0; i < 20000; ++i) stream += "data: " + std::to_string(i) + "\r\r";
  const ParseResult r = Parse(stream);
  ASSERT_EQ(r.events.size(), 20000u);
  EXPECT_EQ(r.events.back().data, "19999");
}

// A 200 is judged by its Content-Type before its body is parsed: an HTML login page, or JSON
// for a stream, is the provider's failure (retryable), never parsed as an answer.
TEST(CheckContentType, AcceptsWhatWasAskedForAndRefusesTheRest) {
  for (const char* ok : {"text/event-stream", "text/event-stream; charset=utf-8",
                         "text/event-stream;charset=UTF-8", "Text/Event-Stream", ""}) {
    EXPECT_TRUE(CheckContentType(ok, true).ok()) << ok;
  }
  for (const char* ok : {"application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                         "application/problem+json", ""}) {
    EXPECT_TRUE(CheckContentType(ok, false).ok()) << ok;
  }
  const core::Status html = CheckContentType("text/html; charset=utf-8", true);
  EXPECT_EQ(html.code, core::StatusCode::kBadUpstream);
  EXPECT_EQ(html.reason, "upstream_bad_content_type");
  EXPECT_TRUE(html.retryable);
  EXPECT_THAT(html.message, ::testing::HasSubstr("'text/html; charset=utf-8'"));
  EXPECT_FALSE(CheckContentType("application/json", true).ok());
  EXPECT_FALSE(CheckContentType("text/event-stream", false).ok());
  EXPECT_FALSE(CheckContentType("text/plain", false).ok());
}

}  // namespace
}  // namespace meridian::providers
