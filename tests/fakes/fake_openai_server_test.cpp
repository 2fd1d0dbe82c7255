// Self-test of the fake upstreams: a plain synchronous Beast client checks each profile and
// each scenario switch at the byte level, so gateway integration tests can trust what the
// fakes send (and what their counters claim).
#include "tests/fakes/fake_openai_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/fakes/test_certs.h"

namespace meridian::fakes {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Response {
  unsigned status = 0;
  unsigned version = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  beast::error_code ec;  // read error: a cut stream leaves one
  int chunk_headers = 0;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  json::value Json() const { return json::parse(body); }
};

/// One synchronous HTTP/1.1 connection (optionally TLS) to the fake.
class Client {
 public:
  explicit Client(std::uint16_t port, net::ssl::context* tls = nullptr) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    if (tls != nullptr) {
      tls_.emplace(std::move(socket_), *tls);
      SSL_set1_host(tls_->native_handle(), "localhost");
    }
  }

  /// TLS handshake; returns the error (empty on success).
  beast::error_code Handshake() {
    beast::error_code ec;
    tls_->handshake(net::ssl::stream_base::client, ec);
    return ec;
  }

  void Write(http::verb method, const std::string& target, const std::string& body,
             const Headers& headers) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.insert(k, v);
    req.body() = body;
    req.prepare_payload();
    beast::error_code ec;
    if (tls_) {
      http::write(*tls_, req, ec);
    } else {
      http::write(socket_, req, ec);
    }
    write_ec_ = ec;
  }

  Response Send(http::verb method, const std::string& target, const std::string& body,
                const Headers& headers) {
    Write(method, target, body, headers);
    Response r;
    if (write_ec_) {
      r.ec = write_ec_;
      return r;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    auto count = [&r](std::uint64_t, beast::string_view, beast::error_code&) { ++r.chunk_headers; };
    parser.on_chunk_header(count);
    if (tls_) {
      http::read(*tls_, buffer_, parser, r.ec);
    } else {
      http::read(socket_, buffer_, parser, r.ec);
    }
    Fill(parser, r);
    return r;
  }

  /// Reads the response header, then body bytes until `until` appears (or the stream ends).
  Response ReadUntil(const std::string& until) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    Response r;
    http::read_header(socket_, buffer_, parser, r.ec);
    while (!r.ec && !parser.is_done() && parser.get().body().find(until) == std::string::npos) {
      http::read_some(socket_, buffer_, parser, r.ec);
    }
    Fill(parser, r);
    return r;
  }

  void Close() {
    beast::error_code ec;
    lowest().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close(ec);
  }

 private:
  tcp::socket& lowest() { return tls_ ? tls_->next_layer() : socket_; }

  static void Fill(http::response_parser<http::string_body>& parser, Response& r) {
    const auto& msg = parser.get();
    // An unparsed header still reads as "200 OK" in Beast; report "no response" instead.
    r.status = parser.is_header_done() ? msg.result_int() : 0;
    r.version = msg.version();
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      r.headers[name] = std::string(f.value());
    }
    r.body = msg.body();
  }

  net::io_context ioc_;
  tcp::socket socket_;
  std::optional<net::ssl::stream<tcp::socket>> tls_;
  beast::flat_buffer buffer_;
  beast::error_code write_ec_;
};

std::string ChatBody(bool stream, bool include_usage = false,
                     const std::string& model = "gpt-4o-mini", json::object extra = {}) {
  json::object o{{"model", model},
                 {"messages", json::array{json::object{{"role", "user"}, {"content", "Hello!"}}}}};
  if (stream) o["stream"] = true;
  if (include_usage) o["stream_options"] = json::object{{"include_usage", true}};
  for (auto& kv : extra) o[kv.key()] = kv.value();
  return json::serialize(o);
}

Headers Bearer(const std::string& scenario = {}, const std::string& key = "test-key") {
  Headers h{{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
  if (!scenario.empty()) h.emplace_back("x-fake-scenario", scenario);
  return h;
}

Response Chat(const FakeOpenAiServer& s, bool stream, const std::string& scenario = {},
              bool include_usage = false, json::object extra = {}) {
  Client c(s.port());
  return c.Send(http::verb::post, "/v1/chat/completions",
                ChatBody(stream, include_usage, "gpt-4o-mini", std::move(extra)),
                Bearer(scenario, s.api_key()));
}

/// The `data:` payloads of an SSE body (comments dropped, one leading space stripped).
std::vector<std::string> DataEvents(std::string body) {
  std::string norm;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\r') {
      norm += '\n';
      if (i + 1 < body.size() && body[i + 1] == '\n') ++i;
    } else {
      norm += body[i];
    }
  }
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < norm.size()) {
    std::size_t end = norm.find("\n\n", pos);
    if (end == std::string::npos) end = norm.size();
    std::string data;
    std::size_t line_start = pos;
    while (line_start < end) {
      std::size_t nl = norm.find('\n', line_start);
      if (nl == std::string::npos || nl > end) nl = end;
      std::string line = norm.substr(line_start, nl - line_start);
      if (line.rfind("data:", 0) == 0) {
        std::string v = line.substr(5);
        if (!v.empty() && v[0] == ' ') v.erase(0, 1);
        data += v;
      }
      line_start = nl + 1;
    }
    if (!data.empty()) out.push_back(data);
    pos = end + 2;
  }
  return out;
}

/// Concatenated delta.<field> over all parseable chunks.
std::string Collect(const std::vector<std::string>& events, const std::string& field = "content") {
  std::string out;
  for (const auto& e : events) {
    boost::system::error_code ec;
    json::value v = json::parse(e, ec);
    if (ec || !v.is_object()) continue;
    const json::value* choices = v.as_object().if_contains("choices");
    if (choices == nullptr || !choices->is_array() || choices->as_array().empty()) continue;
    const json::value& delta = choices->as_array()[0].as_object().at("delta");
    const json::value* f = delta.as_object().if_contains(field);
    if (f != nullptr && f->is_string()) out += f->as_string();
  }
  return out;
}

/// Replaces the per-request parts (`"id":"chatcmpl-fakeN"`, `"created":N`) with fixed values.
/// Hand-rolled: GCC 12's <regex> trips -Wmaybe-uninitialized under the sanitizer builds.
std::string NormalizeIds(const std::string& s) {
  std::string out;
  std::size_t i = 0;
  static const std::string kId = R"("id":"chatcmpl-fake)";
  static const std::string kCreated = R"("created":)";
  auto skip_digits = [&s](std::size_t from) {
    while (from < s.size() && std::isdigit(static_cast<unsigned char>(s[from])) != 0) ++from;
    return from;
  };
  while (i < s.size()) {
    if (s.compare(i, kId.size(), kId) == 0) {
      out += R"("id":"ID")";
      i = skip_digits(i + kId.size()) + 1;  // and the closing quote
    } else if (s.compare(i, kCreated.size(), kCreated) == 0) {
      out += R"("created":0)";
      i = skip_digits(i + kCreated.size());
    } else {
      out += s[i++];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// OpenAI profile basics

TEST(FakeOpenAi, NonStreamingJsonHasTheDocumentedShape) {
  FakeOpenAiServer s;
  Response r = Chat(s, false);
  ASSERT_EQ(r.status, 200U) << r.body;
  EXPECT_THAT(r.header("content-type"), StartsWith("application/json"));
  EXPECT_EQ(r.header("openai-version"), "2020-10-01");
  EXPECT_THAT(r.header("x-request-id"), StartsWith("req_"));
  const json::object o = r.Json().as_object();
  EXPECT_EQ(o.at("object"), "chat.completion");
  EXPECT_EQ(o.at("model"), "gpt-4o-mini");
  const json::object& choice = o.at("choices").as_array()[0].as_object();
  EXPECT_EQ(choice.at("finish_reason"), "stop");
  EXPECT_EQ(choice.at("message").at("role"), "assistant");
  EXPECT_EQ(choice.at("message").at("content"), "tok0 tok1 tok2 tok3 tok4");
  EXPECT_TRUE(choice.at("message").at("refusal").is_null());
  EXPECT_EQ(o.at("usage").at("prompt_tokens"), 9);
  EXPECT_EQ(o.at("usage").at("completion_tokens"), 5);
  EXPECT_EQ(o.at("usage").at("total_tokens"), 14);
  EXPECT_EQ(o.at("usage").at("completion_tokens_details").at("reasoning_tokens"), 0);
  EXPECT_EQ(o.at("service_tier"), "default");
  EXPECT_EQ(s.requests_started(), 1);
  // Counters move once the server's write completes, which may be after the client has read
  // everything: wait, don't assert immediately.
  EXPECT_TRUE(s.WaitFor([&] { return s.responses_completed() == 1; }));
}

TEST(FakeOpenAi, StreamBytesWithIncludeUsageMatchTheReference) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "tokens=2", /*include_usage=*/true);
  ASSERT_EQ(r.status, 200U);
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.header("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(r.header("transfer-encoding"), "chunked");
  // Every chunk carries the same id and created.
  std::set<std::string> ids;
  std::set<std::int64_t> created;
  for (const auto& e : DataEvents(r.body)) {
    if (e == "[DONE]") continue;
    json::value v = json::parse(e);
    ids.insert(std::string(v.at("id").as_string()));
    created.insert(v.at("created").as_int64());
  }
  EXPECT_EQ(ids.size(), 1U);
  EXPECT_EQ(created.size(), 1U);
  const std::string prefix =
      R"(data: {"id":"ID","object":"chat.completion.chunk","created":0,"model":"gpt-4o-mini","choices":[)";
  const std::string expected =
      prefix +
      R"({"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null})"
      "\n\n" +
      prefix +
      R"({"index":0,"delta":{"content":"tok0"},"logprobs":null,"finish_reason":null}],"usage":null})"
      "\n\n" +
      prefix +
      R"({"index":0,"delta":{"content":" tok1"},"logprobs":null,"finish_reason":null}],"usage":null})"
      "\n\n" +
      prefix +
      R"({"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null})"
      "\n\n" +
      R"(data: {"id":"ID","object":"chat.completion.chunk","created":0,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}})"
      "\n\n"
      "data: [DONE]\n\n";
  EXPECT_EQ(NormalizeIds(r.body), expected);
  EXPECT_EQ(s.streams_started(), 1);
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_completed() == 1; }));
}

TEST(FakeOpenAi, StreamWithoutIncludeUsageHasNoUsageAnywhere) {
  FakeOpenAiServer s;
  Response r = Chat(s, true);
  const auto events = DataEvents(r.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_THAT(r.body, Not(HasSubstr("usage")));
  EXPECT_EQ(Collect(events), FakeOpenAiServer::TokenText(5));
}

TEST(FakeOpenAi, AuthIsBearerWithTheConfiguredKey) {
  FakeOpenAiServer s({.api_key = "sk-special"});
  Client c1(s.port());
  Response none = c1.Send(http::verb::post, "/v1/chat/completions", ChatBody(false),
                          {{"Content-Type", "application/json"}});
  EXPECT_EQ(none.status, 401U);
  EXPECT_TRUE(none.Json().at("error").at("code").is_null());
  EXPECT_EQ(none.Json().at("error").at("type"), "invalid_request_error");
  EXPECT_TRUE(none.Json().at("error").at("param").is_null());

  Client c2(s.port());
  Response wrong =
      c2.Send(http::verb::post, "/v1/chat/completions", ChatBody(false), Bearer("", "sk-wrong"));
  EXPECT_EQ(wrong.status, 401U);
  EXPECT_EQ(wrong.Json().at("error").at("code"), "invalid_api_key");

  Client c3(s.port());
  EXPECT_EQ(
      c3.Send(http::verb::post, "/v1/chat/completions", ChatBody(false), Bearer("", "sk-special"))
          .status,
      200U);
  EXPECT_EQ(s.requests_started(), 3);
}

TEST(FakeOpenAi, ModelsListAndUnknownPaths) {
  FakeOpenAiServer s({.models = {"m1", "m2"}});
  Client c(s.port());
  Response models = c.Send(http::verb::get, "/v1/models", "", Bearer());
  ASSERT_EQ(models.status, 200U);
  EXPECT_EQ(models.Json().at("object"), "list");
  EXPECT_EQ(models.Json().at("data").as_array().size(), 2U);
  EXPECT_EQ(models.Json().at("data").as_array()[1].at("id"), "m2");
  Response missing = c.Send(http::verb::get, "/v1/nope", "", Bearer());
  EXPECT_EQ(missing.status, 404U);
  EXPECT_EQ(missing.Json().at("error").at("message"), "Invalid URL (GET /v1/nope)");
  // Neither counts as a chat request, and both were served on one keep-alive connection.
  EXPECT_EQ(s.requests_started(), 0);
  EXPECT_EQ(s.request_count(), 2);
  EXPECT_EQ(s.connections_accepted(), 1);
}

TEST(FakeOpenAi, KeepAliveServesSeveralRequestsOnOneConnection) {
  FakeOpenAiServer s;
  Client c(s.port());
  Response a = c.Send(http::verb::post, "/v1/chat/completions", ChatBody(true), Bearer());
  Response b = c.Send(http::verb::post, "/v1/chat/completions", ChatBody(false), Bearer());
  EXPECT_EQ(a.status, 200U);
  EXPECT_EQ(b.status, 200U);
  EXPECT_EQ(Collect(DataEvents(a.body)), FakeOpenAiServer::TokenText(5));
  EXPECT_EQ(s.connections_accepted(), 1);
  EXPECT_TRUE(s.WaitFor([&] { return s.responses_completed() == 2; }));
  EXPECT_EQ(s.streams_completed(), 1);
}

TEST(FakeOpenAi, RecordsRequests) {
  FakeOpenAiServer s;
  Chat(s, false, "tokens=1");
  auto last = s.last_request();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->method, "POST");
  EXPECT_EQ(last->path, "/v1/chat/completions");
  EXPECT_EQ(last->header("AUTHORIZATION"), "Bearer test-key");
  EXPECT_EQ(last->headers.at("x-fake-scenario"), "tokens=1");
  EXPECT_EQ(last->scenario, "tokens=1");
  EXPECT_EQ(s.last_request_json().at("model"), "gpt-4o-mini");
  EXPECT_EQ(s.last_request_body(), ChatBody(false));
  s.ResetObservations();
  EXPECT_EQ(s.request_count(), 0);
  EXPECT_EQ(s.requests_started(), 0);
}

// ---------------------------------------------------------------------------------------------
// Scenario plumbing

TEST(FakeScenario, LayersAndPrecedence) {
  FakeOpenAiServer s;
  s.SetScenario("tokens=2");
  s.PushScenario("tokens=3");
  EXPECT_EQ(Collect(DataEvents(Chat(s, true).body)), FakeOpenAiServer::TokenText(3));
  EXPECT_EQ(Collect(DataEvents(Chat(s, true).body)), FakeOpenAiServer::TokenText(2));
  EXPECT_EQ(Collect(DataEvents(Chat(s, true, "tokens=4").body)), FakeOpenAiServer::TokenText(4));
  // A marker in the prompt survives a gateway; the header still wins over it.
  json::object marker{{"messages", json::array{json::object{{"role", "user"},
                                                            {"content", "hi <<fake:tokens=1>>"}}}}};
  EXPECT_EQ(Collect(DataEvents(Chat(s, true, "", false, marker).body)),
            FakeOpenAiServer::TokenText(1));
  EXPECT_EQ(Collect(DataEvents(Chat(s, true, "tokens=6", false, marker).body)),
            FakeOpenAiServer::TokenText(6));
  // `reset` drops every earlier layer.
  EXPECT_EQ(Collect(DataEvents(Chat(s, true, "reset").body)), FakeOpenAiServer::TokenText(5));
  s.ClearScenarios();
  EXPECT_EQ(Collect(DataEvents(Chat(s, true).body)), FakeOpenAiServer::TokenText(5));
}

TEST(FakeScenario, UnknownSwitchIsLoud) {
  FakeOpenAiServer s;
  EXPECT_THROW(s.SetScenario("tokens=x"), std::invalid_argument);
  EXPECT_THROW(s.PushScenario("no_such_switch"), std::invalid_argument);
  EXPECT_EQ(FakeOpenAiServer::ValidateScenario("tokens=3, delay_ms=1,crlf"), "");
  Response r = Chat(s, true, "bogus=1");
  EXPECT_EQ(r.status, 418U);
  EXPECT_THAT(r.body, HasSubstr("bogus=1"));
}

TEST(FakeScenario, TextOptionAndMaxTokensCap) {
  FakeOpenAiServer s({.text = "Hello there world"});
  EXPECT_EQ(Collect(DataEvents(Chat(s, true).body)), "Hello there world");
  Response capped = Chat(s, false, "", false, json::object{{"max_tokens", 2}});
  EXPECT_EQ(capped.Json().at("choices").as_array()[0].at("message").at("content"), "Hello there");
  EXPECT_EQ(capped.Json().at("choices").as_array()[0].at("finish_reason"), "length");
}

// ---------------------------------------------------------------------------------------------
// SSE framing switches

TEST(FakeScenario, NoSpace) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "no_space");
  EXPECT_THAT(r.body, StartsWith("data:{"));
  EXPECT_THAT(r.body, Not(HasSubstr("data: ")));
  EXPECT_THAT(r.body, HasSubstr("data:[DONE]\n\n"));
  EXPECT_EQ(Collect(DataEvents(r.body)), FakeOpenAiServer::TokenText(5));
}

TEST(FakeScenario, Crlf) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "crlf");
  EXPECT_THAT(r.body, HasSubstr("}\r\n\r\ndata: "));
  EXPECT_THAT(r.body, HasSubstr("data: [DONE]\r\n\r\n"));
  for (std::size_t i = 0; i < r.body.size(); ++i) {
    if (r.body[i] == '\n') {
      ASSERT_EQ(r.body[i - 1], '\r') << "bare LF at " << i;
    }
  }
  EXPECT_EQ(Collect(DataEvents(r.body)), FakeOpenAiServer::TokenText(5));
}

TEST(FakeScenario, CommentLineBeforeEveryEvent) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "comment,tokens=2");
  EXPECT_THAT(r.body, StartsWith(": fake-comment\ndata: {"));
  EXPECT_THAT(r.body, HasSubstr("\n\n: fake-comment\ndata: [DONE]\n\n"));
  EXPECT_EQ(Collect(DataEvents(r.body)), FakeOpenAiServer::TokenText(2));
}

TEST(FakeScenario, SplitWritesEachEventInSeveralChunks) {
  FakeOpenAiServer s;
  Response whole = Chat(s, true, "tokens=3");
  Response halves = Chat(s, true, "tokens=3,split");
  Response bytes = Chat(s, true, "tokens=3,split=1");
  const std::size_t events = DataEvents(whole.body).size();  // role, 3 tokens, finish, [DONE]
  EXPECT_EQ(events, 6U);
  // Chunk headers include the terminating zero-length chunk.
  EXPECT_EQ(whole.chunk_headers, static_cast<int>(events) + 1);
  EXPECT_EQ(halves.chunk_headers, 2 * static_cast<int>(events) + 1);
  EXPECT_GT(bytes.chunk_headers, static_cast<int>(whole.body.size()) - 30);
  EXPECT_EQ(NormalizeIds(halves.body), NormalizeIds(whole.body));
  EXPECT_EQ(NormalizeIds(bytes.body), NormalizeIds(whole.body));
}

TEST(FakeScenario, CloseAfterCutsTheConnectionWithoutDone) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "tokens=5,close_after=2");
  EXPECT_EQ(r.status, 200U);
  EXPECT_TRUE(r.ec);  // the chunked body never terminates
  EXPECT_EQ(Collect(DataEvents(r.body)), "tok0 tok1");
  EXPECT_THAT(r.body, Not(HasSubstr("[DONE]")));
  EXPECT_THAT(r.body, Not(HasSubstr("finish_reason\":\"stop")));
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_cut_by_server() == 1; }));
  EXPECT_EQ(s.streams_completed(), 0);
  EXPECT_EQ(s.streams_cut_by_client(), 0);
}

TEST(FakeScenario, ResetAfterSendsRst) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "tokens=5,reset_after=1");
  EXPECT_TRUE(r.ec);
  EXPECT_THAT(r.body, Not(HasSubstr("[DONE]")));
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_cut_by_server() == 1; }));
}

TEST(FakeScenario, ErrorAfterSendsAnErrorFrameThenCloses) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "tokens=5,error_after=1");
  EXPECT_EQ(r.status, 200U);
  const auto events = DataEvents(r.body);
  ASSERT_EQ(events.size(), 3U);  // role, tok0, error
  EXPECT_EQ(
      events[2],
      R"({"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}})");
  EXPECT_THAT(r.body, Not(HasSubstr("[DONE]")));
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_cut_by_server() == 1; }));
}

TEST(FakeScenario, GarbageIsOneUnparseableEvent) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "tokens=3,garbage=1");
  int bad = 0;
  for (const auto& e : DataEvents(r.body)) {
    boost::system::error_code ec;
    json::parse(e, ec);
    if (ec && e != "[DONE]") ++bad;
  }
  EXPECT_EQ(bad, 1);
  EXPECT_EQ(Collect(DataEvents(r.body)), FakeOpenAiServer::TokenText(3));
  Response whole = Chat(s, false, "garbage");
  boost::system::error_code ec;
  json::parse(whole.body, ec);
  EXPECT_TRUE(ec);
}

TEST(FakeScenario, StatusWithRetryHeaders) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "status=429,retry_after=2,retry_after_ms=1500,should_retry=false");
  EXPECT_EQ(r.status, 429U);
  EXPECT_EQ(r.header("retry-after"), "2");
  EXPECT_EQ(r.header("retry-after-ms"), "1500");
  EXPECT_EQ(r.header("x-should-retry"), "false");
  EXPECT_EQ(r.Json().at("error").at("code"), "rate_limit_exceeded");
  EXPECT_EQ(r.Json().at("error").at("type"), "requests");
  Response quota = Chat(s, false, "quota");
  EXPECT_EQ(quota.status, 429U);
  EXPECT_EQ(quota.Json().at("error").at("code"), "insufficient_quota");
  EXPECT_EQ(quota.header("retry-after"), "");
  Response e500 = Chat(s, false, "status=500");
  EXPECT_EQ(e500.status, 500U);
  EXPECT_EQ(e500.Json().at("error").at("type"), "server_error");
  Response odd = Chat(s, false, "status=529");
  EXPECT_EQ(odd.status, 529U);
  EXPECT_EQ(s.streams_started(), 0);
}

TEST(FakeScenario, ObfuscationUnlessTheClientOptsOut) {
  FakeOpenAiServer s;
  Response on = Chat(s, true, "obfuscation");
  for (const auto& e : DataEvents(on.body)) {
    if (e != "[DONE]") {
      EXPECT_THAT(e, HasSubstr("\"obfuscation\":\""));
    }
  }
  Response off =
      Chat(s, true, "obfuscation", false,
           json::object{{"stream_options", json::object{{"include_obfuscation", false}}}});
  EXPECT_THAT(off.body, Not(HasSubstr("obfuscation")));
}

TEST(FakeScenario, ToolCallsStreamArgumentFragments) {
  FakeOpenAiServer s;
  json::object tools{
      {"tools",
       json::array{json::object{
           {"type", "function"},
           {"function", json::object{{"name", "lookup"}, {"parameters", json::object{}}}}}}}};
  Response r = Chat(s, true, "tool_calls=2", false, tools);
  std::map<std::int64_t, std::string> args;
  std::map<std::int64_t, std::string> names;
  std::string finish;
  int fragments = 0;
  for (const auto& e : DataEvents(r.body)) {
    if (e == "[DONE]") continue;
    const json::value doc = json::parse(e);
    const json::object& choice = doc.at("choices").as_array()[0].as_object();
    if (choice.at("finish_reason").is_string()) finish = choice.at("finish_reason").as_string();
    const json::value* calls = choice.at("delta").as_object().if_contains("tool_calls");
    if (calls == nullptr) continue;
    for (const auto& call : calls->as_array()) {
      const std::int64_t index = call.at("index").as_int64();
      const json::object& fn = call.at("function").as_object();
      if (fn.contains("name")) names[index] = fn.at("name").as_string();
      if (fn.contains("arguments")) {
        args[index] += fn.at("arguments").as_string();
        ++fragments;
      }
    }
  }
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_EQ(args[0], FakeOpenAiServer::ToolArguments(0));
  EXPECT_EQ(args[1], FakeOpenAiServer::ToolArguments(1));
  EXPECT_EQ(names[0], "lookup");
  EXPECT_GT(fragments, 6);
  json::value parsed = json::parse(args[1]);
  EXPECT_EQ(parsed.at("location"), "Paris");

  Response whole = Chat(s, false, "tool_calls", false, tools);
  const json::value doc = whole.Json();
  const json::object& msg = doc.at("choices").as_array()[0].at("message").as_object();
  EXPECT_TRUE(msg.at("content").is_null());
  EXPECT_EQ(
      std::string(msg.at("tool_calls").as_array()[0].at("function").at("arguments").as_string()),
      FakeOpenAiServer::ToolArguments(0));
}

TEST(FakeScenario, ReasoningIsHiddenOnOpenAiButCountedInUsage) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "reasoning=3,tokens=1", true);
  const auto events = DataEvents(r.body);
  EXPECT_THAT(r.body, Not(HasSubstr("think0")));
  json::value usage = json::parse(events[events.size() - 2]).at("usage");
  EXPECT_EQ(usage.at("completion_tokens"), 4);
  EXPECT_EQ(usage.at("completion_tokens_details").at("reasoning_tokens"), 3);
  Response tagged = Chat(s, true, "reasoning=2,think_tags,tokens=1");
  EXPECT_EQ(Collect(DataEvents(tagged.body)), "<think>think0 think1</think>tok0");
  Response named = Chat(s, true, "reasoning=1,reasoning_field=reasoning_content,tokens=1");
  EXPECT_EQ(Collect(DataEvents(named.body), "reasoning_content"), "think0");
}

TEST(FakeScenario, FinishAndUsageChoicesOverrides) {
  FakeOpenAiServer s;
  Response r = Chat(s, true, "finish=content_filter,usage_choices=absent", true);
  EXPECT_THAT(r.body, HasSubstr(R"("finish_reason":"content_filter")"));
  const auto events = DataEvents(r.body);
  EXPECT_FALSE(json::parse(events[events.size() - 2]).as_object().contains("choices"));
}

// ---------------------------------------------------------------------------------------------
// Timing, cancellation and concurrency

TEST(FakeTiming, DelayAndTtftPaceTheStream) {
  FakeOpenAiServer s;
  const auto t0 = std::chrono::steady_clock::now();
  Response r = Chat(s, true, "tokens=4,delay_ms=25,ttft_ms=50");
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(Collect(DataEvents(r.body)), FakeOpenAiServer::TokenText(4));
  EXPECT_GE(elapsed, 150ms);
}

TEST(FakeTiming, ClientCloseMidStreamIsCounted) {
  FakeOpenAiServer s;
  Client c(s.port());
  c.Write(http::verb::post, "/v1/chat/completions", ChatBody(true),
          Bearer("tokens=1000,delay_ms=20"));
  Response partial = c.ReadUntil("tok1");
  EXPECT_EQ(partial.status, 200U);
  EXPECT_THAT(partial.body, HasSubstr("tok1"));
  c.Close();
  // Readiness watching notices the close while the server waits for the next token.
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_cut_by_client() == 1; }, 2s));
  EXPECT_EQ(s.requests_cut_by_client(), 1);
  EXPECT_EQ(s.streams_completed(), 0);
  EXPECT_TRUE(s.WaitFor([&] { return s.active_requests() == 0; }));
}

TEST(FakeTiming, ClientCloseDuringTtftStallIsNoticedPromptly) {
  FakeOpenAiServer s;
  Client c(s.port());
  c.Write(http::verb::post, "/v1/chat/completions", ChatBody(true), Bearer("ttft_ms=60000"));
  ASSERT_TRUE(s.WaitFor([&] { return s.requests_started() == 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  c.Close();
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_cut_by_client() == 1; }, 2s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(s.streams_started(), 0);
}

TEST(FakeTiming, HangNeverAnswersAndStopStillJoins) {
  auto s = std::make_unique<FakeOpenAiServer>();
  Client hung(s->port());
  hung.Write(http::verb::post, "/v1/chat/completions", ChatBody(false), Bearer("hang"));
  Client left(s->port());
  left.Write(http::verb::post, "/v1/chat/completions", ChatBody(true), Bearer("hang"));
  ASSERT_TRUE(s->WaitFor([&] { return s->active_requests() == 2; }));
  left.Close();
  EXPECT_TRUE(s->WaitFor([&] { return s->streams_cut_by_client() == 1; }, 2s));
  EXPECT_TRUE(s->WaitFor([&] { return s->active_requests() == 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  s->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(s->responses_completed(), 0);
  s.reset();
}

TEST(FakeTiming, FiftyConcurrentStreamsComplete) {
  FakeOpenAiServer s;
  constexpr int kStreams = 50;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&s, &ok, i] {
      const int tokens = 5 + i % 7;
      Response r = Chat(s, true, "tokens=" + std::to_string(tokens) + ",delay_ms=5", true);
      if (r.status == 200 && !r.ec &&
          Collect(DataEvents(r.body)) == FakeOpenAiServer::TokenText(tokens)) {
        ++ok;
      }
    });
  }
  // Prove they overlapped: the server sees many in flight at once.
  EXPECT_TRUE(
      s.WaitFor([&] { return s.active_requests() >= 10 || s.streams_completed() == kStreams; }));
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kStreams);
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_completed() == kStreams; }));
  EXPECT_EQ(s.connections_accepted(), kStreams);
}

TEST(FakeTiming, MultiThreadedServerAlsoWorks) {
  FakeOpenAiServer s({.threads = 2});
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&s, &ok] {
      Response r = Chat(s, true, "tokens=20,delay_ms=1");
      if (Collect(DataEvents(r.body)) == FakeOpenAiServer::TokenText(20)) ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8);
}

// ---------------------------------------------------------------------------------------------
// Azure

Headers AzureKey(const std::string& scenario = {}) {
  Headers h{{"api-key", FakeOpenAiServer::kDefaultApiKey}, {"Content-Type", "application/json"}};
  if (!scenario.empty()) h.emplace_back("x-fake-scenario", scenario);
  return h;
}

constexpr const char* kClassic =
    "/openai/deployments/fake-deployment/chat/completions?api-version=2024-10-21";

TEST(FakeAzure, ClassicPathNeedsApiVersionAndApiKey) {
  FakeOpenAiServer s({.profile = Profile::kAzure});
  EXPECT_EQ(s.base_url(), "http://127.0.0.1:" + std::to_string(s.port()) + "/openai/v1");
  json::object no_model{
      {"messages", json::array{json::object{{"role", "user"}, {"content", "x"}}}}};
  const std::string body = json::serialize(no_model);
  Client c(s.port());
  Response ok = c.Send(http::verb::post, kClassic, body, AzureKey());
  ASSERT_EQ(ok.status, 200U) << ok.body;
  EXPECT_EQ(ok.Json().at("model"), "fake-deployment");
  EXPECT_TRUE(ok.Json().as_object().contains("prompt_filter_results"));
  EXPECT_TRUE(ok.Json().at("choices").as_array()[0].as_object().contains("content_filter_results"));

  Response no_version = c.Send(
      http::verb::post, "/openai/deployments/fake-deployment/chat/completions", body, AzureKey());
  EXPECT_EQ(no_version.status, 400U);

  Response bearer = c.Send(http::verb::post, kClassic, body, Bearer());
  EXPECT_EQ(bearer.status, 401U);
  EXPECT_EQ(bearer.Json().at("error").at("code"), "401");

  Response unknown =
      c.Send(http::verb::post, "/openai/deployments/nope/chat/completions?api-version=2024-10-21",
             body, AzureKey());
  EXPECT_EQ(unknown.status, 404U);
  EXPECT_EQ(unknown.Json().at("error").at("code"), "DeploymentNotFound");
}

TEST(FakeAzure, V1PathTakesTheDeploymentAsModel) {
  FakeOpenAiServer s({.profile = Profile::kAzure});
  Client c(s.port());
  Response ok = c.Send(http::verb::post, "/openai/v1/chat/completions",
                       ChatBody(false, false, "fake-deployment"), AzureKey());
  EXPECT_EQ(ok.status, 200U);
  Response bad = c.Send(http::verb::post, "/openai/v1/chat/completions",
                        ChatBody(false, false, "gpt-4o"), AzureKey());
  EXPECT_EQ(bad.status, 404U);
  Response status = c.Send(http::verb::post, "/openai/v1/chat/completions",
                           ChatBody(false, false, "fake-deployment"), AzureKey("status=429"));
  EXPECT_EQ(status.status, 429U);
  EXPECT_EQ(status.Json().at("error").at("code"), "429");
}

TEST(FakeAzure, EmptyChoicesFirstChunkAndContentFilter) {
  FakeOpenAiServer s({.profile = Profile::kAzure});
  Client c(s.port());
  Response r = c.Send(http::verb::post, kClassic, ChatBody(true), AzureKey("azure_empty_first"));
  const auto events = DataEvents(r.body);
  ASSERT_GE(events.size(), 2U);
  json::value first = json::parse(events[0]);
  EXPECT_TRUE(first.at("choices").as_array().empty());
  EXPECT_EQ(first.at("id"), "");
  EXPECT_EQ(first.at("prompt_filter_results").as_array()[0].at("prompt_index"), 0);
  EXPECT_EQ(Collect(events), FakeOpenAiServer::TokenText(5));

  Response filtered =
      c.Send(http::verb::post, kClassic, ChatBody(true), AzureKey("content_filter_400"));
  EXPECT_EQ(filtered.status, 400U);
  EXPECT_EQ(filtered.Json().at("error").at("code"), "content_filter");
  EXPECT_EQ(filtered.Json().at("error").at("param"), "prompt");
  EXPECT_EQ(filtered.Json().at("error").at("status"), 400);
  EXPECT_TRUE(filtered.Json().at("error").at("type").is_null());
}

// ---------------------------------------------------------------------------------------------
// Local engines

Response Local(const FakeOpenAiServer& s, bool stream, const std::string& scenario,
               bool include_usage = false) {
  Client c(s.port());
  Headers h{{"Content-Type", "application/json"}};
  if (!scenario.empty()) h.emplace_back("x-fake-scenario", scenario);
  return c.Send(http::verb::post, "/v1/chat/completions",
                ChatBody(stream, include_usage, "Qwen/Qwen3-8B"), h);
}

Response Get(const FakeOpenAiServer& s, const std::string& target) {
  Client c(s.port());
  return c.Send(http::verb::get, target, "", {});
}

TEST(FakeLocal, VllmQuirks) {
  FakeOpenAiServer s({.profile = Profile::kVllm});
  EXPECT_EQ(s.api_key(), "");
  Response r = Local(s, true, "reasoning=2,tokens=2", true);
  ASSERT_EQ(r.status, 200U);
  const auto events = DataEvents(r.body);
  EXPECT_EQ(Collect(events, "reasoning"), "think0 think1");
  EXPECT_EQ(Collect(events), "tok0 tok1");
  json::value usage_chunk = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage_chunk.at("choices").is_null());
  EXPECT_EQ(usage_chunk.at("usage").at("completion_tokens"), 4);

  Response err = Local(s, false, "status=400");
  EXPECT_EQ(err.status, 400U);
  EXPECT_EQ(err.Json().at("object"), "error");
  EXPECT_EQ(err.Json().at("code"), 400);  // an int, where OpenAI uses a string
  EXPECT_EQ(err.Json().at("type"), "BadRequestError");

  Response health = Get(s, "/health");
  EXPECT_EQ(health.status, 200U);
  EXPECT_EQ(health.body, "");
  s.SetHealthy(false);
  EXPECT_EQ(Get(s, "/health").status, 503U);
  EXPECT_EQ(Get(s, "/nope").body, R"({"detail":"Not Found"})");
  EXPECT_EQ(s.requests_started(), 2);  // health probes are not chat requests
}

TEST(FakeLocal, VllmWithApiKeyWantsBearer) {
  FakeOpenAiServer s({.profile = Profile::kVllm, .api_key = "local-secret"});
  Response denied = Local(s, false, "");
  EXPECT_EQ(denied.status, 401U);
  EXPECT_EQ(denied.body, R"({"error":"Unauthorized"})");
  Client c(s.port());
  EXPECT_EQ(
      c.Send(http::verb::post, "/v1/chat/completions", ChatBody(false), Bearer("", "local-secret"))
          .status,
      200U);
}

TEST(FakeLocal, LlamaCppQuirks) {
  FakeOpenAiServer s({.profile = Profile::kLlamaCpp});
  Response r = Local(s, true, "reasoning=1,tokens=1", true);
  const auto events = DataEvents(r.body);
  EXPECT_EQ(Collect(events, "reasoning_content"), "think0");
  EXPECT_EQ(r.header("content-type"), "text/event-stream");
  EXPECT_TRUE(json::parse(events[events.size() - 2]).at("choices").as_array().empty());
  EXPECT_THAT(r.body, HasSubstr("\"timings\":"));

  Response err = Local(s, false, "status=503");
  EXPECT_EQ(err.status, 503U);
  EXPECT_EQ(err.body,
            R"({"error":{"code":503,"message":"Loading model","type":"unavailable_error"}})");
  EXPECT_EQ(Get(s, "/health").body, R"({"status":"ok"})");
  s.SetHealthy(false);
  Response sick = Get(s, "/v1/health");
  EXPECT_EQ(sick.status, 503U);
  EXPECT_EQ(sick.body,
            R"({"error":{"code":503,"message":"Loading model","type":"unavailable_error"}})");
}

TEST(FakeLocal, SglangQuirks) {
  FakeOpenAiServer s({.profile = Profile::kSglang});
  Response r = Local(s, true, "reasoning=1,tokens=1");
  EXPECT_EQ(Collect(DataEvents(r.body), "reasoning_content"), "think0");
  EXPECT_EQ(Get(s, "/health_generate").status, 200U);
  EXPECT_EQ(Local(s, false, "status=500").Json().at("code"), 500);
}

TEST(FakeLocal, MlxQuirks) {
  FakeOpenAiServer s({.profile = Profile::kMlx});
  Response r = Local(s, true, "reasoning=1,tokens=2", true);
  ASSERT_EQ(r.status, 200U);
  EXPECT_EQ(r.version, 10U);                     // http.server answers HTTP/1.0 ...
  EXPECT_EQ(r.header("transfer-encoding"), "");  // ... and the stream is close-delimited
  EXPECT_FALSE(r.ec) << r.ec.message();
  const auto events = DataEvents(r.body);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(Collect(events, "reasoning"), "think0");
  EXPECT_EQ(Collect(events), "tok0 tok1");
  // Every delta repeats the role, and there is no role-only first chunk.
  EXPECT_EQ(json::parse(events[0]).at("choices").as_array()[0].at("delta").at("role"), "assistant");
  json::value usage_chunk = json::parse(events[events.size() - 2]);
  EXPECT_EQ(usage_chunk.at("object"), "chat.completion");
  EXPECT_TRUE(usage_chunk.at("choices").as_array().empty());

  Response missing = Get(s, "/v1/nope");
  EXPECT_EQ(missing.status, 404U);
  EXPECT_EQ(missing.body, "Not Found");
  EXPECT_EQ(Get(s, "/health").body, R"({"status": "ok"})");
  Response err = Local(s, false, "status=500");
  EXPECT_EQ(err.status, 500U);
  EXPECT_TRUE(err.Json().at("error").is_string());
  EXPECT_EQ(Get(s, "/v1/models").Json().at("data").as_array()[0].at("id"), "fake-model");
}

// ---------------------------------------------------------------------------------------------
// TLS

net::ssl::context ClientTls(const std::string& ca, const CertKeyFiles* client = nullptr) {
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.load_verify_file(ca);
  ctx.set_verify_mode(net::ssl::verify_peer);
  if (client != nullptr) {
    ctx.use_certificate_chain_file(client->cert);
    ctx.use_private_key_file(client->key, net::ssl::context::pem);
  }
  return ctx;
}

TEST(FakeTls, ServesHttpsWithTheGeneratedCertificate) {
  TestCerts certs;
  FakeOpenAiServer s({.tls = ServerTls{certs.server_cert(), certs.server_key()}});
  EXPECT_THAT(s.base_url(), StartsWith("https://127.0.0.1:"));
  net::ssl::context trusted = ClientTls(certs.ca_cert());
  Client good(s.port(), &trusted);
  ASSERT_FALSE(good.Handshake());
  Response r = good.Send(http::verb::post, "/v1/chat/completions", ChatBody(true), Bearer());
  EXPECT_EQ(r.status, 200U);
  EXPECT_EQ(Collect(DataEvents(r.body)), FakeOpenAiServer::TokenText(5));
  EXPECT_TRUE(s.last_request()->tls);

  net::ssl::context other = ClientTls(certs.other_ca_cert());
  Client bad(s.port(), &other);
  beast::error_code ec = bad.Handshake();
  EXPECT_TRUE(ec);
  EXPECT_THAT(ec.message(), HasSubstr("certificate verify failed"));
}

TEST(FakeTls, MutualTlsRecordsTheClientIdentity) {
  TestCerts certs;
  FakeOpenAiServer s({.tls = ServerTls{certs.server_cert(), certs.server_key(), certs.ca_cert(),
                                       /*require_client_cert=*/true}});
  const CertKeyFiles mine{certs.client_cert(), certs.client_key()};
  net::ssl::context with_cert = ClientTls(certs.ca_cert(), &mine);
  Client good(s.port(), &with_cert);
  ASSERT_FALSE(good.Handshake());
  EXPECT_EQ(good.Send(http::verb::post, "/v1/chat/completions", ChatBody(false), Bearer()).status,
            200U);
  EXPECT_EQ(s.last_request()->client_cert_cn, TestCerts::kClientCommonName);
  EXPECT_THAT(s.last_request()->client_cert_uris,
              ::testing::ElementsAre(TestCerts::kClientSpiffeId));

  // A client certificate from the unrelated CA never gets a response (TLS 1.3 may report the
  // rejection on the first read rather than in the handshake).
  net::ssl::context stranger = ClientTls(certs.ca_cert(), &certs.other_client());
  Client bad(s.port(), &stranger);
  beast::error_code ec = bad.Handshake();
  if (!ec) {
    Response r = bad.Send(http::verb::post, "/v1/chat/completions", ChatBody(false), Bearer());
    EXPECT_EQ(r.status, 0U);
    EXPECT_TRUE(r.ec);
  }
  EXPECT_EQ(s.requests_started(), 1);
}

TEST(FakeTls, CertsAreWrittenAndCleanedUp) {
  std::string dir;
  {
    TestCerts certs;
    dir = certs.dir();
    EXPECT_TRUE(std::filesystem::exists(certs.paths().ca_cert));
    EXPECT_TRUE(std::filesystem::exists(certs.paths().client_key));
    CertKeyFiles expired = certs.IssueLeaf({.file_stem = "expired",
                                            .common_name = "localhost",
                                            .dns_sans = {"localhost"},
                                            .expired = true});
    EXPECT_TRUE(std::filesystem::exists(expired.cert));
    // The expired leaf is rejected by a client trusting its CA.
    FakeOpenAiServer s({.tls = ServerTls{expired.cert, expired.key}});
    net::ssl::context trusted = ClientTls(certs.ca_cert());
    Client c(s.port(), &trusted);
    EXPECT_THAT(c.Handshake().message(), HasSubstr("certificate verify failed"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

// ---------------------------------------------------------------------------------------------
// DashScope native profile (wire-protocols.md §2.2-2.5)

constexpr const char* kDsPath = "/api/v1/services/aigc/text-generation/generation";

std::string DsRequestId(int seq) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "fa4e0000-0000-4000-8000-%012x", static_cast<unsigned>(seq));
  return buf;
}

json::object DsBody(json::object parameters = {{"result_format", "message"},
                                               {"incremental_output", true}}) {
  return json::object{
      {"model", "qwen-plus"},
      {"input", json::object{{"messages", json::array{json::object{{"role", "user"},
                                                                   {"content", "你是谁？"}}}}}},
      {"parameters", std::move(parameters)}};
}

Headers DsHeaders(bool sse, const std::string& scenario = {}, const std::string& key = "test-key") {
  Headers h{{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
  if (sse) h.emplace_back("X-DashScope-SSE", "enable");
  if (!scenario.empty()) h.emplace_back("x-fake-scenario", scenario);
  return h;
}

Response DsChat(const FakeOpenAiServer& s, bool sse, const std::string& scenario = {},
                const json::object& body = DsBody()) {
  Client c(s.port());
  return c.Send(http::verb::post, kDsPath, json::serialize(body),
                DsHeaders(sse, scenario, s.api_key()));
}

/// One `data:` payload per event, parsed.
std::vector<json::value> DsFrames(const Response& r) {
  std::vector<json::value> out;
  for (const auto& e : DataEvents(r.body)) out.push_back(json::parse(e));
  return out;
}

const json::object& DsMessage(const json::value& frame) {
  return frame.at("output").at("choices").as_array()[0].at("message").as_object();
}

TEST(FakeDashScope, StreamBytesMatchTheReference) {
  FakeOpenAiServer s({.profile = Profile::kDashScope});
  EXPECT_EQ(s.base_url(), s.origin() + "/api/v1");
  Response r = DsChat(s, true, "tokens=2");
  ASSERT_EQ(r.status, 200U) << r.body;
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.header("content-type"), "text/event-stream;charset=UTF-8");
  const std::string rid = DsRequestId(1);
  EXPECT_EQ(r.header("x-request-id"), rid);
  const std::string usage_tail =
      R"(,"input_tokens":9,"prompt_tokens_details":{"cached_tokens":0}},"request_id":")" + rid +
      R"("})";
  const std::string expected =
      "id:1\nevent:result\n:HTTP_STATUS/200\n"
      R"(data:{"output":{"choices":[{"message":{"content":"tok0","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":10,"output_tokens":1)" +
      usage_tail +
      "\n\n"
      "id:2\nevent:result\n:HTTP_STATUS/200\n"
      R"(data:{"output":{"choices":[{"message":{"content":" tok1","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":11,"output_tokens":2)" +
      usage_tail +
      "\n\n"
      "id:3\nevent:result\n:HTTP_STATUS/200\n"
      R"(data:{"output":{"choices":[{"message":{"content":"","role":"assistant"},"finish_reason":"stop"}]},"usage":{"total_tokens":11,"output_tokens":2)" +
      usage_tail + "\n\n";
  EXPECT_EQ(r.body, expected);
  EXPECT_EQ(s.requests_started(), 1);
  EXPECT_EQ(s.streams_started(), 1);
  EXPECT_TRUE(
      s.WaitFor([&] { return s.streams_completed() == 1 && s.responses_completed() == 1; }));
  EXPECT_EQ(s.last_request()->path, kDsPath);
  EXPECT_EQ(s.last_request_json().at("input").at("messages").as_array().size(), 1U);
}

TEST(FakeDashScope, CumulativeFramesUnlessIncremental) {
  FakeOpenAiServer s({.profile = Profile::kDashScope});
  // incremental_output absent: every frame repeats the text so far, the last one too.
  Response r = DsChat(s, true, "tokens=3", DsBody({{"result_format", "message"}}));
  const auto frames = DsFrames(r);
  ASSERT_EQ(frames.size(), 4U);
  EXPECT_EQ(DsMessage(frames[0]).at("content"), "tok0");
  EXPECT_EQ(DsMessage(frames[1]).at("content"), "tok0 tok1");
  EXPECT_EQ(DsMessage(frames[2]).at("content"), "tok0 tok1 tok2");
  EXPECT_EQ(DsMessage(frames[3]).at("content"), "tok0 tok1 tok2");
  EXPECT_EQ(frames[3].at("output").at("choices").as_array()[0].at("finish_reason"), "stop");
  EXPECT_EQ(frames[3].at("usage").at("output_tokens"), 3);
  // result_format absent means "text": a flat output with finish_reason before text.
  Response text = DsChat(s, true, "tokens=2", DsBody({{"incremental_output", true}}));
  EXPECT_THAT(text.body, HasSubstr(R"(data:{"output":{"finish_reason":"null","text":"tok0"},)"));
  EXPECT_THAT(text.body, HasSubstr(R"(data:{"output":{"finish_reason":"stop","text":""},)"));
}

TEST(FakeDashScope, NonStreamingBodiesIgnoreTheBodysStreamFlag) {
  FakeOpenAiServer s({.profile = Profile::kDashScope});
  json::object asks = DsBody();
  asks["stream"] = true;
  asks["parameters"].as_object()["stream"] = true;
  Response r = DsChat(s, /*sse=*/false, "tokens=2", asks);
  ASSERT_EQ(r.status, 200U);
  EXPECT_THAT(r.header("content-type"), StartsWith("application/json"));
  EXPECT_EQ(
      r.body,
      R"({"output":{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":"tok0 tok1"}}]},"usage":{"total_tokens":11,"output_tokens":2,"input_tokens":9,"prompt_tokens_details":{"cached_tokens":0}},"request_id":")" +
          DsRequestId(1) + R"("})");
  Response text = DsChat(s, false, "tokens=2", DsBody(json::object{}));
  EXPECT_EQ(text.Json().at("output").at("text"), "tok0 tok1");
  EXPECT_EQ(text.Json().at("output").at("finish_reason"), "stop");
  EXPECT_EQ(s.streams_started(), 0);
  EXPECT_TRUE(s.WaitFor([&] { return s.responses_completed() == 2; }));
}

TEST(FakeDashScope, InvalidKeyAndMisplacedMessages) {
  FakeOpenAiServer s({.profile = Profile::kDashScope, .api_key = "sk-region-a"});
  Client c1(s.port());
  Response none = c1.Send(http::verb::post, kDsPath, json::serialize(DsBody()),
                          {{"Content-Type", "application/json"}});
  EXPECT_EQ(none.status, 401U);
  EXPECT_EQ(none.body,
            R"({"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":")" +
                DsRequestId(1) + R"("})");
  // A key from another region is just as wrong.
  Client c0(s.port());
  Response wrong = c0.Send(http::verb::post, kDsPath, json::serialize(DsBody()),
                           DsHeaders(true, "", "sk-region-b"));
  EXPECT_EQ(wrong.status, 401U);
  EXPECT_EQ(wrong.Json().at("code"), "InvalidApiKey");

  json::object top = DsBody();
  top["messages"] = top["input"].as_object()["messages"];
  top.erase("input");
  Client c2(s.port());
  Response misplaced =
      c2.Send(http::verb::post, kDsPath, json::serialize(top), DsHeaders(false, "", "sk-region-a"));
  EXPECT_EQ(misplaced.status, 400U);
  EXPECT_EQ(misplaced.Json().at("code"), "InvalidParameter");
  EXPECT_EQ(misplaced.Json().at("message"),
            R"(Either "prompt" or "messages" must exist and cannot both be none)");
  // The OpenAI path does not exist here.
  Client c3(s.port());
  EXPECT_EQ(c3.Send(http::verb::post, "/v1/chat/completions", ChatBody(false),
                    DsHeaders(false, "", "sk-region-a"))
                .status,
            404U);
  EXPECT_EQ(s.requests_started(), 3);
}

TEST(FakeDashScope, ErrorScenarios) {
  FakeOpenAiServer s({.profile = Profile::kDashScope});
  Response throttled = DsChat(s, true, "status=429,retry_after=3");
  EXPECT_EQ(throttled.status, 429U);
  EXPECT_EQ(throttled.header("retry-after"), "3");
  EXPECT_EQ(throttled.Json().at("code"), "Throttling");
  EXPECT_EQ(throttled.Json().at("message"), "Requests throttling triggered.");
  Response internal = DsChat(s, false, "status=500");
  EXPECT_EQ(internal.status, 500U);
  EXPECT_EQ(internal.Json().at("code"), "InternalError");
  EXPECT_EQ(internal.Json().at("request_id").as_string(), DsRequestId(2));
  Response inspected = DsChat(s, true, "data_inspection");
  EXPECT_EQ(inspected.status, 400U);
  EXPECT_EQ(inspected.Json().at("code"), "DataInspectionFailed");
  EXPECT_EQ(inspected.Json().at("message"), "Input data may contain inappropriate content.");
  Response quota = DsChat(s, false, "quota");
  EXPECT_EQ(quota.Json().at("code"), "Throttling.AllocationQuota");
  EXPECT_TRUE(s.WaitFor([&] { return s.responses_completed() == 4; }));
}

TEST(FakeDashScope, ErrorInsideTheStreamHasStatus200) {
  FakeOpenAiServer s({.profile = Profile::kDashScope});
  Response r = DsChat(s, true, "tokens=5,error_in_stream=1");
  EXPECT_EQ(r.status, 200U);
  EXPECT_FALSE(r.ec) << "the chunked body is terminated properly";
  const std::string rid = DsRequestId(1);
  EXPECT_THAT(
      r.body,
      testing::EndsWith(
          "\n\nid:2\nevent:error\n:HTTP_STATUS/500\n"
          R"(data:{"code":"InternalError","message":"An internal error has occured, please try again later or contact service support.","request_id":")" +
          rid + "\"}\n\n"));
  EXPECT_EQ(DsFrames(r).size(), 2U);
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_cut_by_server() == 1; }));
  EXPECT_EQ(s.streams_completed(), 0);
  // With data_inspection the output is moderated mid-stream instead.
  Response moderated = DsChat(s, true, "tokens=5,data_inspection,error_in_stream=2");
  EXPECT_EQ(moderated.status, 200U);
  EXPECT_THAT(moderated.body, HasSubstr("id:3\nevent:error\n:HTTP_STATUS/400\ndata:{\"code\":"
                                        "\"DataInspectionFailed\",\"message\":\"Output data"));
}

TEST(FakeDashScope, SseErrorsArriveAsA200Stream) {
  FakeOpenAiServer s({.profile = Profile::kDashScope});
  Response r = DsChat(s, true, "sse_errors,status=400");
  EXPECT_EQ(r.status, 200U);
  EXPECT_EQ(r.header("content-type"), "text/event-stream;charset=UTF-8");
  EXPECT_EQ(r.header("x-dashscope-finished"), "true");
  EXPECT_EQ(
      r.body,
      "id:1\nevent:error\n:HTTP_STATUS/400\n"
      R"(data:{"code":"InvalidParameter","message":"Required parameter(s) missing or invalid, please check the request parameters.","request_id":")" +
          DsRequestId(1) + "\"}\n\n");
  // Request checks too; without the SSE header the same error is a plain JSON 400.
  json::object top = DsBody();
  top.erase("input");
  Response bad = DsChat(s, true, "sse_errors", top);
  EXPECT_EQ(bad.status, 200U);
  EXPECT_THAT(bad.body, HasSubstr(":HTTP_STATUS/400\ndata:{\"code\":\"InvalidParameter\""));
  EXPECT_EQ(DsChat(s, false, "sse_errors", top).status, 400U);
  EXPECT_EQ(s.streams_started(), 0);
  EXPECT_TRUE(s.WaitFor([&] { return s.responses_completed() == 3; }));
}

TEST(FakeDashScope, ThinkingFramesComeFirst) {
  FakeOpenAiServer s({.profile = Profile::kDashScope});
  json::object body = DsBody(
      {{"result_format", "message"}, {"incremental_output", true}, {"enable_thinking", true}});
  Response r = DsChat(s, true, "tokens=2", body);
  const auto frames = DsFrames(r);
  ASSERT_EQ(frames.size(), 6U);  // 3 reasoning, 2 content, finish
  std::string reasoning;
  std::string content;
  for (const auto& f : frames) {
    reasoning += DsMessage(f).at("reasoning_content").as_string();
    content += DsMessage(f).at("content").as_string();
  }
  EXPECT_EQ(reasoning, FakeOpenAiServer::ReasoningText(3));
  EXPECT_EQ(content, "tok0 tok1");
  EXPECT_EQ(DsMessage(frames[0]).at("content"), "");
  EXPECT_EQ(DsMessage(frames[3]).at("reasoning_content"), "");
  EXPECT_THAT(
      r.body,
      HasSubstr(R"("message":{"content":"","reasoning_content":"think0","role":"assistant"})"));
  EXPECT_EQ(frames[5].at("usage").at("output_tokens_details").at("reasoning_tokens"), 3);
  EXPECT_EQ(frames[5].at("usage").at("output_tokens"), 5);
  // reasoning=N overrides the count; non-streaming carries message.reasoning_content.
  Response whole = DsChat(s, false, "tokens=1,reasoning=2", body);
  EXPECT_EQ(DsMessage(whole.Json()).at("reasoning_content"), "think0 think1");
  // Thinking only supports incremental output.
  body["parameters"].as_object()["incremental_output"] = false;
  Response refused = DsChat(s, true, "", body);
  EXPECT_EQ(refused.status, 400U);
  EXPECT_EQ(refused.Json().at("code"), "InvalidParameter");
}

TEST(FakeDashScope, ToolCallsAndGenericSwitches) {
  FakeOpenAiServer s({.profile = Profile::kDashScope});
  json::object params{
      {"result_format", "message"},
      {"incremental_output", true},
      {"tools", json::array{json::object{{"type", "function"},
                                         {"function", json::object{{"name", "lookup"}}}}}}};
  Response r = DsChat(s, true, "tool_calls", DsBody(params));
  const auto frames = DsFrames(r);
  ASSERT_GE(frames.size(), 2U);
  std::string args;
  for (std::size_t i = 0; i + 1 < frames.size(); ++i) {
    const json::object& call = DsMessage(frames[i]).at("tool_calls").as_array()[0].as_object();
    if (i == 0) {
      EXPECT_EQ(call.at("function").at("name"), "lookup");
      EXPECT_EQ(call.at("id"), "call_fake0");
    }
    args += call.at("function").at("arguments").as_string();
  }
  EXPECT_EQ(args, FakeOpenAiServer::ToolArguments(0));
  EXPECT_EQ(frames.back().at("output").at("choices").as_array()[0].at("finish_reason"),
            "tool_calls");

  Response cut = DsChat(s, true, "tokens=5,close_after=2");
  EXPECT_TRUE(cut.ec);
  EXPECT_EQ(DsFrames(cut).size(), 2U);
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_cut_by_server() == 1; }));

  // A marker inside input.messages is a scenario too; crlf and split apply to the frames.
  json::object marked = DsBody();
  marked["input"].as_object()["messages"].as_array()[0].as_object()["content"] =
      "hi <<fake:tokens=1,crlf,split=7>>";
  Response framed = DsChat(s, true, "", marked);
  EXPECT_THAT(framed.body, StartsWith("id:1\r\nevent:result\r\n:HTTP_STATUS/200\r\ndata:{"));
  EXPECT_GT(framed.chunk_headers, 10);
  EXPECT_EQ(DsFrames(framed).size(), 2U);

  Response garbled = DsChat(s, true, "tokens=2,garbage=1");
  int bad = 0;
  for (const auto& e : DataEvents(garbled.body)) {
    boost::system::error_code ec;
    json::parse(e, ec);
    if (ec) ++bad;
  }
  EXPECT_EQ(bad, 1);
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages profile (wire-protocols.md §3)

json::object AnthBody(bool stream, json::object extra = {}) {
  json::object o{{"model", "claude-test"},
                 {"max_tokens", 1024},
                 {"messages", json::array{json::object{{"role", "user"}, {"content", "Hello"}}}}};
  if (stream) o["stream"] = true;
  for (auto& kv : extra) o[kv.key()] = kv.value();
  return o;
}

Headers AnthHeaders(const std::string& scenario = {}, const std::string& key = "test-key",
                    bool version = true) {
  Headers h{{"x-api-key", key}, {"content-type", "application/json"}};
  if (version) h.emplace_back("anthropic-version", "2023-06-01");
  if (!scenario.empty()) h.emplace_back("x-fake-scenario", scenario);
  return h;
}

Response AnthChat(const FakeOpenAiServer& s, const json::object& body,
                  const std::string& scenario = {}) {
  Client c(s.port());
  return c.Send(http::verb::post, "/v1/messages", json::serialize(body),
                AnthHeaders(scenario, s.api_key()));
}

/// (event name, parsed data) pairs of an Anthropic stream.
std::vector<std::pair<std::string, json::value>> AnthEvents(const std::string& body) {
  std::vector<std::pair<std::string, json::value>> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    const std::string ev = body.substr(pos, end - pos);
    const std::size_t nl = ev.find('\n');
    if (ev.rfind("event: ", 0) == 0 && nl != std::string::npos) {
      boost::system::error_code ec;
      json::value data = json::parse(ev.substr(nl + 1 + 6), ec);  // after "data: "
      out.emplace_back(ev.substr(7, nl - 7), ec ? json::value(nullptr) : data);
    }
    pos = end + 2;
  }
  return out;
}

TEST(FakeAnthropic, StreamBytesMatchTheReference) {
  FakeOpenAiServer s({.profile = Profile::kAnthropic});
  EXPECT_EQ(s.base_url(), s.origin());
  Response r = AnthChat(s, AnthBody(true), "tokens=2");
  ASSERT_EQ(r.status, 200U) << r.body;
  EXPECT_FALSE(r.ec);
  EXPECT_EQ(r.header("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(r.header("request-id"), "req_fake1");
  EXPECT_FALSE(r.header("anthropic-ratelimit-requests-remaining").empty());
  const std::string expected =
      "event: message_start\n"
      R"(data: {"type": "message_start", "message": {"id": "msg_fake1", "type": "message", "role": "assistant", "content": [], "model": "claude-test", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 9, "output_tokens": 1}}})"
      "\n\n"
      "event: content_block_start\n"
      R"(data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})"
      "\n\n"
      "event: ping\n"
      R"(data: {"type": "ping"})"
      "\n\n"
      "event: content_block_delta\n"
      R"(data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "tok0"}})"
      "\n\n"
      "event: content_block_delta\n"
      R"(data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " tok1"}})"
      "\n\n"
      "event: content_block_stop\n"
      R"(data: {"type": "content_block_stop", "index": 0})"
      "\n\n"
      "event: message_delta\n"
      R"(data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 2}})"
      "\n\n"
      "event: message_stop\n"
      R"(data: {"type": "message_stop"})"
      "\n\n";
  EXPECT_EQ(r.body, expected);
  EXPECT_TRUE(
      s.WaitFor([&] { return s.streams_completed() == 1 && s.responses_completed() == 1; }));
  EXPECT_EQ(s.last_request()->header("anthropic-version"), "2023-06-01");
}

TEST(FakeAnthropic, NonStreamingBody) {
  FakeOpenAiServer s({.profile = Profile::kAnthropic});
  Response r = AnthChat(s, AnthBody(false), "tokens=3");
  ASSERT_EQ(r.status, 200U);
  EXPECT_EQ(
      r.body,
      R"({"id":"msg_fake1","type":"message","role":"assistant","model":"claude-test","content":[{"type":"text","text":"tok0 tok1 tok2"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":3}})");
  Response thinking = AnthChat(s, AnthBody(false), "tokens=1,reasoning=2");
  const json::value thinking_json = thinking.Json();
  const json::array& blocks = thinking_json.at("content").as_array();
  ASSERT_EQ(blocks.size(), 2U);
  EXPECT_EQ(blocks[0].at("type"), "thinking");
  EXPECT_EQ(blocks[0].at("thinking"), "think0 think1");
  EXPECT_FALSE(blocks[0].at("signature").as_string().empty());
  EXPECT_EQ(blocks[1].at("text"), "tok0");
  EXPECT_EQ(thinking.Json().at("usage").at("output_tokens"), 3);
}

TEST(FakeAnthropic, AuthVersionAndRequestChecks) {
  FakeOpenAiServer s({.profile = Profile::kAnthropic, .api_key = "sk-ant-x"});
  Client c1(s.port());
  // A Bearer token is not an API key.
  Response bearer =
      c1.Send(http::verb::post, "/v1/messages", json::serialize(AnthBody(false)),
              {{"Authorization", "Bearer sk-ant-x"}, {"anthropic-version", "2023-06-01"}});
  EXPECT_EQ(bearer.status, 401U);
  EXPECT_EQ(
      bearer.body,
      R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_fake1"})");
  Client c2(s.port());
  Response no_version = c2.Send(http::verb::post, "/v1/messages", json::serialize(AnthBody(false)),
                                AnthHeaders("", "sk-ant-x", false));
  EXPECT_EQ(no_version.status, 400U);
  EXPECT_EQ(no_version.Json().at("error").at("type"), "invalid_request_error");
  EXPECT_THAT(std::string(no_version.Json().at("error").at("message").as_string()),
              HasSubstr("anthropic-version"));

  json::object no_max = AnthBody(false);
  no_max.erase("max_tokens");
  Response missing = AnthChat(s, no_max);
  EXPECT_EQ(missing.status, 400U);
  EXPECT_EQ(missing.Json().at("error").at("message"), "max_tokens: Field required");

  json::object with_system = AnthBody(false);
  with_system["messages"].as_array().insert(
      with_system["messages"].as_array().begin(),
      json::object{{"role", "system"}, {"content", "Be brief."}});
  Response system = AnthChat(s, with_system);
  EXPECT_EQ(system.status, 400U);
  EXPECT_EQ(system.Json().at("type"), "error");
  EXPECT_THAT(std::string(system.Json().at("error").at("message").as_string()),
              HasSubstr(R"(Unexpected role "system")"));
  // A top-level system prompt is fine.
  EXPECT_EQ(AnthChat(s, AnthBody(false, {{"system", "Be brief."}})).status, 200U);
  EXPECT_EQ(s.requests_started(), 5);
}

// Extended thinking with tools: the last assistant turn must start with its thinking block.
TEST(FakeAnthropic, ThinkingWithToolsNeedsTheEarlierThinkingBlock) {
  FakeOpenAiServer s({.profile = Profile::kAnthropic});
  const json::object tool_use{
      {"type", "tool_use"}, {"id", "toolu_1"}, {"name", "f"}, {"input", json::object()}};
  auto turn = [&tool_use](bool with_thinking) {
    json::array blocks;
    if (with_thinking) {
      blocks.push_back(json::object{{"type", "thinking"}, {"thinking", "t"}, {"signature", "s"}});
    }
    blocks.push_back(tool_use);
    return AnthBody(
        false,
        {{"thinking", json::object{{"type", "enabled"}, {"budget_tokens", 1024}}},
         {"messages",
          json::array{json::object{{"role", "user"}, {"content", "q"}},
                      json::object{{"role", "assistant"}, {"content", std::move(blocks)}},
                      json::object{{"role", "user"},
                                   {"content", json::array{json::object{{"type", "tool_result"},
                                                                        {"tool_use_id", "toolu_1"},
                                                                        {"content", "r"}}}}}}}});
  };
  const Response lost = AnthChat(s, turn(false));
  EXPECT_EQ(lost.status, 400U);
  EXPECT_THAT(std::string(lost.Json().at("error").at("message").as_string()),
              HasSubstr("messages.1.content.0.type: Expected `thinking`"));
  EXPECT_EQ(AnthChat(s, turn(true)).status, 200U);
}

TEST(FakeAnthropic, OverloadedAndRateLimited) {
  FakeOpenAiServer s({.profile = Profile::kAnthropic});
  Response overloaded = AnthChat(s, AnthBody(true), "status=529");
  EXPECT_EQ(overloaded.status, 529U);
  EXPECT_EQ(
      overloaded.body,
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_fake1"})");
  Response limited = AnthChat(s, AnthBody(false), "status=429,retry_after=4");
  EXPECT_EQ(limited.status, 429U);
  EXPECT_EQ(limited.header("retry-after"), "4");
  EXPECT_EQ(limited.header("request-id"), "req_fake2");
  EXPECT_EQ(limited.Json().at("error").at("type"), "rate_limit_error");
  EXPECT_EQ(AnthChat(s, AnthBody(false), "status=500").Json().at("error").at("type"), "api_error");
}

TEST(FakeAnthropic, ErrorEventAfterThe200) {
  FakeOpenAiServer s({.profile = Profile::kAnthropic});
  Response r = AnthChat(s, AnthBody(true), "tokens=5,error_after=1");
  EXPECT_EQ(r.status, 200U);
  EXPECT_FALSE(r.ec);
  EXPECT_THAT(
      r.body,
      testing::EndsWith(
          "\"text\": \"tok0\"}}\n\n"
          "event: error\n"
          R"(data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})"
          "\n\n"));
  EXPECT_THAT(r.body, Not(HasSubstr("message_stop")));
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_cut_by_server() == 1; }));
  EXPECT_EQ(s.streams_completed(), 0);
}

TEST(FakeAnthropic, ThinkingBlockPrecedesTheText) {
  FakeOpenAiServer s({.profile = Profile::kAnthropic});
  Response r = AnthChat(s, AnthBody(true), "tokens=1,reasoning=2");
  const auto events = AnthEvents(r.body);
  std::vector<std::string> names;
  for (const auto& [name, data] : events) {
    names.push_back(name);
    EXPECT_EQ(data.at("type").as_string(), name) << "the data type matches the event name";
  }
  EXPECT_THAT(names, ::testing::ElementsAre("message_start", "content_block_start", "ping",
                                            "content_block_delta", "content_block_delta",
                                            "content_block_delta", "content_block_stop",
                                            "content_block_start", "content_block_delta",
                                            "content_block_stop", "message_delta", "message_stop"));
  EXPECT_EQ(events[1].second.at("content_block").at("type"), "thinking");
  EXPECT_EQ(events[3].second.at("delta").at("type"), "thinking_delta");
  EXPECT_EQ(events[3].second.at("delta").at("thinking"), "think0");
  EXPECT_EQ(events[4].second.at("delta").at("thinking"), " think1");
  EXPECT_EQ(events[5].second.at("delta").at("type"), "signature_delta");
  EXPECT_EQ(events[7].second.at("index"), 1);
  EXPECT_EQ(events[7].second.at("content_block").at("type"), "text");
  EXPECT_EQ(events[8].second.at("delta").at("text"), "tok0");
  EXPECT_EQ(events[10].second.at("usage").at("output_tokens"), 3);
}

TEST(FakeAnthropic, ToolUseBlocksAndMaxTokens) {
  FakeOpenAiServer s({.profile = Profile::kAnthropic});
  json::object tools{
      {"tools", json::array{json::object{{"name", "search"}, {"input_schema", json::object{}}}}}};
  Response r = AnthChat(s, AnthBody(true, tools), "tool_calls=2");
  std::map<int, std::string> args;
  std::map<int, std::string> names;
  std::string stop_reason;
  for (const auto& [name, data] : AnthEvents(r.body)) {
    if (name == "content_block_start") {
      EXPECT_EQ(data.at("content_block").at("type"), "tool_use");
      names[static_cast<int>(data.at("index").as_int64())] =
          std::string(data.at("content_block").at("name").as_string());
    } else if (name == "content_block_delta") {
      EXPECT_EQ(data.at("delta").at("type"), "input_json_delta");
      args[static_cast<int>(data.at("index").as_int64())] +=
          data.at("delta").at("partial_json").as_string();
    } else if (name == "message_delta") {
      stop_reason = std::string(data.at("delta").at("stop_reason").as_string());
    }
  }
  EXPECT_EQ(names, (std::map<int, std::string>{{0, "search"}, {1, "search"}}));
  EXPECT_EQ(args[0], FakeOpenAiServer::ToolArguments(0));
  EXPECT_EQ(args[1], FakeOpenAiServer::ToolArguments(1));
  EXPECT_EQ(stop_reason, "tool_use");
  Response whole = AnthChat(s, AnthBody(false, tools), "tool_calls");
  EXPECT_EQ(whole.Json().at("stop_reason"), "tool_use");
  EXPECT_EQ(whole.Json().at("content").as_array()[0].at("input"),
            json::parse(FakeOpenAiServer::ToolArguments(0)));

  Response capped = AnthChat(s, AnthBody(true, {{"max_tokens", 2}}), "tokens=5");
  EXPECT_THAT(capped.body, HasSubstr(R"({"stop_reason": "max_tokens", "stop_sequence":null})"));
  EXPECT_THAT(capped.body, Not(HasSubstr("tok2")));
}

TEST(FakeAnthropic, GenericSwitchesApply) {
  FakeOpenAiServer s({.profile = Profile::kAnthropic});
  Response cut = AnthChat(s, AnthBody(true), "tokens=5,reset_after=2");
  EXPECT_TRUE(cut.ec);
  EXPECT_THAT(cut.body, HasSubstr(" tok1"));
  EXPECT_THAT(cut.body, Not(HasSubstr("message_stop")));
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_cut_by_server() == 1; }));
  Response spaced = AnthChat(s, AnthBody(true), "tokens=1,no_space,crlf");
  EXPECT_THAT(spaced.body, StartsWith("event: message_start\r\ndata:{\"type\": \"message_start\""));
  EXPECT_THAT(spaced.body, testing::EndsWith(
                               "event: message_stop\r\ndata:{\"type\": \"message_stop\"}\r\n\r\n"));
  // A marker in a content block of the messages.
  json::object marked = AnthBody(true);
  marked["messages"].as_array()[0].as_object()["content"] =
      json::array{json::object{{"type", "text"}, {"text", "<<fake:hang>>"}}};
  Client c(s.port());
  c.Write(http::verb::post, "/v1/messages", json::serialize(marked), AnthHeaders());
  EXPECT_TRUE(s.WaitFor([&] { return s.active_requests() == 1; }));
  c.Close();
  EXPECT_TRUE(s.WaitFor([&] { return s.streams_cut_by_client() == 1; }));
  EXPECT_EQ(s.requests_started(), 3);
}

}  // namespace
}  // namespace meridian::fakes
