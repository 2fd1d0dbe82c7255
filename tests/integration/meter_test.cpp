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
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/pipeline.h"
#include "gateway/store/export_meter.h"
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

// Vectors T4 and T5 of the data-residency reference on the shipped example policy, at run
// time: the meter is what Redis holds, not what a test case claims.
TEST_F(MeterTest, ExamplePolicyVectorsT4AndT5HoldAtRunTimeWithTheMeterInRedis) {
  RedisServer redis({"--appendonly", "yes"});
  ASSERT_TRUE(redis.ok());
  const std::string examples = std::string(MERIDIAN_SOURCE_DIR) + "/config/examples/";
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  // The example tenant, with separate consent to cross-border transfer (T4's premise), counting
  // on this Redis.
  std::string gw = read(examples + "gateway.yaml");
  const std::string anchor = "    default_data_class: personal\n";
  ASSERT_NE(gw.find(anchor), std::string::npos);
  gw.replace(gw.find(anchor), anchor.size(),
             anchor + "    consent: {cross_border_separate: true}\n");
  gw += "store: {kind: redis, address: \"127.0.0.1:" + redis.port_string() +
        "\", command_timeout_ms: 2000}\nexport_meter: {hmac_key_env: " + kMeterKeyEnv + "}\n";
  WriteFile(Dir() / "gateway.yaml", gw);
  WriteFile(Dir() / "policy.yaml", read(examples + "policy.yaml"));
  gateway::ServeInputs in;
  in.config_name = (Dir() / "gateway.yaml").string();
  in.listen_override = "127.0.0.1:0";
  in.simulate = true;
  ASSERT_NO_FATAL_FAILURE(StartWith(in));

  const std::string key =
      store::MeterKey("acme", gateway::CstYear(gateway::UnixMillisNow()), false);
  // Individuals already exported this year, as other replicas would have counted them.
  int filled = 0;
  auto fill_to = [&](int n) {
    while (filled < n) {
      std::vector<std::string> cmd{"SADD", key};
      for (int j = 0; j < 10'000 && filled < n; ++j) cmd.push_back("x" + std::to_string(filled++));
      ASSERT_GT(RedisInt(redis, std::move(cmd)), 0);
    }
  };
  auto ask = [&](const std::string& model, const std::string& user) {
    ChatRequest r;
    r.model = model;
    r.extra["user"] = user;
    r.extra["max_tokens"] = 2;
    return Client().Post("/v1/chat/completions", r.Json(),
                         {{"authorization", "Bearer sk-meridian-demo"}});
  };

  // T4: CN, personal, consent, meter 40,000 (< the 100k exemption), GPT alias -> oai-us.
  fill_to(40'000);
  HttpResult r = ask("gpt-4.1", "user-t4");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "oai-us");
  EXPECT_EQ(r.header("x-meridian-policy-rule"), "acme-mainland");
  EXPECT_EQ(r.header("x-meridian-policy-guards"), "");
  EXPECT_EQ(Card(redis, key), 40'001) << "the new individual was counted";
  EXPECT_THAT(Metrics(), HasSubstr("meridian_xborder_individuals{tenant=\"acme\","
                                   "class=\"non_sensitive\"} 40000\n"))
      << "as read for the decision";
  EXPECT_EQ(ask("gpt-4.1", "user-t4").status, 200u);
  EXPECT_EQ(Card(redis, key), 40'001) << "once";

  // At 99,999 the decision still allows the export, but the 100,000th individual would end the
  // exemption it relied on: nothing leaves, and the GPT alias has no mainland candidate.
  fill_to(99'998);
  ASSERT_EQ(Card(redis, key), 99'999);
  r = ask("gpt-4.1", "user-edge");
  ExpectOpenAiError(r, 403, "policy_denied", "export_meter_band_reached");
  EXPECT_EQ(Card(redis, key), 99'999);
  EXPECT_EQ(ask("gpt-4.1", "user-t4").status, 200u) << "an individual already counted still is";

  // T5: the meter at 100,000 and no filed standard contract: G2 keeps the data in the
  // mainland; the GPT alias is denied, a Qwen alias routes to DashScope Beijing.
  fill_to(99'999);
  ASSERT_EQ(Card(redis, key), 100'000);
  r = ask("gpt-4.1", "user-t5");
  ExpectOpenAiError(r, 403, "policy_denied", "capability_unavailable_in_allowed_set");
  EXPECT_THAT(r.header("x-meridian-policy-guards"), HasSubstr("G2"));
  r = ask("qwen-plus", "user-t5");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("x-meridian-provider"), "ds-cn");
  EXPECT_EQ(Card(redis, key), 100'000) << "kept in the mainland: not an export";
}

/// Runs the built binary with `args` (a shell command line), its stdout and exit status.
std::pair<std::string, int> RunBinary(const std::string& args) {
  const std::string command = std::string(MERIDIAN_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {"popen failed", -1};
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

TEST_F(MeterTest, OperatorsReadTheMeterAndEachAuditLineSaysWhatWasExported) {
  RedisServer redis({"--appendonly", "yes"});
  ASSERT_TRUE(redis.ok());
  GatewayYaml g = OnRedis(redis.port());
  SetEnv(kAdminTokenEnv, kAdminToken);
  g.admin = {"listen: 127.0.0.1:0", std::string("token_env: ") + kAdminTokenEnv};
  g.audit = {"path: audit.jsonl", "flush_interval_ms: 20"};
  ASSERT_NO_FATAL_FAILURE(StartGateway(MeterPolicy(3), g));
  for (const char* user : {"alice", "alice", "bob", "carol"}) ASSERT_EQ(As(user).status, 200u);

  const std::map<std::string, std::string> admin = {
      {"authorization", std::string("Bearer ") + kAdminToken}};
  const HttpResult report = TestClient(gateway_->admin_port()).Get("/admin/meter", admin);
  ASSERT_EQ(report.status, 200u) << report.body;
  EXPECT_EQ(report.body, "{\"year\":" + Year() +
                             ",\"tenants\":[{\"tenant\":\"acme\",\"non_sensitive\":2,"
                             "\"non_sensitive_band\":\"below 100000\",\"non_sensitive_next\":3,"
                             "\"sensitive\":0,\"sensitive_band\":\"below 10000\","
                             "\"sensitive_next\":10000}]}");
  EXPECT_THAT(TestClient(gateway_->admin_port()).Get("/admin/meter?year=2020", admin).body,
              HasSubstr("\"year\":2020,\"tenants\":[{\"tenant\":\"acme\",\"non_sensitive\":0"));
  EXPECT_EQ(TestClient(gateway_->admin_port()).Get("/admin/meter?year=20x6", admin).status, 400u);
  EXPECT_EQ(TestClient(gateway_->admin_port()).Get("/admin/meter").status, 401u);
  EXPECT_EQ(Client().Get("/admin/meter", admin).status, 404u) << "on the public listener";

  // The command line reads the same store.
  const std::string config = (Dir() / "gateway.yaml").string();
  const auto [shown, shown_rc] = RunBinary("meter show -c " + config);
  EXPECT_EQ(shown_rc, 0) << shown;
  EXPECT_THAT(shown, HasSubstr("export meter, " + Year() + " (China Standard Time)"));
  EXPECT_THAT(shown,
              ::testing::MatchesRegex("(.|\n)*acme +2  below 100000 +0  below 10000(.|\n)*"));
  const auto [exported, exported_rc] = RunBinary("meter export -c " + config);
  EXPECT_EQ(exported_rc, 0) << exported;
  EXPECT_EQ(exported, report.body + "\n");
  // Redis gone: the report says it cannot read, with a failing exit status.
  redis.Stop();
  const auto [down, down_rc] = RunBinary("meter show -c " + config);
  EXPECT_EQ(down_rc, 1) << down;
  EXPECT_THAT(down, HasSubstr("acme"));
  EXPECT_THAT(down, HasSubstr("unreadable"));
  EXPECT_EQ(TestClient(gateway_->admin_port()).Get("/admin/meter", admin).status, 503u);

  gateway_->Drain(std::chrono::seconds(5));
  gateway_->Stop();
  std::ifstream in(Dir() / "audit.jsonl");
  std::vector<std::pair<bool, bool>> seen;  // exported, new_individual
  for (std::string line; std::getline(in, line);) {
    const json::object o = json::parse(line).as_object();
    ASSERT_THAT(line, ::testing::Not(HasSubstr("alice"))) << "a subject id in the audit log";
    seen.emplace_back(o.at("exported").as_bool(), o.at("new_individual").as_bool());
  }
  // alice (new), alice again, bob (new), carol kept in the mainland at the band.
  EXPECT_EQ(seen, (std::vector<std::pair<bool, bool>>{
                      {true, true}, {true, false}, {true, true}, {false, false}}));
}

}  // namespace
}  // namespace meridian::testing
