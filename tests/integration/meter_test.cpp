// The PIPL cross-border export meter through `meridian serve` on a real redis-server: distinct
// individuals (by the request's `user`) counted when their personal information goes to a
// provider outside the mainland, the count feeding the policy's `meter` conditions, the band
// the decision relied on never crossed (the export moves to a mainland candidate instead),
// concurrent replicas never carrying the count past it, no subject id → no export, counts kept
// as keyed digests and durable across a Redis restart, and the start refused against a Redis
// that persists nothing.
#include "gateway/meter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gateway/pipeline.h"
#include "gateway/store/redis_client.h"
#include "tests/integration/redis_harness.h"
#include "tests/integration/serve_fixture.h"

namespace meridian::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kMeterKeyEnv = "MERIDIAN_TEST_METER_KEY";
constexpr const char* kMeterKey = "test-meter-key-0123456789abcdef0123456789";

/// `us` (processing in the US) is preferred; a mainland user's personal data may go there only
/// while fewer than `band` individuals were exported this year, else it stays on `local` (CN).
std::string MeterPolicy(int band, bool with_local = true) {
  std::vector<ProviderYaml> providers{Sim("us", "[US]", "{chat: sim}", 3)};
  if (with_local) providers.push_back(Sim("local", "[CN]", "{chat: sim}", 3));
  return PolicyYaml(
      providers,
      std::string("  - id: everyone\n    allow: [us") + (with_local ? ", local" : "") + "]\n",
      "  - id: G2\n    when:\n      region: CN\n      data_class: \">= personal\"\n"
      "      not: {meter: {non_sensitive: \"< " +
          std::to_string(band) + "\"}}\n    narrow:\n      processing_within: [CN]\n");
}

class MeterTest : public ServeFixture {
 protected:
  void SetUp() override { SetEnv(kMeterKeyEnv, kMeterKey); }

  static GatewayYaml OnRedis(unsigned short port, std::vector<std::string> meter = {}) {
    GatewayYaml g;
    g.store = {"kind: redis", "address: 127.0.0.1:" + std::to_string(port),
               "command_timeout_ms: 500"};
    g.extra_sections.push_back("export_meter:\n  hmac_key_env: " + std::string(kMeterKeyEnv) +
                               "\n");
    for (const auto& l : meter) g.extra_sections.back() += "  " + l + "\n";
    return g;
  }

  static HttpResult As(unsigned short port, const std::string& user) {
    ChatRequest r;
    if (!user.empty()) r.extra["user"] = user;
    return TestClient(port).Post("/v1/chat/completions", r.Json(), Auth());
  }
  HttpResult As(const std::string& user) const { return As(gateway_->port(), user); }

  static long long Card(RedisServer& redis, const std::string& key) {
    return RedisInt(redis, {"SCARD", key});
  }
};

std::string Year() {
  return std::to_string(gateway::CstYear(gateway::UnixMillisNow()));
}

TEST_F(MeterTest, IndividualsAreCountedOnceAndTheBandIsNeverCrossed) {
  RedisServer redis({"--appendonly", "yes"});
  ASSERT_TRUE(redis.ok());
  ASSERT_NO_FATAL_FAILURE(StartGateway(MeterPolicy(3), OnRedis(redis.port())));
  EXPECT_EQ(As("alice").header("x-meridian-provider"), "us");
  EXPECT_EQ(As("bob").header("x-meridian-provider"), "us");
  EXPECT_EQ(As("alice").header("x-meridian-provider"), "us") << "already counted";
  const std::string key = "meridian:meter:{acme}:" + Year() + ":ns";
  EXPECT_EQ(Card(redis, key), 2);
  // The decision read 2 (< 3: export allowed), but carol would be the third: she stays in the
  // mainland, and the count stays below the band.
  const HttpResult carol = As("carol");
  ASSERT_EQ(carol.status, 200u) << carol.body;
  EXPECT_EQ(carol.header("x-meridian-provider"), "local");
  EXPECT_EQ(Card(redis, key), 2);
  EXPECT_EQ(As("alice").header("x-meridian-provider"), "us");
  EXPECT_THAT(Metrics(),
              HasSubstr("meridian_export_meter_events_total{event=\"added_non_sensitive\"} 2"));
  EXPECT_THAT(Metrics(), HasSubstr("meridian_export_meter_events_total{event=\"export_meter_band_"
                                   "reached\"} 1"));
}

TEST_F(MeterTest, AtTheBandThePolicyNarrowsToTheMainland) {
  RedisServer redis({"--appendonly", "yes"});
  ASSERT_TRUE(redis.ok());
  ASSERT_NO_FATAL_FAILURE(StartGateway(MeterPolicy(2), OnRedis(redis.port())));
  EXPECT_EQ(As("alice").header("x-meridian-provider"), "us");
  // Now 1 (< 2 still true) but bob would make 2: kept local by the gate.
  EXPECT_EQ(As("bob").header("x-meridian-provider"), "local");
  // Stored counts feed the decision: with 2 already exported (one added out of band here),
  // G2 applies and the decision itself excludes `us`.
  const std::string key = "meridian:meter:{acme}:" + Year() + ":ns";
  {
    boost::asio::io_context io;
    store::RedisOptions o;
    o.port = redis.port_string();
    store::RedisPool pool(io.get_executor(), o);
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          std::vector<std::string> cmd{"SADD", key, "imported-from-another-system"};
          (void)co_await pool.Call(std::move(cmd));
        },
        boost::asio::detached);
    io.run();
  }
  const HttpResult r = As("alice");
  EXPECT_EQ(r.header("x-meridian-provider"), "local");
  EXPECT_EQ(r.header("x-meridian-policy-guards"), "G2");
}

TEST_F(MeterTest, WithoutASubjectNothingIsExported) {
  RedisServer redis({"--appendonly", "yes"});
  ASSERT_TRUE(redis.ok());
  ASSERT_NO_FATAL_FAILURE(StartGateway(MeterPolicy(100, false), OnRedis(redis.port())));
  const HttpResult r = As("");
  ASSERT_EQ(r.status, 403u) << r.body;
  const json::object e = json::parse(r.body).as_object().at("error").as_object();
  EXPECT_EQ(e.at("code"), "export_needs_subject");
  EXPECT_EQ(As("dora").status, 200u);
}

TEST_F(MeterTest, WithoutASubjectExportsUncountedWhenConfigured) {
  RedisServer redis({"--appendonly", "yes"});
  ASSERT_TRUE(redis.ok());
  ASSERT_NO_FATAL_FAILURE(StartGateway(
      MeterPolicy(100, false), OnRedis(redis.port(), {"without_subject: allow_uncounted"})));
  EXPECT_EQ(As("").status, 200u);
  EXPECT_THAT(Metrics(),
              HasSubstr("meridian_export_meter_events_total{event=\"exported_uncounted\"} 1"));
}

TEST_F(MeterTest, SubjectsAreStoredAsKeyedDigestsAndSurviveARedisRestart) {
  RedisServer redis({"--appendonly", "yes"});
  ASSERT_TRUE(redis.ok());
  ASSERT_NO_FATAL_FAILURE(StartGateway(MeterPolicy(3), OnRedis(redis.port())));
  EXPECT_EQ(As("alice@example.com").header("x-meridian-provider"), "us");
  const std::string key = "meridian:meter:{acme}:" + Year() + ":ns";
  const std::string member = gateway::SubjectDigest(kMeterKey, "acme", "alice@example.com");
  EXPECT_EQ(member.size(), 32u);
  redis.Stop();
  ASSERT_TRUE(redis.Restart());
  EXPECT_EQ(Card(redis, key), 1) << "the append-only file kept the count";
  EXPECT_EQ(RedisInt(redis, {"SISMEMBER", key, member}), 1);
  EXPECT_EQ(RedisInt(redis, {"SISMEMBER", key, "alice@example.com"}), 0) << "never in clear";
  EXPECT_NE(member, gateway::SubjectDigest("another-key-0123456789abcdef0123456789", "acme",
                                           "alice@example.com"))
      << "keyed: without the key the digest cannot be recomputed from a guessed address";
  EXPECT_EQ(As("bob").header("x-meridian-provider"), "us");
  EXPECT_EQ(As("carol").header("x-meridian-provider"), "local");
}

TEST_F(MeterTest, ConcurrentReplicasNeverCarryTheCountPastTheBand) {
  RedisServer redis({"--appendonly", "yes"});
  ASSERT_TRUE(redis.ok());
  const GatewayYaml g = OnRedis(redis.port());
  ASSERT_NO_FATAL_FAILURE(StartGateway(MeterPolicy(11), g));
  ServeReplica second;
  ASSERT_NO_FATAL_FAILURE(second.StartGateway(MeterPolicy(11), g));
  const unsigned short ports[2] = {gateway_->port(), second.gateway_->port()};
  std::atomic<int> exported{0};
  std::atomic<int> local{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        const HttpResult r = As(ports[(t + i) % 2], "user-" + std::to_string(t * 5 + i));
        if (r.header("x-meridian-provider") == "us") ++exported;
        if (r.header("x-meridian-provider") == "local") ++local;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(exported.load(), 10) << "40 individuals, a band of fewer than 11";
  EXPECT_EQ(local.load(), 30);
  EXPECT_EQ(Card(redis, "meridian:meter:{acme}:" + Year() + ":ns"), 10);
}

TEST_F(MeterTest, TheStartIsRefusedAgainstARedisThatPersistsNothing) {
  RedisServer redis;  // the harness's default: --save "" --appendonly no
  ASSERT_TRUE(redis.ok());
  GatewayYaml g = OnRedis(redis.port());
  WriteFile(Dir() / "policy.yaml", MeterPolicy(3));
  WriteFile(Dir() / "gateway.yaml", g.Render());
  gateway::ServeInputs in;
  in.config_name = (Dir() / "gateway.yaml").string();
  std::unique_ptr<gateway::Gateway> gw;
  core::Status st = gateway::Gateway::Create(in, gw);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message, HasSubstr("a Redis restart would lose the counts"));
  // An operator who knows better may override it.
  g = OnRedis(redis.port(), {"allow_unpersisted_redis: true"});
  WriteFile(Dir() / "gateway.yaml", g.Render());
  st = gateway::Gateway::Create(in, gw);
  EXPECT_TRUE(st.ok()) << st.message;
  if (gw) gw->Stop();
}

TEST_F(MeterTest, AShortOrMissingKeyStopsTheStart) {
  RedisServer redis({"--appendonly", "yes"});
  ASSERT_TRUE(redis.ok());
  SetEnv(kMeterKeyEnv, "too-short");
  WriteFile(Dir() / "policy.yaml", MeterPolicy(3));
  WriteFile(Dir() / "gateway.yaml", OnRedis(redis.port()).Render());
  gateway::ServeInputs in;
  in.config_name = (Dir() / "gateway.yaml").string();
  std::unique_ptr<gateway::Gateway> gw;
  const core::Status st = gateway::Gateway::Create(in, gw);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message, HasSubstr("MERIDIAN_TEST_METER_KEY must hold the key"));
  EXPECT_THAT(st.message, ::testing::Not(HasSubstr("too-short")));
}

}  // namespace
}  // namespace meridian::testing
