// The DashScope (native) and Anthropic Messages adapters end to end: `meridian serve` in
// process, the fake upstreams speaking each vendor's wire protocol on loopback, and clients on
// both front ends. Whatever answered, the HTTP client sees a normal OpenAI stream and the gRPC
// client a normal meridian.v1 stream.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/fakes/fake_openai_server.h"
#include "tests/integration/grpc_fixture.h"

namespace meridian::testing {
namespace {

using fakes::FakeOpenAiServer;
using fakes::FakeServerOptions;
using fakes::Profile;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
using ::testing::Not;

FakeServerOptions Options(Profile p) {
  FakeServerOptions o;
  o.profile = p;
  return o;
}

class VendorTest : public GrpcFixture {
 protected:
  void SetUp() override { SetEnv(kUpstreamKeyEnv, FakeOpenAiServer::kDefaultApiKey); }

  /// `primary` (kind `kind`) first, then an OpenAI fake as the second allowed candidate.
  void Start(const std::string& kind, const FakeOpenAiServer& primary,
             std::vector<std::string> extra = {}) {
    ProviderYaml p = Upstream("vendor", kind, primary.base_url(), "[CN]", "{chat: vendor-model}");
    p.extra = std::move(extra);
    GatewayYaml g;
    g.grpc = TlsSection(true);
    g.tenants = {CertTenant()};
    g.tenants[0].key = kTenantKey;
    ASSERT_NO_FATAL_FAILURE(StartGateway(
        PolicyYaml({p, Upstream("backup", "openai", backup_.base_url(), "[CN]", "{chat: gpt}")},
                   "  - id: cn\n    allow: [vendor, backup]\n"),
        g));
  }

  FakeOpenAiServer backup_;
};

// ---- DashScope (native protocol) ----

TEST_F(VendorTest, DashScopeStreamReachesAnHttpClientAsAnOpenAiStream) {
  FakeOpenAiServer ds(Options(Profile::kDashScope));
  ASSERT_NO_FATAL_FAILURE(Start("dashscope", ds, {"dashscope_region: beijing"}));
  const HttpResult r =
      Chat({.stream = true, .include_usage = true}, {{"traceparent", std::string(kTraceparent)}});
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "vendor");
  const ParsedStream s = ParseStream(r.body);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(5));
  EXPECT_EQ(s.finish_reason, "stop");
  EXPECT_TRUE(s.done);
  ASSERT_TRUE(s.usage_chunk.has_value());
  EXPECT_EQ(s.usage_chunk->at("usage").at("completion_tokens"), 5);
  // What DashScope received: its native request.
  const auto req = ds.last_request();
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->path, "/api/v1/services/aigc/text-generation/generation");
  EXPECT_EQ(req->header("x-dashscope-sse"), "enable");
  // The trace continues upstream with the gateway's span as the parent.
  EXPECT_THAT(req->header("traceparent"), StartsWith("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  EXPECT_NE(req->header("traceparent"), kTraceparent);
  EXPECT_EQ(req->header("traceparent").size(), kTraceparent.size());
  EXPECT_EQ(req->header("authorization"),
            std::string("Bearer ") + FakeOpenAiServer::kDefaultApiKey);
  const auto body = ds.last_request_json().as_object();
  EXPECT_EQ(body.at("model"), "vendor-model");
  EXPECT_EQ(body.at("input").at("messages").at(0).at("content"), "hello there");
  EXPECT_EQ(body.at("parameters").at("result_format"), "message");
  EXPECT_EQ(body.at("parameters").at("incremental_output"), true);
  EXPECT_EQ(backup_.request_count(), 0);
}

TEST_F(VendorTest, DashScopeNonStreamingAndThinking) {
  FakeOpenAiServer ds(Options(Profile::kDashScope));
  ASSERT_NO_FATAL_FAILURE(Start("dashscope", ds));
  const HttpResult r = Chat({});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(BodyJson(r).at("choices").at(0).at("message").at("content"),
            json::value(FakeOpenAiServer::TokenText(5)));
  // Thinking frames become reasoning deltas.
  const HttpResult t = Chat({.stream = true, .extra = {{"enable_thinking", true}}});
  ASSERT_EQ(t.status, 200u) << t.body;
  const ParsedStream s = ParseStream(t.body);
  EXPECT_GT(s.reasoning_deltas, 0);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(5));
  EXPECT_EQ(ds.last_request_json().at("parameters").at("enable_thinking"), true);
}

TEST_F(VendorTest, DashScopeStreamOverGrpc) {
  FakeOpenAiServer ds(Options(Profile::kDashScope));
  ASSERT_NO_FATAL_FAILURE(Start("dashscope", ds));
  auto stub = Stub(DefaultClient());
  const StreamResult r = Generate(*stub, Request("<<fake:split=7>>"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.text, FakeOpenAiServer::TokenText(5));
  ASSERT_GE(r.messages.size(), 3u);
  EXPECT_EQ(r.messages.front().start().decision().provider(), "vendor");
  EXPECT_EQ(r.messages[r.messages.size() - 2].finish(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(r.messages.back().usage().completion_tokens(), 5);
}

TEST_F(VendorTest, DashScopeThrottlingFallsBackBeforeTheFirstByte) {
  FakeOpenAiServer ds(Options(Profile::kDashScope));
  ASSERT_NO_FATAL_FAILURE(Start("dashscope", ds));
  ds.SetScenario("status=429");
  const HttpResult r = Chat({.stream = true});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "backup");
  EXPECT_EQ(ParseStream(r.body).content, FakeOpenAiServer::TokenText(5));
  EXPECT_EQ(ds.requests_started(), 1);
  EXPECT_EQ(backup_.requests_started(), 1);
}

TEST_F(VendorTest, DashScopeDataInspectionFailureReachesTheClientAndIsNotRetried) {
  FakeOpenAiServer ds(Options(Profile::kDashScope));
  ASSERT_NO_FATAL_FAILURE(Start("dashscope", ds));
  ds.SetScenario("data_inspection");
  const HttpResult r = Chat({});
  ExpectOpenAiError(r, 400, "invalid_request_error", "data_inspection_failed", "messages");
  EXPECT_THAT(BodyJson(r).at("error").at("message").as_string().c_str(),
              HasSubstr("content moderation"));
  EXPECT_EQ(backup_.request_count(), 0) << "no moderation shopping on another provider";
  // The same over gRPC: INVALID_ARGUMENT with the reason.
  ExpectError(Generate(*Stub(DefaultClient()), Request()).status,
              grpc::StatusCode::INVALID_ARGUMENT, "data_inspection_failed");
}

TEST_F(VendorTest, DashScopeErrorInsideA200StreamEndsTheStreamWithAnError) {
  FakeOpenAiServer ds(Options(Profile::kDashScope));
  ASSERT_NO_FATAL_FAILURE(Start("dashscope", ds));
  ds.SetScenario("error_in_stream=2");
  const HttpResult r = Chat({.stream = true});
  ASSERT_EQ(r.status, 200u) << r.body;
  const ParsedStream s = ParseStream(r.body);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(2));
  ASSERT_TRUE(s.error.has_value()) << r.body;
  EXPECT_FALSE(s.done);
  EXPECT_EQ(backup_.request_count(), 0);
  // Over gRPC the call fails after the deltas already sent.
  const StreamResult g = Generate(*Stub(DefaultClient()), Request());
  EXPECT_EQ(g.text, FakeOpenAiServer::TokenText(2));
  EXPECT_EQ(g.status.error_code(), grpc::StatusCode::UNAVAILABLE) << g.status.error_message();
}

TEST_F(VendorTest, DashScopeInvalidKeyIsTheGatewaysProblemNotTheClients) {
  FakeOpenAiServer ds(Options(Profile::kDashScope));
  SetEnv("MERIDIAN_VENDOR_TEST_WRONG_KEY", "sk-wrong");
  ProviderYaml p = Upstream("vendor", "dashscope", ds.base_url(), "[CN]", "{chat: m}",
                            "MERIDIAN_VENDOR_TEST_WRONG_KEY");
  ASSERT_NO_FATAL_FAILURE(StartGateway(PolicyYaml({p}, "  - id: cn\n    allow: [vendor]\n")));
  const HttpResult r = Chat({});
  ExpectOpenAiError(r, 502, "server_error", "upstream_unauthorized");
  EXPECT_THAT(r.body, Not(HasSubstr("sk-wrong")));
}

// ---- Anthropic Messages ----

TEST_F(VendorTest, AnthropicStreamReachesAnHttpClientAsAnOpenAiStream) {
  FakeOpenAiServer an(Options(Profile::kAnthropic));
  ASSERT_NO_FATAL_FAILURE(Start("anthropic", an, {"max_tokens_default: 777"}));
  ChatRequest req{.stream = true, .include_usage = true};
  req.extra["messages"] = json::array{json::object{{"role", "system"}, {"content", "Be brief."}},
                                      json::object{{"role", "user"}, {"content", "hello"}}};
  const HttpResult r = Chat(req);
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "vendor");
  const ParsedStream s = ParseStream(r.body);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(5));
  EXPECT_EQ(s.finish_reason, "stop");
  EXPECT_TRUE(s.done);
  ASSERT_TRUE(s.usage_chunk.has_value());
  EXPECT_EQ(s.usage_chunk->at("usage").at("completion_tokens"), 5);
  const auto sent = an.last_request();
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->path, "/v1/messages");
  EXPECT_EQ(sent->header("x-api-key"), FakeOpenAiServer::kDefaultApiKey);
  EXPECT_EQ(sent->header("anthropic-version"), "2023-06-01");
  EXPECT_FALSE(sent->has_header("authorization"));
  const auto body = an.last_request_json().as_object();
  EXPECT_EQ(body.at("system"), "Be brief.");
  EXPECT_EQ(body.at("max_tokens"), 777);
  EXPECT_EQ(body.at("messages").as_array().size(), 1u);
}

TEST_F(VendorTest, AnthropicThinkingAndStopReasonsOverGrpc) {
  FakeOpenAiServer an(Options(Profile::kAnthropic));
  ASSERT_NO_FATAL_FAILURE(Start("anthropic", an));
  auto stub = Stub(DefaultClient());
  v1::GenerateRequest req = Request("<<fake:reasoning=2>>");
  req.mutable_sampling()->set_max_tokens(3000);
  req.set_enable_thinking(true);
  const StreamResult r = Generate(*stub, req, {{"traceparent", std::string(kTraceparent)}});
  EXPECT_THAT(an.last_request()->header("traceparent"),
              StartsWith("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  std::string reasoning;
  for (const auto& m : r.messages) {
    if (m.has_delta()) reasoning += m.delta().reasoning();
  }
  EXPECT_EQ(reasoning, FakeOpenAiServer::ReasoningText(2));
  EXPECT_EQ(r.text, FakeOpenAiServer::TokenText(5));
  // max_tokens reached → FINISH_REASON_LENGTH.
  v1::GenerateRequest capped = Request();
  capped.mutable_sampling()->set_max_tokens(2);
  const StreamResult c = Generate(*stub, capped);
  ASSERT_TRUE(c.status.ok()) << c.status.error_message();
  EXPECT_EQ(c.messages[c.messages.size() - 2].finish(), v1::FINISH_REASON_LENGTH);
}

TEST_F(VendorTest, AnthropicOverloadedFallsBackAndMidStreamErrorsEndTheStream) {
  FakeOpenAiServer an(Options(Profile::kAnthropic));
  ASSERT_NO_FATAL_FAILURE(Start("anthropic", an));
  an.PushScenario("status=529");
  const HttpResult r = Chat({.stream = true});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "backup");
  EXPECT_EQ(backup_.requests_started(), 1);

  an.PushScenario("error_after=2");
  const HttpResult cut = Chat({.stream = true});
  ASSERT_EQ(cut.status, 200u) << cut.body;
  EXPECT_EQ(cut.header("x-meridian-provider"), "vendor");
  const ParsedStream s = ParseStream(cut.body);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(2));
  ASSERT_TRUE(s.error.has_value()) << cut.body;
  EXPECT_FALSE(s.done);
  EXPECT_EQ(backup_.requests_started(), 1) << "no fallback once the answer has started";
}

TEST_F(VendorTest, AnthropicNonStreamingOverBothFrontEnds) {
  FakeOpenAiServer an(Options(Profile::kAnthropic));
  ASSERT_NO_FATAL_FAILURE(Start("anthropic", an));
  const HttpResult r = Chat({});
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::object body = BodyJson(r);
  EXPECT_EQ(body.at("object"), "chat.completion");
  EXPECT_EQ(body.at("choices").at(0).at("message").at("content"),
            json::value(FakeOpenAiServer::TokenText(5)));
  EXPECT_EQ(body.at("choices").at(0).at("finish_reason"), "stop");
  grpc::ClientContext ctx;
  v1::CompleteResponse resp;
  const grpc::Status st = Stub(DefaultClient())->Complete(&ctx, Request(), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.text(), FakeOpenAiServer::TokenText(5));
  EXPECT_EQ(resp.decision().provider(), "vendor");
}

// Anthropic's own Messages API in front of an Anthropic provider: the client's body goes as it
// came (cache_control, the earlier turn's thinking block and its signature, which extended
// thinking with tools requires) and Anthropic's events come back as they were sent, with the
// gateway's message id and the client's alias.
json::object ThinkingToolTurn(bool stream) {
  const json::object cached{{"type", "ephemeral"}};
  return json::object{
      {"model", "chat"},
      {"max_tokens", 256},
      {"stream", stream},
      {"thinking", json::object{{"type", "enabled"}, {"budget_tokens", 1024}}},
      {"system", json::array{json::object{
                     {"type", "text"}, {"text", "Be brief."}, {"cache_control", cached}}}},
      {"tools", json::array{json::object{{"name", "weather"},
                                         {"input_schema", json::object{{"type", "object"}}},
                                         {"cache_control", cached}}}},
      {"messages",
       json::array{
           json::object{{"role", "user"}, {"content", "Weather in Paris?"}},
           json::object{
               {"role", "assistant"},
               {"content", json::array{json::object{{"type", "thinking"},
                                                    {"thinking", "Use the tool."},
                                                    {"signature", "EqQBprev"}},
                                       json::object{{"type", "tool_use"},
                                                    {"id", "toolu_1"},
                                                    {"name", "weather"},
                                                    {"input", json::object{{"city", "Paris"}}}}}}},
           json::object{{"role", "user"},
                        {"content", json::array{json::object{{"type", "tool_result"},
                                                             {"tool_use_id", "toolu_1"},
                                                             {"content", "18C"}}}}}}}};
}

TEST_F(VendorTest, MessagesApiToAnAnthropicProviderPassesThrough) {
  FakeOpenAiServer an(Options(Profile::kAnthropic));
  ASSERT_NO_FATAL_FAILURE(Start("anthropic", an));
  const std::map<std::string, std::string> auth = {{"x-api-key", kTenantKey},
                                                   {"anthropic-version", "2023-06-01"}};
  an.PushScenario("reasoning=2");
  const HttpResult r = Client().Post("/v1/messages", json::serialize(ThinkingToolTurn(true)), auth);
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "vendor");
  // What Anthropic received: the client's body, only the model replaced.
  json::object expected = ThinkingToolTurn(true);
  expected["model"] = "vendor-model";
  EXPECT_EQ(an.last_request_json(), json::value(expected));
  // What the client got: Anthropic's own events (its ping, the thinking block's signature).
  EXPECT_THAT(r.body, HasSubstr("event: ping\ndata: {\"type\": \"ping\"}\n\n"));
  EXPECT_THAT(r.body, HasSubstr("\"type\": \"signature_delta\", \"signature\": \"EqQB"));
  ASSERT_THAT(r.body, StartsWith("event: message_start\ndata: "));
  const std::string start_data =
      r.body.substr(r.body.find("data: ") + 6,
                    r.body.find('\n', r.body.find("data: ")) - r.body.find("data: ") - 6);
  const json::value start = json::parse(start_data);
  EXPECT_EQ(start.at("message").at("model"), "chat");
  EXPECT_THAT(std::string(start.at("message").at("id").as_string()), StartsWith("msg_"));
  EXPECT_THAT(r.body, ::testing::EndsWith("event: message_stop\ndata: {\"type\": "
                                          "\"message_stop\"}\n\n"));

  // Not streamed: Anthropic's message as it came, thinking signature included.
  an.PushScenario("reasoning=1");
  const HttpResult whole =
      Client().Post("/v1/messages", json::serialize(ThinkingToolTurn(false)), auth);
  ASSERT_EQ(whole.status, 200u) << whole.body;
  const json::value message = json::parse(whole.body);
  EXPECT_EQ(message.at("model"), "chat");
  EXPECT_EQ(message.at("content").at(0).at("type"), "thinking");
  EXPECT_THAT(std::string(message.at("content").at(0).at("signature").as_string()),
              StartsWith("EqQB"));
  EXPECT_EQ(backup_.request_count(), 0);
}

// The same request, when the Anthropic provider is overloaded, falls back to the OpenAI one:
// translated there, and the client still gets a Messages stream.
TEST_F(VendorTest, MessagesApiFallbackFromAnthropicIsTranslated) {
  FakeOpenAiServer an(Options(Profile::kAnthropic));
  ASSERT_NO_FATAL_FAILURE(Start("anthropic", an));
  an.PushScenario("status=529");
  const HttpResult r = Client().Post("/v1/messages", json::serialize(ThinkingToolTurn(true)),
                                     {{"x-api-key", kTenantKey}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "backup");
  EXPECT_THAT(r.body, StartsWith("event: message_start\ndata: {\"type\":\"message_start\""));
  EXPECT_THAT(r.body, HasSubstr("\"model\":\"chat\""));
  EXPECT_THAT(r.body, ::testing::EndsWith("event: message_stop\ndata: {\"type\":"
                                          "\"message_stop\"}\n\n"));
  const json::value sent = backup_.last_request_json();
  EXPECT_EQ(sent.at("model"), "gpt");
  EXPECT_EQ(sent.at("messages").at(0).at("role"), "system");
}

// ---- residency echo (T16 of the data-residency reference) ----

// The audit lines of a stopped gateway, parsed.
std::vector<json::object> AuditObjects(const fs::path& file) {
  std::vector<json::object> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line).as_object());
  return out;
}

// A US-residency tenant routed to `anth-us` (processing [US]) whose answer says
// usage.inference_geo "global": the answer is delivered, and the alert raised: the mismatch
// counter for the provider, a warning naming the provider, the rule and what it said, the
// audit line's echo. An answer saying "us" is within and raises nothing.
TEST_F(VendorTest, AnswerSayingItRanOutsideTheDeclaredRegionIsDeliveredAndAlerted) {
  FakeServerOptions o = Options(Profile::kAnthropic);
  o.default_scenario = "inference_geo=global";
  FakeOpenAiServer an(o);
  GatewayYaml g;
  TenantYaml us;
  us.default_region = "US";
  g.tenants = {us};
  g.audit = {"path: audit.jsonl", "flush_interval_ms: 20"};
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      PolicyYaml({Upstream("anth-us", "anthropic", an.base_url(), "[US]", "{chat: claude}")},
                 "  - id: us-users\n    when: {region: [US]}\n    allow: [anth-us]\n"),
      g));
  ::testing::internal::CaptureStderr();
  const HttpResult streamed = Chat({.stream = true, .include_usage = true});
  const HttpResult within = Chat({.text = "hello <<fake:inference_geo=us>>"});
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(streamed.status, 200u) << streamed.error << streamed.body;
  const ParsedStream s = ParseStream(streamed.body);
  EXPECT_EQ(s.content, FakeOpenAiServer::TokenText(5)) << "the answer is delivered whole";
  EXPECT_TRUE(s.done);
  ASSERT_EQ(within.status, 200u) << within.body;

  EXPECT_EQ(MetricValue(Metrics(), "meridian_residency_echo_mismatch_total{provider=\"anth-us\"}"),
            1);
  EXPECT_THAT(log, HasSubstr("residency echo mismatch: provider 'anth-us' answered request " +
                             streamed.header("x-request-id") +
                             " (rule 'us-users') saying inference_geo=global, outside its "
                             "declared processing {US}; the answer was delivered"));
  EXPECT_THAT(log, Not(HasSubstr("answered request " + within.header("x-request-id"))));

  gateway_->Drain(std::chrono::seconds(5));
  gateway_->Stop();
  const auto audit = AuditObjects(Dir() / "audit.jsonl");
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].at("request_id"), streamed.header("x-request-id").c_str());
  EXPECT_EQ(audit[0].at("echo"),
            (json::object{{"said", "inference_geo=global"}, {"verdict", "outside"}}));
  EXPECT_EQ(audit[0].at("model"), "chat");
  EXPECT_EQ(audit[0].at("upstream_model"), "claude");
  EXPECT_EQ(audit[1].at("echo"),
            (json::object{{"said", "inference_geo=us"}, {"verdict", "within"}}));
}

// Azure names the region that served the call (x-ms-region: the fake says "Sweden Central"):
// within a provider declared [EU], a mismatch for one declared [US]; OpenAI says nothing.
TEST_F(VendorTest, AzureRegionHeaderIsCheckedAgainstTheDeclaredProcessing) {
  FakeOpenAiServer az({.profile = Profile::kAzure});
  FakeOpenAiServer oa({.profile = Profile::kOpenAi});
  SetEnv(kUpstreamKeyEnv, FakeOpenAiServer::kDefaultApiKey);
  ProviderYaml eu = Upstream("az-eu", "azure_openai", az.origin(), "[EU]", "{eu: fake-deployment}");
  ProviderYaml us = Upstream("az-us", "azure_openai", az.origin(), "[US]", "{us: fake-deployment}");
  eu.extra = us.extra = {"api_version: \"2024-10-21\""};
  ProviderYaml plain = Upstream("oa", "openai", oa.base_url(), "[US]", "{plain: gpt}");
  GatewayYaml g;
  g.audit = {"path: audit.jsonl", "flush_interval_ms: 20"};
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(PolicyYaml({eu, us, plain}, "  - id: all\n    allow: [az-eu, az-us, oa]\n"), g));
  for (const char* model : {"eu", "us", "plain"}) {
    const HttpResult r = Chat({.model = model});
    ASSERT_EQ(r.status, 200u) << model << ": " << r.body;
  }
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricValue(metrics, "meridian_residency_echo_mismatch_total{provider=\"az-us\"}"), 1);
  EXPECT_EQ(MetricValue(metrics, "meridian_residency_echo_mismatch_total{provider=\"az-eu\"}"),
            std::nullopt);
  gateway_->Drain(std::chrono::seconds(5));
  gateway_->Stop();
  const auto audit = AuditObjects(Dir() / "audit.jsonl");
  ASSERT_EQ(audit.size(), 3u);
  EXPECT_EQ(audit[0].at("echo"),
            (json::object{{"said", "x-ms-region=Sweden Central"}, {"verdict", "within"}}));
  EXPECT_EQ(audit[1].at("echo"),
            (json::object{{"said", "x-ms-region=Sweden Central"}, {"verdict", "outside"}}));
  EXPECT_TRUE(audit[2].at("echo").is_null());
}

// on_echo_mismatch: quarantine. The mismatching answer is still delivered; then no request is
// routed to the provider (the next goes to the other allowed one) until an operator releases
// it on the admin listener; a reload does not release it.
TEST_F(VendorTest, QuarantinedProviderIsRoutedAroundUntilAnOperatorReleasesIt) {
  FakeServerOptions o = Options(Profile::kAnthropic);
  o.default_scenario = "inference_geo=global";
  FakeOpenAiServer an(o);
  FakeOpenAiServer backup({.profile = Profile::kOpenAi});
  SetEnv(kUpstreamKeyEnv, FakeOpenAiServer::kDefaultApiKey);
  SetEnv(kAdminTokenEnv, kAdminToken);
  ProviderYaml anth = Upstream("anth-us", "anthropic", an.base_url(), "[US]", "{chat: claude}");
  anth.extra = {"on_echo_mismatch: quarantine"};
  GatewayYaml g;
  g.admin = {"listen: 127.0.0.1:0", std::string("token_env: ") + kAdminTokenEnv};
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      PolicyYaml({anth, Upstream("oa-us", "openai", backup.base_url(), "[US]", "{chat: gpt}")},
                 "  - id: us\n    allow: [anth-us, oa-us]\n"),
      g));
  const std::map<std::string, std::string> admin = {
      {"authorization", std::string("Bearer ") + kAdminToken}};
  auto admin_client = [&] { return TestClient(gateway_->admin_port()); };

  const HttpResult first = Chat({});
  ASSERT_EQ(first.status, 200u) << first.body;
  EXPECT_EQ(first.header("x-meridian-provider"), "anth-us") << "the answer is delivered";
  const HttpResult listed = admin_client().Get("/admin/quarantine", admin);
  ASSERT_EQ(listed.status, 200u);
  const json::object entry =
      json::parse(listed.body).at("quarantined").as_array().at(0).as_object();
  EXPECT_EQ(entry.at("provider"), "anth-us");
  EXPECT_EQ(entry.at("said"), "inference_geo=global");
  EXPECT_EQ(entry.at("request_id"), first.header("x-request-id").c_str());
  EXPECT_EQ(MetricValue(Metrics(), "meridian_provider_quarantined{provider=\"anth-us\"}"), 1);
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "oa-us");

  // A reload keeps it out.
  EXPECT_EQ(admin_client().Post("/admin/reload", "", admin).status, 200u);
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "oa-us");

  // Releasing: bad requests are named; the release puts it back in rotation.
  EXPECT_EQ(admin_client().Get("/admin/quarantine/release?provider=anth-us", admin).status, 405u);
  EXPECT_EQ(admin_client().Post("/admin/quarantine/release", "", admin).status, 400u);
  EXPECT_EQ(admin_client().Post("/admin/quarantine/release?provider=anth-us", "").status, 401u);
  const HttpResult released =
      admin_client().Post("/admin/quarantine/release?provider=anth-us", "", admin);
  EXPECT_EQ(released.status, 200u);
  EXPECT_EQ(released.body, R"({"released":"anth-us"})");
  EXPECT_EQ(admin_client().Post("/admin/quarantine/release?provider=anth-us", "", admin).status,
            404u);
  EXPECT_EQ(MetricValue(Metrics(), "meridian_provider_quarantined{provider=\"anth-us\"}"), 0);
  const HttpResult back = Chat({.text = "hello <<fake:inference_geo=us>>"});
  EXPECT_EQ(back.header("x-meridian-provider"), "anth-us");
  EXPECT_EQ(admin_client().Get("/admin/quarantine", admin).body, R"({"quarantined":[]})");
}

}  // namespace
}  // namespace meridian::testing
