// Promises of the real `meridian serve` process beyond the shutdown matrix (shutdown_test.cpp):
// the audit log after a writer that stopped mid-line and on a full disk at SIGTERM; the drain
// delay (not ready first, still serving, then refusing); the admin token (required, never
// logged). The binary
// runs as a child on port 0 (tests/integration/process_harness.h); every wait is a bounded
// poll of a condition.
#include <grpcpp/generic/generic_stub.h>
#include <sys/resource.h>

#include <algorithm>
#include <memory>

#include "tests/integration/process_harness.h"

namespace {

using namespace meridian::process_harness;

std::string Policy() {
  return "version: 1\nsettings:\n  unknown_region_as: CN\n  default_data_class: personal\n"
         "providers:\n  - id: sim-a\n    kind: sim\n    models: {chat: sim}\n"
         "    capabilities: [streaming]\n    processing: [CN]\n    storage: [CN]\n"
         "    sim_tokens: 4\n"
         "routes:\n  - id: everyone\n    allow: [sim-a]\n";
}

/// The gateway config of these tests; `extra` holds further top-level sections, `limits`
/// further lines under `limits:`.
std::string Config(const std::string& extra = "", const std::string& limits = "") {
  return "listen: 127.0.0.1:0\nworkers: 1\npolicy_file: policy.yaml\n"
         "audit:\n  path: audit.jsonl\n  flush_interval_ms: 20\n"
         "limits:\n  drain_timeout_ms: 1000\n" +
         limits + extra + "tenants:\n  - id: acme\n    api_key_sha256: [" +
         std::string(kKeySha256) + "]\n    regions: [CN]\n    default_region: CN\n";
}

/// A running gateway in a scratch directory.
struct Gateway {
  TempDir dir;
  std::unique_ptr<Child> child;
  unsigned short port = 0;

  /// Writes the policy and `config` (unless already there) and starts the binary.
  void Start(const std::string& config) {
    if (!fs::exists(dir.path() / "policy.yaml")) WriteFile(dir.path() / "policy.yaml", Policy());
    WriteFile(dir.path() / "gateway.yaml", config);
    child = std::make_unique<Child>(dir.path() / "gateway.yaml", dir.path() / "gateway.log");
    port = child->Port(kHttpLine);
  }
  fs::path Audit() const { return dir.path() / "audit.jsonl"; }
  Response Chat() const { return Exchange(port, ChatRequest("chat", false)); }
  /// SIGTERM, then the wait status (nullopt: still running after `timeout`).
  std::optional<int> Stop(std::chrono::milliseconds timeout = 8s) {
    child->Signal(SIGTERM);
    return child->WaitExit(timeout);
  }
};

bool ExitedZero(const std::optional<int>& status) {
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

std::size_t Lines(const fs::path& path) {
  const std::string text = ReadAll(path);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

/// The value of an unlabelled sample in a Prometheus text body; -1 when absent.
long long Sample(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ' ') {
      return std::atoll(line.c_str() + name.size() + 1);
    }
  }
  return -1;
}

// A writer killed mid-line (kill -9, a power loss) leaves a fragment without its '\n'. The next
// process must not append its first record onto it: the fragment is cut off at startup, said
// in a warning and counted, and every line of the file parses.
TEST(AuditTornTailTest, AFragmentLeftByAKilledWriterIsRepairedAtStartup) {
  Gateway gw;
  const std::string whole =
      R"({"v":1,"time_unix_ms":1732300000000,"request_id":"req_before_the_kill","front_end":"http"})"
      "\n";
  const std::string fragment = R"({"v":1,"time_unix_ms":1732300000123,"request_id":"req_torn)";
  WriteFile(gw.Audit(), whole + fragment);
  gw.Start(Config("metrics:\n  public: true\n"));
  ASSERT_NE(gw.port, 0) << gw.child->Log();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const Response r = gw.Chat();
    ASSERT_EQ(r.status, 200) << r.raw << r.error;
    ids.push_back(r.header("x-request-id"));
  }
  const Response scrape = Exchange(gw.port, Get("/metrics"));
  ASSERT_EQ(scrape.status, 200) << scrape.raw;
  EXPECT_EQ(Sample(scrape.body, "meridian_audit_torn_tail_repaired_total"), 1) << scrape.body;
  const auto status = gw.Stop();
  ASSERT_TRUE(ExitedZero(status)) << DescribeStatus(status) << "\n" << gw.child->Log();
  const std::string log = gw.child->Log();
  EXPECT_NE(log.find("warn audit log: audit: " + gw.Audit().string() + " ended in a torn line (" +
                     std::to_string(fragment.size()) + " bytes"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("truncated to the last complete line"), std::string::npos) << log;

  const auto audit = ReadAudit(gw.Audit());  // fails on any line that does not parse
  EXPECT_EQ(Lines(gw.Audit()), 4u) << ReadAll(gw.Audit());
  EXPECT_EQ(audit.count("req_before_the_kill"), 1u);
  for (const auto& id : ids) EXPECT_EQ(audit.count(id), 1u) << id;
  EXPECT_EQ(ReadAll(gw.Audit()).find("req_torn"), std::string::npos);
}

// The disk fills while the gateway serves, and SIGTERM comes while it is still full: the
// record being written reaches the file only in part, and must not stay there as a fragment.
// A file-size limit on the child (RLIMIT_FSIZE via prlimit: short writes, then EFBIG) stands in
// for the full disk without root. The next process appends to a file whose every line parses.
TEST(AuditFullDiskTest, SigtermOnAFullDiskLeavesOnlyWholeLinesForTheNextProcess) {
  Gateway gw;
  // The limit holds for every file the child writes, its log (stderr) too: earlier records
  // make the audit file much larger than the log will grow, so only the audit log hits it.
  constexpr std::size_t kEarlier = 8192;
  {
    std::string earlier;
    for (std::size_t i = 0; i < kEarlier; ++i) {
      earlier += R"({"v":1,"request_id":"req_earlier_)" + std::to_string(i) + R"(","pad":")" +
                 std::string(64, 'x') + "\"}\n";
    }
    WriteFile(gw.Audit(), earlier);
  }
  gw.Start(Config());
  ASSERT_NE(gw.port, 0) << gw.child->Log();
  const Response first = gw.Chat();
  ASSERT_EQ(first.status, 200) << first.raw;
  ASSERT_TRUE(WaitFor([&] { return Lines(gw.Audit()) == kEarlier + 1; }, 5s)) << gw.child->Log();
  ASSERT_GT(fs::file_size(gw.Audit()), 64 * fs::file_size(gw.dir.path() / "gateway.log"));

  // "Full": 100 bytes more may be written, less than one record.
  const rlimit full{static_cast<rlim_t>(fs::file_size(gw.Audit()) + 100), RLIM_INFINITY};
  ASSERT_EQ(::prlimit(gw.child->pid(), RLIMIT_FSIZE, &full, nullptr), 0) << std::strerror(errno);
  // The next record cannot be written: the sink turns unhealthy and, failing closed, the
  // gateway refuses requests (503 audit_unavailable) instead of serving them unaudited.
  int refused = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        const Response r = gw.Chat();
        if (r.status == 503 && r.body.find("audit_unavailable") != std::string::npos) ++refused;
        return refused > 0;
      },
      5s))
      << gw.child->Log();

  const auto status = gw.Stop();
  ASSERT_TRUE(ExitedZero(status)) << DescribeStatus(status) << "\n" << gw.child->Log();
  const std::string log = gw.child->Log();
  EXPECT_NE(log.find("File too large (audit sink unhealthy)"), std::string::npos) << log;
  // What could not be written by the close deadline is said, not silently lost.
  EXPECT_NE(log.find("not written before the close deadline"), std::string::npos) << log;
  const std::string text = ReadAll(gw.Audit());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n') << "a torn record is left at the end of the file";
  EXPECT_EQ(ReadAudit(gw.Audit()).count(first.header("x-request-id")), 1u);
  EXPECT_EQ(Lines(gw.Audit()), kEarlier + 1);

  // The next process (with room again) appends whole lines after it.
  Gateway next;
  fs::copy_file(gw.Audit(), next.Audit());
  next.Start(Config());
  ASSERT_NE(next.port, 0) << next.child->Log();
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    const Response r = next.Chat();
    ASSERT_EQ(r.status, 200) << r.raw;
    ids.push_back(r.header("x-request-id"));
  }
  const auto next_status = next.Stop();
  ASSERT_TRUE(ExitedZero(next_status)) << DescribeStatus(next_status) << "\n" << next.child->Log();
  EXPECT_EQ(next.child->Log().find("torn line"), std::string::npos)
      << "the first process left a fragment:\n"
      << next.child->Log();
  const auto audit = ReadAudit(next.Audit());
  EXPECT_EQ(Lines(next.Audit()), kEarlier + 3);
  EXPECT_EQ(audit.count(first.header("x-request-id")), 1u);
  for (const auto& id : ids) EXPECT_EQ(audit.count(id), 1u) << id;
}

/// grpc.health.v1.Health/Check for `service` (hand-encoded: no generated stub for it); the
/// serving status (1 SERVING, 2 NOT_SERVING), or -1 when the call failed.
int GrpcHealth(unsigned short port, const std::string& service) {
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  const std::string request = std::string("\x0a") + static_cast<char>(service.size()) + service;
  grpc::Slice slice(request);
  grpc::ByteBuffer req(&slice, 1);
  auto call = stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", req, &cq);
  call->StartCall();
  grpc::ByteBuffer resp;
  grpc::Status status;
  call->Finish(&resp, &status, reinterpret_cast<void*>(1));  // NOLINT
  void* tag = nullptr;
  bool ok = false;
  const bool got = cq.Next(&tag, &ok);
  std::string bytes;
  if (got && status.ok()) {
    std::vector<grpc::Slice> slices;
    (void)resp.Dump(&slices);
    for (const auto& sl : slices)
      bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!got || !status.ok()) return -1;
  // HealthCheckResponse{status = 1}: field 1, varint.
  return bytes.size() == 2 && bytes[0] == '\x08' ? bytes[1] : 0;
}

// A load balancer must see the instance not ready before any connection is refused. With
// limits.drain_delay_ms, SIGTERM turns /readyz 503 and gRPC health NOT_SERVING at once, new
// connections and requests (HTTP and gRPC) are still served for the delay, then the listeners
// close and the drain runs as without it; the process exits 0.
TEST(DrainDelayTest, NotReadyFirstStillServingThenRefusing) {
  constexpr auto kDelay = 1500ms;
  Gateway gw;
  gw.Start(Config("grpc:\n  listen: 127.0.0.1:0\n  plaintext: true\n",
                  "  drain_delay_ms: " + std::to_string(kDelay.count()) + "\n"));
  ASSERT_NE(gw.port, 0) << gw.child->Log();
  const unsigned short grpc_port = gw.child->Port("info gRPC listening on ");
  ASSERT_NE(grpc_port, 0) << gw.child->Log();
  ASSERT_EQ(Exchange(gw.port, Get("/readyz")).status, 200);
  ASSERT_EQ(GrpcHealth(grpc_port, "meridian.v1.Assistant"), 1);

  const auto signalled = Clock::now();
  gw.child->Signal(SIGTERM);
  auto since = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - signalled);
  };
  // Not ready at once, answered on a connection the public listener still accepts.
  ASSERT_TRUE(
      WaitFor([&] { return Exchange(gw.port, Get("/readyz"), nullptr, 2s).status == 503; }, kDelay))
      << gw.child->Log();
  EXPECT_EQ(GrpcHealth(grpc_port, "meridian.v1.Assistant"), 2) << "gRPC health not NOT_SERVING";
  // New requests are still served, on new connections, HTTP and gRPC.
  const Response chat = gw.Chat();
  EXPECT_EQ(chat.status, 200) << chat.raw << chat.error;
  std::atomic<bool> started{false};
  const GrpcStream call = Generate(grpc_port, "chat", started);
  EXPECT_TRUE(call.status.ok()) << call.status.error_message();
  EXPECT_TRUE(call.finished);
  const auto served_by = since();
  EXPECT_LT(served_by, kDelay) << "the checks above ran past the delay: the test proves nothing";

  // Then the listener closes: connections are refused, not before the delay has passed.
  ASSERT_TRUE(WaitFor(
      [&] {
        const int fd = Connect(gw.port);
        if (fd >= 0) ::close(fd);
        return fd < 0;
      },
      kDelay + 3s))
      << gw.child->Log();
  EXPECT_GE(since(), kDelay) << "connections refused before limits.drain_delay_ms passed";
  const auto status = gw.child->WaitExit(5s);
  ASSERT_TRUE(ExitedZero(status)) << DescribeStatus(status) << "\n" << gw.child->Log();
  const std::string log = gw.child->Log();
  EXPECT_NE(log.find("still accepting and serving for 1500 ms (limits.drain_delay_ms)"),
            std::string::npos)
      << log;
  const auto audit = ReadAudit(gw.Audit());
  EXPECT_EQ(audit.count(chat.header("x-request-id")), 1u);
  EXPECT_EQ(audit.count(call.request_id), 1u);
}

// The admin token comes from a file (as a Kubernetes Secret volume gives it, with a trailing
// newline); it gates every admin route but the probes, and appears nowhere in the log, whatever
// was sent.
TEST(AdminTokenTest, RequiredOnTheAdminListenerAndNeverLogged) {
  Gateway gw;
  WriteFile(gw.dir.path() / "admin.token", std::string(kAdminToken) + "\n");
  gw.Start(Config("admin:\n  listen: 127.0.0.1:0\n  token_file: admin.token\n"));
  ASSERT_NE(gw.port, 0) << gw.child->Log();
  const unsigned short admin = gw.child->Port("info admin listening on http://");
  ASSERT_NE(admin, 0) << gw.child->Log();
  const std::string bearer = std::string("Authorization: Bearer ") + kAdminToken;
  EXPECT_EQ(Exchange(admin, Get("/metrics")).status, 401);
  EXPECT_EQ(Exchange(admin, Get("/metrics", {bearer + "-wrong"})).status, 401);
  const Response scrape = Exchange(admin, Get("/metrics", {bearer}));
  EXPECT_EQ(scrape.status, 200) << scrape.raw;
  EXPECT_EQ(Sample(scrape.body, "meridian_http_requests_total"), 0) << "admin counted as public";
  EXPECT_EQ(Exchange(admin, Get("/readyz")).status, 200);
  EXPECT_EQ(Exchange(gw.port, Get("/metrics")).status, 404) << "metrics on the public port";
  // A tenant that sends the admin token as its API key is refused, and it is not logged either.
  const Response chat = Exchange(gw.port, ChatRequest("chat", false, {bearer}));
  EXPECT_EQ(chat.status, 400) << chat.raw;  // two credentials
  const auto status = gw.Stop();
  ASSERT_TRUE(ExitedZero(status)) << DescribeStatus(status) << "\n" << gw.child->Log();
  const std::string log = gw.child->Log();
  EXPECT_NE(
      log.find("require the bearer token from file " + (gw.dir.path() / "admin.token").string()),
      std::string::npos)
      << log;
  EXPECT_EQ(log.find(kAdminToken), std::string::npos) << "the admin token is in the log:\n" << log;
  EXPECT_NE(log.find("access admin GET /metrics status=401"), std::string::npos) << log;
}

}  // namespace

namespace {

std::size_t Occurrences(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Tenants and keys change without a restart: SIGHUP re-reads the gateway config as well as the
// policy. A key rotation keeps both keys valid for as long as the operator lists both; a change
// only a restart can apply (the listener) is refused and changes nothing. Every worker count a
// user runs, each run with its own process.
TEST(ConfigReloadTest, SighupRotatesAKeyWithBothValidMeanwhileAndRefusesRestartOnlyChanges) {
  constexpr const char* kRotated = "sk-process-test-rotated-7f3a";
  constexpr const char* kRotatedSha256 =
      "e916d2632c87163880b044c3310ff7736310aa88771b7e74ae3a50f32b5750b0";
  for (const int workers : {1, 2, 4}) {
    SCOPED_TRACE("workers: " + std::to_string(workers));
    auto config = [workers](const std::string& listen, const std::string& keys) {
      return "listen: " + listen + "\nworkers: " + std::to_string(workers) +
             "\npolicy_file: policy.yaml\nlimits:\n  drain_timeout_ms: 1000\n"
             "tenants:\n  - id: acme\n    api_key_sha256: [" +
             keys + "]\n    regions: [CN]\n    default_region: CN\n";
    };
    auto chat_as = [](unsigned short port, const std::string& key) {
      std::string request = ChatRequest("chat", false);
      const std::string demo = std::string("Bearer ") + kKey;
      request.replace(request.find(demo), demo.size(), "Bearer " + key);
      return Exchange(port, request).status;
    };
    Gateway gw;
    gw.Start(config("127.0.0.1:0", kKeySha256));
    ASSERT_NE(gw.port, 0) << gw.child->Log();
    EXPECT_EQ(chat_as(gw.port, kKey), 200);
    EXPECT_EQ(chat_as(gw.port, kRotated), 401);
    auto reloads = [&gw] {
      return Occurrences(gw.child->Log(), "gateway config reloaded (SIGHUP)");
    };

    // The new key is added beside the old one: both authenticate.
    WriteFile(gw.dir.path() / "gateway.yaml",
              config("127.0.0.1:0", std::string(kKeySha256) + ", " + kRotatedSha256));
    gw.child->Signal(SIGHUP);
    ASSERT_TRUE(WaitFor([&] { return reloads() == 1; }, 5s)) << gw.child->Log();
    EXPECT_NE(gw.child->Log().find("1 tenants, 2 credentials"), std::string::npos);
    EXPECT_EQ(chat_as(gw.port, kRotated), 200);
    EXPECT_EQ(chat_as(gw.port, kKey), 200);

    // The old key is withdrawn: only the new one is accepted.
    WriteFile(gw.dir.path() / "gateway.yaml", config("127.0.0.1:0", kRotatedSha256));
    gw.child->Signal(SIGHUP);
    ASSERT_TRUE(WaitFor([&] { return reloads() == 2; }, 5s)) << gw.child->Log();
    EXPECT_EQ(chat_as(gw.port, kKey), 401);
    EXPECT_EQ(chat_as(gw.port, kRotated), 200);

    // A new listen address (with the old key back) takes a restart: refused as a whole.
    WriteFile(gw.dir.path() / "gateway.yaml", config("127.0.0.1:1", kKeySha256));
    gw.child->Signal(SIGHUP);
    ASSERT_TRUE(
        WaitFor([&] { return gw.child->Log().find("'listen' changed") != std::string::npos; }, 5s))
        << gw.child->Log();
    EXPECT_EQ(reloads(), 2u);
    EXPECT_EQ(chat_as(gw.port, kKey), 401) << "part of a refused reload was applied";
    EXPECT_EQ(chat_as(gw.port, kRotated), 200);
    const auto status = gw.Stop();
    ASSERT_TRUE(ExitedZero(status)) << DescribeStatus(status) << "\n" << gw.child->Log();
  }
}

}  // namespace
