// Graceful shutdown of the real `meridian serve` process: the binary is started as a child on
// port 0, given streams (HTTP SSE and gRPC) from the simulated engine, sent SIGTERM or SIGINT,
// and then checked the way an operator relies on it: the process exits with status 0 within
// the drain deadline plus a margin, every stream ended complete or with an error event (never
// cut silently), and the audit log holds exactly one whole line per decided request, matched
// by request id. Each scenario runs MERIDIAN_SHUTDOWN_REPEAT times (default 10; 100 is the
// stress mode, docs/development.md).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gateway/audit_chain.h"
#include "gateway/audit_verify.h"
#include "meridian/v1/assistant.grpc.pb.h"
#include "tests/integration/process_harness.h"

namespace {

using namespace meridian::process_harness;

// Streams: "short" ends well inside the drain deadline, "long" outlasts it (so it ends with an
// error event), "flood" writes as fast as the client reads (the slow-reader scenario).
constexpr int kShortTokens = 6, kShortDelayMs = 20;
constexpr int kLongTokens = 400, kLongDelayMs = 25;
constexpr auto kDrain = 600ms;    ///< limits.drain_timeout_ms of the matrix
constexpr auto kExitMargin = 3s;  ///< after the drain deadline, until the process is gone

int Repeat() {
  const char* v = std::getenv("MERIDIAN_SHUTDOWN_REPEAT");
  const int n = v != nullptr ? std::atoi(v) : 0;
  return n > 0 ? n : 10;  // enough that a shutdown race fails the suite, not only a stress run
}

std::string Policy() {
  auto sim = [](const char* id, const char* model, int tokens, int delay_ms) {
    std::string p = std::string("  - id: ") + id + "\n    kind: sim\n    models: {" + model +
                    ": sim}\n    capabilities: [streaming]\n    processing: [CN]\n" +
                    "    storage: [CN]\n    sim_tokens: " + std::to_string(tokens) + "\n";
    if (delay_ms > 0) p += "    sim_delay_ms: " + std::to_string(delay_ms) + "\n";
    return p;
  };
  return "version: 1\nsettings:\n  unknown_region_as: CN\n  default_data_class: personal\n"
         "providers:\n" +
         sim("sim-short", "short", kShortTokens, kShortDelayMs) +
         sim("sim-long", "long", kLongTokens, kLongDelayMs) + sim("sim-flood", "flood", 100000, 0) +
         "guards:\n  - id: needs-consent\n    when:\n      data_class: sensitive_personal\n"
         "      consent: {sensitive_separate: false}\n"
         "    deny: Sensitive personal information needs separate consent.\n"
         "routes:\n  - id: everyone\n    allow: [sim-short, sim-long, sim-flood]\n";
}

// The Ed25519 key the gateways sign their audit checkpoints with (one per test process).
const std::string& AuditSigningKey() {
  static const std::string pem = meridian::audit::Ed25519Key::GeneratePrivatePem();
  return pem;
}

struct GatewaySetup {
  bool grpc = false;
  bool admin = false;
  unsigned workers = 1;
  std::chrono::milliseconds drain = kDrain;

  std::string Render() const {
    std::string out =
        "listen: 127.0.0.1:0\nworkers: " + std::to_string(workers) + "\npolicy_file: policy.yaml\n";
    if (grpc) out += "grpc:\n  listen: 127.0.0.1:0\n  plaintext: true\n";
    if (admin) {
      // The probes need no token; the listener does (set in the environment the child gets).
      ::setenv(kAdminTokenEnv, kAdminToken, 1);
      out += "admin:\n  listen: 127.0.0.1:0\n  token_env: " + std::string(kAdminTokenEnv) + "\n";
    }
    // A long flush interval: the lines must come out of the queue at shutdown.
    out +=
        "audit:\n  path: audit.jsonl\n  flush_interval_ms: 60000\n"
        "  signing_key_file: audit-signing.pem\n";
    out += "limits:\n  drain_timeout_ms: " + std::to_string(drain.count()) + "\n";
    out += "trusted_proxies:\n  cidrs: [127.0.0.1/32]\n";
    out += "tenants:\n  - id: acme\n    api_key_sha256: [" + std::string(kKeySha256) +
           "]\n    regions: [CN]\n    default_region: CN\n";
    return out;
  }
};

// ---- the matrix ----

struct Scenario {
  bool grpc;
  bool admin;
  unsigned workers;
  bool load;  ///< requests answered before, and streams in flight at, the signal
};

void PrintTo(const Scenario& s, std::ostream* out) {
  *out << (s.grpc ? "HTTP+gRPC" : "HTTP") << ", admin " << (s.admin ? "on" : "off") << ", "
       << s.workers << " worker(s), " << (s.load ? "requests in flight" : "idle");
}

std::string Name(const ::testing::TestParamInfo<Scenario>& info) {
  const Scenario& s = info.param;
  return std::string(s.grpc ? "HttpGrpc" : "HttpOnly") + (s.admin ? "_Admin" : "_NoAdmin") +
         "_Workers" + std::to_string(s.workers) + (s.load ? "_InFlight" : "_Idle");
}

class ShutdownTest : public ::testing::TestWithParam<Scenario> {
 protected:
  void RunOnce(int round);
};

void ShutdownTest::RunOnce(int round) {
  const Scenario& sc = GetParam();
  const int sig = round % 2 == 0 ? SIGTERM : SIGINT;
  SCOPED_TRACE("round " + std::to_string(round) + (sig == SIGTERM ? " SIGTERM" : " SIGINT"));
  TempDir dir;
  GatewaySetup setup{sc.grpc, sc.admin, sc.workers};
  WriteFile(dir.path() / "policy.yaml", Policy());
  WriteFile(dir.path() / "gateway.yaml", setup.Render());
  WriteFile(dir.path() / "audit-signing.pem", AuditSigningKey());
  Child child(dir.path() / "gateway.yaml", dir.path() / "gateway.log");
  const unsigned short port = child.Port(kHttpLine);
  const unsigned short grpc_port = sc.grpc ? child.Port("info gRPC listening on ") : 0;
  const unsigned short admin_port = sc.admin ? child.Port("info admin listening on http://") : 0;
  ASSERT_NE(port, 0) << child.Log();
  if (sc.grpc) {
    ASSERT_NE(grpc_port, 0) << child.Log();
  }
  if (sc.admin) {
    ASSERT_NE(admin_port, 0) << child.Log();
  }

  std::vector<std::string> decided;  // request ids the audit log must hold once each
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<std::atomic<bool>>> started;
  struct Http {
    std::string model;
    Response r;
  };
  std::vector<std::unique_ptr<Http>> http_streams;
  std::vector<std::unique_ptr<GrpcStream>> grpc_streams;
  std::vector<std::string> grpc_models;
  if (sc.load) {
    // Answered before the signal: an allowed JSON request and a denial.
    const Response ok = Exchange(port, ChatRequest("short", false));
    ASSERT_EQ(ok.status, 200) << ok.raw << ok.error;
    decided.push_back(ok.header("x-request-id"));
    const Response denied =
        Exchange(port, ChatRequest("short", false, {"x-meridian-data-class: sensitive_personal"}));
    ASSERT_EQ(denied.status, 403) << denied.raw << denied.error;
    decided.push_back(denied.header("x-request-id"));
    // In flight at the signal: streams that end inside the drain deadline and one that does
    // not (it ends with an error event).
    for (const char* model : {"short", "short", "long"}) {
      auto s = std::make_unique<Http>();
      s->model = model;
      started.push_back(std::make_unique<std::atomic<bool>>(false));
      threads.emplace_back([port, h = s.get(), flag = started.back().get()] {
        h->r = Exchange(port, ChatRequest(h->model, true), flag);
      });
      http_streams.push_back(std::move(s));
    }
    if (sc.grpc) {
      for (const char* model : {"short", "long"}) {
        grpc_streams.push_back(std::make_unique<GrpcStream>());
        grpc_models.emplace_back(model);
        started.push_back(std::make_unique<std::atomic<bool>>(false));
        threads.emplace_back(
            [grpc_port, g = grpc_streams.back().get(), model, flag = started.back().get()] {
              *g = Generate(grpc_port, model, *flag);
            });
      }
    }
    const bool all_started = WaitFor(
        [&] {
          for (const auto& f : started) {
            if (!f->load()) return false;
          }
          return true;
        },
        10s);
    EXPECT_TRUE(all_started) << "streams did not start\n" << child.Log();
  }

  const auto signalled = Clock::now();
  child.Signal(sig);
  if (sc.admin && sc.load) {
    // The admin listener stays up during the drain and reports not ready.
    EXPECT_TRUE(WaitFor(
        [&] {
          const Response r = Exchange(admin_port, Get("/readyz"), nullptr, 2s);
          return r.status == 503;
        },
        3s))
        << child.Log();
  }
  const std::optional<int> status = child.WaitExit(setup.drain + kExitMargin);
  const auto took = Clock::now() - signalled;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << DescribeStatus(status) << " after "
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n"
      << child.Log();
  const std::string log = child.Log();
  EXPECT_NE(log.find("drained"), std::string::npos) << log;
  EXPECT_EQ(log.find("not submitted"), std::string::npos) << log;
  EXPECT_EQ(log.find("not written"), std::string::npos) << log;

  for (const auto& h : http_streams) {
    std::string code;
    const StreamEnd end = EndOf(h->r, &code);
    EXPECT_NE(end, StreamEnd::kCut) << h->model << " stream cut silently: " << h->r.error << "\n"
                                    << h->r.raw;
    if (end == StreamEnd::kError) {
      EXPECT_EQ(code, "shutting_down") << h->r.raw;
    }
    if (h->model == "long") {
      EXPECT_EQ(end, StreamEnd::kError) << h->r.raw;
    }
    decided.push_back(h->r.header("x-request-id"));
  }
  for (std::size_t i = 0; i < grpc_streams.size(); ++i) {
    const GrpcStream& g = *grpc_streams[i];
    EXPECT_FALSE(g.request_id.empty());
    if (g.status.ok()) {
      EXPECT_TRUE(g.finished) << grpc_models[i] << ": OK without a finish message";
    } else {
      EXPECT_EQ(g.status.error_code(), grpc::StatusCode::UNAVAILABLE)
          << grpc_models[i] << ": " << g.status.error_message();
      EXPECT_NE(g.status.error_message().find("shutting down"), std::string::npos)
          << grpc_models[i] << ": " << g.status.error_message();
    }
    if (grpc_models[i] == "long") {
      EXPECT_FALSE(g.status.ok());
    }
    decided.push_back(g.request_id);
  }

  const auto audit = ReadAudit(dir.path() / "audit.jsonl");
  std::size_t lines = 0;
  for (const auto& [id, records] : audit) lines += records.size();
  EXPECT_EQ(lines, decided.size()) << ReadAll(dir.path() / "audit.jsonl");
  for (const auto& id : decided) {
    ASSERT_FALSE(id.empty());
    auto it = audit.find(id);
    EXPECT_TRUE(it != audit.end() && it->second.size() == 1)
        << id << ": " << (it == audit.end() ? 0 : it->second.size()) << " audit lines";
  }
  // The lines are chained and the shutdown signed them all: an auditor holding only the
  // public key finds every decided request, nothing tampered with, nothing unsigned.
  std::unique_ptr<meridian::audit::Ed25519Key> signer;
  std::unique_ptr<meridian::audit::Ed25519Key> pub;
  ASSERT_TRUE(meridian::audit::Ed25519Key::FromPrivatePem(AuditSigningKey(), signer).ok());
  ASSERT_TRUE(meridian::audit::Ed25519Key::FromPublicPem(signer->PublicPem(), pub).ok());
  const auto report = meridian::audit::Verify(
      {{"audit.jsonl", ReadAll(dir.path() / "audit.jsonl")}},
      {{"audit.jsonl.checkpoints", ReadAll(dir.path() / "audit.jsonl.checkpoints")}}, pub.get());
  EXPECT_FALSE(report.tampered()) << meridian::audit::FormatReport(report);
  EXPECT_EQ(report.records, decided.size());
  EXPECT_EQ(report.signed_through, report.last_seq) << meridian::audit::FormatReport(report);
  EXPECT_GE(report.checkpoints_valid, 1u);
}

TEST_P(ShutdownTest, ExitsZeroWithEveryStreamEndedAndEveryDecisionAudited) {
  const int n = Repeat();
  for (int round = 0; round < n && !HasFatalFailure(); ++round) RunOnce(round);
}

std::vector<Scenario> Matrix() {
  std::vector<Scenario> out;
  for (bool grpc : {false, true}) {
    for (bool admin : {false, true}) {
      for (unsigned workers : {1u, 2u, 4u}) {
        for (bool load : {false, true}) out.push_back({grpc, admin, workers, load});
      }
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Matrix, ShutdownTest, ::testing::ValuesIn(Matrix()), Name);

// A client that stops reading its stream must not hold the process past the drain deadline,
// nor cost its audit line: at the deadline its stream is cut, its handler ends and reports.
TEST(ShutdownSlowReaderTest, ClientThatStopsReadingIsEndedAtTheDrainDeadline) {
  const int n = Repeat();
  for (int round = 0; round < n && !::testing::Test::HasFailure(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    TempDir dir;
    GatewaySetup setup;
    setup.workers = round % 2 == 0 ? 1 : 2;
    setup.drain = 500ms;
    WriteFile(dir.path() / "policy.yaml", Policy());
    WriteFile(dir.path() / "gateway.yaml", setup.Render());
    WriteFile(dir.path() / "audit-signing.pem", AuditSigningKey());
    Child child(dir.path() / "gateway.yaml", dir.path() / "gateway.log");
    const unsigned short port = child.Port(kHttpLine);
    ASSERT_NE(port, 0) << child.Log();

    // The slow reader: a small receive buffer, the response head read, then nothing more.
    const int fd = Connect(port, 4096);
    ASSERT_GE(fd, 0);
    const FdCloser close_fd{fd};
    ASSERT_TRUE(SendAll(fd, ChatRequest("flood", true)));
    Response slow;
    while (slow.raw.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      ASSERT_GT(::poll(&p, 1, 10000), 0) << "no response head";
      char c = 0;
      ASSERT_EQ(::recv(fd, &c, 1, 0), 1);
      slow.raw += c;
    }
    Parse(slow);
    ASSERT_EQ(slow.status, 200) << slow.raw;
    // Its buffers fill: the bytes waiting for it stop growing.
    int queued = -1;
    ASSERT_TRUE(WaitFor(
        [&] {
          int now = 0;
          ::ioctl(fd, FIONREAD, &now);
          const bool stable = now > 0 && now == queued;
          queued = now;
          if (!stable) std::this_thread::sleep_for(20ms);
          return stable;
        },
        10s));
    // A well-behaved client in flight next to it still gets its error event.
    std::atomic<bool> started{false};
    Response healthy;
    std::thread other([&] { healthy = Exchange(port, ChatRequest("long", true), &started); });
    EXPECT_TRUE(WaitFor([&] { return started.load(); }, 10s));

    const auto signalled = Clock::now();
    child.Signal(SIGTERM);
    const std::optional<int> status = child.WaitExit(setup.drain + 2s);
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - signalled);
    other.join();
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << DescribeStatus(status) << " after " << took.count() << " ms\n"
        << child.Log();
    const std::string log = child.Log();
    EXPECT_EQ(log.find("not submitted"), std::string::npos) << log;
    std::string code;
    EXPECT_EQ(EndOf(healthy, &code), StreamEnd::kError) << healthy.raw;
    EXPECT_EQ(code, "shutting_down");

    const auto audit = ReadAudit(dir.path() / "audit.jsonl");
    EXPECT_EQ(audit.size(), 2u);
    for (const std::string& id : {slow.header("x-request-id"), healthy.header("x-request-id")}) {
      auto it = audit.find(id);
      ASSERT_TRUE(it != audit.end() && it->second.size() == 1) << id << "\n" << log;
      EXPECT_NE(it->second.front().at("status_reason").as_string(), "") << id;
    }
    // "drain_deadline" when the gateway's send buffer was full at the deadline (its write
    // blocked on the client, so the connection was cut); "shutting_down" when the flood had not
    // filled it yet (a slow build: the kernel grows that buffer to megabytes) and the error
    // event still fit. The client's own buffer being full cannot tell the two apart.
    EXPECT_THAT(audit.at(slow.header("x-request-id")).front().at("status_reason").as_string(),
                ::testing::AnyOf("drain_deadline", "shutting_down"));
  }
}

}  // namespace
