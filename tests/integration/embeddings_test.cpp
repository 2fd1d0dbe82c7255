// POST /v1/embeddings through the real `meridian serve`, against every provider kind that has
// an embeddings API (real servers on loopback speaking each vendor's wire): vectors in input
// order whatever order they arrive in, base64 for the OpenAI SDKs' default, token ids where
// the vendor takes them, the `embeddings` capability, fallback within the decision, errors in
// OpenAI's shape.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tests/fakes/fake_openai_server.h"
#include "tests/integration/serve_fixture.h"

namespace meridian::testing {
namespace {

using fakes::FakeOpenAiServer;
using fakes::FakeServerOptions;
using fakes::Profile;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

/// The vector of item `i` of an embeddings answer, from floats or base64 float32.
std::vector<float> VectorAt(const json::value& answer, std::size_t i) {
  const json::value& e = answer.at("data").at(i).at("embedding");
  std::vector<float> out;
  if (e.is_array()) {
    for (const json::value& x : e.get_array())
      out.push_back(static_cast<float>(x.to_number<double>()));
    return out;
  }
  // Decoded here by hand, as a client would (not with the gateway's own decoder).
  const std::string text(e.as_string());
  std::string bytes;
  int bits = 0;
  std::uint32_t acc = 0;
  for (char c : text) {
    if (c == '=') break;
    const char* pos =
        std::strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", c);
    acc = (acc << 6) | static_cast<std::uint32_t>(pos -
                                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
                                                  "klmnopqrstuvwxyz0123456789+/");
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  out.resize(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);  // little-endian host
  return out;
}

class EmbeddingsTest : public ServeFixture {
 protected:
  HttpResult Embed(const json::object& body) {
    return Client().Post("/v1/embeddings", json::serialize(body), Auth());
  }
  static json::object Body(const std::string& model, json::value input) {
    return json::object{{"model", model}, {"input", std::move(input)}};
  }
};

TEST_F(EmbeddingsTest, TheSimGivesDeterministicUnitVectorsAndDecides) {
  ProviderYaml sim = Sim("local", "[CN]", "{embed: sim-embed, chat: sim}", 3);
  sim.capabilities = "[embeddings]";
  ProviderYaml chat_only = Sim("chat-only", "[CN]", "{chat-only: sim}", 3);
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      PolicyYaml({sim, chat_only}, "  - id: everyone\n    allow: [local, chat-only]\n")));

  json::object body = Body("embed", json::array{"the cat sat", "the cat sat", "stock prices"});
  body["dimensions"] = 32;
  const HttpResult r = Embed(body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "local");
  EXPECT_EQ(r.header("x-meridian-policy-rule"), "everyone");
  const json::value v = json::parse(r.body);
  EXPECT_EQ(v.at("object"), "list");
  EXPECT_EQ(v.at("model"), "embed");
  ASSERT_EQ(v.at("data").as_array().size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(v.at("data").at(i).at("index"), static_cast<std::int64_t>(i));
    EXPECT_EQ(v.at("data").at(i).at("object"), "embedding");
    const std::vector<float> x = VectorAt(v, i);
    ASSERT_EQ(x.size(), 32u);
    double norm = 0;
    for (float f : x) norm += static_cast<double>(f) * f;
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
  EXPECT_EQ(VectorAt(v, 0), VectorAt(v, 1));  // same text, same vector
  EXPECT_NE(VectorAt(v, 0), VectorAt(v, 2));
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), 8);  // words
  EXPECT_EQ(v.at("usage").at("total_tokens"), 8);

  // The same vectors as base64 (what the OpenAI SDKs ask for by default).
  body["encoding_format"] = "base64";
  const HttpResult b = Embed(body);
  ASSERT_EQ(b.status, 200u) << b.body;
  const json::value bv = json::parse(b.body);
  EXPECT_TRUE(bv.at("data").at(0).at("embedding").is_string());
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(VectorAt(bv, i), VectorAt(v, i));

  // A model no provider with `embeddings` serves: refused, naming the capability.
  const HttpResult denied = Embed(Body("chat-only", "hello"));
  EXPECT_EQ(denied.status, 403u) << denied.body;
  EXPECT_THAT(denied.body, HasSubstr("'embeddings'"));
  EXPECT_EQ(Embed(Body("nope", "hello")).status, 404u);
  // Bad input is the client's 400, in OpenAI's shape.
  const HttpResult bad = Embed(Body("embed", json::array{}));
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(json::parse(bad.body).at("error").at("param"), "input");
  EXPECT_EQ(Client().Get("/v1/embeddings", Auth()).status, 405u);
  EXPECT_EQ(Client().Post("/v1/embeddings", json::serialize(Body("embed", "x")), {}).status, 401u);
}

/// One upstream of `profile` behind the gateway as provider `up` of `kind`.
struct Vendor {
  Profile profile;
  const char* kind;
  std::vector<std::string> extra;
  bool tokens;  ///< the vendor takes token ids
};

class EmbeddingsVendorTest : public EmbeddingsTest, public ::testing::WithParamInterface<Vendor> {};

TEST_P(EmbeddingsVendorTest, VectorsComeBackInInputOrderAsTheClientAskedForThem) {
  const Vendor& vendor = GetParam();
  FakeServerOptions options;
  options.profile = vendor.profile;
  options.prompt_tokens = 3;
  FakeOpenAiServer up(options);
  SetEnv(kUpstreamKeyEnv, up.api_key());
  const std::string endpoint = vendor.profile == Profile::kAzure ? up.origin() : up.base_url();
  ProviderYaml p = Upstream("up", vendor.kind, endpoint, "[CN]", "{embed: emb-up}",
                            up.api_key().empty() ? "" : kUpstreamKeyEnv);
  p.capabilities = "[embeddings]";
  p.extra = vendor.extra;
  ASSERT_NO_FATAL_FAILURE(StartGateway(PolicyYaml({p}, "  - id: all\n    allow: [up]\n")));

  for (const bool base64 : {false, true}) {
    SCOPED_TRACE(base64 ? "base64" : "float");
    json::object body = Body("embed", json::array{"first text", "second", "third one"});
    body["dimensions"] = 5;
    if (base64) body["encoding_format"] = "base64";
    const HttpResult r = Embed(body);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.header("x-meridian-provider"), "up");
    const json::value v = json::parse(r.body);
    EXPECT_EQ(v.at("model"), "embed");
    ASSERT_EQ(v.at("data").as_array().size(), 3u);
    const char* texts[] = {"first text", "second", "third one"};
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_THAT(VectorAt(v, i), ElementsAreArray(FakeOpenAiServer::EmbeddingOf(texts[i], 5)));
    }
    EXPECT_EQ(v.at("usage").at("total_tokens"), 9);
    // The upstream is always asked for what the gateway reads: floats.
    const json::value sent = up.last_request_json();
    if (vendor.profile == Profile::kDashScope) {
      EXPECT_EQ(sent.at("input").at("texts").as_array().size(), 3u);
      EXPECT_EQ(sent.at("parameters").at("dimension"), 5);
    } else {
      EXPECT_EQ(sent.at("encoding_format"), "float");
      EXPECT_EQ(sent.at("dimensions"), 5);
    }
  }

  // Token ids: sent where the vendor takes them, refused before sending where it does not.
  up.ResetObservations();
  const HttpResult t = Embed(Body("embed", json::array{json::array{1, 2}, json::array{3}}));
  if (vendor.tokens) {
    ASSERT_EQ(t.status, 200u) << t.body;
    EXPECT_THAT(VectorAt(json::parse(t.body), 1),
                ElementsAreArray(FakeOpenAiServer::EmbeddingOf("3", 8)));
  } else {
    EXPECT_EQ(t.status, 400u) << t.body;
    EXPECT_THAT(t.body, HasSubstr("token ids"));
    EXPECT_EQ(up.request_count(), 0);
  }

  // More inputs than one DashScope call takes (10): sent as calls of 10, answered as one list.
  up.ResetObservations();
  json::array many;
  for (int i = 0; i < 23; ++i) many.emplace_back("t" + std::to_string(i));
  const HttpResult r = Embed(Body("embed", many));
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::value all = json::parse(r.body);
  ASSERT_EQ(all.at("data").as_array().size(), 23u);
  for (std::size_t i = 0; i < 23; ++i) {
    EXPECT_EQ(all.at("data").at(i).at("index"), static_cast<std::int64_t>(i));
    EXPECT_THAT(VectorAt(all, i),
                ElementsAreArray(FakeOpenAiServer::EmbeddingOf("t" + std::to_string(i), 8)));
  }
  EXPECT_EQ(all.at("usage").at("total_tokens"), 23 * 3);
  EXPECT_EQ(up.requests_started(), vendor.profile == Profile::kDashScope ? 3 : 1);

  // A failing batch fails the whole request (nothing half-answered).
  if (vendor.profile == Profile::kDashScope) {
    up.PushScenario("reset");
    up.PushScenario("status=400");
    const HttpResult failed = Embed(Body("embed", many));
    EXPECT_EQ(failed.status, 400u) << failed.body;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Vendors, EmbeddingsVendorTest,
    ::testing::Values(Vendor{Profile::kOpenAi, "openai", {}, true},
                      Vendor{
                          Profile::kAzure, "azure_openai", {"api_version: \"2024-10-21\""}, true},
                      Vendor{Profile::kVllm, "openai_compatible", {}, true},
                      Vendor{Profile::kLlamaCpp, "openai_compatible", {}, true},
                      Vendor{Profile::kDashScope, "dashscope", {}, false}),
    [](const ::testing::TestParamInfo<Vendor>& param) {
      return std::string(fakes::ProfileName(param.param.profile));
    });

TEST_F(EmbeddingsTest, AFailingProviderFallsBackWithinTheDecisionOnly) {
  FakeOpenAiServer first;
  FakeOpenAiServer second;
  SetEnv(kUpstreamKeyEnv, first.api_key());
  ProviderYaml a = Upstream("first", "openai", first.base_url(), "[CN]", "{embed: e1}");
  ProviderYaml b = Upstream("second", "openai", second.base_url(), "[CN]", "{embed: e2}");
  ProviderYaml abroad = Upstream("abroad", "openai", second.base_url(), "[US]", "{embed: e3}");
  a.capabilities = b.capabilities = abroad.capabilities = "[embeddings]";
  ASSERT_NO_FATAL_FAILURE(StartGateway(PolicyYaml(
      {a, b, abroad}, "  - id: cn\n    allow: [first, second, abroad]\n",
      "  - id: stay\n    when: {region: CN}\n    narrow:\n      processing_within: [CN]\n")));

  first.PushScenario("status=503");
  const HttpResult r = Embed(Body("embed", "hello"));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "second");
  EXPECT_EQ(first.requests_started(), 1);
  EXPECT_EQ(second.last_request_json().at("model"), "e2");

  // An answer that cannot be used (half a body) is the provider's failure too.
  first.PushScenario("garbage");
  const HttpResult g = Embed(Body("embed", "hello"));
  ASSERT_EQ(g.status, 200u) << g.body;
  EXPECT_EQ(g.header("x-meridian-provider"), "second");

  // Both fail: the client gets the last failure; the provider abroad, which the route allows
  // but the guard narrowed away, is never tried.
  first.PushScenario("status=503");
  second.PushScenario("status=500");
  const HttpResult both = Embed(Body("embed", "hello"));
  EXPECT_EQ(both.status, 503u) << both.body;
  EXPECT_THAT(second.requests(), ::testing::Each(::testing::Field(&fakes::RecordedRequest::body,
                                                                  Not(HasSubstr("e3")))));
}

}  // namespace
}  // namespace meridian::testing
