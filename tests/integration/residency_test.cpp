// Residency holds for every request shape (issue 12): personal data anywhere in what goes
// upstream raises the class, evasive spellings are found, duplicated or conflicting signals
// resolve to the most restrictive, two credentials are refused, and images need a vision
// provider and imply personal data. Every assertion is on what a client sees and on the bytes
// the fake upstreams actually received.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tests/fakes/fake_openai_server.h"
#include "tests/integration/serve_fixture.h"
#include "tests/text_forms.h"

namespace meridian::testing {
namespace {

using fakes::FakeOpenAiServer;
using fakes::Profile;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

// A valid synthetic mainland resident ID (GB 11643 check char X) and a Luhn-valid card.
constexpr const char* kResidentId = "11010519491231002X";
constexpr const char* kMobile = "13812345678";

/// us-b (US, vision) is preferred for mainland users too, but G2 narrows personal data of a
/// mainland user to cn-a (CN, no vision); sensitive data without consent is denied. Both take
/// JSON output, so a planted value may sit in a response_format schema.
std::string ResidencyPolicy(const std::string& cn_url, const std::string& us_url) {
  ProviderYaml cn = Upstream("cn-a", "openai", cn_url, "[CN]", "{chat: up-cn, embed: emb-cn}");
  ProviderYaml us = Upstream("us-b", "openai", us_url, "[US]", "{chat: up-us, embed: emb-us}");
  cn.capabilities = "[tools, thinking, streaming, json_mode, embeddings]";
  us.capabilities = "[tools, vision, streaming, json_mode, embeddings]";
  return PolicyYaml({cn, us},
                    "  - id: cn-users\n    when: {region: CN}\n    allow: [us-b, cn-a]\n"
                    "  - id: us-users\n    when: {region: US}\n    allow: [us-b]\n",
                    "  - id: needs-consent\n    when:\n      data_class: sensitive_personal\n"
                    "      consent: {sensitive_separate: false}\n"
                    "    deny: Sensitive personal information needs separate consent.\n"
                    "  - id: G2\n    when:\n      region: CN\n      data_class: \">= personal\"\n"
                    "    narrow:\n      processing_within: [CN]\n");
}

/// A request body with `value` planted in one field (the message text stays harmless).
struct Placement {
  const char* field;
  std::function<json::object(const std::string& value)> body;
};

json::object Base() {
  return json::object{
      {"model", "chat"},
      {"messages", json::array{json::object{{"role", "user"}, {"content", "hello there"}}}}};
}

json::array UserParts(json::array parts) {
  return json::array{json::object{{"role", "user"}, {"content", std::move(parts)}}};
}

std::vector<Placement> Placements() {
  auto tool_turns = [](const std::string& args, const std::string& id) {
    return json::array{
        json::object{{"role", "user"}, {"content", "look it up"}},
        json::object{{"role", "assistant"},
                     {"content", nullptr},
                     {"tool_calls",
                      json::array{json::object{
                          {"id", id},
                          {"type", "function"},
                          {"function", json::object{{"name", "lookup"}, {"arguments", args}}}}}}},
        json::object{{"role", "tool"}, {"tool_call_id", id}, {"content", "found"}}};
  };
  auto tool = [](json::object function) {
    function.emplace("name", "lookup");
    return json::array{json::object{{"type", "function"}, {"function", std::move(function)}}};
  };
  return {
      {"content",
       [](const std::string& v) {
         json::object o = Base();
         o["messages"] = json::array{json::object{{"role", "user"}, {"content", "id " + v}}};
         return o;
       }},
      {"text part",
       [](const std::string& v) {
         json::object o = Base();
         o["messages"] = UserParts({json::object{{"type", "text"}, {"text", v}}});
         return o;
       }},
      {"split across parts",
       [](const std::string& v) {
         std::size_t cut = v.size() / 2;  // on a code point boundary
         while (cut < v.size() && (static_cast<unsigned char>(v[cut]) & 0xC0) == 0x80) ++cut;
         json::object o = Base();
         o["messages"] = UserParts({json::object{{"type", "text"}, {"text", v.substr(0, cut)}},
                                    json::object{{"type", "text"}, {"text", v.substr(cut)}}});
         return o;
       }},
      {"name",
       [](const std::string& v) {
         json::object o = Base();
         o["messages"].as_array()[0].as_object()["name"] = v;
         return o;
       }},
      {"tool_calls arguments",
       [tool_turns](const std::string& v) {
         json::object o = Base();
         o["messages"] = tool_turns("{\"id_number\":\"" + v + "\"}", "call_1");
         return o;
       }},
      {"tool_call_id",
       [tool_turns](const std::string& v) {
         json::object o = Base();
         o["messages"] = tool_turns("{}", "call_" + v);
         return o;
       }},
      {"tools description",
       [tool](const std::string& v) {
         json::object o = Base();
         o["tools"] = tool({{"description", "looks up " + v}});
         return o;
       }},
      {"tools parameters",
       [tool](const std::string& v) {
         json::object o = Base();
         o["tools"] = tool(
             {{"parameters",
               json::object{{"type", "object"},
                            {"properties", json::object{{"id", json::object{{"type", "string"},
                                                                            {"default", v}}}}}}}});
         return o;
       }},
      {"user",
       [](const std::string& v) {
         json::object o = Base();
         o["user"] = v;
         return o;
       }},
      {"stop",
       [](const std::string& v) {
         json::object o = Base();
         o["stop"] = json::array{"END", v};
         return o;
       }},
      {"response_format schema",
       [](const std::string& v) {
         json::object o = Base();
         o["response_format"] = json::object{
             {"type", "json_schema"},
             {"json_schema",
              json::object{{"name", "s"},
                           {"schema", json::object{{"type", "string"}, {"const", v}}}}}};
         return o;
       }},
      {"metadata",
       [](const std::string& v) {
         json::object o = Base();
         o["metadata"] = json::object{{"customer", v}};
         return o;
       }},
      {"unknown extension member",
       [](const std::string& v) {
         json::object o = Base();
         o["x_engine_hint"] = json::object{{"note", v}};
         return o;
       }},
  };
}

class ResidencyTest : public ServeFixture {
 protected:
  void Start() {
    SetEnv(kUpstreamKeyEnv, cn_.api_key());
    ASSERT_NO_FATAL_FAILURE(StartGateway(ResidencyPolicy(cn_.base_url(), us_.base_url())));
  }

  HttpResult Post(const json::object& body, std::map<std::string, std::string> headers = {}) {
    headers.emplace("authorization", std::string("Bearer ") + kTenantKey);
    return Client().Post("/v1/chat/completions", json::serialize(body), headers);
  }

  /// A raw request with the given header lines (duplicates allowed) and the default body.
  std::string RawPost(const std::vector<std::string>& header_lines,
                      const std::string& body = json::serialize(Base())) {
    std::string req =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n";
    for (const auto& l : header_lines) req += l + "\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    RawConnection c(gateway_->port());
    EXPECT_TRUE(c.Send(req));
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (c.Read(1s, out) == RawConnection::ReadResult::kClosed) break;
    }
    return out;
  }

  static std::string AuthLine(const char* key = kTenantKey) {
    return std::string("Authorization: Bearer ") + key;
  }

  /// Every body either fake received, concatenated.
  std::string AllUpstreamBytes(const FakeOpenAiServer& fake) const {
    std::string all;
    for (const auto& r : fake.requests()) all += r.body + "\n";
    return all;
  }

  FakeOpenAiServer cn_;
  FakeOpenAiServer us_{fakes::FakeServerOptions{}};
};

/// The same, for a Responses API body (POST /v1/responses): every field it sends upstream.
std::vector<Placement> ResponsesPlacements() {
  auto base = [] { return json::object{{"model", "chat"}, {"input", "hello there"}}; };
  auto call_turns = [](const std::string& args, const std::string& call_id,
                       const std::string& output) {
    return json::array{
        json::object{{"role", "user"}, {"content", "look it up"}},
        json::object{{"type", "function_call"},
                     {"call_id", call_id},
                     {"name", "lookup"},
                     {"arguments", args}},
        json::object{{"type", "function_call_output"}, {"call_id", call_id}, {"output", output}}};
  };
  return {
      {"input string",
       [base](const std::string& v) {
         json::object o = base();
         o["input"] = "id " + v;
         return o;
       }},
      {"input_text part",
       [base](const std::string& v) {
         json::object o = base();
         o["input"] = json::array{json::object{
             {"role", "user"},
             {"content", json::array{json::object{{"type", "input_text"}, {"text", v}}}}}};
         return o;
       }},
      {"instructions",
       [base](const std::string& v) {
         json::object o = base();
         o["instructions"] = "the user is " + v;
         return o;
       }},
      {"function_call arguments",
       [base, call_turns](const std::string& v) {
         json::object o = base();
         o["input"] = call_turns("{\"id_number\":\"" + v + "\"}", "call_1", "found");
         return o;
       }},
      {"function_call call_id",
       [base, call_turns](const std::string& v) {
         json::object o = base();
         o["input"] = call_turns("{}", "call_" + v, "found");
         return o;
       }},
      {"function_call_output",
       [base, call_turns](const std::string& v) {
         json::object o = base();
         o["input"] = call_turns("{}", "call_1", "the holder is " + v);
         return o;
       }},
      {"function tool description",
       [base](const std::string& v) {
         json::object o = base();
         o["tools"] = json::array{
             json::object{{"type", "function"}, {"name", "lookup"}, {"description", "for " + v}}};
         return o;
       }},
      {"text.format schema",
       [base](const std::string& v) {
         json::object o = base();
         o["text"] = json::object{
             {"format", json::object{{"type", "json_schema"},
                                     {"name", "s"},
                                     {"schema", json::object{{"type", "string"}, {"const", v}}}}}};
         return o;
       }},
      {"user",
       [base](const std::string& v) {
         json::object o = base();
         o["user"] = v;
         return o;
       }},
  };
}

TEST_F(ResidencyTest, BaselineUnclassifiedDataGoesToThePreferredUsProvider) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const HttpResult r = Post(Base(), {{"x-meridian-data-class", "none"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "us-b");
}

// The case from the report: the ID in tool-call arguments with data class none reached the US
// provider. Now every field is scanned: sensitive data without consent is refused, and neither
// upstream receives a byte of it.
TEST_F(ResidencyTest, ResidentIdInEveryOutboundFieldIsRefusedAndNeverSent) {
  ASSERT_NO_FATAL_FAILURE(Start());
  for (const auto& p : Placements()) {
    const HttpResult r = Post(p.body(kResidentId), {{"x-meridian-data-class", "none"}});
    ExpectOpenAiError(r, 403, "policy_denied", "denied_by_guard:needs-consent");
    EXPECT_EQ(r.header("x-meridian-data-class-raised"), "sensitive_personal; by=cn_resident_id")
        << p.field;
  }
  EXPECT_EQ(cn_.request_count(), 0);
  EXPECT_EQ(us_.request_count(), 0);
}

// Personal data (a mobile number) anywhere: a mainland user's request is narrowed to the CN
// provider; the US provider never sees it.
TEST_F(ResidencyTest, MobileInEveryOutboundFieldStaysOnTheMainland) {
  ASSERT_NO_FATAL_FAILURE(Start());
  for (const auto& p : Placements()) {
    const HttpResult r = Post(p.body(kMobile), {{"x-meridian-data-class", "none"}});
    ASSERT_EQ(r.status, 200u) << p.field << ": " << r.body;
    EXPECT_EQ(r.header("x-meridian-provider"), "cn-a") << p.field;
  }
  EXPECT_EQ(us_.request_count(), 0);
  EXPECT_THAT(AllUpstreamBytes(us_), Not(HasSubstr(kMobile)));
}

// The Responses API is decoded onto the same request: every field it sends is scanned too.
TEST_F(ResidencyTest, EveryResponsesApiFieldIsClassifiedLikeChat) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto post = [this](const json::object& body) {
    return Client().Post("/v1/responses", json::serialize(body),
                         {{"authorization", std::string("Bearer ") + kTenantKey},
                          {"x-meridian-data-class", "none"}});
  };
  for (const auto& p : ResponsesPlacements()) {
    const HttpResult id = post(p.body(kResidentId));
    ExpectOpenAiError(id, 403, "policy_denied", "denied_by_guard:needs-consent");
    EXPECT_EQ(id.header("x-meridian-data-class-raised"), "sensitive_personal; by=cn_resident_id")
        << p.field;
    const HttpResult mobile = post(p.body(kMobile));
    ASSERT_EQ(mobile.status, 200u) << p.field << ": " << mobile.body;
    EXPECT_EQ(mobile.header("x-meridian-provider"), "cn-a") << p.field;
    EXPECT_EQ(json::parse(mobile.body).at("object"), "response") << p.field;
  }
  EXPECT_EQ(us_.request_count(), 0);
  EXPECT_THAT(AllUpstreamBytes(cn_), Not(HasSubstr(kResidentId)));
  // metadata is echoed to the caller, never sent: it raises nothing and reaches no one.
  json::object meta{{"model", "chat"}, {"input", "hello there"}};
  meta["metadata"] = json::object{{"customer", kResidentId}};
  const HttpResult echoed = post(meta);
  ASSERT_EQ(echoed.status, 200u) << echoed.body;
  EXPECT_EQ(echoed.header("x-meridian-provider"), "us-b");
  EXPECT_EQ(json::parse(echoed.body).at("metadata").at("customer"), kResidentId);
  EXPECT_THAT(AllUpstreamBytes(us_), Not(HasSubstr(kResidentId)));
}

// And for the Anthropic Messages API (POST /v1/messages, x-api-key).
TEST_F(ResidencyTest, EveryMessagesApiFieldIsClassifiedLikeChat) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto body = [](const std::string& field, const std::string& v) {
    json::object o{{"model", "chat"}, {"max_tokens", 64}};
    json::array messages{json::object{{"role", "user"}, {"content", "hello there"}}};
    if (field == "system") o["system"] = "the user is " + v;
    if (field == "text block") {
      messages = json::array{json::object{
          {"role", "user"},
          {"content", json::array{json::object{{"type", "text"}, {"text", "id " + v}}}}}};
    }
    if (field == "tool_use input" || field == "tool_result content") {
      const bool in_input = field == "tool_use input";
      messages = json::array{
          json::object{{"role", "user"}, {"content", "look it up"}},
          json::object{{"role", "assistant"},
                       {"content", json::array{json::object{
                                       {"type", "tool_use"},
                                       {"id", "toolu_1"},
                                       {"name", "lookup"},
                                       {"input", json::object{{"id", in_input ? v : "x"}}}}}}},
          json::object{{"role", "user"},
                       {"content", json::array{json::object{
                                       {"type", "tool_result"},
                                       {"tool_use_id", "toolu_1"},
                                       {"content", in_input ? std::string("found") : v}}}}}};
    }
    if (field == "tool description") {
      o["tools"] = json::array{json::object{{"name", "lookup"},
                                            {"description", "for " + v},
                                            {"input_schema", json::object{{"type", "object"}}}}};
    }
    if (field == "metadata.user_id") o["metadata"] = json::object{{"user_id", v}};
    if (field == "thinking block") {  // sent only to an Anthropic upstream, as it came
      messages = json::array{
          json::object{{"role", "user"}, {"content", "hi"}},
          json::object{{"role", "assistant"},
                       {"content", json::array{json::object{{"type", "thinking"},
                                                            {"thinking", "the user is " + v},
                                                            {"signature", "EqQB"}},
                                               json::object{{"type", "text"}, {"text", "Hi."}}}}},
          json::object{{"role", "user"}, {"content", "go on"}}};
    }
    o["messages"] = std::move(messages);
    return o;
  };
  auto post = [this](const json::object& o) {
    return Client().Post("/v1/messages", json::serialize(o),
                         {{"x-api-key", kTenantKey}, {"x-meridian-data-class", "none"}});
  };
  for (const char* field : {"system", "text block", "tool_use input", "tool_result content",
                            "tool description", "metadata.user_id", "thinking block"}) {
    const HttpResult id = post(body(field, kResidentId));
    EXPECT_EQ(id.status, 403u) << field << ": " << id.body;
    EXPECT_EQ(json::parse(id.body).at("error").at("type"), "permission_error") << field;
    EXPECT_EQ(id.header("x-meridian-data-class-raised"), "sensitive_personal; by=cn_resident_id")
        << field;
    const HttpResult mobile = post(body(field, kMobile));
    ASSERT_EQ(mobile.status, 200u) << field << ": " << mobile.body;
    EXPECT_EQ(mobile.header("x-meridian-provider"), "cn-a") << field;
    EXPECT_EQ(json::parse(mobile.body).at("type"), "message") << field;
  }
  EXPECT_EQ(us_.request_count(), 0);
  EXPECT_THAT(AllUpstreamBytes(cn_), Not(HasSubstr(kResidentId)));
}

TEST_F(ResidencyTest, EvasiveSpellingsAreFound) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string id = kResidentId;
  const std::string zwsp = "\xE2\x80\x8B";
  const std::vector<std::string> sensitive = {
      FullWidth(id),
      id.substr(0, 6) + zwsp + id.substr(6),
      "ID" + id + "abc",
      id.substr(0, 6) + " " + id.substr(6, 8) + " " + id.substr(14),
      id.substr(0, 6) + "-" + id.substr(6, 8) + "-" + id.substr(14),
      "card " + FullWidth("4111111111111111"),
  };
  for (const auto& text : sensitive) {
    json::object o = Base();
    o["messages"] = json::array{json::object{{"role", "user"}, {"content", text}}};
    const HttpResult r = Post(o, {{"x-meridian-data-class", "none"}});
    ExpectOpenAiError(r, 403, "policy_denied", "denied_by_guard:needs-consent");
  }
  for (const std::string text :
       {"mail alice(at)example.com", "alice [at] example [dot] com", "alice at example dot com"}) {
    json::object o = Base();
    o["messages"] = json::array{json::object{{"role", "user"}, {"content", text}}};
    const HttpResult r = Post(o, {{"x-meridian-data-class", "none"}});
    ASSERT_EQ(r.status, 200u) << text << ": " << r.body;
    EXPECT_EQ(r.header("x-meridian-provider"), "cn-a") << text;
    EXPECT_EQ(r.header("x-meridian-data-class-raised"), "personal; by=email") << text;
  }
  EXPECT_EQ(us_.request_count(), 0);
}

// Reference §3.1: conflicting signals resolve to the most restrictive value, and are counted.
TEST_F(ResidencyTest, DuplicatedRegionHeadersResolveToTheMostRestrictive) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // Personal (the default class) from a US user goes to us-b; as a CN user, to cn-a.
  const std::string us_only = RawPost({AuthLine(), "x-meridian-user-region: US"});
  EXPECT_THAT(us_only, HasSubstr("x-meridian-provider: us-b"));
  const std::string both =
      RawPost({AuthLine(), "x-meridian-user-region: US", "x-meridian-user-region: CN"});
  EXPECT_THAT(both, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(both, HasSubstr("x-meridian-provider: cn-a"));
  const std::string listed = RawPost({AuthLine(), "x-meridian-user-region: US, CN"});
  EXPECT_THAT(listed, HasSubstr("x-meridian-provider: cn-a"));
  EXPECT_EQ(MetricValue(Metrics(), "meridian_conflicting_signals_total"), 2);
}

TEST_F(ResidencyTest, DuplicatedDataClassAndConsentHeadersResolveToTheMostRestrictive) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string raised = RawPost(
      {AuthLine(), "x-meridian-data-class: none", "x-meridian-data-class: sensitive_personal"});
  EXPECT_THAT(raised, HasSubstr("HTTP/1.1 403"));
  EXPECT_THAT(raised, HasSubstr("denied_by_guard:needs-consent"));
  const std::string consent_withdrawn =
      RawPost({AuthLine(), "x-meridian-data-class: sensitive_personal",
               "x-meridian-consent: sensitive_separate", "x-meridian-consent: "});
  EXPECT_THAT(consent_withdrawn, HasSubstr("HTTP/1.1 403"));
  const std::string consent_both =
      RawPost({AuthLine(), "x-meridian-data-class: sensitive_personal",
               "x-meridian-consent: sensitive_separate", "x-meridian-consent: sensitive_separate"});
  EXPECT_THAT(consent_both, HasSubstr("HTTP/1.1 200"));
  EXPECT_EQ(MetricValue(Metrics(), "meridian_conflicting_signals_total"), 2);
  EXPECT_EQ(us_.request_count(), 0);
}

TEST_F(ResidencyTest, TwoCredentialsAreRefusedWith400) {
  ASSERT_NO_FATAL_FAILURE(Start());
  for (const auto& lines : std::vector<std::vector<std::string>>{
           {AuthLine(), AuthLine(kOtherTenantKey)},
           {AuthLine(), AuthLine()},
           {AuthLine(), std::string("api-key: ") + kTenantKey},
           {AuthLine(), std::string("x-api-key: ") + kOtherTenantKey}}) {
    const std::string r = RawPost(lines);
    EXPECT_THAT(r, HasSubstr("HTTP/1.1 400"));
    EXPECT_THAT(r, HasSubstr("\"code\":\"multiple_credentials\""));
  }
  EXPECT_EQ(MetricValue(Metrics(), "meridian_multiple_credentials_total"), 4);
  EXPECT_EQ(cn_.request_count() + us_.request_count(), 0);
}

json::object WithImage(const std::string& url) {
  json::object o = Base();
  o["messages"] =
      UserParts({json::object{{"type", "text"}, {"text", "what is in this photo?"}},
                 json::object{{"type", "image_url"}, {"image_url", json::object{{"url", url}}}}});
  return o;
}

TEST_F(ResidencyTest, ImagesNeedVisionAndImplyPersonalData) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // A mainland user's image is personal (settings.image_data_class), so G2 keeps it on cn-a,
  // which has no vision: refused, naming the capability.
  const HttpResult cn =
      Post(WithImage("https://img.example/a.png"), {{"x-meridian-data-class", "none"}});
  ExpectOpenAiError(cn, 403, "policy_denied", "capability_unavailable_in_allowed_set");
  EXPECT_THAT(ErrorMessage(cn), HasSubstr("'vision'"));
  EXPECT_EQ(cn.header("x-meridian-data-class-raised"), "personal; by=image");
  // A US user's image goes to the vision provider, with the image part intact.
  const HttpResult us = Post(WithImage("data:image/png;base64,iVBORw0KGgo="),
                             {{"x-meridian-data-class", "none"}, {kRegionHeader, "US"}});
  ASSERT_EQ(us.status, 200u) << us.body;
  EXPECT_EQ(us.header("x-meridian-provider"), "us-b");
  EXPECT_THAT(us_.last_request_body(), HasSubstr("data:image/png;base64,iVBORw0KGgo="));
  EXPECT_EQ(cn_.request_count(), 0);
}

// Embeddings are decided like chat: what retrieval embeds (a user's documents) is exactly the
// text residency law is about. A planted identifier in any input, and token ids (which no
// classifier can read), keep a mainland user's request in CN.
TEST_F(ResidencyTest, EmbeddingsInputsAreClassifiedLikeMessages) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto embed = [&](const json::value& input) {
    auto headers = Auth();
    headers["x-meridian-data-class"] = "none";
    return Client().Post("/v1/embeddings",
                         json::serialize(json::object{{"model", "embed"}, {"input", input}}),
                         headers);
  };
  // Harmless text: the preferred provider, abroad.
  const HttpResult plain = embed(json::array{"the weather", "a recipe"});
  ASSERT_EQ(plain.status, 200u) << plain.body;
  EXPECT_EQ(plain.header("x-meridian-provider"), "us-b");
  EXPECT_EQ(plain.header("x-meridian-policy-rule"), "cn-users");
  EXPECT_EQ(plain.header("x-meridian-data-class-raised"), "");
  EXPECT_EQ(cn_.request_count(), 0);
  for (const auto& [what, input, by] :
       std::vector<std::tuple<std::string, json::value, std::string>>{
           {"the only input", json::value(std::string("call ") + kMobile), "cn_mobile"},
           {"the second input", json::array{"the weather", std::string("tel:") + kMobile},
            "cn_mobile"},
           {"a sensitive identifier", json::array{"a", "b", std::string("id ") + kResidentId},
            "cn_resident_id"},
           {"token ids", json::array{json::array{15339, 1917}}, "tokens"},
       }) {
    SCOPED_TRACE(what);
    cn_.ResetObservations();
    us_.ResetObservations();
    const HttpResult r = embed(input);
    if (by == "cn_resident_id") {
      // Sensitive without separate consent: denied, and nothing leaves.
      ExpectOpenAiError(r, 403, "policy_denied", "denied_by_guard:needs-consent");
      EXPECT_EQ(cn_.request_count() + us_.request_count(), 0);
      continue;
    }
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.header("x-meridian-provider"), "cn-a");
    EXPECT_EQ(r.header("x-meridian-data-class-raised"), "personal; by=" + by);
    EXPECT_THAT(r.header("x-meridian-policy-guards"), HasSubstr("G2"));
    EXPECT_EQ(us_.request_count(), 0);
    const json::value sent = cn_.last_request_json();
    EXPECT_EQ(sent.at("model"), "emb-cn");
    EXPECT_EQ(sent.at("input"), input.is_string() ? json::value(json::array{input}) : input);
  }
}

TEST_F(ResidencyTest, UnknownContentPartTypeIs400) {
  ASSERT_NO_FATAL_FAILURE(Start());
  json::object o = Base();
  o["messages"] = UserParts({json::object{{"type", "hologram"}, {"data", "x"}}});
  const HttpResult r = Post(o);
  ExpectOpenAiError(r, 400, "invalid_request_error", "invalid_value",
                    "messages[0].content[0].type");
  EXPECT_EQ(cn_.request_count() + us_.request_count(), 0);
}

// An adapter that cannot send a part refuses before sending, naming the part; it never drops
// it (DashScope and Anthropic take images, not audio).
TEST_F(ResidencyTest, AdaptersThatCannotSendAPartRefuseInsteadOfDroppingIt) {
  auto with_audio = [] {
    json::object o = Base();
    o["messages"] = UserParts(
        {json::object{{"type", "text"}, {"text", "transcribe"}},
         json::object{{"type", "input_audio"},
                      {"input_audio", json::object{{"data", "AAAA"}, {"format", "wav"}}}}});
    return o;
  };
  for (const auto& [kind, profile, body, part] :
       std::vector<std::tuple<std::string, Profile, json::object, std::string>>{
           {"dashscope", Profile::kDashScope, with_audio(), "input_audio"},
           {"anthropic", Profile::kAnthropic, with_audio(), "input_audio"}}) {
    fakes::FakeServerOptions options;
    options.profile = profile;
    FakeOpenAiServer vendor(options);
    SetEnv(kUpstreamKeyEnv, vendor.api_key());
    ProviderYaml p = Upstream("vendor", kind, vendor.base_url(), "[US]", "{chat: up}");
    p.capabilities = "[tools, vision, streaming]";  // as an operator might declare it
    ASSERT_NO_FATAL_FAILURE(StartGateway(PolicyYaml({p}, "  - id: all\n    allow: [vendor]\n")));
    const HttpResult r = Post(body);
    ExpectOpenAiError(r, 400, "invalid_request_error", "unsupported_content_part",
                      "messages[0].content[1].type");
    EXPECT_THAT(ErrorMessage(r), HasSubstr(part));
    EXPECT_EQ(vendor.request_count(), 0) << kind;
    gateway_->Stop();
    gateway_.reset();
  }
}

// DashScope takes images through its multimodal API (Qwen-VL): every message's content as
// items, the image as {"image": url}; the answer's item content read back as text.
TEST_F(ResidencyTest, DashScopeGetsImagesThroughItsMultimodalApi) {
  fakes::FakeServerOptions options;
  options.profile = Profile::kDashScope;
  FakeOpenAiServer vendor(options);
  SetEnv(kUpstreamKeyEnv, vendor.api_key());
  ProviderYaml p = Upstream("ds", "dashscope", vendor.base_url(), "[CN]", "{chat: qwen-vl-max}");
  p.capabilities = "[vision, streaming]";
  ASSERT_NO_FATAL_FAILURE(StartGateway(PolicyYaml({p}, "  - id: all\n    allow: [ds]\n")));
  for (const bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "stream" : "json");
    json::object body = WithImage("data:image/png;base64,iVBORw0KGgo=");
    body["messages"].as_array().insert(
        body["messages"].as_array().begin(),
        json::object{{"role", "system"}, {"content", "Describe images briefly."}});
    if (stream) body["stream"] = true;
    const HttpResult r = Post(body);
    ASSERT_EQ(r.status, 200u) << r.body;
    const std::string text =
        stream
            ? ParseStream(r.body).content
            : std::string(
                  json::parse(r.body).at("choices").at(0).at("message").at("content").as_string());
    EXPECT_EQ(text, FakeOpenAiServer::TokenText(5));
    const auto last = vendor.last_request();
    ASSERT_TRUE(last);
    EXPECT_EQ(last->path, "/api/v1/services/aigc/multimodal-generation/generation");
    const json::value sent = json::parse(last->body);
    const json::array& messages = sent.at("input").at("messages").as_array();
    EXPECT_EQ(messages[0].at("content"), json::parse(R"([{"text":"Describe images briefly."}])"));
    EXPECT_EQ(messages[1].at("content"), json::parse(R"([{"text":"what is in this photo?"},
                              {"image":"data:image/png;base64,iVBORw0KGgo="}])"));
  }
  // Without an image, the text-generation API as before.
  const HttpResult plain = Post(Base());
  ASSERT_EQ(plain.status, 200u) << plain.body;
  EXPECT_EQ(vendor.last_request()->path, "/api/v1/services/aigc/text-generation/generation");
}

// Anthropic takes images: a URL as a url source, a data: URL as a base64 source, in the
// order the parts came.
TEST_F(ResidencyTest, AnthropicGetsImagesAsImageBlocks) {
  fakes::FakeServerOptions options;
  options.profile = Profile::kAnthropic;
  FakeOpenAiServer vendor(options);
  SetEnv(kUpstreamKeyEnv, vendor.api_key());
  ProviderYaml p = Upstream("anth", "anthropic", vendor.base_url(), "[US]", "{chat: claude}");
  p.capabilities = "[vision]";
  ASSERT_NO_FATAL_FAILURE(StartGateway(PolicyYaml({p}, "  - id: all\n    allow: [anth]\n")));
  for (const std::string& url : {std::string("https://img.example/a.png"),
                                 std::string("data:image/png;base64,iVBORw0KGgo=")}) {
    SCOPED_TRACE(url);
    const HttpResult r = Post(WithImage(url), {{kRegionHeader, "US"}});
    ASSERT_EQ(r.status, 200u) << r.body;
    const json::value sent = vendor.last_request_json();
    const json::array& blocks = sent.at("messages").at(0).at("content").as_array();
    ASSERT_EQ(blocks.size(), 2u);
    EXPECT_EQ(blocks[0].at("type"), "text");
    EXPECT_EQ(blocks[1].at("type"), "image");
    const json::object& source = blocks[1].at("source").as_object();
    if (url.starts_with("https")) {
      EXPECT_EQ(source.at("type"), "url");
      EXPECT_EQ(source.at("url"), json::value(url));
    } else {
      EXPECT_EQ(source.at("type"), "base64");
      EXPECT_EQ(source.at("media_type"), "image/png");
      EXPECT_EQ(source.at("data"), "iVBORw0KGgo=");
    }
  }
}

// Randomised: random PII kinds in random fields, random class/consent/region headers, random
// upstream faults. Invariants: a sensitive plant without consent is always refused and sent
// nowhere; a personal plant from a mainland user never reaches the US provider; every answer
// came from a provider of the decision's route.
TEST_F(ResidencyTest, RandomisedPlacementsNeverLeaveTheAllowedSet) {
  ASSERT_NO_FATAL_FAILURE(Start());
  std::mt19937 rng(20261202);
  const std::vector<Placement> placements = Placements();
  struct Kind {
    std::string value;
    bool sensitive;
  };
  const std::vector<Kind> kinds = {{kResidentId, true},           {FullWidth(kResidentId), true},
                                   {"4111 1111 1111 1111", true}, {kMobile, false},
                                   {"bob(at)example.com", false}, {"carol@example.org", false}};
  int refused = 0, served_cn = 0, served_us = 0, failed = 0;
  const int n = 240;
  for (int i = 0; i < n; ++i) {
    const Kind& kind = kinds[rng() % kinds.size()];
    const Placement& place = placements[rng() % placements.size()];
    const bool consent = rng() % 4 == 0;
    const bool us_user = rng() % 3 == 0;
    cn_.ClearScenarios();
    us_.ClearScenarios();
    if (rng() % 12 == 0) cn_.PushScenario("status=503");
    if (rng() % 12 == 0) us_.PushScenario("status=503");
    std::map<std::string, std::string> headers = {{"x-meridian-data-class", "none"}};
    if (consent) headers["x-meridian-consent"] = "sensitive_separate";
    if (us_user) headers[kRegionHeader] = "US";
    const int us_before = us_.request_count();
    const HttpResult r = Post(place.body(kind.value), headers);
    const bool us_got = us_.request_count() > us_before;
    if (kind.sensitive && !consent) {
      EXPECT_EQ(r.status, 403u) << place.field << " " << kind.value << ": " << r.body;
      EXPECT_FALSE(us_got);
      ++refused;
      continue;
    }
    if (!us_user) {
      EXPECT_FALSE(us_got) << place.field << " " << kind.value;
    }
    if (r.status == 200) {
      const std::string provider = r.header("x-meridian-provider");
      EXPECT_EQ(provider, us_user ? "us-b" : "cn-a") << place.field << " " << kind.value;
      (provider == "cn-a" ? served_cn : served_us)++;
    } else {
      EXPECT_TRUE(r.status == 503 || r.status == 502)
          << r.status << " " << place.field << " " << kind.value << ": " << r.body;
      ++failed;
    }
  }
  EXPECT_EQ(refused + served_cn + served_us + failed, n);
  EXPECT_GT(refused, 0);
  EXPECT_GT(served_cn, 0);
  EXPECT_GT(served_us, 0);
  std::printf(
      "randomised residency: %d requests, %d refused, %d served by cn-a, %d by us-b, "
      "%d failed under injected faults\n",
      n, refused, served_cn, served_us, failed);
}

}  // namespace
}  // namespace meridian::testing
