// Operating the gateway without downtime: policy hot reload (explicit, on a file change in the
// watched directory — including a Kubernetes ConfigMap symlink swap — and on the admin
// endpoint) and graceful drain. `meridian serve` runs in process on port 0.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "tests/integration/serve_fixture.h"

namespace meridian::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

/// Waits for `pred` (polled) up to `timeout`; the result of the last evaluation.
bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

/// One simulated provider serving `chat` to everyone.
std::string OneSim(const std::string& id, int tokens = 2, int delay_ms = 0) {
  ProviderYaml p = Sim(id, "[CN]", "{chat: sim}", tokens);
  if (delay_ms > 0) p.extra.push_back("sim_delay_ms: " + std::to_string(delay_ms));
  return PolicyYaml({p}, "  - id: everyone\n    allow: [" + id + "]\n");
}

constexpr const char* kInvalidPolicy =
    "version: 1\nproviders:\n  - id: broken\n    kind: sim\n    colour: red\n    models: "
    "{chat: x}\nroutes:\n  - id: r\n    allow: [nobody]\n";

class OpsTest : public ServeFixture {
 protected:
  void Start(const std::string& policy, GatewayYaml g = {}) {
    g.admin = AdminYaml();
    ASSERT_NO_FATAL_FAILURE(StartGateway(policy, g));
    ASSERT_NE(gateway_->admin_port(), 0);
  }
  std::string Version() const { return gateway_->state().Table()->policy->version; }
  /// Writes the policy the way editors do: a temporary file renamed over the old one.
  void ReplacePolicy(const std::string& text) {
    WriteFile(Dir() / "policy.yaml.tmp", text);
    fs::rename(Dir() / "policy.yaml.tmp", Dir() / "policy.yaml");
  }
  TestClient Admin() const { return TestClient(gateway_->admin_port()); }
  /// The `admin:` lines, its token in the environment.
  std::vector<std::string> AdminYaml() {
    SetEnv(kAdminTokenEnv, kAdminToken);
    return {"listen: 127.0.0.1:0", std::string("token_env: ") + kAdminTokenEnv};
  }
  static std::map<std::string, std::string> AdminAuth(const std::string& token = kAdminToken) {
    return {{"authorization", "Bearer " + token}};
  }
};

TEST_F(OpsTest, ReloadsAlternatingValidAndInvalidFilesWhileRequestsFlow) {
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a")));
  const std::string version_a = Version();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread traffic([&] {
    while (!stop.load()) {
      const HttpResult r = Chat({});
      (r.status == 200 ? ok : failed).fetch_add(1);
    }
  });
  std::string expected = "sim-a";
  for (int round = 0; round < 6; ++round) {
    // An invalid file is refused with its positions; the last good policy keeps serving.
    ReplacePolicy(kInvalidPolicy);
    const gateway::ReloadResult bad = gateway_->Reload("test");
    EXPECT_FALSE(bad.ok);
    ASSERT_FALSE(bad.errors.empty());
    EXPECT_THAT(bad.errors.front(), HasSubstr("policy.yaml:5:5: unknown key 'colour'"));
    EXPECT_EQ(Chat({}).header("x-meridian-provider"), expected);

    // A valid one takes over at once: the next request is decided on it.
    expected = round % 2 == 0 ? "sim-b" : "sim-a";
    ReplacePolicy(OneSim(expected));
    const gateway::ReloadResult good = gateway_->Reload("test");
    EXPECT_TRUE(good.ok) << ::testing::PrintToString(good.errors);
    EXPECT_EQ(good.version, Version());
    const HttpResult r = Chat({});
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.header("x-meridian-provider"), expected);
    EXPECT_EQ(r.header("x-meridian-policy-version"), good.version);
  }
  stop.store(true);
  traffic.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(failed.load(), 0) << "a reload must never fail a request";
  EXPECT_EQ(Version(), version_a) << "six swaps end on policy A again";
  EXPECT_GE(gateway_->state().counters.policy_reloads_failed.load(), 6u);
}

TEST_F(OpsTest, AFileChangeInTheWatchedDirectoryIsPickedUp) {
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a")));
  const std::string before = Version();
  ReplacePolicy(OneSim("sim-b"));
  ASSERT_TRUE(Eventually([&] { return Version() != before; })) << "no reload after the rename";
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "sim-b");
  // An invalid edit is refused and counted; sim-b keeps serving.
  const auto attempts = gateway_->reload_attempts();
  ReplacePolicy(kInvalidPolicy);
  ASSERT_TRUE(gateway_->WaitForReloadAttempts(attempts + 1, 5s));
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "sim-b");
}

TEST_F(OpsTest, AConfigMapSymlinkSwapIsPickedUp) {
  // The layout kubelet gives a ConfigMap volume: policy.yaml -> ..data/policy.yaml and
  // ..data -> ..<timestamp>/, swapped by renaming a new ..data symlink over the old one.
  fs::create_directories(Dir() / "..v1");
  WriteFile(Dir() / "..v1" / "policy.yaml", OneSim("sim-a"));
  fs::create_directory_symlink("..v1", Dir() / "..data");
  fs::create_symlink("..data/policy.yaml", Dir() / "policy.yaml.link");
  GatewayYaml g;
  g.admin = AdminYaml();
  WriteFile(Dir() / "gateway.yaml", [&] {
    std::string y = g.Render();
    y.replace(y.find("policy_file: policy.yaml"), 24, "policy_file: policy.yaml.link");
    return y;
  }());
  gateway::ServeInputs in;
  in.config_name = (Dir() / "gateway.yaml").string();
  ASSERT_NO_FATAL_FAILURE(StartWith(in));
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "sim-a");

  fs::create_directories(Dir() / "..v2");
  WriteFile(Dir() / "..v2" / "policy.yaml", OneSim("sim-b"));
  fs::create_directory_symlink("..v2", Dir() / "..data_tmp");
  fs::rename(Dir() / "..data_tmp", Dir() / "..data");
  ASSERT_TRUE(Eventually([&] { return Chat({}).header("x-meridian-provider") == "sim-b"; }));
}

TEST_F(OpsTest, AReplacedPolicyDirectoryIsWatchedAgain) {
  // The policy in a directory of its own, which is then replaced as a whole.
  const fs::path dir = Dir() / "policy";
  fs::create_directories(dir);
  WriteFile(dir / "policy.yaml", OneSim("sim-a"));
  GatewayYaml g;
  g.admin = AdminYaml();
  std::string yaml = g.Render();
  yaml.replace(yaml.find("policy_file: policy.yaml"), 24, "policy_file: policy/policy.yaml");
  WriteFile(Dir() / "gateway.yaml", yaml);
  gateway::ServeInputs in;
  in.config_name = (Dir() / "gateway.yaml").string();
  ASSERT_NO_FATAL_FAILURE(StartWith(in));
  auto ready_version = [&] {
    const HttpResult r = Admin().Get("/readyz");
    const json::object o = BodyJson(r);
    return o.contains("policy_version") ? std::string(o.at("policy_version").as_string())
                                        : std::string();
  };
  const std::string first = ready_version();
  ASSERT_FALSE(first.empty());

  // rm -rf policy && mkdir policy, then the policy written again, changed.
  fs::remove_all(dir);
  fs::create_directory(dir);
  WriteFile(dir / "policy.yaml", OneSim("sim-b"));
  ASSERT_TRUE(Eventually([&] { return ready_version() != first; }))
      << "no reload after the directory was replaced";
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "sim-b");
  const std::string second = ready_version();

  // mv policy policy.old && mkdir policy: the watch must not stay with the renamed directory.
  fs::rename(dir, Dir() / "policy.old");
  fs::create_directory(dir);
  WriteFile(dir / "policy.yaml", OneSim("sim-c"));
  ASSERT_TRUE(Eventually([&] { return ready_version() != second; }))
      << "no reload after the directory was renamed away and made again";
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "sim-c");

  // Later edits in the new directory are seen too (an editor's write-and-rename).
  const std::string third = ready_version();
  WriteFile(dir / "policy.yaml.tmp", OneSim("sim-d"));
  fs::rename(dir / "policy.yaml.tmp", dir / "policy.yaml");
  ASSERT_TRUE(Eventually([&] { return ready_version() != third; }));
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "sim-d");
}

TEST_F(OpsTest, AdminListenerReloadsAndReportsErrors) {
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a")));
  ReplacePolicy(kInvalidPolicy);
  const HttpResult bad = Admin().Post("/admin/reload", "", AdminAuth());
  EXPECT_EQ(bad.status, 422u) << bad.body;
  const json::object b = BodyJson(bad);
  EXPECT_EQ(b.at("result"), "refused");
  ASSERT_FALSE(b.at("errors").as_array().empty());
  EXPECT_THAT(std::string(b.at("errors").at(0).as_string()), HasSubstr(":5:5: unknown key"));

  ReplacePolicy(OneSim("sim-b"));
  const HttpResult good = Admin().Post("/admin/reload", "", AdminAuth());
  ASSERT_EQ(good.status, 200u) << good.body;
  EXPECT_EQ(BodyJson(good).at("policy_version"), json::value(Version()));
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "sim-b");

  const HttpResult metrics = Admin().Get("/metrics", AdminAuth());
  ASSERT_EQ(metrics.status, 200u);
  EXPECT_THAT(metrics.body, HasSubstr("meridian_policy_info{version=\"" + Version() + "\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("meridian_policy_reloads_total{result=\"error\"}"));
  // Operations routes only on the admin listener, and reload only there.
  EXPECT_EQ(Admin().Post("/v1/chat/completions", ChatRequest{}.Json(), AdminAuth()).status, 404u);
  EXPECT_EQ(Client().Post("/admin/reload", "", Auth()).status, 404u);
  EXPECT_EQ(Admin().Get("/admin/reload", AdminAuth()).status, 405u);
}

// A probe connection that is idle when a drain starts (a load balancer keeps it open between
// probes) is answered, not cut: only public connections are closed while idle.
TEST_F(OpsTest, AnAdminConnectionIdleWhenTheDrainStartsStillGetsItsAnswer) {
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a", 2, 0)));
  RawConnection probe(gateway_->admin_port());
  auto ask = [&probe](std::string& out) {
    EXPECT_TRUE(probe.Send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"));
    while (out.find("\r\n\r\n") == std::string::npos || out.find('}') == std::string::npos) {
      if (probe.Read(std::chrono::seconds(10), out) != RawConnection::ReadResult::kData) break;
    }
  };
  std::string first;
  ask(first);
  ASSERT_THAT(first, HasSubstr("HTTP/1.1 200"));  // now idle, kept alive
  gateway_->Drain(10s);  // nothing in flight: returns once the drain has begun
  // A round trip on a new connection runs after the drain's hooks on this worker.
  ASSERT_EQ(Admin().Get("/readyz").status, 503u);
  std::string second;
  ask(second);
  EXPECT_THAT(second, HasSubstr("HTTP/1.1 503")) << "the idle probe connection was cut";
}

TEST_F(OpsTest, AdminRequestsAreCountedApartFromPublicTraffic) {
  // ~1 s per answer: the drain below must outlast the probes even on a loaded machine.
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a", 20, 50)));
  const gateway::Counters& c = gateway_->state().counters;
  ASSERT_EQ(Chat({}).status, 200u);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Admin().Get("/readyz").status, 200u);
  ASSERT_EQ(Admin().Get("/healthz").status, 200u);
  ASSERT_EQ(Admin().Get("/no-such-route", AdminAuth()).status, 404u);
  EXPECT_EQ(c.requests.load(), 1u) << "admin probes counted as HTTP requests";
  EXPECT_EQ(c.responses_2xx.load(), 1u);
  EXPECT_EQ(c.responses_4xx.load(), 0u);

  // During a drain every probe answers 503, and none of them is a public 5xx.
  HttpResult streamed;
  // jthreads: a failed assertion below reports instead of destroying a joinable thread.
  std::jthread client([&] { streamed = Chat({.stream = true}); });
  ASSERT_TRUE(Eventually([&] { return gateway_->state().in_flight.load() == 1; }));
  std::jthread drain([&] { gateway_->Drain(10s); });
  int ready = 5, not_ready = 0;
  ASSERT_TRUE(Eventually([&] {
    const unsigned status = Admin().Get("/readyz").status;
    EXPECT_TRUE(status == 200 || status == 503) << "readyz answered " << status;
    if (status == 200) ++ready;
    if (status == 503) ++not_ready;
    return status == 503;
  }));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Admin().Get("/readyz").status, 503u);
    ++not_ready;
  }
  client.join();
  drain.join();
  ASSERT_EQ(streamed.status, 200u) << streamed.error;
  const std::string scrape = Admin().Get("/metrics", AdminAuth()).body;
  EXPECT_EQ(MetricValue(scrape, "meridian_http_requests_total"), 2) << scrape;
  EXPECT_THAT(scrape, HasSubstr("meridian_http_responses_total{class=\"5xx\"} 0"));
  EXPECT_THAT(scrape, HasSubstr("meridian_http_responses_total{class=\"2xx\"} 2"));
  EXPECT_EQ(MetricValue(scrape, "meridian_admin_requests_total{path=\"/readyz\",code=\"200\"}"),
            ready);
  EXPECT_EQ(MetricValue(scrape, "meridian_admin_requests_total{path=\"/readyz\",code=\"503\"}"),
            not_ready);
  EXPECT_EQ(MetricValue(scrape, "meridian_admin_requests_total{path=\"/healthz\",code=\"200\"}"),
            1);
  EXPECT_EQ(MetricValue(scrape, "meridian_admin_requests_total{path=\"other\",code=\"404\"}"), 1);
}

TEST_F(OpsTest, AdminRoutesRequireTheTokenProbesDoNot) {
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a")));
  const auto attempts = gateway_->reload_attempts();
  for (const std::string path : {"/metrics", "/admin/reload", "/no-such-route"}) {
    SCOPED_TRACE(path);
    const bool post = path == "/admin/reload";
    auto call = [&](const std::map<std::string, std::string>& headers) {
      return post ? Admin().Post(path, "", headers) : Admin().Get(path, headers);
    };
    const HttpResult none = call({});
    ExpectOpenAiError(none, 401, "authentication_error", "missing_admin_token");
    EXPECT_EQ(none.header("www-authenticate"), "Bearer realm=\"meridian-admin\"");
    ExpectOpenAiError(call(AdminAuth("not-the-admin-token-0123456789")), 401,
                      "authentication_error", "invalid_admin_token");
    // A tenant's API key is not the admin token.
    ExpectOpenAiError(call(Auth()), 401, "authentication_error", "invalid_admin_token");
    ExpectOpenAiError(call({{"authorization", std::string("Basic ") + kAdminToken}}), 401,
                      "authentication_error", "invalid_admin_token");
    ExpectOpenAiError(call({{"authorization", "Bearer " + std::string(kAdminToken) + "x"}}), 401,
                      "authentication_error", "invalid_admin_token");
  }
  EXPECT_EQ(gateway_->reload_attempts(), attempts) << "a reload without the token ran";
  // With the token (the scheme in any case).
  const HttpResult metrics = Admin().Get("/metrics", AdminAuth());
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_THAT(metrics.body, HasSubstr("meridian_admin_requests_total"));
  EXPECT_EQ(
      Admin().Get("/metrics", {{"authorization", std::string("bearer ") + kAdminToken}}).status,
      200u);
  const HttpResult reload = Admin().Post("/admin/reload", "", AdminAuth());
  EXPECT_EQ(reload.status, 200u) << reload.body;
  EXPECT_EQ(gateway_->reload_attempts(), attempts + 1);
  EXPECT_EQ(Admin().Get("/no-such-route", AdminAuth()).status, 404u);
  // The probes stay open: a kubelet sends no credentials.
  EXPECT_EQ(Admin().Get("/healthz").status, 200u);
  EXPECT_EQ(Admin().Get("/readyz").status, 200u);
  EXPECT_THAT(Metrics(),
              HasSubstr("meridian_admin_requests_total{path=\"/metrics\",code=\"401\"} 5"));
}

TEST_F(OpsTest, MetricsAreOnThePublicListenerOnlyWhenConfigured) {
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a")));
  const HttpResult hidden = Client().Get("/metrics");
  ExpectOpenAiError(hidden, 404, "invalid_request_error", "not_found");
  EXPECT_THAT(ErrorMessage(hidden), HasSubstr("metrics.public: true"));
  EXPECT_THAT(hidden.body, Not(HasSubstr("meridian_http_requests_total")));
  gateway_->Stop();
  gateway_.reset();

  GatewayYaml g;
  g.metrics = {"public: true"};
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a"), g));
  const HttpResult shown = Client().Get("/metrics");
  EXPECT_EQ(shown.status, 200u);
  EXPECT_THAT(shown.body, HasSubstr("meridian_http_requests_total"));
  // The admin listener still wants its token.
  EXPECT_EQ(Admin().Get("/metrics").status, 401u);
}

TEST_F(OpsTest, AdminTokenFromAFileWithoutItsTrailingNewline) {
  WriteFile(Dir() / "admin.token", std::string(kAdminToken) + "\n");
  GatewayYaml g;
  g.admin = {"listen: 127.0.0.1:0", "token_file: admin.token"};
  ASSERT_NO_FATAL_FAILURE(StartGateway(OneSim("sim-a"), g));
  EXPECT_EQ(Admin().Get("/metrics", AdminAuth()).status, 200u);
  EXPECT_EQ(Admin().Get("/metrics").status, 401u);
}

TEST_F(OpsTest, AdminTokenProblemsStopTheStartWithoutShowingTheToken) {
  WriteFile(Dir() / "policy.yaml", OneSim("sim-a"));
  auto start = [&](const std::vector<std::string>& admin) {
    GatewayYaml g;
    g.admin = admin;
    WriteFile(Dir() / "gateway.yaml", g.Render());
    gateway::ServeInputs in;
    in.config_name = (Dir() / "gateway.yaml").string();
    std::unique_ptr<gateway::Gateway> started;
    const core::Status st = gateway::Gateway::Create(in, started);
    EXPECT_EQ(started, nullptr);
    EXPECT_EQ(st.code, core::StatusCode::kInvalidArgument);
    return st.message;
  };
  const std::string unset = "MERIDIAN_TEST_ADMIN_TOKEN_NEVER_SET";
  EXPECT_THAT(start({"listen: 127.0.0.1:0", "token_env: " + unset}),
              HasSubstr("gateway.yaml:6:3: 'token_env': environment variable " + unset +
                        " is not set or empty"));
  SetEnv("MERIDIAN_TEST_SHORT_ADMIN_TOKEN", "short-secret");
  const std::string short_token =
      start({"listen: 127.0.0.1:0", "token_env: MERIDIAN_TEST_SHORT_ADMIN_TOKEN"});
  EXPECT_THAT(short_token, HasSubstr("the admin token from environment variable "
                                     "MERIDIAN_TEST_SHORT_ADMIN_TOKEN is 12 characters long; use "
                                     "at least 16"));
  EXPECT_THAT(short_token, Not(HasSubstr("short-secret")));
  WriteFile(Dir() / "empty.token", "\n");
  EXPECT_THAT(start({"listen: 127.0.0.1:0", "token_file: empty.token"}),
              HasSubstr("'token_file': '" + (Dir() / "empty.token").string() + "' holds no token"));
  EXPECT_THAT(start({"listen: 127.0.0.1:0"}), HasSubstr("admin needs 'token_env'"));
}

TEST_F(OpsTest, DrainLetsStreamsInFlightFinish) {
  // ~1 s per answer: the drain below must outlast the probes even on a loaded machine.
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a", 20, 50)));
  HttpResult streamed;
  std::jthread client([&] { streamed = Chat({.stream = true}); });
  ASSERT_TRUE(Eventually([&] { return gateway_->state().in_flight.load() == 1; }));
  std::jthread drain([&] { gateway_->Drain(10s); });
  ASSERT_TRUE(Eventually([&] { return Admin().Get("/readyz").status == 503; }));
  // New connections are refused while the stream in flight goes on.
  ASSERT_TRUE(Eventually([&] { return Client().Get("/healthz").status == 0; }));
  client.join();
  drain.join();
  ASSERT_EQ(streamed.status, 200u) << streamed.error;
  const ParsedStream s = ParseStream(streamed.body);
  EXPECT_TRUE(s.done) << streamed.body;
  EXPECT_EQ(s.content_deltas, 20);
  EXPECT_FALSE(s.error.has_value());
}

TEST_F(OpsTest, DrainDeadlineEndsRemainingStreamsWithAnError) {
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a", 200, 30)));  // ~6 s per answer
  HttpResult streamed;
  std::thread client([&] { streamed = Chat({.stream = true}); });
  ASSERT_TRUE(Eventually([&] { return gateway_->state().in_flight.load() == 1; }));
  const auto started = std::chrono::steady_clock::now();
  gateway_->Drain(200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  client.join();
  ASSERT_EQ(streamed.status, 200u) << streamed.error;
  const ParsedStream s = ParseStream(streamed.body);
  EXPECT_FALSE(s.done);
  ASSERT_TRUE(s.error.has_value()) << streamed.body;
  EXPECT_EQ(s.error->at("error").at("code"), "shutting_down");
  EXPECT_GT(s.content_deltas, 0);
  EXPECT_LT(s.content_deltas, 200);
  EXPECT_EQ(gateway_->state().in_flight.load(), 0);
}

TEST_F(OpsTest, EveryDecidedRequestHasExactlyOneAuditLineAfterShutdownUnderLoad) {
  GatewayYaml g;
  // A long flush interval: the lines must come out of the queue at shutdown, not before.
  g.audit = {"path: audit.jsonl", "flush_interval_ms: 60000"};
  ASSERT_NO_FATAL_FAILURE(Start(
      PolicyYaml({Sim("sim-a", "[CN]", "{chat: sim}", 3)}, "  - id: everyone\n    allow: [sim-a]\n",
                 "  - id: needs-consent\n    when:\n      data_class: sensitive_personal\n"
                 "      consent: {sensitive_separate: false}\n"
                 "    deny: Sensitive personal information needs separate consent.\n"),
      g));
  constexpr int kThreads = 4, kPerThread = 60;
  std::mutex mu;
  std::map<std::string, bool> decided;  // request id -> allowed
  int undecided = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        HttpResult r;
        switch ((t + i) % 4) {
          case 0:
            r = Chat({.text = "secret prompt text", .stream = true});
            break;
          case 1:
            r = Chat({.text = "secret prompt text"});
            break;
          case 2:
            r = Chat({}, {{"x-meridian-data-class", "sensitive_personal"}});
            break;
          default:  // unauthenticated: never decided, never audited
            r = Client().Post("/v1/chat/completions", ChatRequest{}.Json(),
                              {{"authorization", "Bearer sk-wrong"}});
        }
        std::lock_guard lock(mu);
        if (r.header("x-meridian-policy-version").empty()) {
          ++undecided;
        } else {
          decided[r.header("x-request-id")] = r.status == 200;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  gateway_->Drain(5s);
  gateway_->Stop();

  std::ifstream in(Dir() / "audit.jsonl");
  std::string line;
  std::map<std::string, bool> audited;
  std::size_t lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_THAT(line, Not(HasSubstr("secret prompt text"))) << "prompt content in the audit log";
    EXPECT_THAT(line, Not(HasSubstr(kTenantKey)));
    boost::system::error_code ec;
    const json::value v = json::parse(line, ec);
    ASSERT_FALSE(ec) << line;
    const json::object& o = v.as_object();
    audited[std::string(o.at("request_id").as_string())] = o.at("allowed").as_bool();
    EXPECT_EQ(o.at("tenant"), "acme");
    EXPECT_EQ(o.at("front_end"), "http");
    if (!o.at("allowed").as_bool()) {
      EXPECT_EQ(o.at("reason_code"), "denied_by_guard:needs-consent");
      EXPECT_EQ(o.at("status"), 403);
    } else {
      EXPECT_EQ(o.at("attempts").as_array().size(), 1u);
      EXPECT_EQ(o.at("completion_tokens"), 3);
    }
  }
  EXPECT_EQ(undecided, kThreads * kPerThread / 4);
  EXPECT_EQ(lines, decided.size()) << "one audit line per decided request, none lost";
  EXPECT_EQ(audited, decided);
}

TEST_F(OpsTest, ASecondGatewayOnTheSamePortIsRefusedNotSharing) {
  // The workers' listeners use SO_REUSEPORT; without a check a second process could join the
  // group and take half of the connections unnoticed.
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a")));
  std::string yaml = GatewayYaml{}.Render();
  const std::string from = "listen: 127.0.0.1:0";
  yaml.replace(yaml.find(from), from.size(),
               "listen: 127.0.0.1:" + std::to_string(gateway_->port()));
  WriteFile(Dir() / "second.yaml", yaml);
  gateway::ServeInputs in;
  in.config_name = (Dir() / "second.yaml").string();
  std::unique_ptr<gateway::Gateway> second;
  const std::string error = gateway::Gateway::Create(in, second).message;
  EXPECT_EQ(second, nullptr);
  EXPECT_THAT(error, HasSubstr("cannot listen on 127.0.0.1:" + std::to_string(gateway_->port())));
  EXPECT_THAT(error, HasSubstr("is another gateway running there?"));
  // The first one still serves every request.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Chat(ChatRequest{}).status, 200);
}

TEST_F(OpsTest, PromtoolAcceptsALiveScrape) {
  GatewayYaml g;
  g.audit = {"path: audit.jsonl"};
  // A guard that applies to sensitive data (the resident id below raises the class to it).
  ASSERT_NO_FATAL_FAILURE(Start(
      PolicyYaml({Sim("sim-a", "[CN]", "{chat: sim}", 2)}, "  - id: everyone\n    allow: [sim-a]\n",
                 "  - id: keep-sensitive-here\n    when:\n      data_class: \">= "
                 "sensitive_personal\"\n    narrow:\n      providers: [sim-a]\n"),
      g));
  // Traffic of every kind, so labelled families have children.
  EXPECT_EQ(Chat({.stream = true, .include_usage = true}).status, 200u);
  EXPECT_EQ(Chat({.text = "my id is 11010519491231002X"}).status, 200u);  // raised, allowed
  EXPECT_EQ(Chat({.model = "nope"}).status, 404u);
  EXPECT_EQ(Chat({}, {{kRegionHeader, "HK"}}).status, 200u);
  const HttpResult scrape = Admin().Get("/metrics", AdminAuth());
  ASSERT_EQ(scrape.status, 200u);
  EXPECT_THAT(scrape.body, HasSubstr("meridian_requests_total{front_end=\"http\",region=\"CN\","
                                     "decision=\"allowed\",provider=\"sim-a\",outcome=\"ok\"} 2"));
  EXPECT_THAT(scrape.body,
              HasSubstr("decision=\"denied\",provider=\"none\",outcome=\"not_found\"} 1"));
  EXPECT_THAT(scrape.body,
              HasSubstr("meridian_tokens_total{provider=\"sim-a\",direction=\"out\"}"));
  EXPECT_THAT(
      scrape.body,
      HasSubstr("meridian_classifier_raises_by_detector_total{detector=\"cn_resident_id\"} 1"));
  EXPECT_THAT(scrape.body,
              HasSubstr("meridian_time_to_first_token_seconds_count{front_end=\"http\"} 1"));
  EXPECT_THAT(scrape.body, HasSubstr("meridian_audit_queue_depth"));
  // Per provider, rule and guard.
  EXPECT_THAT(
      scrape.body,
      HasSubstr("meridian_provider_time_to_first_token_seconds_count{provider=\"sim-a\"} 1"));
  EXPECT_THAT(scrape.body,
              HasSubstr("meridian_upstream_attempt_duration_seconds_count{provider=\"sim-a\"} 3"));
  EXPECT_THAT(scrape.body,
              HasSubstr("meridian_decisions_total{rule=\"everyone\",decision=\"allowed\"} 3"));
  EXPECT_THAT(scrape.body,
              HasSubstr("meridian_guard_applications_total{guard=\"keep-sensitive-here\"} 1"));
  // Fleet figures: per tenant (tenants come from the config), circuits, process, build.
  EXPECT_THAT(scrape.body, HasSubstr("meridian_tenant_requests_total{tenant=\"acme\","
                                     "outcome=\"ok\"} 3"));
  EXPECT_THAT(scrape.body,
              HasSubstr("meridian_tenant_requests_total{tenant=\"acme\",outcome=\"not_found\"} 1"));
  EXPECT_THAT(scrape.body,
              HasSubstr("meridian_tenant_tokens_total{tenant=\"acme\",direction=\"out\"}"));
  EXPECT_THAT(scrape.body,
              HasSubstr("meridian_provider_circuit_state{provider=\"sim-a\",model=\"chat\"} 0"));
  EXPECT_THAT(scrape.body, HasSubstr("meridian_draining 0\n"));
  EXPECT_THAT(scrape.body,
              ::testing::ContainsRegex("meridian_build_info\\{version=\"[0-9]+\\.[0-9]+\\.[0-9]+\","
                                       "revision=\"([0-9a-f]{12}|unknown)\"\\} 1"));
  // process_* values are floats ("2.4e+07"): read them as such.
  auto value = [&](const std::string& name) -> double {
    const std::size_t at = scrape.body.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(scrape.body.substr(at + name.size() + 2));
  };
  EXPECT_GE(value("process_cpu_seconds_total"), 0);
  EXPECT_GT(value("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(value("process_virtual_memory_bytes"), value("process_resident_memory_bytes"));
  EXPECT_GE(value("process_open_fds"), 5);  // stdio, listeners, the audit file
  EXPECT_GT(value("process_max_fds"), value("process_open_fds"));
  EXPECT_GT(value("process_start_time_seconds"), 1.7e9);
  const fs::path file = Dir() / "scrape.txt";
  WriteFile(file, scrape.body);
  const std::string cmd = "promtool check metrics < '" + file.string() + "' > '" +
                          (Dir() / "promtool.out").string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream out(Dir() / "promtool.out");
  std::stringstream text;
  text << out.rdbuf();
  EXPECT_EQ(rc, 0) << "promtool check metrics failed:\n" << text.str();
}

// ---- the gateway config's tenants, keys and trusted proxies, without a restart -------------

constexpr const char* kRotatedKey = "sk-test-rotated-0123456789";

/// The default tenant with these API keys (and its other defaults).
TenantYaml TenantWithKeys(const std::vector<std::string>& keys) {
  TenantYaml t;
  t.key.clear();
  std::string list;
  for (const auto& k : keys) list += (list.empty() ? "" : ", ") + KeyHash(k);
  t.extra.push_back("api_key_sha256: [" + list + "]");
  return t;
}

TEST_F(OpsTest, KeysTenantsAndTrustedProxiesReloadWhileAStreamOnTheOldKeyFinishes) {
  GatewayYaml g;
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a", 15, 20), g));
  g.admin = AdminYaml();
  const auto version = Version();
  EXPECT_EQ(Client().Post("/v1/chat/completions", ChatRequest{}.Json(), Auth(kRotatedKey)).status,
            401u);
  // A stream on the key that is about to be withdrawn.
  RawConnection held(gateway_->port());
  ASSERT_TRUE(held.Send(RawChatRequest({.stream = true})));
  std::string streamed;
  while (streamed.find("data: ") == std::string::npos) {
    ASSERT_EQ(held.Read(5s, streamed), RawConnection::ReadResult::kData) << streamed;
  }

  // Rotation, step 1: both keys; a second tenant; 127.0.0.0/8 may assert regions.
  g.tenants = {TenantWithKeys({kTenantKey, kRotatedKey}),
               TenantYaml{.id = "beta", .key = kOtherTenantKey}};
  g.trusted_cidrs = "[127.0.0.0/8]";
  WriteFile(Dir() / "gateway.yaml", g.Render());
  HttpResult reload = Admin().Post("/admin/reload", "", AdminAuth());
  ASSERT_EQ(reload.status, 200u) << reload.body;
  EXPECT_EQ(BodyJson(reload).at("result"), "loaded");
  EXPECT_EQ(BodyJson(reload).at("changed"), json::array{"config"});
  EXPECT_EQ(Version(), version) << "the policy did not change";
  for (const char* key : {kTenantKey, kRotatedKey, kOtherTenantKey}) {
    EXPECT_EQ(Client().Post("/v1/chat/completions", ChatRequest{}.Json(), Auth(key)).status, 200u)
        << key;
  }
  // A region header from 127.0.0.2 is now a trusted one.
  const long long ignored = MetricValue(Metrics(), "meridian_region_header_ignored_total").value();
  EXPECT_EQ(Chat({}, {{"x-meridian-user-region", "HK"}}, "127.0.0.2").status, 200u);
  EXPECT_EQ(MetricValue(Metrics(), "meridian_region_header_ignored_total").value(), ignored);

  // Step 2: the old key is withdrawn.
  g.tenants = {TenantWithKeys({kRotatedKey}), TenantYaml{.id = "beta", .key = kOtherTenantKey}};
  WriteFile(Dir() / "gateway.yaml", g.Render());
  reload = Admin().Post("/admin/reload", "", AdminAuth());
  ASSERT_EQ(reload.status, 200u) << reload.body;
  ExpectOpenAiError(Chat({}), 401, "authentication_error", "invalid_api_key");
  EXPECT_EQ(Client().Post("/v1/chat/completions", ChatRequest{}.Json(), Auth(kRotatedKey)).status,
            200u);
  // The stream that started on the old key runs to its end.
  const std::size_t before = streamed.size();
  while (streamed.find("data: [DONE]") == std::string::npos) {
    ASSERT_EQ(held.Read(5s, streamed), RawConnection::ReadResult::kData) << streamed;
  }
  EXPECT_GT(streamed.size(), before);
  EXPECT_EQ(streamed.find("\"error\""), std::string::npos) << streamed;
  // Unchanged files: nothing to do.
  reload = Admin().Post("/admin/reload", "", AdminAuth());
  EXPECT_EQ(BodyJson(reload).at("result"), "unchanged");
}

TEST_F(OpsTest, AReloadWithARestartOnlyChangeIsRefusedAsAWholeAndNothingChanges) {
  GatewayYaml g;
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a"), g));
  g.admin = AdminYaml();
  const auto version = Version();
  // A valid new policy, a new key, and a new listener in the same reload.
  ReplacePolicy(OneSim("sim-b"));
  g.tenants = {TenantWithKeys({kTenantKey, kRotatedKey})};
  g.grpc = {"listen: 127.0.0.1:0", "plaintext: true"};
  WriteFile(Dir() / "gateway.yaml", g.Render());
  const HttpResult reload = Admin().Post("/admin/reload", "", AdminAuth());
  EXPECT_EQ(reload.status, 422u) << reload.body;
  const json::object b = BodyJson(reload);
  EXPECT_EQ(b.at("result"), "refused");
  ASSERT_EQ(b.at("errors").as_array().size(), 1u) << reload.body;
  EXPECT_EQ(std::string(b.at("errors").at(0).as_string()),
            (Dir() / "gateway.yaml").string() +
                ":4:1: 'grpc' changed: a reload applies only 'tenants' and 'trusted_proxies'; "
                "restart the gateway to apply it");
  EXPECT_EQ(Version(), version);
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "sim-a");
  EXPECT_EQ(Client().Post("/v1/chat/completions", ChatRequest{}.Json(), Auth(kRotatedKey)).status,
            401u);
  // An invalid tenant is refused with its position; the running ones keep serving.
  g.grpc.clear();
  g.tenants = {TenantWithKeys({kTenantKey}), TenantYaml{.id = "bad id!", .key = kRotatedKey}};
  WriteFile(Dir() / "gateway.yaml", g.Render());
  const HttpResult bad = Admin().Post("/admin/reload", "", AdminAuth());
  EXPECT_EQ(bad.status, 422u) << bad.body;
  EXPECT_THAT(bad.body, HasSubstr("gateway.yaml:"));
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "sim-a");
  // Fixed: the policy and the tenants are swapped in together.
  g.tenants = {TenantWithKeys({kTenantKey, kRotatedKey})};
  WriteFile(Dir() / "gateway.yaml", g.Render());
  const HttpResult good = Admin().Post("/admin/reload", "", AdminAuth());
  ASSERT_EQ(good.status, 200u) << good.body;
  EXPECT_EQ(BodyJson(good).at("changed"), (json::array{"policy", "config"}));
  EXPECT_EQ(Chat({}).header("x-meridian-provider"), "sim-b");
  EXPECT_EQ(Client().Post("/v1/chat/completions", ChatRequest{}.Json(), Auth(kRotatedKey)).status,
            200u);
}

TEST_F(OpsTest, ATenantsLimitsChangeOnReloadButCannotAppearWithoutAStore) {
  GatewayYaml g;
  g.tenants[0].extra = {"limits: {requests_per_minute: 1000}"};
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a"), g));
  g.admin = AdminYaml();
  EXPECT_EQ(Chat({}).header("x-ratelimit-limit-requests"), "1000");
  g.tenants[0].extra = {"limits: {requests_per_minute: 2}"};
  WriteFile(Dir() / "gateway.yaml", g.Render());
  ASSERT_EQ(Admin().Post("/admin/reload", "", AdminAuth()).status, 200u);
  HttpResult last;
  for (int i = 0; i < 3 && last.status != 429u; ++i) last = Chat({});
  ExpectOpenAiError(last, 429, "rate_limit_error", "rate_limit_exceeded");
  EXPECT_EQ(last.header("x-ratelimit-limit-requests"), "2");
}

TEST_F(OpsTest, LimitsAddedToAGatewayStartedWithoutAnyAreRefusedOnReload) {
  GatewayYaml g;
  ASSERT_NO_FATAL_FAILURE(Start(OneSim("sim-a"), g));
  g.admin = AdminYaml();
  g.tenants[0].extra = {"limits: {requests_per_minute: 2}"};
  WriteFile(Dir() / "gateway.yaml", g.Render());
  const HttpResult reload = Admin().Post("/admin/reload", "", AdminAuth());
  EXPECT_EQ(reload.status, 422u) << reload.body;
  EXPECT_THAT(reload.body, HasSubstr("tenant 'acme': limits added to a gateway that started "
                                     "without any: the store they are counted in is not "
                                     "running; restart the gateway to apply them"));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Chat({}).status, 200u);
}

}  // namespace
}  // namespace meridian::testing
