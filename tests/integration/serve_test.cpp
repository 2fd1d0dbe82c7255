// Integration tests of `meridian serve`, the OpenAI-compatible HTTP gateway: the real gateway
// runs in-process on 127.0.0.1:0, a real HTTP client talks to it, and the upstreams are real
// fake servers (tests/fakes) speaking the OpenAI, Azure and local-engine wire formats. Every
// assertion is about what a client (or an upstream) would observe.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/fakes/fake_openai_server.h"
#include "tests/fakes/test_certs.h"
#include "tests/integration/serve_fixture.h"

namespace meridian::testing {
namespace {

using fakes::FakeOpenAiServer;
using fakes::Profile;
using std::chrono::steady_clock;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

/// A policy whose one route sends every request to `provider`.
std::string SingleProviderPolicy(const ProviderYaml& provider) {
  return PolicyYaml({provider}, "  - id: everyone\n    allow: [" + provider.id + "]\n");
}

/// Three upstreams: prov-a and prov-b in CN (the tenant's region), prov-c in the US. CN users
/// may use [prov-a, prov-b] for alias `chat`, and only prov-a for alias `solo`; prov-c serves
/// both aliases, but only to US users.
std::string ThreeRegionPolicy(const std::string& a, const std::string& b, const std::string& c) {
  return PolicyYaml({Upstream("prov-a", "openai", a, "[CN]", "{chat: up-a, solo: up-a}"),
                     Upstream("prov-b", "openai", b, "[CN]", "{chat: up-b}"),
                     Upstream("prov-c", "openai", c, "[US]", "{chat: up-c, solo: up-c}")},
                    "  - id: cn-users\n    when: {region: CN}\n    allow: [prov-a, prov-b]\n"
                    "  - id: us-users\n    when: {region: US}\n    allow: [prov-c]\n");
}

/// Three simulated providers, one route per region, and a guard denying sensitive personal
/// data without separate consent.
std::string RegionPolicy() {
  return PolicyYaml(
      {Sim("sim-cn", "[CN]", "{chat: sim}", 2), Sim("sim-hk", "[HK]", "{chat: sim}", 2),
       Sim("sim-us", "[US]", "{chat: sim}", 2)},
      "  - id: cn-users\n    when: {region: CN}\n    allow: [sim-cn]\n"
      "  - id: hk-users\n    when: {region: HK}\n    allow: [sim-hk]\n"
      "  - id: us-users\n    when: {region: US}\n    allow: [sim-us]\n",
      "  - id: needs-consent\n    when:\n      data_class: sensitive_personal\n"
      "      consent: {sensitive_separate: false}\n"
      "    deny: Sensitive personal information needs separate consent.\n");
}

/// A TCP port nothing listens on (bound once, then released).
unsigned short ClosedPort() {
  boost::asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  const unsigned short port = a.local_endpoint().port();
  a.close();
  return port;
}

json::object MessageOf(const json::object& completion) {
  return completion.at("choices").as_array().at(0).at("message").as_object();
}

class ServeTest : public ServeFixture {
 protected:
  /// The policy version the gateway reports on /readyz.
  std::string ReadyPolicyVersion() const {
    const HttpResult r = Client().Get("/readyz");
    return std::string(BodyJson(r).at("policy_version").as_string());
  }

  /// x-request-id and the decision headers, as every decided answer carries them.
  void ExpectDecisionHeaders(const HttpResult& r, const std::string& provider,
                             const std::string& rule) const {
    EXPECT_THAT(r.header("x-request-id"), StartsWith("req_"));
    EXPECT_EQ(r.header("x-meridian-provider"), provider);
    EXPECT_EQ(r.header("x-meridian-policy-rule"), rule);
    EXPECT_THAT(r.header("x-meridian-policy-version"), StartsWith("sha256:"));
    EXPECT_EQ(r.header("x-meridian-policy-version"), ReadyPolicyVersion());
  }
};

// ---------------------------------------------------------------------------------------------
// 1. The built-in simulated engine: OpenAI shapes end to end, no upstream at all.

std::string SimPolicy() {
  ProviderYaml sim = Sim("sim-a", "[CN]", "{chat: sim-upstream}", 6);
  return SingleProviderPolicy(sim);
}

TEST_F(ServeTest, SimNonStreamingAnswerHasTheChatCompletionShapeAndDecisionHeaders) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy()));
  const HttpResult r = Chat({.text = "hello there"});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  const json::object body = BodyJson(r);
  EXPECT_EQ(body.at("object"), "chat.completion");
  EXPECT_EQ(body.at("id"), json::value("chatcmpl-" + r.header("x-request-id")));
  EXPECT_EQ(body.at("model"), "chat");  // the alias the client asked for
  EXPECT_TRUE(body.at("created").is_int64());
  const json::object& choice = body.at("choices").as_array().at(0).as_object();
  EXPECT_EQ(choice.at("index"), 0);
  EXPECT_EQ(choice.at("finish_reason"), "stop");
  const json::object message = MessageOf(body);
  EXPECT_EQ(message.at("role"), "assistant");
  EXPECT_THAT(std::string(message.at("content").as_string()), StartsWith("[simulated sim-a] "));
  const json::object& usage = body.at("usage").as_object();
  EXPECT_EQ(usage.at("prompt_tokens"), 2);  // "hello there"
  EXPECT_EQ(usage.at("completion_tokens"), 6);
  EXPECT_EQ(usage.at("total_tokens"), 8);
  ExpectDecisionHeaders(r, "sim-a", "everyone");
}

TEST_F(ServeTest, SimStreamIsRoleThenContentThenFinishThenUsageThenDone) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy()));
  const HttpResult r = Chat({.stream = true, .include_usage = true});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  EXPECT_THAT(r.header("content-type"), StartsWith("text/event-stream"));
  ExpectDecisionHeaders(r, "sim-a", "everyone");
  const ParsedStream s = ParseStream(r.body);
  // role, 6 content deltas, finish, usage
  ASSERT_EQ(s.chunks.size(), 9u) << r.body;
  for (const auto& c : s.chunks) {
    EXPECT_EQ(c.at("object"), "chat.completion.chunk");
    EXPECT_EQ(c.at("id"), json::value("chatcmpl-" + r.header("x-request-id")));
    EXPECT_EQ(c.at("model"), "chat");
  }
  EXPECT_EQ(s.chunks[0].at("choices").at(0).at("delta").at("role"), "assistant");
  for (std::size_t i = 1; i <= 6; ++i) {
    const auto& choice = s.chunks[i].at("choices").at(0);
    EXPECT_TRUE(choice.at("delta").as_object().contains("content")) << i;
    EXPECT_TRUE(choice.at("finish_reason").is_null()) << i;
  }
  EXPECT_EQ(s.content_deltas, 6);
  EXPECT_THAT(s.content, StartsWith("[simulated sim-a] "));
  EXPECT_EQ(s.chunks[7].at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_TRUE(s.chunks[7].at("choices").at(0).at("delta").as_object().empty());
  // With include_usage every chunk but the last carries "usage": null.
  for (std::size_t i = 0; i < 8; ++i) EXPECT_TRUE(s.chunks[i].at("usage").is_null()) << i;
  ASSERT_TRUE(s.usage_chunk.has_value());
  EXPECT_EQ(s.chunks[8], *s.usage_chunk);
  EXPECT_EQ(s.usage_chunk->at("usage").at("completion_tokens"), 6);
  EXPECT_EQ(s.usage_chunk->at("usage").at("total_tokens"), 8);
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.error.has_value());
}

TEST_F(ServeTest, SimStreamWithoutIncludeUsageHasNoUsageChunk) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy()));
  const HttpResult r = Chat({.stream = true});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  ExpectDecisionHeaders(r, "sim-a", "everyone");
  const ParsedStream s = ParseStream(r.body);
  ASSERT_EQ(s.chunks.size(), 8u) << r.body;  // role, 6 content deltas, finish
  for (const auto& c : s.chunks) EXPECT_FALSE(c.contains("usage")) << json::serialize(c);
  EXPECT_FALSE(s.usage_chunk.has_value());
  EXPECT_EQ(s.chunks.back().at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_EQ(s.payloads.back(), "[DONE]");
  EXPECT_TRUE(s.done);
}

// ---------------------------------------------------------------------------------------------
// 2. Each adapter against the matching fake upstream.

TEST_F(ServeTest, OpenAiAdapterSendsBearerKeyUpstreamModelAndMaxCompletionTokens) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(SingleProviderPolicy(
      Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt-upstream-1}"))));

  const HttpResult r = Chat({.extra = {{"max_tokens", 3}}});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  ExpectDecisionHeaders(r, "oai", "everyone");
  const json::object body = BodyJson(r);
  EXPECT_EQ(MessageOf(body).at("content"), json::value(FakeOpenAiServer::TokenText(3)));
  EXPECT_EQ(body.at("choices").at(0).at("finish_reason"), "length");
  EXPECT_EQ(body.at("model"), "chat");
  EXPECT_EQ(body.at("usage").at("prompt_tokens"), 9);
  EXPECT_EQ(body.at("usage").at("completion_tokens"), 3);

  const auto seen = fake.last_request();
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->path, "/v1/chat/completions");
  EXPECT_EQ(seen->header("authorization"), "Bearer " + fake.api_key());
  const json::value sent = fake.last_request_json();
  EXPECT_EQ(sent.at("model"), "gpt-upstream-1");
  EXPECT_EQ(sent.at("max_completion_tokens"), 3);
  EXPECT_FALSE(sent.as_object().contains("max_tokens"));

  const HttpResult streamed = Chat({.stream = true});
  ASSERT_EQ(streamed.status, 200u) << streamed.error << streamed.body;
  ExpectDecisionHeaders(streamed, "oai", "everyone");
  const ParsedStream s = ParseStream(streamed.body);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(5));
  EXPECT_EQ(s.finish_reason, "stop");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(fake.last_request_json().at("stream"), true);
  EXPECT_EQ(fake.requests_started(), 2);
}

TEST_F(ServeTest, AzureAdapterUsesTheClassicDeploymentPathApiVersionAndApiKeyHeader) {
  FakeOpenAiServer fake({.profile = Profile::kAzure});
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ProviderYaml azure =
      Upstream("az", "azure_openai", fake.origin(), "[EU]", "{chat: fake-deployment}");
  azure.extra = {"api_version: \"2024-10-21\""};
  ASSERT_NO_FATAL_FAILURE(StartGateway(SingleProviderPolicy(azure)));

  const HttpResult r = Chat({});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  ExpectDecisionHeaders(r, "az", "everyone");
  EXPECT_EQ(MessageOf(BodyJson(r)).at("content"), json::value(FakeOpenAiServer::TokenText(5)));
  const auto seen = fake.last_request();
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->path, "/openai/deployments/fake-deployment/chat/completions");
  EXPECT_EQ(seen->query, "api-version=2024-10-21");
  EXPECT_EQ(seen->header("api-key"), fake.api_key());
  EXPECT_FALSE(seen->has_header("authorization"));
}

TEST_F(ServeTest, AzureContentFilterRejectionIs400NamingThePrompt) {
  FakeOpenAiServer fake({.profile = Profile::kAzure});
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ProviderYaml azure =
      Upstream("az", "azure_openai", fake.origin(), "[EU]", "{chat: fake-deployment}");
  azure.extra = {"api_version: \"2024-10-21\""};
  ASSERT_NO_FATAL_FAILURE(StartGateway(SingleProviderPolicy(azure)));
  const HttpResult r = Chat({.text = "hi <<fake:content_filter_400>>", .stream = true});
  ExpectOpenAiError(r, 400, "invalid_request_error", "content_filter", "prompt");
  EXPECT_EQ(r.header("x-meridian-provider"), "az");
}

TEST_F(ServeTest, AzureEmptyChoicesFirstChunkIsTolerated) {
  FakeOpenAiServer fake({.profile = Profile::kAzure});
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ProviderYaml azure =
      Upstream("az", "azure_openai", fake.origin(), "[EU]", "{chat: fake-deployment}");
  azure.extra = {"api_version: \"2024-10-21\""};
  ASSERT_NO_FATAL_FAILURE(StartGateway(SingleProviderPolicy(azure)));

  const HttpResult r = Chat({.text = "hi <<fake:azure_empty_first>>", .stream = true});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  EXPECT_THAT(fake.last_request()->scenario, HasSubstr("azure_empty_first"));
  const ParsedStream s = ParseStream(r.body);
  ASSERT_FALSE(s.chunks.empty());
  // The client never sees Azure's annotation-only chunk: the role chunk comes first.
  EXPECT_EQ(s.chunks[0].at("choices").at(0).at("delta").at("role"), "assistant");
  for (const auto& c : s.chunks) EXPECT_FALSE(c.at("choices").as_array().empty());
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(5));
  EXPECT_TRUE(s.done);
}

TEST_F(ServeTest, VllmReasoningReachesTheClientAsReasoningContentAndNullChoicesUsageIsHandled) {
  FakeOpenAiServer fake({.profile = Profile::kVllm});
  ASSERT_NO_FATAL_FAILURE(StartGateway(SingleProviderPolicy(Upstream(
      "vllm", "openai_compatible", fake.base_url(), "[CN]", "{qwen3: Qwen/Qwen3-8B}", ""))));

  const HttpResult r = Chat({.model = "qwen3",
                             .text = "think <<fake:reasoning=2,tokens=3>>",
                             .stream = true,
                             .include_usage = true});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  ExpectDecisionHeaders(r, "vllm", "everyone");
  EXPECT_EQ(fake.last_request_json().at("model"), "Qwen/Qwen3-8B");
  const ParsedStream s = ParseStream(r.body);
  EXPECT_EQ(s.reasoning, FakeOpenAiServer::ReasoningText(2));
  EXPECT_EQ(s.reasoning_deltas, 2);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(3));
  EXPECT_THAT(r.body, Not(HasSubstr("\"reasoning\":")));  // one field name for the client
  // vLLM's usage chunk has "choices": null; the client gets OpenAI's "choices": [].
  ASSERT_TRUE(s.usage_chunk.has_value()) << r.body;
  EXPECT_EQ(s.usage_chunk->at("usage").at("completion_tokens"), 5);
  EXPECT_EQ(s.usage_chunk->at("usage").at("prompt_tokens"), 9);
  EXPECT_EQ(s.finish_reason, "stop");
  EXPECT_TRUE(s.done);

  const HttpResult whole = Chat({.model = "qwen3", .text = "think <<fake:reasoning=2,tokens=3>>"});
  ASSERT_EQ(whole.status, 200u) << whole.error << whole.body;
  const json::object message = MessageOf(BodyJson(whole));
  EXPECT_EQ(message.at("reasoning_content"), json::value(FakeOpenAiServer::ReasoningText(2)));
  EXPECT_EQ(message.at("content"), json::value(FakeOpenAiServer::TokenText(3)));
}

TEST_F(ServeTest, LlamaCppReasoningContentPassesThrough) {
  FakeOpenAiServer fake({.profile = Profile::kLlamaCpp});
  ASSERT_NO_FATAL_FAILURE(StartGateway(SingleProviderPolicy(Upstream(
      "llama", "openai_compatible", fake.base_url(), "[CN]", "{qwen3: qwen3-8b-q4}", ""))));
  const HttpResult r = Chat({.model = "qwen3",
                             .text = "think <<fake:reasoning=1,tokens=2>>",
                             .stream = true,
                             .include_usage = true});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  ExpectDecisionHeaders(r, "llama", "everyone");
  const ParsedStream s = ParseStream(r.body);
  EXPECT_EQ(s.reasoning, FakeOpenAiServer::ReasoningText(1));
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(2));
  ASSERT_TRUE(s.usage_chunk.has_value()) << r.body;
  EXPECT_EQ(s.usage_chunk->at("usage").at("completion_tokens"), 3);
  EXPECT_TRUE(s.done);
}

TEST_F(ServeTest, Qwen3ThinkingSwitchFromTheClientReachesVllm) {
  FakeOpenAiServer fake({.profile = Profile::kVllm});
  ASSERT_NO_FATAL_FAILURE(StartGateway(SingleProviderPolicy(Upstream(
      "vllm", "openai_compatible", fake.base_url(), "[CN]", "{qwen3: Qwen/Qwen3-8B}", ""))));

  const HttpResult off =
      Chat({.model = "qwen3",
            .extra = {{"chat_template_kwargs", json::object{{"enable_thinking", false}}}}});
  ASSERT_EQ(off.status, 200u) << off.error << off.body;
  EXPECT_EQ(fake.last_request_json().at("chat_template_kwargs").at("enable_thinking"), false);

  const HttpResult on =
      Chat({.model = "qwen3",
            .extra = {{"chat_template_kwargs", json::object{{"enable_thinking", true}}}}});
  ASSERT_EQ(on.status, 200u) << on.error << on.body;
  EXPECT_EQ(fake.last_request_json().at("chat_template_kwargs").at("enable_thinking"), true);

  // Without a switch the engine's default applies: nothing is sent.
  const HttpResult plain = Chat({.model = "qwen3"});
  ASSERT_EQ(plain.status, 200u) << plain.error << plain.body;
  EXPECT_FALSE(fake.last_request_json().as_object().contains("chat_template_kwargs"));
}

TEST_F(ServeTest, SseFramingQuirksAllYieldTheSameClientVisibleStream) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}"))));
  for (const std::string spec :
       {"", "no_space", "crlf", "comment", "split", "split=1", "no_space,crlf,comment,split=3"}) {
    SCOPED_TRACE("scenario '" + spec + "'");
    const HttpResult r = Chat({.text = spec.empty() ? "hello" : "hello <<fake:" + spec + ">>",
                               .stream = true,
                               .include_usage = true});
    ASSERT_EQ(r.status, 200u) << r.error << r.body;
    EXPECT_EQ(fake.last_request()->scenario, spec);
    const ParsedStream s = ParseStream(r.body);
    EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(5));
    EXPECT_EQ(s.content_deltas, 5);
    EXPECT_EQ(s.chunks.size(), 8u);  // role, 5 deltas, finish, usage
    EXPECT_EQ(s.finish_reason, "stop");
    ASSERT_TRUE(s.usage_chunk.has_value());
    EXPECT_EQ(s.usage_chunk->at("usage").at("completion_tokens"), 5);
    EXPECT_TRUE(s.done);
    EXPECT_FALSE(s.error.has_value());
  }
}

json::array LookupTool() {
  return json::array{
      json::object{{"type", "function"},
                   {"function", json::object{{"name", "lookup"},
                                             {"description", "Looks things up"},
                                             {"parameters", json::object{{"type", "object"}}}}}}};
}

TEST_F(ServeTest, StreamedToolCallFragmentsPassThrough) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}"))));
  const HttpResult r = Chat({.text = "weather? <<fake:tool_calls=2>>",
                             .stream = true,
                             .extra = {{"tools", LookupTool()}, {"tool_choice", "auto"}}});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  EXPECT_EQ(fake.last_request_json().at("tools"), json::value(LookupTool()));
  EXPECT_EQ(fake.last_request_json().at("tool_choice"), "auto");
  ParsedStream s = ParseStream(r.body);
  EXPECT_EQ(s.finish_reason, "tool_calls");
  EXPECT_EQ(s.tool_names[0], "lookup");
  EXPECT_EQ(s.tool_arguments[0], FakeOpenAiServer::ToolArguments(0));
  EXPECT_EQ(s.tool_arguments[1], FakeOpenAiServer::ToolArguments(1));
  // Fragments are forwarded as they come, not buffered into one delta per call.
  EXPECT_GT(s.tool_fragments, 4);
  EXPECT_TRUE(s.done);
}

TEST_F(ServeTest, NonStreamingToolCallsAreMergedIntoTheMessage) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}"))));
  const HttpResult r =
      Chat({.text = "weather? <<fake:tool_calls=2>>", .extra = {{"tools", LookupTool()}}});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  const json::object body = BodyJson(r);
  EXPECT_EQ(body.at("choices").at(0).at("finish_reason"), "tool_calls");
  const json::object message = MessageOf(body);
  EXPECT_TRUE(message.at("content").is_null());
  const json::array& calls = message.at("tool_calls").as_array();
  ASSERT_EQ(calls.size(), 2u) << r.body;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].at("type"), "function");
    EXPECT_FALSE(calls[i].at("id").as_string().empty());
    EXPECT_EQ(calls[i].at("function").at("name"), "lookup");
    EXPECT_EQ(calls[i].at("function").at("arguments"),
              json::value(FakeOpenAiServer::ToolArguments(static_cast<int>(i))));
  }
}

TEST_F(ServeTest, TlsUpstreamIsVerifiedWithTheConfiguredCa) {
  fakes::TestCerts certs;
  FakeOpenAiServer fake({.tls = fakes::ServerTls{certs.server_cert(), certs.server_key()}});
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_THAT(fake.base_url(), StartsWith("https://"));
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai-tls", "openai", fake.base_url(), "[CN]", "{chat: gpt}")),
      {.upstream = {"ca_file: \"" + certs.ca_cert() + "\""}}));
  const HttpResult r = Chat({.stream = true});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  EXPECT_EQ(ParseStream(r.body).content, FakeOpenAiServer::TokenText(5));
  ASSERT_TRUE(fake.last_request().has_value());
  EXPECT_TRUE(fake.last_request()->tls);
  EXPECT_EQ(fake.last_request()->header("authorization"), "Bearer " + fake.api_key());
}

TEST_F(ServeTest, TlsUpstreamWithACertificateFromAnotherCaFailsClosed) {
  fakes::TestCerts certs;
  FakeOpenAiServer impostor(
      {.tls = fakes::ServerTls{certs.other_server().cert, certs.other_server().key}});
  SetEnv(kUpstreamKeyEnv, impostor.api_key());
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(SingleProviderPolicy(
                       Upstream("oai-tls", "openai", impostor.base_url(), "[CN]", "{chat: gpt}")),
                   {.upstream = {"ca_file: \"" + certs.ca_cert() + "\""}}));
  const HttpResult r = Chat({});
  ExpectOpenAiError(r, 503, "server_error", "upstream_tls_failed");
  EXPECT_EQ(r.header("x-meridian-provider"), "oai-tls");
  // The gateway did connect, refused the certificate and never sent the request (neither
  // over TLS nor in plaintext).
  EXPECT_TRUE(impostor.WaitFor([&] { return impostor.connections_accepted() >= 1; }));
  EXPECT_EQ(impostor.request_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// 3. Fallback before the first byte, only within the decision's candidates.

class FallbackTest : public ServeTest {
 protected:
  void SetUp() override { SetEnv(kUpstreamKeyEnv, FakeOpenAiServer::kDefaultApiKey); }
  FakeOpenAiServer a_, b_, c_;
};

TEST_F(FallbackTest, Upstream503BeforeFirstByteFallsBackWithinTheAllowedSet) {
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(ThreeRegionPolicy(a_.base_url(), b_.base_url(), c_.base_url())));
  a_.SetScenario("status=503");
  const HttpResult r = Chat({.stream = true});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  ExpectDecisionHeaders(r, "prov-b", "cn-users");
  const ParsedStream s = ParseStream(r.body);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(5));
  EXPECT_TRUE(s.done);
  EXPECT_EQ(a_.requests_started(), 1);
  EXPECT_EQ(b_.requests_started(), 1);
  EXPECT_EQ(b_.last_request_json().at("model"), "up-b");
  EXPECT_EQ(c_.request_count(), 0);  // serves the alias, but not to this user's region
}

TEST_F(FallbackTest, ConnectionRefusedFallsBackWithinTheAllowedSet) {
  const std::string refused = "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/v1";
  ASSERT_NO_FATAL_FAILURE(StartGateway(ThreeRegionPolicy(refused, b_.base_url(), c_.base_url())));
  const HttpResult r = Chat({});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  ExpectDecisionHeaders(r, "prov-b", "cn-users");
  EXPECT_EQ(MessageOf(BodyJson(r)).at("content"), json::value(FakeOpenAiServer::TokenText(5)));
  EXPECT_EQ(b_.requests_started(), 1);
  EXPECT_EQ(c_.request_count(), 0);
}

TEST_F(FallbackTest, OnlyAllowedCandidateFailingIsAnErrorNeverAnotherRegionsProvider) {
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(ThreeRegionPolicy(a_.base_url(), b_.base_url(), c_.base_url())));
  a_.SetScenario("status=503");
  const HttpResult r = Chat({.model = "solo"});
  ExpectOpenAiError(r, 503, "server_error", "upstream_unavailable");
  EXPECT_EQ(r.header("x-meridian-provider"), "prov-a");
  EXPECT_EQ(r.header("x-meridian-policy-rule"), "cn-users");

  // A streaming request that fails before its first byte gets the same JSON error.
  const HttpResult streamed = Chat({.model = "solo", .stream = true});
  ExpectOpenAiError(streamed, 503, "server_error", "upstream_unavailable");

  EXPECT_EQ(a_.requests_started(), 2);
  EXPECT_EQ(b_.request_count(), 0);
  EXPECT_EQ(c_.request_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// 4. Failure after the first byte: the stream ends with an error event, no [DONE], no fallback.

TEST_F(FallbackTest, UpstreamClosingMidStreamEndsWithAnErrorEventAndNoDone) {
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(ThreeRegionPolicy(a_.base_url(), b_.base_url(), c_.base_url())));
  a_.SetScenario("close_after=3");
  const HttpResult r = Chat({.stream = true});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  EXPECT_TRUE(r.error.empty()) << r.error;  // the chunked body itself ends properly
  EXPECT_EQ(r.header("x-meridian-provider"), "prov-a");
  const ParsedStream s = ParseStream(r.body);
  EXPECT_EQ(s.content_deltas, 3);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(3));
  ASSERT_TRUE(s.error.has_value()) << r.body;
  EXPECT_EQ(s.payloads.back().find("{\"error\":"), 0u) << "the error event is the last one";
  const json::object& e = s.error->at("error").as_object();
  EXPECT_EQ(e.at("type"), "server_error");
  EXPECT_TRUE(e.contains("message") && e.contains("param") && e.contains("code"));
  EXPECT_FALSE(s.done);
  EXPECT_FALSE(s.finish_reason.has_value());
  EXPECT_EQ(b_.request_count(), 0);
  EXPECT_EQ(c_.request_count(), 0);
}

TEST_F(FallbackTest, UpstreamErrorFrameMidStreamEndsWithAnErrorEventAndNoDone) {
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(ThreeRegionPolicy(a_.base_url(), b_.base_url(), c_.base_url())));
  a_.SetScenario("error_after=2");
  const HttpResult r = Chat({.stream = true, .include_usage = true});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  const ParsedStream s = ParseStream(r.body);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(2));
  ASSERT_TRUE(s.error.has_value()) << r.body;
  EXPECT_EQ(s.payloads.back().find("{\"error\":"), 0u);
  EXPECT_EQ(s.error->at("error").at("type"), "server_error");
  EXPECT_FALSE(s.done);
  EXPECT_FALSE(s.usage_chunk.has_value());
  EXPECT_EQ(b_.request_count(), 0);
  EXPECT_EQ(c_.request_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// 5. A client that goes away cancels its upstream request promptly.

TEST_F(ServeTest, ClientHangingUpMidStreamCancelsTheUpstreamStream) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}"))));
  fake.SetScenario("delay_ms=200,tokens=50");  // a 10 s stream
  const HttpResult r = Client().PostAndHangUpAfter("/v1/chat/completions",
                                                   ChatRequest{.stream = true}.Json(), Auth(), 2);
  ASSERT_EQ(r.status, 200u) << r.error;
  EXPECT_GE(SseData(r.body).size(), 2u);
  EXPECT_TRUE(fake.WaitFor([&] { return fake.streams_cut_by_client() >= 1; }, 2s))
      << "the upstream stream was not cancelled";
  EXPECT_EQ(fake.streams_completed(), 0);
  EXPECT_GE(MetricValue(Metrics(), "meridian_client_disconnects_total").value_or(0), 1);
}

TEST_F(ServeTest, ClientHangingUpDuringUpstreamTtftStallCancelsTheUpstreamRequest) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}"))));
  fake.SetScenario("ttft_ms=30000");
  int expected_cuts = 0;
  for (const bool stream : {true, false}) {
    SCOPED_TRACE(stream ? "streaming" : "non-streaming");
    RawConnection client(gateway_->port());
    ASSERT_TRUE(client.Send(RawChatRequest({.stream = stream})));
    ++expected_cuts;
    ASSERT_TRUE(fake.WaitFor([&] { return fake.requests_started() == expected_cuts; }));
    client.Close();
    EXPECT_TRUE(fake.WaitFor([&] { return fake.requests_cut_by_client() == expected_cuts; }, 2s))
        << "the stalled upstream request was not cancelled";
  }
  EXPECT_EQ(fake.responses_completed(), 0);
}

TEST_F(ServeTest, ClientsHangingUpAsTheAnswerArrivesNeverPoisonTheUpstreamPool) {
  // A client that goes away while its (complete) upstream answer is still queued for the
  // handler: the cancellation closes the upstream socket after the last read succeeded. Such a
  // connection must not go back to the pool, where the next requests would fail on a closed
  // descriptor and trip the provider's circuit breaker (found under load: wrk closing 64
  // connections at once took the only provider out of rotation for 10 s).
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}"))));
  const std::string request = RawChatRequest({});
  constexpr int kRounds = 40;
  constexpr int kClients = 32;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::unique_ptr<RawConnection>> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(std::make_unique<RawConnection>(gateway_->port()));
    }
    for (auto& c : clients) ASSERT_TRUE(c->Send(request));
    // Hang up at staggered moments around the upstream's answer (which takes ~0.1-1 ms).
    for (int i = 0; i < kClients; ++i) {
      if ((i + round) % 4 != 0) std::this_thread::sleep_for(std::chrono::microseconds(25));
      clients[static_cast<std::size_t>(i)]->Close();
    }
  }
  // Every later request is served: no pooled connection is dead, the provider stays in.
  for (int i = 0; i < 40; ++i) {
    const HttpResult r = Chat({});
    ASSERT_EQ(r.status, 200u) << "request " << i << ": " << r.body;
  }
  const std::string metrics = Metrics();
  EXPECT_EQ(metrics.find("outcome=\"upstream_connection_failed\""), std::string::npos) << metrics;
}

// ---------------------------------------------------------------------------------------------
// 6. Every error status, always with OpenAI's error JSON.

class ErrorStatusTest : public ServeTest {
 protected:
  void StartSim(const GatewayYaml& gateway = {}) {
    StartGateway(PolicyYaml({Sim("sim-a", "[CN]", "{chat: sim}", 2)},
                            "  - id: acme-only\n    when: {tenant: [acme]}\n    allow: [sim-a]\n"),
                 gateway);
  }
};

TEST_F(ErrorStatusTest, MalformedJsonIs400) {
  ASSERT_NO_FATAL_FAILURE(StartSim());
  const HttpResult r = Client().Post("/v1/chat/completions", R"({"model": "chat", )", Auth());
  ExpectOpenAiError(r, 400, "invalid_request_error", "invalid_json");
}

TEST_F(ErrorStatusTest, InvalidFieldIs400NamingTheParam) {
  ASSERT_NO_FATAL_FAILURE(StartSim());
  const HttpResult r = Chat({.extra = {{"temperature", 5}}});
  ExpectOpenAiError(r, 400, "invalid_request_error", "invalid_value", "temperature");
  EXPECT_THAT(ErrorMessage(r), HasSubstr("temperature"));

  const HttpResult no_messages =
      Client().Post("/v1/chat/completions", R"({"model":"chat"})", Auth());
  ExpectOpenAiError(no_messages, 400, "invalid_request_error", "missing_required_parameter",
                    "messages");
}

TEST_F(ErrorStatusTest, MissingApiKeyIs401) {
  ASSERT_NO_FATAL_FAILURE(StartSim());
  const HttpResult r = Client().Post("/v1/chat/completions", ChatRequest{}.Json());
  ExpectOpenAiError(r, 401, "authentication_error", "missing_api_key");
}

TEST_F(ErrorStatusTest, UnknownApiKeyIs401) {
  ASSERT_NO_FATAL_FAILURE(StartSim());
  const HttpResult r =
      Client().Post("/v1/chat/completions", ChatRequest{}.Json(), Auth("sk-not-a-tenant-key"));
  ExpectOpenAiError(r, 401, "authentication_error", "invalid_api_key");
  const HttpResult wrong_scheme =
      Client().Post("/v1/chat/completions", ChatRequest{}.Json(), {{"authorization", kTenantKey}});
  ExpectOpenAiError(wrong_scheme, 401, "authentication_error", "invalid_api_key");
}

TEST_F(ErrorStatusTest, GuardDenialIs403WithTheReasonCodeAndGuardName) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(RegionPolicy()));
  const HttpResult r = Chat({}, {{"x-meridian-data-class", "sensitive_personal"}});
  ExpectOpenAiError(r, 403, "policy_denied", "denied_by_guard:needs-consent");
  EXPECT_THAT(ErrorMessage(r), HasSubstr("needs-consent"));
  EXPECT_THAT(ErrorMessage(r), HasSubstr("separate consent"));
  EXPECT_EQ(r.header("x-meridian-policy-version"), ReadyPolicyVersion());
  EXPECT_EQ(r.header("x-meridian-policy-rule"), "cn-users");
  EXPECT_EQ(MetricValue(Metrics(), "meridian_policy_denials_total"), 1);
}

TEST_F(ErrorStatusTest, NoMatchingRuleIs403NoRuleMatched) {
  GatewayYaml gw;
  gw.tenants.push_back({.id = "other", .key = kOtherTenantKey});
  ASSERT_NO_FATAL_FAILURE(StartSim(gw));
  const HttpResult r =
      Client().Post("/v1/chat/completions", ChatRequest{}.Json(), Auth(kOtherTenantKey));
  ExpectOpenAiError(r, 403, "policy_denied", "no_rule_matched");
  EXPECT_THAT(ErrorMessage(r), HasSubstr("no routing rule"));
  EXPECT_EQ(r.header("x-meridian-policy-rule"), "");
  EXPECT_THAT(r.header("x-meridian-policy-version"), StartsWith("sha256:"));
  // The same request from the tenant the route names is served.
  EXPECT_EQ(Chat({}).status, 200u);
}

TEST_F(ErrorStatusTest, UnknownPathIs404) {
  ASSERT_NO_FATAL_FAILURE(StartSim());
  const HttpResult r = Client().Get("/v1/completions-of-some-kind", Auth());
  ExpectOpenAiError(r, 404, "invalid_request_error", "not_found");
}

TEST_F(ErrorStatusTest, UnknownModelAliasIs404ModelNotFound) {
  ASSERT_NO_FATAL_FAILURE(StartSim());
  const HttpResult r = Chat({.model = "gpt-9-ultra"});
  ExpectOpenAiError(r, 404, "invalid_request_error", "model_not_found", "model");
  EXPECT_THAT(ErrorMessage(r), HasSubstr("gpt-9-ultra"));
}

TEST_F(ErrorStatusTest, GetOnChatCompletionsIs405WithAllow) {
  ASSERT_NO_FATAL_FAILURE(StartSim());
  const HttpResult r = Client().Get("/v1/chat/completions", Auth());
  ExpectOpenAiError(r, 405, "invalid_request_error", "method_not_allowed");
  EXPECT_EQ(r.header("allow"), "POST");
}

TEST_F(ErrorStatusTest, BodyOverTheLimitIs413) {
  ASSERT_NO_FATAL_FAILURE(StartSim({.limits = {"max_body_bytes: 2048"}}));
  EXPECT_EQ(Chat({.text = std::string(1500, 'a')}).status, 200u);  // under the limit
  const HttpResult r = Chat({.text = std::string(4096, 'a')});
  ExpectOpenAiError(r, 413, "invalid_request_error", "body_too_large");

  // A chunked body has no Content-Length to check up front; it is cut off while being read.
  RawConnection chunked(gateway_->port());
  ASSERT_TRUE(
      chunked.Send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                   std::string(kTenantKey) + "\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" +
                   std::string(4096, 'a') + "\r\n0\r\n\r\n"));
  std::string answer;
  const auto t0 = steady_clock::now();
  while (chunked.Read(1s, answer) == RawConnection::ReadResult::kData &&
         steady_clock::now() - t0 < 5s) {
  }
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 413 "));
  EXPECT_THAT(answer, HasSubstr("\"code\":\"body_too_large\""));
}

TEST_F(ErrorStatusTest, HeadersOverTheLimitIs431) {
  ASSERT_NO_FATAL_FAILURE(StartSim({.limits = {"max_header_bytes: 2048"}}));
  EXPECT_EQ(Chat({}, {{"x-padding", std::string(1000, 'p')}}).status, 200u);  // under the limit
  const HttpResult r = Chat({}, {{"x-padding", std::string(4096, 'p')}});
  ExpectOpenAiError(r, 431, "invalid_request_error", "headers_too_large");
}

TEST_F(ErrorStatusTest, UpstreamRateLimitOnTheOnlyCandidateIs429WithRetryAfter) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}"))));
  fake.SetScenario("status=429,retry_after=7");
  const HttpResult r = Chat({});
  ExpectOpenAiError(r, 429, "rate_limit_error", "upstream_rate_limited");
  EXPECT_EQ(r.header("retry-after"), "7");
  EXPECT_EQ(r.header("x-meridian-provider"), "oai");
  EXPECT_EQ(fake.requests_started(), 1);
}

TEST_F(ErrorStatusTest, GarbageUpstreamBodyIs502) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}"))));
  fake.SetScenario("garbage");
  const HttpResult r = Chat({});
  ExpectOpenAiError(r, 502, "server_error", "upstream_invalid_json");
  EXPECT_EQ(r.header("x-meridian-provider"), "oai");
}

TEST_F(ErrorStatusTest, Upstream401Is502WithoutLeakingUpstreamText) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, "sk-wrong-gateway-credential");
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}"))));
  const HttpResult r = Chat({});
  ExpectOpenAiError(r, 502, "server_error", "upstream_unauthorized");
  EXPECT_EQ(fake.requests_started(), 1);
  EXPECT_THAT(r.body, Not(HasSubstr("Incorrect API key")));
  EXPECT_THAT(r.body, Not(HasSubstr("sk-wro")));
  EXPECT_THAT(r.body, Not(HasSubstr("platform.openai.com")));
}

TEST_F(ErrorStatusTest, NoHealthyCandidateIs503WithRetryAfter) {
  FakeOpenAiServer fake;
  ::unsetenv(kUnsetKeyEnv);
  ASSERT_NO_FATAL_FAILURE(StartGateway(SingleProviderPolicy(
      Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}", kUnsetKeyEnv))));
  const HttpResult r = Chat({});
  ExpectOpenAiError(r, 503, "server_error", "no_healthy_candidate");
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_EQ(fake.request_count(), 0);
}

TEST_F(ErrorStatusTest, RepeatedUpstreamFailuresOpenTheCircuitThen503WithoutCallingIt) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}"))));
  fake.SetScenario("status=500");
  for (int i = 0; i < 3; ++i) {
    ExpectOpenAiError(Chat({}), 503, "server_error", "upstream_unavailable");
  }
  EXPECT_EQ(fake.requests_started(), 3);
  const HttpResult r = Chat({});
  ExpectOpenAiError(r, 503, "server_error", "no_healthy_candidate");
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_EQ(fake.requests_started(), 3);
}

TEST_F(ErrorStatusTest, ConcurrencyLimitIs503WithRetryAfter) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}")),
      {.limits = {"max_concurrent_streams: 1", "retry_after_s: 2"}}));
  fake.SetScenario("hang");
  RawConnection first(gateway_->port());
  ASSERT_TRUE(first.Send(RawChatRequest({.stream = true})));
  ASSERT_TRUE(fake.WaitFor([&] { return fake.requests_started() == 1; }));

  const HttpResult r = Chat({.stream = true});
  ExpectOpenAiError(r, 503, "server_error", "overloaded");
  EXPECT_EQ(r.header("retry-after"), "2");
  EXPECT_EQ(fake.requests_started(), 1);
  EXPECT_EQ(MetricValue(Metrics(), "meridian_concurrency_rejections_total"), 1);
  EXPECT_EQ(MetricValue(Metrics(), "meridian_in_flight_requests"), 1);

  first.Close();
  EXPECT_TRUE(fake.WaitFor([&] { return fake.requests_cut_by_client() == 1; }, 2s));
}

TEST_F(ErrorStatusTest, UpstreamSendingNothingIs504AfterTheFirstByteTimeout) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SingleProviderPolicy(Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}")),
      {.upstream = {"first_byte_timeout_ms: 300"}}));
  fake.SetScenario("hang");
  const auto t0 = steady_clock::now();
  const HttpResult r = Chat({.stream = true});
  ExpectOpenAiError(r, 504, "server_error", "upstream_timeout");
  EXPECT_GE(steady_clock::now() - t0, 250ms);
  // The gateway abandons the hung request rather than leaving it open.
  EXPECT_TRUE(fake.WaitFor([&] { return fake.requests_cut_by_client() == 1; }, 2s));
}

// ---------------------------------------------------------------------------------------------
// 7. Identity and region: only trusted signals choose the route.

TEST_F(ServeTest, SpoofedRegionHeaderFromAnUntrustedPeerIsIgnoredAndCounted) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(RegionPolicy()));
  // 127.0.0.2 is not in trusted_proxies (127.0.0.1/32); US is one of the tenant's regions, so
  // only the peer's untrustworthiness stops the claim.
  const HttpResult r = Chat({}, {{kRegionHeader, "US"}}, "127.0.0.2");
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  ExpectDecisionHeaders(r, "sim-cn", "cn-users");  // the tenant's binding
  EXPECT_THAT(std::string(MessageOf(BodyJson(r)).at("content").as_string()),
              StartsWith("[simulated sim-cn]"));
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricValue(metrics, "meridian_region_header_ignored_total"), 1);
  EXPECT_EQ(MetricValue(metrics, "meridian_region_header_rejected_total"), 0);
}

TEST_F(ServeTest, RegionHeaderFromTheTrustedProxyWithinTheTenantsRegionsChangesTheRoute) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(RegionPolicy()));
  const HttpResult hk = Chat({}, {{kRegionHeader, "HK"}});
  ASSERT_EQ(hk.status, 200u) << hk.error << hk.body;
  ExpectDecisionHeaders(hk, "sim-hk", "hk-users");
  const HttpResult us = Chat({.stream = true}, {{kRegionHeader, " us "}});
  ASSERT_EQ(us.status, 200u) << us.error << us.body;
  ExpectDecisionHeaders(us, "sim-us", "us-users");
  const HttpResult none = Chat({});
  ExpectDecisionHeaders(none, "sim-cn", "cn-users");
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricValue(metrics, "meridian_region_header_ignored_total"), 0);
  EXPECT_EQ(MetricValue(metrics, "meridian_region_header_rejected_total"), 0);
}

TEST_F(ServeTest, TrustedRegionHeaderOutsideTheTenantsRegionsIsRejectedAndCounted) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(RegionPolicy()));
  const HttpResult de = Chat({}, {{kRegionHeader, "DE"}});  // a region, not the tenant's
  ASSERT_EQ(de.status, 200u) << de.error << de.body;
  ExpectDecisionHeaders(de, "sim-cn", "cn-users");
  const HttpResult junk = Chat({}, {{kRegionHeader, "not-a-region"}});
  ASSERT_EQ(junk.status, 200u) << junk.error << junk.body;
  ExpectDecisionHeaders(junk, "sim-cn", "cn-users");
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricValue(metrics, "meridian_region_header_rejected_total"), 2);
  EXPECT_EQ(MetricValue(metrics, "meridian_region_header_ignored_total"), 0);
}

TEST_F(ServeTest, DataClassAndConsentHeadersDriveTheGuards) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(RegionPolicy()));
  const HttpResult denied = Chat({}, {{"x-meridian-data-class", "sensitive_personal"}});
  ExpectOpenAiError(denied, 403, "policy_denied", "denied_by_guard:needs-consent");
  const HttpResult consented = Chat({}, {{"x-meridian-data-class", "Sensitive_Personal"},
                                         {"x-meridian-consent", "sensitive_separate"}});
  ASSERT_EQ(consented.status, 200u) << consented.error << consented.body;
  ExpectDecisionHeaders(consented, "sim-cn", "cn-users");
  // An empty consent header withdraws consent.
  const HttpResult withdrawn =
      Chat({}, {{"x-meridian-data-class", "sensitive_personal"}, {"x-meridian-consent", ""}});
  ExpectOpenAiError(withdrawn, 403, "policy_denied", "denied_by_guard:needs-consent");
}

// Undeclared personal data in the messages raises the class before the policy decides: a bank
// card number (Luhn-valid, synthetic) makes the request sensitive_personal, so the consent guard
// applies although the tenant declared nothing. The response names the detector kind only.
TEST_F(ServeTest, ClassifierRaisesTheDataClassFromTheMessages) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(RegionPolicy()));
  ChatRequest with_card;
  with_card.text = "please charge card 4111 1111 1111 1111 for the order";
  const HttpResult denied = Chat(with_card);
  ExpectOpenAiError(denied, 403, "policy_denied", "denied_by_guard:needs-consent");
  EXPECT_EQ(denied.header("x-meridian-data-class-raised"), "sensitive_personal; by=bank_card");
  EXPECT_THAT(denied.body, Not(HasSubstr("4111")));
  const HttpResult consented = Chat(with_card, {{"x-meridian-consent", "sensitive_separate"}});
  ASSERT_EQ(consented.status, 200u) << consented.error << consented.body;
  // Nothing to find: the class stays as declared and the header is absent.
  const HttpResult plain = Chat({});
  ASSERT_EQ(plain.status, 200u) << plain.error << plain.body;
  EXPECT_EQ(plain.header("x-meridian-data-class-raised"), "");
  // A higher declared class is never lowered by the classifier.
  const HttpResult declared = Chat(with_card, {{"x-meridian-data-class", "core"}});
  EXPECT_EQ(declared.header("x-meridian-data-class-raised"), "");
  EXPECT_THAT(Metrics(), HasSubstr("meridian_classifier_raises_total 2"));
}

TEST_F(ServeTest, InvalidDataClassOrConsentHeaderIs400NamingTheHeader) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(RegionPolicy()));
  const HttpResult bad_class = Chat({}, {{"x-meridian-data-class", "top_secret"}});
  ExpectOpenAiError(bad_class, 400, "invalid_request_error", "invalid_header",
                    "x-meridian-data-class");
  EXPECT_THAT(ErrorMessage(bad_class), HasSubstr("top_secret"));
  const HttpResult bad_consent = Chat({}, {{"x-meridian-consent", "sensitive_separate, maybe"}});
  ExpectOpenAiError(bad_consent, 400, "invalid_request_error", "invalid_header",
                    "x-meridian-consent");
  EXPECT_THAT(ErrorMessage(bad_consent), HasSubstr("maybe"));
}

// ---------------------------------------------------------------------------------------------
// 8. Slow clients are cut off.

TEST_F(ServeTest, SlowlorisClientIsDisconnectedAfterTheHeaderTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy(), {.limits = {"header_timeout_ms: 500"}}));
  RawConnection slow(gateway_->port());
  const auto t0 = steady_clock::now();
  ASSERT_TRUE(slow.Send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Trickle: "));
  // The client's pace: one more header byte every 100 ms, until the server hangs up. The 5 s
  // deadline only bounds a failing run.
  bool closed = false;
  std::string received;
  while (!closed && steady_clock::now() - t0 < 5s) {
    switch (slow.Read(100ms, received)) {
      case RawConnection::ReadResult::kClosed:
        closed = true;
        break;
      case RawConnection::ReadResult::kData:
        break;
      case RawConnection::ReadResult::kTimeout:
        if (!slow.Send("a")) closed = true;
        break;
    }
  }
  const auto elapsed = steady_clock::now() - t0;
  EXPECT_TRUE(closed) << "the server kept a trickling client for 5 s";
  EXPECT_GE(elapsed, 400ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_THAT(received, Not(HasSubstr("200 OK")));
  // Told why before the close (RFC 9110 §15.5.9), and counted.
  EXPECT_THAT(received, ::testing::StartsWith("HTTP/1.1 408"));
  EXPECT_THAT(received, HasSubstr("\"code\":\"request_timeout\""));
  EXPECT_EQ(MetricValue(Metrics(), "meridian_slow_clients_total"), 1);
  // Other clients are still served.
  EXPECT_EQ(Client().Get("/healthz").status, 200u);
}

// ---------------------------------------------------------------------------------------------
// 9. Models, health and readiness.

TEST_F(ServeTest, ModelsListsTheAliasesTheCallerCanBeRoutedTo) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(PolicyYaml(
      {Sim("sim-cn", "[CN]", "{chat: a, code: b}", 2), Sim("sim-us", "[US]", "{us-only: c}", 2)},
      "  - id: cn-users\n    when: {region: CN}\n    allow: [sim-cn]\n"
      "  - id: us-users\n    when: {region: US}\n    allow: [sim-us]\n")));
  const HttpResult r = Client().Get("/v1/models", Auth());
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  EXPECT_FALSE(r.header("x-request-id").empty());
  const json::object body = BodyJson(r);
  EXPECT_EQ(body.at("object"), "list");
  std::vector<std::string> ids;
  for (const auto& m : body.at("data").as_array()) {
    EXPECT_EQ(m.at("object"), "model");
    EXPECT_EQ(m.at("owned_by"), "meridian");
    EXPECT_TRUE(m.at("created").is_int64());
    ids.emplace_back(m.at("id").as_string());
  }
  EXPECT_THAT(ids, UnorderedElementsAre("chat", "code"));  // not us-only: another region's

  ExpectOpenAiError(Client().Get("/v1/models"), 401, "authentication_error", "missing_api_key");
  ExpectOpenAiError(Client().Get("/v1/models", Auth("sk-not-a-tenant-key")), 401,
                    "authentication_error", "invalid_api_key");
}

TEST_F(ServeTest, HealthzAndReadyzReportLivenessAndThePolicyVersion) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy()));
  const HttpResult health = Client().Get("/healthz");
  ASSERT_EQ(health.status, 200u) << health.error;
  EXPECT_EQ(BodyJson(health).at("status"), "ok");
  EXPECT_FALSE(health.header("x-request-id").empty());

  const HttpResult ready = Client().Get("/readyz");
  ASSERT_EQ(ready.status, 200u) << ready.error;
  const json::object body = BodyJson(ready);
  EXPECT_EQ(body.at("status"), "ready");
  EXPECT_THAT(std::string(body.at("policy_version").as_string()), StartsWith("sha256:"));
  EXPECT_EQ(Chat({}).header("x-meridian-policy-version"), body.at("policy_version").as_string());
}

// ---------------------------------------------------------------------------------------------
// 10. The demo configuration shipped in config/examples.

TEST_F(ServeTest, DemoConfigServesTheDemoKeyAndRoutesHongKongToDsIntl) {
  gateway::ServeInputs in;
  in.config_name = std::string(MERIDIAN_SOURCE_DIR) + "/config/examples/gateway.yaml";
  in.listen_override = "127.0.0.1:0";
  in.simulate = true;
  ASSERT_NO_FATAL_FAILURE(StartWith(in));
  const std::map<std::string, std::string> demo = {{"authorization", "Bearer sk-meridian-demo"}};

  auto hk_headers = demo;
  hk_headers.emplace(kRegionHeader, "HK");
  const HttpResult hk = Client().Post(
      "/v1/chat/completions",
      ChatRequest{.model = "qwen-plus", .extra = {{"max_tokens", 3}}}.Json(), hk_headers);
  ASSERT_EQ(hk.status, 200u) << hk.error << hk.body;
  EXPECT_EQ(hk.header("x-meridian-provider"), "ds-intl");
  EXPECT_EQ(hk.header("x-meridian-policy-rule"), "acme-hk");
  EXPECT_THAT(std::string(MessageOf(BodyJson(hk)).at("content").as_string()),
              StartsWith("[simulated ds-intl]"));

  // Without a region header the tenant's binding (CN) applies.
  const HttpResult cn = Client().Post(
      "/v1/chat/completions",
      ChatRequest{.model = "qwen-plus", .stream = true, .extra = {{"max_tokens", 2}}}.Json(), demo);
  ASSERT_EQ(cn.status, 200u) << cn.error << cn.body;
  EXPECT_EQ(cn.header("x-meridian-policy-rule"), "acme-mainland");
  EXPECT_TRUE(ParseStream(cn.body).done);

  ExpectOpenAiError(Client().Post("/v1/chat/completions", ChatRequest{.model = "qwen-plus"}.Json(),
                                  {{"authorization", "Bearer sk-meridian-wrong"}}),
                    401, "authentication_error", "invalid_api_key");
}

}  // namespace
}  // namespace meridian::testing
