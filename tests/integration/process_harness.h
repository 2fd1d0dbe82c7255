// Harness for tests of the real `meridian serve` process: the binary runs as a child (stdout and
// stderr into a log file, the signal dispositions of an init system), is reached over raw
// sockets whose every wait is bounded by poll(), and its audit log is read back line by line.
// Shared by tests/integration/shutdown_test.cpp and tests/integration/process_test.cpp.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "meridian/v1/assistant.grpc.pb.h"

extern char** environ;

namespace meridian::process_harness {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace v1 = meridian::v1;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The demo tenant's key (published in the README) and its SHA-256.
inline constexpr const char* kKey = "sk-meridian-demo";
inline constexpr const char* kKeySha256 =
    "6ab184784373faa43fd1dd96bb913029118f40a34b4939fbe8a6e29852941e12";

// The admin listener's bearer token in these tests, and the variable admin.token_env names.
inline constexpr const char* kAdminToken = "process-test-admin-token-5f1c0e2a9b7d4c11";
inline constexpr const char* kAdminTokenEnv = "MERIDIAN_PROCESS_TEST_ADMIN_TOKEN";

inline constexpr auto kStartTimeout = 15s;  ///< until the gateway logs its listening ports
/// The log line naming the main listener's port ("<time> info listening on http://H:P").
inline constexpr std::string_view kHttpLine = "info listening on http://";

/// The binary under test: MERIDIAN_BINARY (the build's), or MERIDIAN_SHUTDOWN_BINARY when set
/// (a copy that a concurrent rebuild cannot replace mid-run, or an older build to compare).
inline std::string Binary() {
  const char* v = std::getenv("MERIDIAN_SHUTDOWN_BINARY");
  return v != nullptr && *v != '\0' ? v : MERIDIAN_BINARY;
}

inline std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

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
  /// The child's pid while it runs (for prlimit), else -1.
  pid_t pid() const { return pid_; }

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

inline std::string DescribeStatus(const std::optional<int>& status) {
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

inline int Connect(unsigned short port, int rcvbuf = 0) {
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

inline bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

inline std::string ChatRequest(std::string_view model, bool stream,
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

inline void Parse(Response& r) {
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
inline Response Exchange(unsigned short port, const std::string& request,
                         std::atomic<bool>* started = nullptr,
                         std::chrono::milliseconds timeout = 30s) {
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

inline std::string Get(const std::string& path, const std::vector<std::string>& headers = {}) {
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  return req + "\r\n";
}

/// How an SSE stream ended.
enum class StreamEnd { kDone, kError, kCut };

inline StreamEnd EndOf(const Response& r, std::string* error_code = nullptr) {
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

inline GrpcStream Generate(unsigned short port, const std::string& model,
                           std::atomic<bool>& started) {
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
inline std::map<std::string, std::vector<json::object>> ReadAudit(const fs::path& path) {
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

inline bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace meridian::process_harness
