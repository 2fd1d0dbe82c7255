// Graceful shutdown of the real `meridian serve` process: the binary is started as a child on
// port 0, given streams (HTTP SSE and gRPC) from the simulated engine, sent SIGTERM or SIGINT,
// and then checked the way an operator relies on it: the process exits with status 0 within
// the drain deadline plus a margin, every stream ended complete or with an error event (never
// cut silently), and the audit log holds exactly one whole line per decided request, matched
// by request id. Each scenario runs MERIDIAN_SHUTDOWN_REPEAT times (default 3; 100 is the
// stress mode, docs/development.md).
#include <arpa/inet.h>
#include <fcntl.h>
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

#include "meridian/v1/assistant.grpc.pb.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace v1 = meridian::v1;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The demo tenant's key (published in the README) and its SHA-256.
constexpr const char* kKey = "sk-meridian-demo";
constexpr const char* kKeySha256 =
    "6ab184784373faa43fd1dd96bb913029118f40a34b4939fbe8a6e29852941e12";

// Streams: "short" ends well inside the drain deadline, "long" outlasts it (so it ends with an
// error event), "flood" writes as fast as the client reads (the slow-reader scenario).
constexpr int kShortTokens = 6, kShortDelayMs = 20;
constexpr int kLongTokens = 400, kLongDelayMs = 25;
constexpr auto kDrain = 600ms;       ///< limits.drain_timeout_ms of the matrix
constexpr auto kExitMargin = 3s;     ///< after the drain deadline, until the process is gone
constexpr auto kStartTimeout = 15s;  ///< until the gateway logs its listening ports
/// The log line naming the main listener's port ("<time> info listening on http://H:P").
constexpr std::string_view kHttpLine = "info listening on http://";

/// The binary under test: MERIDIAN_BINARY (the build's), or MERIDIAN_SHUTDOWN_BINARY when set
/// (a copy that a concurrent rebuild cannot replace mid-run, or an older build to compare).
std::string Binary() {
  const char* v = std::getenv("MERIDIAN_SHUTDOWN_BINARY");
  return v != nullptr && *v != '\0' ? v : MERIDIAN_BINARY;
}

int Repeat() {
  const char* v = std::getenv("MERIDIAN_SHUTDOWN_REPEAT");
  const int n = v != nullptr ? std::atoi(v) : 0;
  return n > 0 ? n : 3;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
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

struct GatewaySetup {
  bool grpc = false;
  bool admin = false;
  unsigned workers = 1;
  std::chrono::milliseconds drain = kDrain;

  std::string Render() const {
    std::string out =
        "listen: 127.0.0.1:0\nworkers: " + std::to_string(workers) + "\npolicy_file: policy.yaml\n";
    if (grpc) out += "grpc:\n  listen: 127.0.0.1:0\n  plaintext: true\n";
    if (admin) out += "admin:\n  listen: 127.0.0.1:0\n";
    // A long flush interval: the lines must come out of the queue at shutdown.
    out += "audit:\n  path: audit.jsonl\n  flush_interval_ms: 60000\n";
    out += "limits:\n  drain_timeout_ms: " + std::to_string(drain.count()) + "\n";
    out += "trusted_proxies:\n  cidrs: [127.0.0.1/32]\n";
    out += "tenants:\n  - id: acme\n    api_key_sha256: [" + std::string(kKeySha256) +
           "]\n    regions: [CN]\n    default_region: CN\n";
    return out;
  }
};

/// A scratch directory, removed unless the test failed (then its path is printed).
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/meridian-shutdown-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    if (::testing::Test::HasFailure()) {
      std::cerr << "kept " << path_ << " (gateway.log, audit.jsonl)\n";
      return;
    }
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// `meridian serve --config FILE` as a child process; stdout and stderr go to a file, so a
/// chatty gateway can never block on a full pipe.
class Child {
 public:
  Child(const fs::path& config, const fs::path& log) : log_(log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    // The test process ignores SIGPIPE and may block signals in threads; the child gets the
    // defaults, as it would from a shell or an init system.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_setsigdefault(&attr, &all);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    const std::string binary = Binary();
    std::vector<std::string> args = {binary, "serve", "--config", config.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int err = posix_spawn(&pid_, binary.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err != 0) {
      pid_ = -1;
      ADD_FAILURE() << "posix_spawn " << binary << ": " << std::strerror(err);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  std::string Log() const { return ReadAll(log_); }

  /// The port of the first log line containing `prefix` (followed by HOST:PORT), polling the
  /// log until `timeout`; 0 when it never appeared or the child exited.
  unsigned short Port(std::string_view prefix, std::chrono::milliseconds timeout = kStartTimeout) {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until && Running()) {
      const std::string log = Log();
      std::istringstream lines(log);
      for (std::string line; std::getline(lines, line);) {
        const auto at = line.find(prefix);
        if (at == std::string::npos) continue;
        const auto colon = line.rfind(':');
        if (colon == std::string::npos || colon < at) continue;
        return static_cast<unsigned short>(std::atoi(line.c_str() + colon + 1));
      }
      std::this_thread::sleep_for(10ms);
    }
    return 0;
  }

  void Signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      pid_ = -1;
      return false;
    }
    return true;
  }

  /// Polls waitpid(WNOHANG) until the child is gone or `timeout` passes. The wait status, or
  /// nullopt when it still runs (the destructor then kills it).
  std::optional<int> WaitExit(std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    while (Running()) {
      if (Clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(5ms);
    }
    return status_;
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

std::string DescribeStatus(const std::optional<int>& status) {
  if (!status) return "still running";
  if (WIFEXITED(*status)) return "exit status " + std::to_string(WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) return "killed by signal " + std::to_string(WTERMSIG(*status));
  return "wait status " + std::to_string(*status);
}

// ---- a raw HTTP/1.1 client: every wait bounded by poll() ----

/// Closes a descriptor when the scope ends.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

int Connect(unsigned short port, int rcvbuf = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  // Before connect(): the window the client advertises follows the receive buffer.
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {  // NOLINT
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string ChatRequest(std::string_view model, bool stream,
                        const std::vector<std::string>& extra_headers = {}) {
  const std::string body = std::string("{\"model\":\"") + std::string(model) +
                           "\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]" +
                           (stream ? ",\"stream\":true" : "") + "}";
  std::string req =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
      "Content-Type: application/json\r\nAuthorization: Bearer " +
      std::string(kKey) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& h : extra_headers) req += h + "\r\n";
  return req + "\r\n" + body;
}

/// What the client made of one response.
struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  ///< lower-case names
  std::string body;                            ///< de-chunked
  bool framed_end = false;  ///< the body ended as framed (last chunk, or Content-Length)
  std::string raw;
  std::string error;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

void Parse(Response& r) {
  const auto head_end = r.raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return;
  std::istringstream head(r.raw.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (line.size() > 12) r.status = std::atoi(line.c_str() + 9);
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  std::string_view rest(r.raw);
  rest.remove_prefix(head_end + 4);
  if (r.header("transfer-encoding") == "chunked") {
    for (;;) {
      const auto eol = rest.find("\r\n");
      if (eol == std::string_view::npos) return;
      const std::size_t size = std::strtoul(std::string(rest.substr(0, eol)).c_str(), nullptr, 16);
      if (rest.size() < eol + 2 + size + 2) return;
      if (size == 0) {
        r.framed_end = true;
        return;
      }
      r.body.append(rest.substr(eol + 2, size));
      rest.remove_prefix(eol + 2 + size + 2);
    }
  }
  r.body = std::string(rest);
  const std::string length = r.header("content-length");
  r.framed_end = !length.empty() && r.body.size() == std::stoul(length);
}

/// Sends `request` and reads until the server closes (Connection: close) or `timeout` passes.
/// `started` turns true once the head and a first SSE event have arrived.
Response Exchange(unsigned short port, const std::string& request,
                  std::atomic<bool>* started = nullptr, std::chrono::milliseconds timeout = 30s) {
  Response r;
  const int fd = Connect(port);
  if (fd < 0 || !SendAll(fd, request)) {
    r.error = "cannot connect or send";
    if (fd >= 0) ::close(fd);
    return r;
  }
  const auto until = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) {
      r.error = "timed out";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[16384];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.error = std::string("recv: ") + std::strerror(errno);
      break;
    }
    if (n == 0) break;
    r.raw.append(buf, static_cast<std::size_t>(n));
    if (started != nullptr && !started->load()) {
      const auto head_end = r.raw.find("\r\n\r\n");
      if (head_end != std::string::npos && r.raw.find("data: ", head_end) != std::string::npos) {
        started->store(true);
      }
    }
  }
  ::close(fd);
  Parse(r);
  return r;
}

std::string Get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
}

/// How an SSE stream ended.
enum class StreamEnd { kDone, kError, kCut };

StreamEnd EndOf(const Response& r, std::string* error_code = nullptr) {
  if (r.status != 200 || !r.framed_end) return StreamEnd::kCut;
  std::vector<std::string> events;
  for (std::size_t pos = 0; (pos = r.body.find("data: ", pos)) != std::string::npos;) {
    const auto end = r.body.find("\n\n", pos);
    if (end == std::string::npos) return StreamEnd::kCut;  // a torn event
    events.push_back(r.body.substr(pos + 6, end - pos - 6));
    pos = end + 2;
  }
  if (events.empty()) return StreamEnd::kCut;
  if (events.back() == "[DONE]") return StreamEnd::kDone;
  boost::system::error_code ec;
  const json::value v = json::parse(events.back(), ec);
  if (ec || !v.is_object() || !v.as_object().contains("error")) return StreamEnd::kCut;
  if (error_code != nullptr) {
    if (const auto* code = v.at("error").as_object().if_contains("code");
        code != nullptr && code->is_string()) {
      *error_code = std::string(code->as_string());
    }
  }
  return StreamEnd::kError;
}

// ---- gRPC streams ----

struct GrpcStream {
  std::string request_id;  ///< from the first message's decision
  int messages = 0;
  bool finished = false;  ///< a `finish` message arrived
  grpc::Status status;
};

GrpcStream Generate(unsigned short port, const std::string& model, std::atomic<bool>& started) {
  GrpcStream out;
  auto stub = v1::Assistant::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kKey);
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  v1::GenerateRequest req;
  req.set_model(model);
  auto* m = req.add_messages();
  m->set_role(v1::ROLE_USER);
  m->add_content()->set_text("hello");
  auto reader = stub->Generate(&ctx, req);
  v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    ++out.messages;
    if (msg.has_start()) out.request_id = msg.start().decision().request_id();
    if (msg.has_finish()) out.finished = true;
    if (out.messages >= 2) started.store(true);
  }
  out.status = reader->Finish();
  started.store(true);
  return out;
}

// ---- the audit log ----

/// Request id -> lines; every line must be whole JSON with a request id.
std::map<std::string, std::vector<json::object>> ReadAudit(const fs::path& path) {
  std::map<std::string, std::vector<json::object>> out;
  const std::string text = ReadAll(path);
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the last audit line is torn";
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object() || !v.as_object().contains("request_id")) {
      ADD_FAILURE() << "torn or invalid audit line: " << line;
      continue;
    }
    out[std::string(v.at("request_id").as_string())].push_back(v.as_object());
  }
  return out;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

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
    EXPECT_EQ(audit.at(slow.header("x-request-id")).front().at("status_reason").as_string(),
              "drain_deadline");
  }
}

}  // namespace
