// A real redis-server (Debian's) for tests of the shared state: started as a child on a
// loopback port with persistence off and its data in a temporary directory, stopped and
// started again on the same port to rehearse a Redis restart. Readiness is Redis's own log
// line ("Ready to accept connections"), polled with a bound, never a fixed sleep.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/store/redis_client.h"

extern char** environ;

namespace meridian::testing {

class RedisServer {
 public:
  /// Starts on a free loopback port; `extra` are further `--name value` arguments
  /// (e.g. {"--requirepass", "secret"}).
  explicit RedisServer(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
    char pattern[] = "/tmp/meridian-redis-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    for (int attempt = 0; attempt < 5 && port_ == 0; ++attempt) {
      const unsigned short candidate = FreePort();
      if (Launch(candidate)) port_ = candidate;
    }
    if (port_ == 0) ADD_FAILURE() << "redis-server did not start:\n" << Log();
  }
  ~RedisServer() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  unsigned short port() const { return port_; }
  std::string port_string() const { return std::to_string(port_); }
  bool ok() const { return port_ != 0 && pid_ > 0; }

  /// SIGTERM, and wait until it is gone.
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  /// Starts again on the same port (after Stop), with an empty dataset.
  bool Restart() {
    Stop();
    return Launch(port_);
  }

  std::string Log() const {
    std::ifstream in(dir_ / "redis.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  static unsigned short FreePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    unsigned short port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    ::close(fd);
    return port;
  }

  bool Launch(unsigned short port) {
    const std::filesystem::path log = dir_ / "redis.log";
    std::filesystem::remove(log);
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_.string(),
                                     "--logfile",
                                     log.string(),
                                     "--protected-mode",
                                     "yes"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    const int err = posix_spawnp(&pid_, "redis-server", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (err != 0) {
      pid_ = -1;
      ADD_FAILURE() << "cannot run redis-server (apt-get install redis-server)";
      return false;
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (Log().find("Ready to accept connections") != std::string::npos) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // e.g. the port was taken meanwhile
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Stop();
    return false;
  }

  std::vector<std::string> extra_;
  std::filesystem::path dir_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
};

/// One command's reply from `redis`, on a connection of its own (kNil when Redis cannot be
/// reached).
inline store::RespValue RedisCommand(const RedisServer& redis, std::vector<std::string> cmd) {
  boost::asio::io_context io;
  store::RedisOptions o;
  o.port = redis.port_string();
  o.command_timeout = std::chrono::milliseconds(10'000);  // e.g. SADD of 10,000 members
  store::RedisPool pool(io.get_executor(), o);
  store::RespValue out;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        const store::RedisResult r = co_await pool.Call(std::move(cmd));
        if (r.status.ok()) out = r.replies.at(0);
      },
      boost::asio::detached);
  io.run();
  return out;
}

/// The integer reply of one command (-1 when there is none).
inline long long RedisInt(const RedisServer& redis, std::vector<std::string> cmd) {
  const store::RespValue v = RedisCommand(redis, std::move(cmd));
  return v.type == store::RespValue::Type::kInteger ? v.integer : -1;
}

}  // namespace meridian::testing
