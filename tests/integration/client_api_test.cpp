// What clients other than a plain OpenAI SDK call around chat completions, through the real
// `meridian serve`: the API-key headers of Azure- and Anthropic-style clients, CORS for browser
// pages, one model's lookup, and the capabilities a request's shape requires.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>
#include <string>
#include <vector>

#include "tests/fakes/fake_openai_server.h"
#include "tests/integration/serve_fixture.h"

namespace meridian::testing {
namespace {

using fakes::FakeOpenAiServer;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Two sim providers in CN: `plain` streams nothing fancy, `full` has every capability. The
// model `basic` is served only by `plain`, `smart` by both.
std::string CapabilityPolicy() {
  ProviderYaml plain = Sim("plain", "[CN]", "{basic: sim, smart: sim}", 3);
  plain.capabilities = "[tools]";
  ProviderYaml full = Sim("full", "[CN]", "{smart: sim}", 3);
  full.capabilities = "[tools, vision, thinking, streaming, json_mode]";
  return PolicyYaml({plain, full}, "  - id: everyone\n    allow: [plain, full]\n");
}

class ClientApiTest : public ServeFixture {
 protected:
  void Start(std::vector<std::string> cors = {}) {
    GatewayYaml g;
    g.cors = std::move(cors);
    ASSERT_NO_FATAL_FAILURE(StartGateway(CapabilityPolicy(), g));
  }

  HttpResult Chat(const std::string& model, json::object extra,
                  std::map<std::string, std::string> headers = Auth()) {
    ChatRequest r;
    r.model = model;
    r.extra = std::move(extra);
    return Client().Post("/v1/chat/completions", r.Json(), std::move(headers));
  }

  HttpResult Options(const std::string& target, std::map<std::string, std::string> headers) {
    return Client().Request(bhttp::verb::options, target, "", headers);
  }

  static std::string ErrorCode(const HttpResult& r) {
    const json::value v = json::parse(r.body);
    const json::value& code = v.at("error").at("code");
    return code.is_string() ? std::string(code.get_string()) : std::string();
  }
};

// ---- API-key headers ---------------------------------------------------------------------

TEST_F(ClientApiTest, ApiKeyAndXApiKeyHeadersAuthenticateLikeBearer) {
  ASSERT_NO_FATAL_FAILURE(Start());
  for (const char* header : {"authorization", "api-key", "x-api-key"}) {
    SCOPED_TRACE(header);
    const std::string value =
        std::string(header) == "authorization" ? std::string("Bearer ") + kTenantKey : kTenantKey;
    const HttpResult ok = Chat("basic", {}, {{header, value}});
    EXPECT_EQ(ok.status, 200u) << ok.body;
    const HttpResult wrong = Chat("basic", {}, {{header, "sk-not-a-key"}});
    EXPECT_EQ(wrong.status, 401u);
    EXPECT_EQ(ErrorCode(wrong), "invalid_api_key");
    const HttpResult models = Client().Get("/v1/models", {{header, value}});
    EXPECT_EQ(models.status, 200u);
  }
  const HttpResult none = Chat("basic", {}, {});
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(ErrorCode(none), "missing_api_key");
  EXPECT_THAT(none.body, HasSubstr("x-api-key"));
}

TEST_F(ClientApiTest, ApiKeyBesideXApiKeyIsTwoCredentials) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const HttpResult r = Chat("basic", {}, {{"api-key", kTenantKey}, {"x-api-key", kTenantKey}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(ErrorCode(r), "multiple_credentials");
}

// ---- CORS ----------------------------------------------------------------------------------

const std::map<std::string, std::string> kPreflight = {
    {"origin", "https://app.example.com"},
    {"access-control-request-method", "POST"},
    {"access-control-request-headers", "authorization, content-type, x-stainless-os"}};

TEST_F(ClientApiTest, NoOriginIsAllowedByDefault) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const HttpResult pre = Options("/v1/chat/completions", kPreflight);
  EXPECT_EQ(pre.status, 403u);
  EXPECT_EQ(ErrorCode(pre), "cors_origin_not_allowed");
  EXPECT_EQ(pre.header("access-control-allow-origin"), "");
  // The request itself is served (the browser, not the server, withholds the answer), but
  // without the header that would let the page read it.
  auto headers = Auth();
  headers["origin"] = "https://app.example.com";
  const HttpResult r = Chat("basic", {}, headers);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.header("access-control-allow-origin"), "");
  EXPECT_EQ(MetricValue(Metrics(), "meridian_cors_preflights_total{result=\"refused\"}"), 1);
}

TEST_F(ClientApiTest, AnAllowedOriginGetsItsPreflightAndReadsTheAnswer) {
  ASSERT_NO_FATAL_FAILURE(
      Start({"allowed_origins: [\"https://App.Example.com\"]", "max_age_s: 120"}));
  const HttpResult pre = Options("/v1/chat/completions", kPreflight);
  EXPECT_EQ(pre.status, 204u) << pre.body;
  EXPECT_EQ(pre.body, "");
  EXPECT_EQ(pre.header("content-length"), "");
  EXPECT_EQ(pre.header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(pre.header("access-control-allow-methods"), "POST");
  EXPECT_EQ(pre.header("access-control-allow-headers"),
            "authorization, content-type, x-stainless-os");
  EXPECT_EQ(pre.header("access-control-max-age"), "120");
  EXPECT_THAT(pre.header("vary"), HasSubstr("Origin"));

  const HttpResult models_pre = Options("/v1/models", {{"origin", "https://app.example.com"},
                                                       {"access-control-request-method", "GET"}});
  EXPECT_EQ(models_pre.status, 204u);
  EXPECT_EQ(models_pre.header("access-control-allow-methods"), "GET");

  auto headers = Auth();
  headers["origin"] = "https://app.example.com";
  const HttpResult r = Chat("basic", {}, headers);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_THAT(r.header("access-control-expose-headers"), HasSubstr("x-request-id"));
  EXPECT_THAT(r.header("access-control-expose-headers"), HasSubstr("x-meridian-policy-rule"));
  // Errors carry it too, so the page can show them.
  headers["authorization"] = "Bearer sk-wrong";
  const HttpResult denied = Chat("basic", {}, headers);
  EXPECT_EQ(denied.status, 401u);
  EXPECT_EQ(denied.header("access-control-allow-origin"), "https://app.example.com");

  // Another origin is refused; so is a preflight for a method the path does not take.
  auto other = kPreflight;
  other["origin"] = "https://evil.example.net";
  EXPECT_EQ(Options("/v1/chat/completions", other).status, 403u);
  auto put = kPreflight;
  put["access-control-request-method"] = "PUT";
  const HttpResult bad = Options("/v1/chat/completions", put);
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(ErrorCode(bad), "invalid_preflight");
  // CORS is the API's, never the probes'.
  EXPECT_EQ(Client()
                .Get("/healthz", {{"origin", "https://app.example.com"}})
                .header("access-control-allow-origin"),
            "");
  EXPECT_EQ(MetricValue(Metrics(), "meridian_cors_preflights_total{result=\"allowed\"}"), 2);
  EXPECT_EQ(MetricValue(Metrics(), "meridian_cors_preflights_total{result=\"refused\"}"), 2);
}

TEST_F(ClientApiTest, TwoOriginHeadersNameNoOrigin) {
  ASSERT_NO_FATAL_FAILURE(Start({"allowed_origins: [\"https://app.example.com\"]"}));
  RawConnection c(gateway_->port());
  ASSERT_TRUE(c.Send(
      "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n"
      "Origin: https://evil.example.net\r\nAccess-Control-Request-Method: POST\r\n"
      "Connection: close\r\n\r\n"));
  std::string out;
  while (c.Read(std::chrono::seconds(10), out) == RawConnection::ReadResult::kData) {
  }
  EXPECT_THAT(out, HasSubstr("HTTP/1.1 403"));
  EXPECT_THAT(out, Not(HasSubstr("access-control-allow-origin")));
}

TEST_F(ClientApiTest, AStarAllowsEveryOrigin) {
  ASSERT_NO_FATAL_FAILURE(Start({"allowed_origins: [\"*\"]"}));
  auto pre = kPreflight;
  pre["origin"] = "http://localhost:5173";
  const HttpResult r = Options("/v1/chat/completions", pre);
  EXPECT_EQ(r.status, 204u);
  EXPECT_EQ(r.header("access-control-allow-origin"), "http://localhost:5173");
}

// ---- GET /v1/models/{id} -------------------------------------------------------------------

TEST_F(ClientApiTest, OneModelIsFoundOnlyWhenTheCallerCanBeRoutedToIt) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const HttpResult found = Client().Get("/v1/models/smart", Auth());
  ASSERT_EQ(found.status, 200u) << found.body;
  const json::value v = json::parse(found.body);
  EXPECT_EQ(v.at("id"), "smart");
  EXPECT_EQ(v.at("object"), "model");
  EXPECT_EQ(v.at("owned_by"), "meridian");
  EXPECT_TRUE(v.at("created").is_int64());
  EXPECT_EQ(Client().Get("/models/basic", Auth()).status, 200u);

  for (const char* target : {"/v1/models/gpt-4o", "/v1/models/", "/v1/models/sm%61rt%2"}) {
    SCOPED_TRACE(target);
    const HttpResult missing = Client().Get(target, Auth());
    EXPECT_EQ(missing.status, 404u);
    EXPECT_EQ(ErrorCode(missing), "model_not_found");
    EXPECT_EQ(json::parse(missing.body).at("error").at("param"), "model");
  }
  EXPECT_EQ(Client().Get("/v1/models/sm%61rt", Auth()).status, 200u);  // percent-decoded
  EXPECT_EQ(Client().Get("/v1/models/smart").status, 401u);
  EXPECT_EQ(Client().Post("/v1/models/smart", "{}", Auth()).status, 405u);
}

// ---- capabilities from the request's shape ------------------------------------------------

TEST_F(ClientApiTest, EachCapabilityTheRequestNeedsIsDerivedAndNamedWhenMissing) {
  ASSERT_NO_FATAL_FAILURE(Start());
  struct Case {
    const char* what;
    json::object extra;
    const char* capability;
  };
  const std::vector<Case> cases = {
      {"stream", {{"stream", true}}, "streaming"},
      {"json_object", {{"response_format", json::object{{"type", "json_object"}}}}, "json_mode"},
      {"json_schema",
       {{"response_format",
         json::object{{"type", "json_schema"},
                      {"json_schema", json::object{{"name", "s"}, {"schema", json::object{}}}}}}},
       "json_mode"},
      {"thinking", {{"chat_template_kwargs", json::object{{"enable_thinking", true}}}}, "thinking"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    // `basic` is only on `plain`, which lacks the capability: refused, naming it and the rule.
    const HttpResult denied = Chat("basic", c.extra);
    EXPECT_EQ(denied.status, 403u) << denied.body;
    EXPECT_EQ(ErrorCode(denied), "capability_unavailable_in_allowed_set");
    EXPECT_THAT(denied.body, HasSubstr(std::string("'") + c.capability + "'"));
    EXPECT_THAT(denied.body, HasSubstr("route 'everyone'"));
    // `smart` is also on `full`: served there.
    const HttpResult served = Chat("smart", c.extra);
    EXPECT_EQ(served.status, 200u) << served.body;
    EXPECT_EQ(served.header("x-meridian-provider"), "full");
  }
  // What asks for nothing requires nothing: plain text output, thinking switched off.
  for (const json::object& extra :
       {json::object{{"response_format", json::object{{"type", "text"}}}},
        json::object{{"chat_template_kwargs", json::object{{"enable_thinking", false}}}}}) {
    const HttpResult r = Chat("basic", extra);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.header("x-meridian-provider"), "plain");
  }
}

// A photo sent inline (a data: URL of a few MiB) fits the default body limit.
TEST_F(ClientApiTest, AnInlinePhotoFitsTheDefaultBodyLimit) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string photo = "data:image/jpeg;base64," + std::string(4 * 1024 * 1024, 'A');
  const json::object extra = {
      {"messages",
       json::array{json::object{
           {"role", "user"},
           {"content", json::array{json::object{{"type", "text"}, {"text", "what is this?"}},
                                   json::object{{"type", "image_url"},
                                                {"image_url", json::object{{"url", photo}}}}}}}}}};
  ChatRequest r;
  r.model = "smart";
  r.extra = extra;
  const HttpResult served = Client().Post("/v1/chat/completions", r.Json(), Auth());
  EXPECT_EQ(served.status, 200u) << served.body.substr(0, 300);
  EXPECT_EQ(served.header("x-meridian-provider"), "full");  // the provider with vision
}

// ---- the Responses API through a real OpenAI-speaking upstream ------------------------------

class ResponsesApiTest : public ServeFixture {
 protected:
  void SetUp() override {
    SetEnv(kUpstreamKeyEnv, upstream_.api_key());
    ProviderYaml p = Upstream("oai", "openai", upstream_.base_url(), "[CN]", "{chat: gpt-up}");
    p.capabilities = "[tools, streaming, json_mode]";
    p.extra = {"responses_api: false"};  // translated; NativeResponsesTest covers the other way
    ASSERT_NO_FATAL_FAILURE(StartGateway(PolicyYaml({p}, "  - id: all\n    allow: [oai]\n")));
  }

  HttpResult Post(const std::string& body) { return Client().Post("/v1/responses", body, Auth()); }

  /// Each event of a Responses stream: its name and its data, in order.
  static std::vector<std::pair<std::string, json::object>> Events(const std::string& body) {
    std::vector<std::pair<std::string, json::object>> out;
    std::size_t pos = 0;
    while ((pos = body.find("event: ", pos)) != std::string::npos) {
      const std::size_t nl = body.find('\n', pos);
      const std::size_t data = body.find("data: ", nl);
      const std::size_t end = body.find("\n\n", data);
      out.emplace_back(body.substr(pos + 7, nl - pos - 7),
                       json::parse(body.substr(data + 6, end - data - 6)).as_object());
      pos = end;
    }
    return out;
  }

  FakeOpenAiServer upstream_;
};

TEST_F(ResponsesApiTest, TranslatedToChatCompletionsUpstreamAndBackToResponseEvents) {
  upstream_.SetScenario("tool_calls=1");
  const HttpResult r = Post(R"({"model":"chat","stream":true,"instructions":"Use tools.",
      "input":[{"role":"user","content":"weather in Paris?"},
               {"type":"function_call","call_id":"call_0","name":"get_weather","arguments":"{}"},
               {"type":"function_call_output","call_id":"call_0","output":"18C"}],
      "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],
      "text":{"format":{"type":"json_object"}},"max_output_tokens":50,"metadata":{"k":"v"}})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(r.header("x-meridian-provider"), "oai");
  EXPECT_EQ(r.header("x-meridian-policy-rule"), "all");

  // What the upstream got: a chat completion in its own terms.
  const json::value sent = upstream_.last_request_json();
  EXPECT_EQ(sent.at("model"), "gpt-up");
  EXPECT_EQ(sent.at("stream"), true);
  EXPECT_EQ(sent.at("max_completion_tokens"), 50);
  EXPECT_EQ(sent.at("response_format"), json::parse(R"({"type":"json_object"})"));
  EXPECT_EQ(sent.at("tools"), json::parse(R"([{"type":"function","function":
      {"name":"get_weather","parameters":{"type":"object"}}}])"));
  const json::array& messages = sent.at("messages").as_array();
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0], json::parse(R"({"role":"system","content":"Use tools."})"));
  EXPECT_EQ(messages[2].at("tool_calls").at(0).at("id"), "call_0");
  EXPECT_EQ(messages[3], json::parse(R"({"role":"tool","content":"18C","tool_call_id":"call_0"})"));
  EXPECT_FALSE(sent.as_object().contains("metadata"));

  // What the client got: one function_call item, opened, filled and closed, then completed.
  const auto events = Events(r.body);
  ASSERT_GE(events.size(), 6u);
  EXPECT_EQ(events.front().first, "response.created");
  EXPECT_EQ(events.back().first, "response.completed");
  std::string arguments;
  for (const auto& [name, data] : events) {
    if (name == "response.function_call_arguments.delta") {
      arguments += std::string(data.at("delta").as_string());
    }
  }
  EXPECT_EQ(arguments, FakeOpenAiServer::ToolArguments(0));
  const json::object& done = events.back().second.at("response").as_object();
  EXPECT_EQ(done.at("metadata"), json::parse(R"({"k":"v"})"));
  ASSERT_EQ(done.at("output").as_array().size(), 1u);
  const json::object& call = done.at("output").at(0).as_object();
  EXPECT_EQ(call.at("type"), "function_call");
  EXPECT_EQ(call.at("name"), "get_weather");
  EXPECT_EQ(call.at("arguments").as_string(), FakeOpenAiServer::ToolArguments(0));
  EXPECT_EQ(call.at("status"), "completed");
  EXPECT_EQ(done.at("usage").at("total_tokens").as_int64(),
            done.at("usage").at("input_tokens").as_int64() +
                done.at("usage").at("output_tokens").as_int64());
}

TEST_F(ResponsesApiTest, AnUpstreamThatBreaksOffEndsTheStreamWithResponseFailed) {
  upstream_.SetScenario("close_after=3");
  const HttpResult r = Post(R"({"model":"chat","input":"hi","stream":true})");
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto events = Events(r.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().first, "response.failed");
  const json::object& failed = events.back().second.at("response").as_object();
  EXPECT_EQ(failed.at("status"), "failed");
  EXPECT_FALSE(failed.at("error").at("code").as_string().empty());
  EXPECT_EQ(failed.at("output").at(0).at("content").at(0).at("text").as_string(),
            FakeOpenAiServer::TokenText(3));
  for (const auto& [name, data] : events) EXPECT_NE(name, "response.completed");
}

TEST_F(ResponsesApiTest, ErrorsAreOpenAiErrorsAndNothingIsStored) {
  const HttpResult stateful =
      Post(R"({"model":"chat","input":"hi","previous_response_id":"resp_1"})");
  EXPECT_EQ(stateful.status, 400u);
  EXPECT_EQ(json::parse(stateful.body).at("error").at("code"), "unsupported_parameter");
  EXPECT_EQ(json::parse(stateful.body).at("error").at("param"), "previous_response_id");
  const HttpResult stored = Client().Get("/v1/responses/resp_0123456789abcdef", Auth());
  EXPECT_EQ(stored.status, 404u);
  EXPECT_THAT(stored.body, HasSubstr("not stored"));
  EXPECT_EQ(Client().Get("/v1/responses", Auth()).status, 405u);
  EXPECT_EQ(upstream_.request_count(), 0);
  const HttpResult ok = Post(R"({"model":"chat","input":"hi"})");
  ASSERT_EQ(ok.status, 200u) << ok.body;
  const json::value v = json::parse(ok.body);
  EXPECT_EQ(v.at("status"), "completed");
  EXPECT_EQ(v.at("output").at(0).at("content").at(0).at("text").as_string(),
            FakeOpenAiServer::TokenText(5));
}

// OpenAI's own Responses API upstream (`responses_api`, the default for kind openai): the
// client's body goes to POST /v1/responses as it came, OpenAI's events come back as they
// were sent with the gateway's response id, the client's alias and its metadata; a provider
// without it still gets the chat translation.
class NativeResponsesTest : public ResponsesApiTest {
 protected:
  void SetUp() override {
    SetEnv(kUpstreamKeyEnv, upstream_.api_key());
    ProviderYaml oai = Upstream("oai", "openai", upstream_.base_url(), "[CN]", "{chat: gpt-up}");
    oai.capabilities = "[tools, streaming, json_mode, thinking]";
    ProviderYaml local =
        Upstream("local", "openai_compatible", local_.base_url(), "[CN]", "{chat: qwen-up}");
    local.capabilities = "[tools, streaming, json_mode, thinking]";
    ASSERT_NO_FATAL_FAILURE(
        StartGateway(PolicyYaml({oai, local}, "  - id: all\n    allow: [oai, local]\n")));
  }

  static constexpr const char* kBody =
      R"({"model":"chat","stream":true,"instructions":"Be brief.","store":true,
          "input":[{"role":"user","content":"Why?"},
                   {"type":"reasoning","id":"rs_prev","summary":[],"encrypted_content":"gAAAA"},
                   {"role":"assistant","content":"Because."},
                   {"role":"user","content":"And?"}],
          "reasoning":{"effort":"low","summary":"auto"},"include":["reasoning.encrypted_content"],
          "max_output_tokens":50,"metadata":{"k":"v"}})";

  FakeOpenAiServer local_;
};

TEST_F(NativeResponsesTest, TheClientsBodyGoesToOpenAisResponsesApiAndItsEventsComeBack) {
  upstream_.SetScenario("reasoning=2");
  const HttpResult r = Post(kBody);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "oai");
  ASSERT_TRUE(upstream_.last_request().has_value());
  EXPECT_EQ(upstream_.last_request()->path, "/v1/responses");
  json::object expected = json::parse(kBody).as_object();
  expected["model"] = "gpt-up";
  expected["store"] = false;   // nothing is kept, at the gateway or at OpenAI
  expected.erase("metadata");  // the caller's bookkeeping never leaves the gateway
  EXPECT_EQ(upstream_.last_request_json(), json::value(expected));

  const auto events = Events(r.body);
  ASSERT_GE(events.size(), 8u);
  EXPECT_EQ(events.front().first, "response.created");
  EXPECT_EQ(events.back().first, "response.completed");
  std::string reasoning;
  std::string text;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& [name, data] = events[i];
    EXPECT_EQ(data.at("sequence_number").as_int64(), static_cast<std::int64_t>(i)) << name;
    if (name == "response.reasoning_summary_text.delta") reasoning += data.at("delta").as_string();
    if (name == "response.output_text.delta") text += data.at("delta").as_string();
    if (const json::value* resp = data.if_contains("response")) {
      EXPECT_THAT(std::string(resp->at("id").as_string()), StartsWith("resp_")) << name;
      EXPECT_NE(resp->at("id"), "resp_fake1") << name;
      EXPECT_EQ(resp->at("model"), "chat") << name;
      EXPECT_EQ(resp->at("metadata"), json::parse(R"({"k":"v"})")) << name;
      EXPECT_EQ(resp->at("store"), false) << name;
    }
  }
  EXPECT_EQ(reasoning, FakeOpenAiServer::ReasoningText(2));
  EXPECT_EQ(text, FakeOpenAiServer::TokenText(5));
  // OpenAI's item ids, as it sent them (the translation names its own).
  EXPECT_THAT(r.body, HasSubstr("\"item_id\":\"msg_fake"));
  const json::object& done = events.back().second.at("response").as_object();
  EXPECT_EQ(done.at("usage").at("output_tokens_details").at("reasoning_tokens"), 2);
  EXPECT_EQ(local_.request_count(), 0);
}

TEST_F(NativeResponsesTest, NotStreamedTheResponseObjectComesBackAsSent) {
  json::object body = json::parse(kBody).as_object();
  body["stream"] = false;
  const HttpResult r = Post(json::serialize(body));
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::value resp = json::parse(r.body);
  EXPECT_EQ(resp.at("object"), "response");
  EXPECT_THAT(std::string(resp.at("id").as_string()), StartsWith("resp_"));
  EXPECT_EQ(resp.at("model"), "chat");
  EXPECT_EQ(resp.at("metadata"), json::parse(R"({"k":"v"})"));
  EXPECT_EQ(resp.at("output").at(0).at("id"), "msg_fake1");
  EXPECT_EQ(resp.at("output").at(0).at("content").at(0).at("text").as_string(),
            FakeOpenAiServer::TokenText(5));
  EXPECT_EQ(upstream_.last_request()->path, "/v1/responses");
}

TEST_F(NativeResponsesTest, ABreakAfterOpenAisEventsIsResponseFailedInSequence) {
  upstream_.SetScenario("close_after=3");
  const HttpResult r = Post(R"({"model":"chat","input":"hi","stream":true})");
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto events = Events(r.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back().first, "response.failed");
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].second.at("sequence_number").as_int64(), static_cast<std::int64_t>(i));
    EXPECT_NE(events[i].first, "response.completed");
  }
  const json::object& failed = events.back().second.at("response").as_object();
  EXPECT_EQ(failed.at("status"), "failed");
  EXPECT_EQ(failed.at("model"), "chat");
  EXPECT_EQ(failed.at("error").at("code"), "upstream_connection_failed");  // the cut, named
}

TEST_F(NativeResponsesTest, AFailedAttemptFallsBackToTheTranslation) {
  upstream_.SetScenario("status=500");
  const HttpResult r = Post(kBody);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "local");
  ASSERT_TRUE(local_.last_request().has_value());
  EXPECT_EQ(local_.last_request()->path, "/v1/chat/completions");
  EXPECT_EQ(local_.last_request_json().at("model"), "qwen-up");
  const auto events = Events(r.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().first, "response.completed");
  EXPECT_EQ(events.back().second.at("response").at("model"), "chat");
}

}  // namespace
}  // namespace meridian::testing
