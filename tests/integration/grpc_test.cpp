// The gRPC front end end to end: real gRPC clients (generated stubs) over loopback with TLS and
// mTLS certificates generated per test, against `meridian serve` in-process, with the sim
// engine or the fake OpenAI upstream behind it.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "gateway/grpc/grpc_codec.h"
#include "meridian/v1/assistant.grpc.pb.h"
#include "tests/fakes/fake_openai_server.h"
#include "tests/integration/grpc_fixture.h"

namespace meridian::testing {
namespace {

namespace v1 = meridian::v1;
using fakes::FakeOpenAiServer;
using fakes::TestCerts;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

using GrpcTest = GrpcFixture;

/// Every request to the fake OpenAI `upstream` (whose key the test sets in kUpstreamKeyEnv).
std::string UpstreamPolicy(const FakeOpenAiServer& upstream) {
  return PolicyYaml(
      {Upstream("openai-cn", "openai", upstream.base_url(), "[CN]", "{chat: gpt-up}")},
      "  - id: everyone\n    allow: [openai-cn]\n");
}

/// A policy with CN/HK simulated providers and a consent guard.
std::string SimPolicy() {
  return PolicyYaml(
      {Sim("sim-cn", "[CN]", "{chat: sim}", 6), Sim("sim-hk", "[HK]", "{chat: sim}", 3)},
      "  - id: cn-users\n    when: {region: CN}\n    allow: [sim-cn]\n"
      "  - id: hk-users\n    when: {region: HK}\n    allow: [sim-hk]\n",
      "  - id: needs-consent\n    when:\n      data_class: sensitive_personal\n"
      "      consent: {sensitive_separate: false}\n"
      "    deny: Sensitive personal information needs separate consent.\n");
}

TEST_F(GrpcTest, GenerateStreamsThroughTheSimEngineWithTheDecision) {
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy()));
  auto stub = Stub(DefaultClient());
  v1::GenerateRequest req = Request();
  req.set_client_request_id("client-42");
  const StreamResult r = Generate(*stub, req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_GE(r.messages.size(), 4u);
  // start, deltas, finish, usage — in that order.
  ASSERT_TRUE(r.messages.front().has_start());
  const v1::Decision& d = r.messages.front().start().decision();
  EXPECT_EQ(d.provider(), "sim-cn");
  EXPECT_EQ(d.rule(), "cn-users");
  EXPECT_EQ(d.region(), "CN");
  EXPECT_EQ(d.region_source(), "tenant_binding");
  EXPECT_EQ(d.client_request_id(), "client-42");
  EXPECT_EQ(d.policy_version(), gateway_->state().Table()->policy->version);
  EXPECT_EQ(d.data_class(), v1::DATA_CLASS_PERSONAL);
  EXPECT_EQ(r.messages.front().start().model(), "chat");
  std::size_t deltas = 0;
  for (std::size_t i = 1; i + 2 < r.messages.size(); ++i) {
    EXPECT_TRUE(r.messages[i].has_delta()) << i;
    ++deltas;
  }
  EXPECT_EQ(deltas, 6u);
  EXPECT_FALSE(r.text.empty());
  ASSERT_EQ(r.messages[r.messages.size() - 2].event_case(), v1::GenerateResponse::kFinish);
  EXPECT_EQ(r.messages[r.messages.size() - 2].finish(), v1::FINISH_REASON_STOP);
  ASSERT_TRUE(r.messages.back().has_usage());
  EXPECT_EQ(r.messages.back().usage().completion_tokens(), 6);
  // The decision is in the initial metadata too.
  EXPECT_EQ(r.initial.at("x-meridian-provider"), "sim-cn");
  EXPECT_EQ(r.initial.at("x-meridian-policy-rule"), "cn-users");
  EXPECT_EQ(r.initial.at("x-meridian-policy-version"), d.policy_version());
  EXPECT_EQ(r.initial.at("x-request-id"), d.request_id());
}

TEST_F(GrpcTest, CompleteThroughAFakeOpenAiUpstream) {
  FakeOpenAiServer upstream;
  SetEnv(kUpstreamKeyEnv, upstream.api_key());
  ASSERT_NO_FATAL_FAILURE(StartMtls(
      PolicyYaml({Upstream("openai-cn", "openai", upstream.base_url(), "[CN]", "{chat: gpt-up}")},
                 "  - id: everyone\n    allow: [openai-cn]\n")));
  auto stub = Stub(DefaultClient());
  grpc::ClientContext ctx;
  v1::CompleteResponse resp;
  v1::GenerateRequest req = Request();
  req.mutable_sampling()->set_temperature(0.5);
  req.mutable_sampling()->set_max_tokens(3);
  const grpc::Status st = stub->Complete(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.text(), FakeOpenAiServer::TokenText(3));
  EXPECT_EQ(resp.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(resp.decision().provider(), "openai-cn");
  EXPECT_EQ(resp.usage().completion_tokens(), 3);
  EXPECT_EQ(resp.model(), "chat");
  const auto body = upstream.last_request_json().as_object();
  EXPECT_EQ(body.at("model"), "gpt-up");
  EXPECT_EQ(body.at("temperature").as_double(), 0.5);
  EXPECT_EQ(Copy(ctx.GetServerInitialMetadata()).at("x-meridian-provider"), "openai-cn");
}

TEST_F(GrpcTest, StreamsThroughAFakeUpstreamUnchanged) {
  FakeOpenAiServer upstream;
  SetEnv(kUpstreamKeyEnv, upstream.api_key());
  ASSERT_NO_FATAL_FAILURE(StartMtls(UpstreamPolicy(upstream)));
  auto stub = Stub(DefaultClient());
  const StreamResult r = Generate(*stub, Request("<<fake:tokens=7,split=3>>"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.text, FakeOpenAiServer::TokenText(7));
  ASSERT_TRUE(r.messages.back().has_usage());
  EXPECT_EQ(r.messages.back().usage().prompt_tokens(), 9);
}

// Tools and images over gRPC reach the upstream in its own shapes, and the model's tool calls
// come back as ToolCallDeltas (Generate) and merged ToolCalls (Complete).
TEST_F(GrpcTest, ToolsAndImagesRoundTripThroughAnUpstream) {
  FakeOpenAiServer upstream;
  SetEnv(kUpstreamKeyEnv, upstream.api_key());
  ProviderYaml p = Upstream("openai-cn", "openai", upstream.base_url(), "[CN]", "{chat: gpt-up}");
  p.capabilities = "[tools, vision, streaming]";
  ASSERT_NO_FATAL_FAILURE(StartMtls(PolicyYaml({p}, "  - id: everyone\n    allow: [openai-cn]\n")));
  auto stub = Stub(DefaultClient());
  v1::GenerateRequest req = Request("weather in this city? <<fake:tool_calls=1>>");
  req.mutable_messages(0)->add_content()->mutable_image()->set_url("https://img.example/c.png");
  auto* tool = req.add_tools();
  tool->set_name("get_weather");
  tool->set_parameters_json(R"({"type":"object"})");
  req.set_tool_choice(v1::TOOL_CHOICE_REQUIRED);

  const StreamResult r = Generate(*stub, req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  std::string arguments, id, name;
  for (const auto& m : r.messages) {
    if (!m.has_delta()) continue;
    for (const auto& t : m.delta().tool_calls()) {
      EXPECT_EQ(t.index(), 0);
      if (!t.id().empty()) id = t.id();
      if (!t.name().empty()) name = t.name();
      arguments += t.arguments();
    }
  }
  EXPECT_EQ(name, "get_weather");
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(arguments, FakeOpenAiServer::ToolArguments(0));
  EXPECT_EQ(r.messages[r.messages.size() - 2].finish(), v1::FINISH_REASON_TOOL_CALLS);
  const json::object sent = upstream.last_request_json().as_object();
  EXPECT_EQ(sent.at("tools").at(0).at("function").at("name"), "get_weather");
  EXPECT_EQ(sent.at("tool_choice"), "required");
  EXPECT_EQ(sent.at("messages").at(0).at("content").at(1).at("image_url").at("url"),
            "https://img.example/c.png");

  // Complete, with the tool's result sent back: the merged call in the response.
  grpc::ClientContext ctx;
  v1::CompleteResponse resp;
  const grpc::Status st = stub->Complete(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.tool_calls_size(), 1);
  EXPECT_EQ(resp.tool_calls(0).name(), "get_weather");
  EXPECT_EQ(resp.tool_calls(0).arguments_json(), FakeOpenAiServer::ToolArguments(0));

  v1::GenerateRequest next = req;
  next.mutable_messages(0)->mutable_content(0)->set_text("weather in this city?");
  auto* turn = next.add_messages();
  turn->set_role(v1::ROLE_ASSISTANT);
  *turn->add_tool_calls() = resp.tool_calls(0);
  auto* result = next.add_messages();
  result->set_role(v1::ROLE_TOOL);
  result->set_tool_call_id(resp.tool_calls(0).id());
  result->add_content()->set_text("18C and sunny");
  next.set_tool_choice(v1::TOOL_CHOICE_UNSPECIFIED);
  grpc::ClientContext ctx2;
  v1::CompleteResponse answer;
  ASSERT_TRUE(stub->Complete(&ctx2, next, &answer).ok());
  const json::value last = upstream.last_request_json();
  const json::array& messages = last.at("messages").as_array();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[1].at("tool_calls").at(0).at("id"), json::value(resp.tool_calls(0).id()));
  EXPECT_EQ(messages[2].at("role"), "tool");
  EXPECT_EQ(messages[2].at("content"), "18C and sunny");
}

// Embed: the same decision as Generate (texts classified like messages), vectors in order.
TEST_F(GrpcTest, EmbedThroughAFakeUpstreamIsDecidedLikeGenerate) {
  FakeOpenAiServer cn;
  FakeOpenAiServer us;
  SetEnv(kUpstreamKeyEnv, cn.api_key());
  ProviderYaml cn_p = Upstream("cn", "openai", cn.base_url(), "[CN]", "{embed: emb-cn}");
  ProviderYaml us_p = Upstream("us", "openai", us.base_url(), "[US]", "{embed: emb-us, chat: c}");
  cn_p.capabilities = "[embeddings]";
  us_p.capabilities = "[]";
  us_p.models = "{embed: {upstream: emb-us, capabilities: [embeddings]}, chat: c}";
  ASSERT_NO_FATAL_FAILURE(
      StartMtls(PolicyYaml({cn_p, us_p}, "  - id: all\n    allow: [us, cn]\n",
                           "  - id: stay\n    when: {region: CN, data_class: \">= personal\"}\n"
                           "    narrow:\n      processing_within: [CN]\n")));
  auto stub = Stub(DefaultClient());
  auto embed = [&](std::vector<std::string> texts, v1::EmbedResponse& resp,
                   const std::string& model = "embed") {
    grpc::ClientContext ctx;
    v1::EmbedRequest req;
    req.set_model(model);
    for (auto& t : texts) req.add_texts(std::move(t));
    req.set_dimensions(4);
    req.set_data_class(v1::DATA_CLASS_NONE);
    req.set_client_request_id("e-1");
    return stub->Embed(&ctx, req, &resp);
  };
  v1::EmbedResponse plain;
  grpc::Status st = embed({"the weather", "a recipe"}, plain);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(plain.decision().provider(), "us");
  EXPECT_EQ(plain.decision().client_request_id(), "e-1");
  EXPECT_EQ(plain.model(), "embed");
  ASSERT_EQ(plain.embeddings_size(), 2);
  const std::vector<float> want = FakeOpenAiServer::EmbeddingOf("a recipe", 4);
  EXPECT_EQ(
      std::vector<float>(plain.embeddings(1).values().begin(), plain.embeddings(1).values().end()),
      want);
  EXPECT_EQ(plain.usage().total_tokens(), 18);
  EXPECT_EQ(us.last_request_json().at("dimensions"), 4);

  // A mobile number in the second text: personal, so it stays in CN.
  v1::EmbedResponse raised;
  st = embed({"the weather", "call 13812345678"}, raised);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(raised.decision().provider(), "cn");
  EXPECT_EQ(raised.decision().data_class(), v1::DATA_CLASS_PERSONAL);
  ASSERT_EQ(raised.decision().raised_by_size(), 1);
  EXPECT_EQ(raised.decision().raised_by(0), "cn_mobile");
  EXPECT_THAT(us.last_request_body(), Not(HasSubstr("13812345678")));

  // Token ids cannot be classified: personal (image_data_class), so in CN too.
  {
    grpc::ClientContext ctx;
    v1::EmbedRequest req;
    req.set_model("embed");
    req.add_tokens()->add_ids(15339);
    req.set_data_class(v1::DATA_CLASS_NONE);
    v1::EmbedResponse resp;
    const grpc::Status tst = stub->Embed(&ctx, req, &resp);
    ASSERT_TRUE(tst.ok()) << tst.error_message();
    EXPECT_EQ(resp.decision().provider(), "cn");
    ASSERT_EQ(resp.decision().raised_by_size(), 1);
    EXPECT_EQ(resp.decision().raised_by(0), "tokens");
    EXPECT_EQ(cn.last_request_json().at("input"), json::parse("[[15339]]"));
  }

  // A chat model does not embed; a bad request names its field.
  v1::EmbedResponse none;
  st = embed({"x"}, none, "chat");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("'embeddings'"));
  st = embed({"a", ""}, none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(grpcfe::ErrorInfoOf(st)->metadata().at("field"), "texts[1]");
  st = embed({}, none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcTest, ListModelsNamesTheAliasesThisCallerMayUse) {
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy()));
  auto stub = Stub(DefaultClient());
  grpc::ClientContext ctx;
  v1::ListModelsResponse resp;
  const grpc::Status st = stub->ListModels(&ctx, v1::ListModelsRequest{}, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.models_size(), 1);
  EXPECT_EQ(resp.models(0), "chat");
  EXPECT_FALSE(resp.policy_version().empty());
}

TEST_F(GrpcTest, PolicyDenialIsPermissionDeniedNamingTheGuard) {
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy()));
  auto stub = Stub(DefaultClient());
  v1::GenerateRequest req = Request();
  req.set_data_class(v1::DATA_CLASS_SENSITIVE_PERSONAL);
  const StreamResult r = Generate(*stub, req);
  EXPECT_TRUE(r.messages.empty());
  ExpectError(r.status, grpc::StatusCode::PERMISSION_DENIED, "denied_by_guard:needs-consent");
  EXPECT_THAT(r.status.error_message(), HasSubstr("guard needs-consent"));
  const auto info = grpcfe::ErrorInfoOf(r.status);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->metadata().at("rule"), "cn-users");
  EXPECT_EQ(info->metadata().at("guards"), "needs-consent");
  EXPECT_FALSE(info->metadata().at("policy_version").empty());

  // With the separate consent in the request the same call is allowed.
  req.mutable_consent()->set_sensitive_separate(true);
  const StreamResult ok = Generate(*stub, req);
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  ASSERT_FALSE(ok.messages.empty());
  EXPECT_EQ(ok.messages.front().start().decision().data_class(), v1::DATA_CLASS_SENSITIVE_PERSONAL);
}

TEST_F(GrpcTest, UndeclaredPersonalDataRaisesTheClass) {
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy()));
  auto stub = Stub(DefaultClient());
  // A valid mainland resident ID number (GB 11643 check digit) in the prompt.
  v1::GenerateRequest req = Request("my id is 11010519491231002X");
  const StreamResult r = Generate(*stub, req);
  ExpectError(r.status, grpc::StatusCode::PERMISSION_DENIED, "denied_by_guard:needs-consent");
  EXPECT_THAT(r.status.error_message(), Not(HasSubstr("11010519491231002X")));
}

// Every field that leaves is scanned (issue 12): the participant name and the subject id
// travel upstream (name in the messages, subject_id as `user`), and evasive spellings count.
TEST_F(GrpcTest, PersonalDataInNameSubjectIdOrEvasiveFormsRaisesTheClass) {
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy()));
  auto stub = Stub(DefaultClient());
  v1::GenerateRequest named = Request("hello");
  named.mutable_messages(0)->set_name("11010519491231002X");
  ExpectError(Generate(*stub, named).status, grpc::StatusCode::PERMISSION_DENIED,
              "denied_by_guard:needs-consent");
  v1::GenerateRequest subject = Request("hello");
  subject.set_subject_id("id-11010519491231002X");
  ExpectError(Generate(*stub, subject).status, grpc::StatusCode::PERMISSION_DENIED,
              "denied_by_guard:needs-consent");
  // Full-width digits, split across two content parts.
  v1::GenerateRequest split =
      Request("\xEF\xBC\x91\xEF\xBC\x91\xEF\xBC\x90\xEF\xBC\x91\xEF\xBC\x90\xEF\xBC\x95");
  split.mutable_messages(0)->add_content()->set_text("19491231002X");
  ExpectError(Generate(*stub, split).status, grpc::StatusCode::PERMISSION_DENIED,
              "denied_by_guard:needs-consent");
  EXPECT_TRUE(Generate(*stub, Request("hello")).status.ok());
}

// Two credentials in metadata are refused, never first-wins (reference §3.1).
TEST_F(GrpcTest, TwoAuthorizationEntriesAreInvalidArgument) {
  GatewayYaml g;
  g.grpc = {"listen: 127.0.0.1:0", "plaintext: true"};
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy(), g));
  auto stub = Stub({false, "", ""});
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kTenantKey);
  ctx.AddMetadata("authorization", std::string("Bearer ") + kOtherTenantKey);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto reader = stub->Generate(&ctx, Request());
  v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
  }
  ExpectError(reader->Finish(), grpc::StatusCode::INVALID_ARGUMENT, "multiple_credentials");
}

TEST_F(GrpcTest, InvalidArgumentsNameTheField) {
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy()));
  auto stub = Stub(DefaultClient());
  struct Case {
    std::function<void(v1::GenerateRequest&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](v1::GenerateRequest& r) { r.clear_model(); }, "model"},
      {[](v1::GenerateRequest& r) { r.clear_messages(); }, "messages"},
      {[](v1::GenerateRequest& r) {
         auto* m = r.add_messages();
         m->add_content()->set_text("x");
       },
       "messages[1].role"},
      {[](v1::GenerateRequest& r) { r.mutable_messages(0)->clear_content(); },
       "messages[0].content"},
      {[](v1::GenerateRequest& r) { r.mutable_sampling()->set_temperature(3); },
       "sampling.temperature"},
      {[](v1::GenerateRequest& r) { r.mutable_sampling()->set_top_p(0); }, "sampling.top_p"},
      {[](v1::GenerateRequest& r) { r.mutable_sampling()->set_max_tokens(0); },
       "sampling.max_tokens"},
      {[](v1::GenerateRequest& r) { r.set_data_class(static_cast<v1::DataClass>(42)); },
       "data_class"},
      {[](v1::GenerateRequest& r) { r.set_client_request_id(std::string(200, 'x')); },
       "client_request_id"},
  };
  for (const auto& c : cases) {
    v1::GenerateRequest req = Request();
    c.edit(req);
    const StreamResult r = Generate(*stub, req);
    ExpectError(r.status, grpc::StatusCode::INVALID_ARGUMENT, "invalid_argument", c.field);
  }
  // Unknown model: NOT_FOUND naming the field.
  v1::GenerateRequest req = Request();
  req.set_model("no-such-model");
  ExpectError(Generate(*stub, req).status, grpc::StatusCode::NOT_FOUND, "model_not_found", "model");
}

TEST_F(GrpcTest, MissingUntrustedOrUnboundCertificatesAreUnauthenticated) {
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy()));
  // No certificate at all.
  auto none = Stub({true, "", ""});
  ExpectError(Generate(*none, Request()).status, grpc::StatusCode::UNAUTHENTICATED,
              "client_certificate_required");
  // A certificate from a CA the gateway does not trust.
  auto other = Stub({true, certs_.other_client().cert, certs_.other_client().key});
  ExpectError(Generate(*other, Request()).status, grpc::StatusCode::UNAUTHENTICATED,
              "untrusted_client_certificate");
  // Trusted, but bound to no tenant.
  fakes::LeafSpec spec;
  spec.file_stem = "stranger";
  spec.common_name = "stranger";
  spec.uri_sans = {"spiffe://meridian.test/tenant/stranger"};
  spec.server_auth = false;
  spec.client_auth = true;
  const auto stranger = certs_.IssueLeaf(spec);
  auto unbound = Stub({true, stranger.cert, stranger.key});
  const StreamResult r = Generate(*unbound, Request());
  ExpectError(r.status, grpc::StatusCode::UNAUTHENTICATED, "unknown_client_certificate");
  EXPECT_THAT(r.status.error_message(), HasSubstr("spiffe://meridian.test/tenant/stranger"));
  // An expired certificate.
  spec.file_stem = "expired";
  spec.uri_sans = {TestCerts::kClientSpiffeId};
  spec.expired = true;
  const auto expired = certs_.IssueLeaf(spec);
  auto old = Stub({true, expired.cert, expired.key});
  ExpectError(Generate(*old, Request()).status, grpc::StatusCode::UNAUTHENTICATED,
              "untrusted_client_certificate");
  // An API key does not replace a required certificate.
  ExpectError(
      Generate(*none, Request(), {{"authorization", std::string("Bearer ") + kTenantKey}}).status,
      grpc::StatusCode::UNAUTHENTICATED, "client_certificate_required");
}

TEST_F(GrpcTest, ApiKeysWorkWhereCertificatesAreOptional) {
  GatewayYaml g;
  g.grpc = TlsSection(true, /*require=*/false);
  g.tenants = {CertTenant()};
  g.tenants[0].key = kTenantKey;
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy(), g));
  auto stub = Stub({true, "", ""});
  const auto bearer =
      std::map<std::string, std::string>{{"authorization", std::string("Bearer ") + kTenantKey}};
  EXPECT_TRUE(Generate(*stub, Request(), bearer).status.ok());
  ExpectError(Generate(*stub, Request()).status, grpc::StatusCode::UNAUTHENTICATED,
              "missing_credentials");
  ExpectError(Generate(*stub, Request(), {{"authorization", "Bearer sk-wrong"}}).status,
              grpc::StatusCode::UNAUTHENTICATED, "invalid_api_key");
  // The certificate still works.
  EXPECT_TRUE(Generate(*Stub(DefaultClient()), Request()).status.ok());
}

TEST_F(GrpcTest, PlaintextListenerTakesApiKeys) {
  GatewayYaml g;
  g.grpc = {"listen: 127.0.0.1:0", "plaintext: true"};
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy(), g));
  auto stub = Stub({false, "", ""});
  const StreamResult r =
      Generate(*stub, Request(), {{"authorization", std::string("Bearer ") + kTenantKey}});
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  ExpectError(Generate(*stub, Request()).status, grpc::StatusCode::UNAUTHENTICATED,
              "missing_credentials");
}

TEST_F(GrpcTest, RegionClaimsCountOnlyForTrustedCertificateTenants) {
  const std::map<std::string, std::string> hk = {{kRegionHeader, "HK"}};
  {
    GatewayYaml g;
    g.tenants = {CertTenant(/*trust_region_claim=*/true)};
    ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy(), g));
    auto stub = Stub(DefaultClient());
    const StreamResult r = Generate(*stub, Request(), hk);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.messages.front().start().decision().region(), "HK");
    EXPECT_EQ(r.messages.front().start().decision().region_source(), "trusted_proxy");
    EXPECT_EQ(r.messages.front().start().decision().provider(), "sim-hk");
    // Outside the tenant's regions: ignored, the binding applies.
    const StreamResult us = Generate(*stub, Request(), {{kRegionHeader, "US"}});
    ASSERT_TRUE(us.status.ok());
    EXPECT_EQ(us.messages.front().start().decision().region(), "CN");
    gateway_->Stop();
    gateway_.reset();
  }
  GatewayYaml g;
  g.tenants = {CertTenant(/*trust_region_claim=*/false)};
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy(), g));
  const StreamResult r = Generate(*Stub(DefaultClient()), Request(), hk);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.messages.front().start().decision().region(), "CN");
  EXPECT_EQ(r.messages.front().start().decision().region_source(), "tenant_binding");
  EXPECT_EQ(gateway_->state().counters.region_header_ignored_untrusted.load(), 1u);
}

TEST_F(GrpcTest, DeadlineShorterThanTheUpstreamCancelsIt) {
  FakeOpenAiServer upstream;
  SetEnv(kUpstreamKeyEnv, upstream.api_key());
  ASSERT_NO_FATAL_FAILURE(StartMtls(UpstreamPolicy(upstream)));
  auto stub = Stub(DefaultClient());
  const auto started = std::chrono::steady_clock::now();
  const StreamResult r = Generate(*stub, Request("<<fake:ttft_ms=20000>>"), {}, 400ms);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << r.status.error_message();
  EXPECT_TRUE(upstream.WaitFor([&] { return upstream.requests_cut_by_client() == 1; }))
      << "the upstream request was not cancelled";
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  // Unary too.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 300ms);
  v1::CompleteResponse resp;
  const grpc::Status st = stub->Complete(&ctx, Request("<<fake:ttft_ms=20000>>"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(upstream.WaitFor([&] { return upstream.requests_cut_by_client() == 2; }));
}

TEST_F(GrpcTest, ClientCancelMidStreamCancelsTheUpstream) {
  FakeOpenAiServer upstream;
  SetEnv(kUpstreamKeyEnv, upstream.api_key());
  ASSERT_NO_FATAL_FAILURE(StartMtls(UpstreamPolicy(upstream)));
  auto stub = Stub(DefaultClient());
  grpc::ClientContext ctx;
  auto reader = stub->Generate(&ctx, Request("<<fake:tokens=500,delay_ms=20>>"));
  v1::GenerateResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  ASSERT_TRUE(msg.has_start());
  ASSERT_TRUE(reader->Read(&msg));
  ASSERT_TRUE(msg.has_delta());
  ctx.TryCancel();
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(upstream.WaitFor([&] { return upstream.streams_cut_by_client() == 1; }))
      << "the upstream stream was not cancelled";
  EXPECT_EQ(upstream.streams_completed(), 0);
}

TEST_F(GrpcTest, ASlowReaderSlowsTheUpstreamInsteadOfBuffering) {
  FakeOpenAiServer upstream;
  // 4,096 deltas of 16 KiB: 64 MiB, far more than every socket buffer and HTTP/2 window on
  // the way. If the gateway buffered instead of applying backpressure, the upstream would
  // finish while the client is not reading.
  const std::string word(16 * 1024, 'w');
  std::string text;
  for (int i = 0; i < 4096; ++i) text += (i ? " " : "") + word;
  upstream.SetText(text);
  SetEnv(kUpstreamKeyEnv, upstream.api_key());
  GatewayYaml g;
  g.upstream = {"max_response_bytes: 1073741824"};
  ASSERT_NO_FATAL_FAILURE(StartMtls(UpstreamPolicy(upstream), g));
  auto stub = Stub(DefaultClient());
  grpc::ClientContext ctx;
  auto reader = stub->Generate(&ctx, Request());
  v1::GenerateResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  ASSERT_TRUE(msg.has_start());
  // The client stops reading: the upstream must stall, not complete.
  EXPECT_FALSE(upstream.WaitFor([&] { return upstream.streams_completed() == 1; }, 1500ms))
      << "the upstream ran to completion while the client was not reading";
  std::size_t received = 0;
  while (reader->Read(&msg)) {
    if (msg.has_delta()) received += msg.delta().text().size();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(received, text.size());
  EXPECT_TRUE(upstream.WaitFor([&] { return upstream.streams_completed() == 1; }));
}

/// Unary call of a method we have no stub for, with a hand-encoded request.
grpc::Status GenericUnary(grpc::Channel& channel, const std::string& method,
                          const std::string& request, std::string& response) {
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  grpc::Slice slice(request);
  grpc::ByteBuffer req(&slice, 1);
  auto call = stub.PrepareUnaryCall(&ctx, method, req, &cq);
  call->StartCall();
  grpc::ByteBuffer resp;
  grpc::Status status;
  call->Finish(&resp, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  EXPECT_TRUE(cq.Next(&tag, &ok));
  std::vector<grpc::Slice> slices;
  if (status.ok()) (void)resp.Dump(&slices);
  response.clear();
  for (const auto& s : slices) response.append(reinterpret_cast<const char*>(s.begin()), s.size());
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

TEST_F(GrpcTest, HealthServiceAndReflectionAnswer) {
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy()));
  auto channel = Channel(DefaultClient());
  // grpc.health.v1.HealthCheckRequest{service: "meridian.v1.Assistant"}.
  const std::string service = "meridian.v1.Assistant";
  std::string req = std::string("\x0a") + static_cast<char>(service.size()) + service;
  std::string resp;
  grpc::Status st = GenericUnary(*channel, "/grpc.health.v1.Health/Check", req, resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp, std::string("\x08\x01", 2));  // status: SERVING

  // Server reflection: ListServices over the bidi stream.
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  const std::string list_services("\x3a\x00", 2);  // list_services: ""
  grpc::Slice slice(list_services);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer in;
  call->Read(&in, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(in.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_THAT(bytes, HasSubstr("meridian.v1.Assistant"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  ctx.TryCancel();
  grpc::Status finish;
  call->Finish(&finish, reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(GrpcTest, DrainEndsCallsStillRunningAtTheDeadlineAndRefusesNewOnes) {
  FakeOpenAiServer upstream;
  SetEnv(kUpstreamKeyEnv, upstream.api_key());
  ASSERT_NO_FATAL_FAILURE(StartMtls(UpstreamPolicy(upstream)));
  auto stub = Stub(DefaultClient());
  grpc::ClientContext ctx;
  auto reader = stub->Generate(&ctx, Request("<<fake:tokens=500,delay_ms=20>>"));
  v1::GenerateResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  ASSERT_TRUE(msg.has_start());
  std::thread drain([&] { gateway_->Drain(200ms); });
  while (reader->Read(&msg)) {
  }
  const grpc::Status st = reader->Finish();
  drain.join();
  ExpectError(st, grpc::StatusCode::UNAVAILABLE, "shutting_down");
  EXPECT_TRUE(upstream.WaitFor([&] { return upstream.streams_cut_by_client() == 1; }));
  // While draining, new calls are refused.
  ExpectError(Generate(*stub, Request()).status, grpc::StatusCode::UNAVAILABLE, "shutting_down");
}

TEST_F(GrpcTest, ConcurrentStreamsAllComplete) {
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy()));
  auto stub = Stub(DefaultClient());
  constexpr int kCalls = 32;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&] {
      const StreamResult r = Generate(*stub, Request());
      if (r.status.ok() && r.messages.size() == 9) ok.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kCalls);
  // A call's slot is released on its worker just after the status went out: poll (bounded)
  // for the count to return to zero rather than reading it at once.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (gateway_->state().in_flight.load() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(gateway_->state().in_flight.load(), 0);
}

// An unparsable request message (not protobuf) is the client's error: INVALID_ARGUMENT, on
// every method, and nothing reaches a provider.
TEST_F(GrpcTest, AnUnparsableRequestMessageIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy()));
  auto channel = Channel(DefaultClient());
  for (const char* method : {"/meridian.v1.Assistant/Complete", "/meridian.v1.Assistant/Generate",
                             "/meridian.v1.Assistant/ListModels"}) {
    std::string resp;
    const grpc::Status st =
        GenericUnary(*channel, method, std::string("\xff\xff\xff\xff\x0f", 5), resp);
    SCOPED_TRACE(method);
    ExpectError(st, grpc::StatusCode::INVALID_ARGUMENT, "invalid_message");
  }
}
}  // namespace
}  // namespace meridian::testing
