// Rate limits and token budgets through `meridian serve`, as a client sees them: the
// x-ratelimit-* headers OpenAI clients read, 429 with OpenAI's error JSON and Retry-After,
// gRPC RESOURCE_EXHAUSTED with retry_after_s, limits per tenant, per API key and per subject,
// token reservations settled with the usage the provider reported; and the shared store: two
// gateways counting against one real redis-server, and what a request gets while Redis is
// down or silent (fail_closed: 503, fail_open: admitted and counted).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/fakes/fake_openai_server.h"
#include "tests/integration/grpc_fixture.h"
#include "tests/integration/redis_harness.h"
#include "tests/integration/serve_fixture.h"

namespace meridian::testing {
namespace {

using fakes::FakeOpenAiServer;
using ::testing::HasSubstr;

constexpr const char* kSecondKey = "sk-test-acme-second-key-0123";

/// One simulated provider in CN (answers with 4 tokens and reports its usage).
std::string SimPolicy() {
  return PolicyYaml({Sim("local", "[CN]", "{chat: sim}", 4)},
                    "  - id: everyone\n    allow: [local]\n");
}

/// The default tenant with `limits:` (a flow mapping) and both API keys.
GatewayYaml WithLimits(const std::string& limits) {
  GatewayYaml g;
  g.tenants[0].key.clear();
  g.tenants[0].extra = {
      "api_key_sha256: [" + KeyHash(kTenantKey) + ", " + KeyHash(kSecondKey) + "]",
      "limits: " + limits};
  TenantYaml other;
  other.id = "other";
  other.key = kOtherTenantKey;
  g.tenants.push_back(other);
  return g;
}

/// An OpenAI upstream (the fake, keyed by kUpstreamKeyEnv) in CN for everyone.
std::string UpstreamPolicy(const FakeOpenAiServer& fake) {
  return PolicyYaml({Upstream("oai", "openai", fake.base_url(), "[CN]", "{chat: gpt}")},
                    "  - id: everyone\n    allow: [oai]\n");
}

/// Polls `pred` until it holds or 10 s pass (for state with no event to wait on: a lease
/// released after the upstream saw its client go, a score in Redis).
bool Eventually(const std::function<bool()>& pred) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

json::object ErrorOf(const HttpResult& r) {
  return json::parse(r.body).as_object().at("error").as_object();
}

class QuotaTest : public ServeFixture {
 protected:
  HttpResult Send(const ChatRequest& req, const std::string& key = kTenantKey) const {
    return Client().Post("/v1/chat/completions", req.Json(), Auth(key));
  }
};

TEST_F(QuotaTest, RequestsPerMinuteAreCountedInHeadersThenRefusedWith429AndRetryAfter) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy(), WithLimits("{requests_per_minute: 2}")));
  const HttpResult first = Send({});
  ASSERT_EQ(first.status, 200u) << first.body;
  EXPECT_EQ(first.header("x-ratelimit-limit-requests"), "2");
  EXPECT_EQ(first.header("x-ratelimit-remaining-requests"), "1");
  EXPECT_THAT(first.header("x-ratelimit-reset-requests"), ::testing::MatchesRegex("[0-9]+s"));
  EXPECT_EQ(first.header("x-ratelimit-limit-tokens"), "");  // no token limit configured
  const HttpResult second = Send({});
  ASSERT_EQ(second.status, 200u) << second.body;
  EXPECT_EQ(second.header("x-ratelimit-remaining-requests"), "0");

  const HttpResult third = Send({});
  ASSERT_EQ(third.status, 429u) << third.body;
  const json::object e = ErrorOf(third);
  EXPECT_EQ(e.at("type"), "rate_limit_error");
  EXPECT_EQ(e.at("code"), "rate_limit_exceeded");
  EXPECT_THAT(std::string(e.at("message").as_string()),
              HasSubstr("requests per minute (RPM) of tenant 'acme': Limit 2"));
  // Two per minute: one more is back within 30 s.
  const int retry_after = std::stoi(third.header("retry-after"));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 30);
  EXPECT_EQ(third.header("x-ratelimit-remaining-requests"), "0");
  // The SDKs wait what retry-after-ms says (more precise than Retry-After).
  EXPECT_GE(std::stoi(third.header("retry-after-ms")), 1);
  EXPECT_LE(std::stoi(third.header("retry-after-ms")), 30000);
  EXPECT_EQ(third.header("x-meridian-policy-rule"), "everyone");  // decided, then limited
  EXPECT_EQ(third.header("x-meridian-provider"), "");             // nothing was sent upstream

  // Another tenant is not limited by this one's budget.
  EXPECT_EQ(Send({}, kOtherTenantKey).status, 200u);
  EXPECT_THAT(Metrics(), HasSubstr("meridian_rate_limited_total{tenant=\"acme\",scope=\"tenant\","
                                   "limit=\"requests_per_minute\"} 1"));
}

TEST_F(QuotaTest, PerKeyLimitsCountEachApiKeyOfTheTenantApart) {
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(SimPolicy(), WithLimits("{per_key: {requests_per_minute: 1}}")));
  EXPECT_EQ(Send({}, kTenantKey).status, 200u);
  const HttpResult again = Send({}, kTenantKey);
  EXPECT_EQ(again.status, 429u);
  EXPECT_THAT(std::string(ErrorOf(again).at("message").as_string()), HasSubstr("this API key"));
  EXPECT_EQ(Send({}, kSecondKey).status, 200u);
  EXPECT_EQ(Send({}, kSecondKey).status, 429u);
}

TEST_F(QuotaTest, PerSubjectLimitsCountEachUserApartAndRequestsWithoutOneAreNotSubjectToThem) {
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(SimPolicy(), WithLimits("{per_subject: {requests_per_minute: 1}}")));
  auto as = [](const char* user) {
    ChatRequest r;
    r.extra["user"] = user;
    return r;
  };
  EXPECT_EQ(Send(as("alice")).status, 200u);
  const HttpResult again = Send(as("alice"));
  EXPECT_EQ(again.status, 429u);
  EXPECT_THAT(std::string(ErrorOf(again).at("message").as_string()), HasSubstr("subject"));
  EXPECT_EQ(Send(as("bob")).status, 200u);
  EXPECT_EQ(Send({}).status, 200u);
  EXPECT_EQ(Send({}).status, 200u);
}

TEST_F(QuotaTest, TokenBudgetReservesMaxTokensAndSettlesWithTheReportedUsage) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy(), WithLimits("{tokens_per_day: 70}")));
  ChatRequest req;
  req.extra["max_tokens"] = 60;
  const HttpResult first = Send(req);
  ASSERT_EQ(first.status, 200u) << first.body;
  const json::object usage = json::parse(first.body).as_object().at("usage").as_object();
  const std::int64_t used = usage.at("total_tokens").as_int64();
  ASSERT_GT(used, 0);
  ASSERT_LT(used, 40);

  // 63 tokens were reserved (3 of prompt, 60 of max_tokens); the answer used `used`, so
  // 70 - used are left, and a second reservation of 63 fits only if the first was settled.
  const HttpResult second = Send(req);
  ASSERT_EQ(second.status, 200u) << second.body;
  const std::int64_t used2 =
      json::parse(second.body).as_object().at("usage").as_object().at("total_tokens").as_int64();

  const HttpResult third = Send(req);
  ASSERT_EQ(third.status, 429u) << third.body;
  const json::object e = ErrorOf(third);
  EXPECT_EQ(e.at("code"), "token_budget_exceeded");
  EXPECT_THAT(std::string(e.at("message").as_string()),
              HasSubstr("tokens per day of tenant 'acme': Limit 70, Remaining " +
                        std::to_string(70 - used - used2) + ", Requested 63."));
  // The budget is back at the next UTC midnight.
  const int retry_after = std::stoi(third.header("retry-after"));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 86400);

  // A request that alone exceeds the budget can never be served: no Retry-After.
  ChatRequest huge;
  huge.extra["max_tokens"] = 1000;
  const HttpResult too_large = Send(huge);
  EXPECT_EQ(too_large.status, 429u);
  EXPECT_EQ(ErrorOf(too_large).at("code"), "request_too_large");
  EXPECT_EQ(too_large.header("retry-after"), "");
}

TEST_F(QuotaTest, TokensPerMinuteHeadersShowTheReservationOfTheRequest) {
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(SimPolicy(), WithLimits("{tokens_per_minute: 10000, default_max_tokens: 500}")));
  ChatRequest req;
  req.text = "abcdefgh";  // 8 bytes: 2 tokens of prompt, plus the default 500 reserved
  const HttpResult r = Send(req);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-ratelimit-limit-tokens"), "10000");
  EXPECT_EQ(r.header("x-ratelimit-remaining-tokens"), "9498");
  EXPECT_EQ(r.header("x-ratelimit-reset-tokens"), "3.012s");  // 502 tokens at 10000/min
}

TEST_F(QuotaTest, StreamsCarryTheHeadersAndAreRefusedBeforeTheStreamStarts) {
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy(), WithLimits("{requests_per_minute: 1}")));
  ChatRequest req;
  req.stream = true;
  const HttpResult ok = Send(req);
  ASSERT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.header("x-ratelimit-remaining-requests"), "0");
  EXPECT_TRUE(ParseStream(ok.body).done);
  const HttpResult refused = Send(req);
  EXPECT_EQ(refused.status, 429u);
  EXPECT_EQ(refused.header("content-type"), "application/json");
}

TEST_F(QuotaTest, ConcurrentStreamsAreLeasesHeldUntilTheRequestEndsHoweverItEnds) {
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(UpstreamPolicy(fake),
                   WithLimits("{concurrent_streams: 3, per_key: {concurrent_streams: 1}}")));
  // A stream the upstream never answers holds this key's only place.
  fake.PushScenario("hang");
  RawConnection held(gateway_->port());
  ASSERT_TRUE(held.Send(RawChatRequest({.stream = true})));
  ASSERT_TRUE(fake.WaitFor([&] { return fake.requests_started() == 1; }));

  const HttpResult refused = Send({.stream = true});
  ExpectOpenAiError(refused, 429, "rate_limit_error", "concurrency_limit_exceeded");
  EXPECT_EQ(ErrorMessage(refused),
            "Concurrency limit reached for concurrent streams of this API key: Limit 1, In "
            "flight 1. Please try again when one of them has ended.");
  EXPECT_EQ(refused.header("retry-after"), "1");
  EXPECT_EQ(refused.header("x-meridian-provider"), "") << "nothing was sent upstream";
  EXPECT_EQ(fake.requests_started(), 1);
  EXPECT_EQ(Send({}).status, 429u) << "non-streamed requests are in flight too";
  // The tenant's second key has a place of its own (and the tenant has 3).
  EXPECT_EQ(Send({.stream = true}, kSecondKey).status, 200u);
  EXPECT_THAT(Metrics(), HasSubstr("meridian_rate_limited_total{tenant=\"acme\",scope=\"key\","
                                   "limit=\"concurrent_streams\"} 2"));

  // The client goes away: the request ends and its lease with it.
  held.Close();
  ASSERT_TRUE(fake.WaitFor([&] { return fake.requests_cut_by_client() == 1; }));
  ASSERT_TRUE(Eventually([&] { return Send({}).status == 200u; }));
  // Answers that end normally or in an upstream error release theirs before their last byte:
  // a client sending one request after the other is never refused.
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Send({.stream = i % 2 == 0}).status, 200u) << i;
  }
  fake.PushScenario("status=500");
  EXPECT_EQ(Send({}).status, 503u);
  EXPECT_EQ(Send({}).status, 200u);
}

class GrpcQuotaTest : public GrpcFixture {};

TEST_F(GrpcQuotaTest, RefusedWithResourceExhaustedAndRetryAfter) {
  GatewayYaml g;
  TenantYaml t = CertTenant();
  t.extra.push_back("limits: {requests_per_minute: 1}");
  g.tenants = {t};
  ASSERT_NO_FATAL_FAILURE(StartMtls(SimPolicy(), g));
  auto stub = Stub(DefaultClient());
  const StreamResult first = Generate(*stub, Request());
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_EQ(first.initial.at("x-ratelimit-remaining-requests"), "0");
  const StreamResult second = Generate(*stub, Request());
  ExpectError(second.status, grpc::StatusCode::RESOURCE_EXHAUSTED, "rate_limit_exceeded");
  const auto info = grpcfe::ErrorInfoOf(second.status);
  ASSERT_TRUE(info.has_value());
  ASSERT_TRUE(info->metadata().contains("retry_after_s"));
  EXPECT_GE(std::stoi(info->metadata().at("retry_after_s")), 1);
  EXPECT_TRUE(second.messages.empty());
}

// --- On Redis ---

using Strings = std::vector<std::string>;

/// An array reply's strings (empty when there is none).
Strings RedisList(const RedisServer& redis, std::vector<std::string> cmd) {
  Strings out;
  for (const auto& e : RedisCommand(redis, std::move(cmd)).elements) out.push_back(e.str);
  return out;
}

class RedisQuotaTest : public QuotaTest {
 protected:
  GatewayYaml OnRedis(const std::string& limits, unsigned short port) {
    GatewayYaml g = WithLimits(limits);
    g.store = {"kind: redis", "address: 127.0.0.1:" + std::to_string(port),
               "command_timeout_ms: 200", "connect_timeout_ms: 200"};
    return g;
  }
};

TEST_F(RedisQuotaTest, TwoGatewaysOnOneRedisShareTheLimit) {
  RedisServer redis;
  ASSERT_TRUE(redis.ok());
  const GatewayYaml g = OnRedis("{requests_per_minute: 5}", redis.port());
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy(), g));
  // A second replica with the same config, in its own directory.
  ServeReplica second;
  ASSERT_NO_FATAL_FAILURE(second.StartGateway(SimPolicy(), g));
  int ok = 0;
  int limited = 0;
  for (int i = 0; i < 10; ++i) {
    const unsigned short port = i % 2 == 0 ? gateway_->port() : second.gateway_->port();
    const HttpResult r =
        TestClient(port).Post("/v1/chat/completions", ChatRequest{}.Json(), Auth());
    if (r.status == 200u) ++ok;
    if (r.status == 429u) ++limited;
  }
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(limited, 5);
}

TEST_F(RedisQuotaTest, ConcurrentStreamsAreSharedByReplicasAndRenewedWhileTheyRun) {
  RedisServer redis;
  ASSERT_TRUE(redis.ok());
  FakeOpenAiServer fake;
  SetEnv(kUpstreamKeyEnv, fake.api_key());
  GatewayYaml g = OnRedis("{concurrent_streams: 1}", redis.port());
  g.store.push_back("lease_ttl_ms: 1000");
  ASSERT_NO_FATAL_FAILURE(StartGateway(UpstreamPolicy(fake), g));
  ServeReplica second;
  ASSERT_NO_FATAL_FAILURE(second.StartGateway(UpstreamPolicy(fake), g));

  fake.PushScenario("hang");
  RawConnection held(gateway_->port());
  ASSERT_TRUE(held.Send(RawChatRequest({.stream = true})));
  ASSERT_TRUE(fake.WaitFor([&] { return fake.requests_started() == 1; }));
  const std::string key = "meridian:rl:{acme}:t:streams";
  const Strings leases = RedisList(redis, {"ZRANGE", key, "0", "-1", "WITHSCORES"});
  ASSERT_EQ(leases.size(), 2u) << "one lease: id, expiry";
  const long long first_expiry = std::stoll(leases[1]);

  auto other_replica = [&] {
    return TestClient(second.gateway_->port())
        .Post("/v1/chat/completions", ChatRequest{}.Json(), Auth());
  };
  EXPECT_EQ(other_replica().status, 429u) << "the first replica's stream counts on the second";
  // Held past its first expiry, the lease is still there: the replica renews it.
  ASSERT_TRUE(Eventually([&] {
    const Strings now = RedisList(redis, {"ZRANGE", key, "0", "-1", "WITHSCORES"});
    return now.size() == 2 && std::stoll(now[1]) > first_expiry + 500;
  }));
  EXPECT_EQ(other_replica().status, 429u);

  held.Close();
  ASSERT_TRUE(Eventually([&] { return RedisInt(redis, {"EXISTS", key}) == 0; }));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(other_replica().status, 200u) << i;
  EXPECT_EQ(RedisInt(redis, {"EXISTS", key}), 0) << "released, so Redis holds nothing";
}

TEST_F(RedisQuotaTest, RedisDownFailsClosedWith503ByDefault) {
  RedisServer redis;
  ASSERT_TRUE(redis.ok());
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(SimPolicy(), OnRedis("{requests_per_minute: 100}", redis.port())));
  ASSERT_EQ(Send({}).status, 200u);
  redis.Stop();
  const HttpResult r = Send({});
  ASSERT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(ErrorOf(r).at("code"), "store_unavailable");
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_THAT(Metrics(), HasSubstr("meridian_store_failures_total{outcome=\"fail_closed\"} 1"));
  // Back once Redis is: nothing to restart on the gateway's side.
  ASSERT_TRUE(redis.Restart());
  EXPECT_EQ(Send({}).status, 200u);
}

TEST_F(RedisQuotaTest, RedisDownFailsOpenWhenConfiguredAndCountsIt) {
  RedisServer redis;
  ASSERT_TRUE(redis.ok());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      SimPolicy(), OnRedis("{requests_per_minute: 1, on_store_failure: fail_open}", redis.port())));
  redis.Stop();
  const HttpResult r = Send({});
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-ratelimit-limit-requests"), "");  // nothing was checked
  EXPECT_EQ(Send({}).status, 200u);                       // over the limit, unchecked
  EXPECT_THAT(Metrics(), HasSubstr("meridian_store_failures_total{outcome=\"fail_open\"} 2"));
}

TEST_F(RedisQuotaTest, ASilentRedisCostsOneDeadlineNotAHang) {
  // A listener that accepts connections (the kernel does) and never answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);  // NOLINT
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);  // NOLINT
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(SimPolicy(), OnRedis("{requests_per_minute: 100}", ntohs(addr.sin_port))));
  const HttpResult r = Send({});
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(ErrorOf(r).at("code"), "store_timeout");
  ::close(fd);
}

TEST_F(RedisQuotaTest, ThePasswordComesFromTheNamedVariable) {
  RedisServer redis({"--requirepass", "s3cret-redis-pw"});
  ASSERT_TRUE(redis.ok());
  SetEnv("MERIDIAN_TEST_REDIS_PW", "s3cret-redis-pw");
  GatewayYaml g = OnRedis("{requests_per_minute: 1}", redis.port());
  g.store.push_back("password_env: MERIDIAN_TEST_REDIS_PW");
  ASSERT_NO_FATAL_FAILURE(StartGateway(SimPolicy(), g));
  EXPECT_EQ(Send({}).status, 200u);
  EXPECT_EQ(Send({}).status, 429u);
}

TEST_F(RedisQuotaTest, AnUnsetPasswordVariableStopsTheStartWithItsName) {
  GatewayYaml g = OnRedis("{requests_per_minute: 1}", 6379);
  g.store.push_back("password_env: MERIDIAN_TEST_NEVER_SET_REDIS_PW");
  WriteFile(Dir() / "policy.yaml", SimPolicy());
  WriteFile(Dir() / "gateway.yaml", g.Render());
  gateway::ServeInputs in;
  in.config_name = (Dir() / "gateway.yaml").string();
  std::unique_ptr<gateway::Gateway> gw;
  const core::Status st = gateway::Gateway::Create(in, gw);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message, HasSubstr("MERIDIAN_TEST_NEVER_SET_REDIS_PW is not set"));
}

}  // namespace
}  // namespace meridian::testing
