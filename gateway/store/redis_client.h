// A Redis client on the worker's own Asio event loop: no blocking call on a worker thread, a
// deadline on every connect and every command, pipelining within a call. One RedisPool per
// worker (single-threaded like the rest of the worker: no locks); its connections are kept
// for reuse and dropped on any error or timeout, so a hung or restarted Redis costs one
// deadline, never a stuck request. Wire format: gateway/store/resp.h.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/status.h"
#include "gateway/store/resp.h"

namespace meridian::store {

struct RedisOptions {
  std::string host = "127.0.0.1";
  std::string port = "6379";
  std::string username;  ///< ACL user ("" with a password: the default user)
  std::string password;  ///< AUTH when set; never logged
  int db = 0;            ///< SELECT when not 0
  std::chrono::milliseconds connect_timeout{250};
  /// For one call's commands, from the first byte written to the last reply read.
  std::chrono::milliseconds command_timeout{100};
  /// Connections kept for reuse: as many as the worker has calls in flight at once, up to this
  /// (beyond it a call opens one of its own and closes it after).
  std::size_t max_idle = 128;
};

/// The replies of one call, in the order of its commands. A Redis error reply (e.g. a script
/// that failed) is a reply of type kError with status ok; status is not ok only when the
/// store could not be reached or did not answer in time (kUnavailable, reason
/// "store_unavailable" or "store_timeout"), and then replies is empty.
struct RedisResult {
  core::Status status;
  std::vector<RespValue> replies;
};

class RedisPool {
 public:
  RedisPool(boost::asio::any_io_executor executor, RedisOptions options);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  /// Sends `commands` in one write on one connection and reads every reply, within
  /// command_timeout of the call (plus connect_timeout when a connection is opened). A kept
  /// connection found closed before any reply (Redis restarted) is replaced once. Runs on the
  /// pool's executor; the pool must outlive the call.
  boost::asio::awaitable<RedisResult> Pipeline(std::vector<std::vector<std::string>> commands);
  boost::asio::awaitable<RedisResult> Call(std::vector<std::string> command);

  std::size_t idle() const { return idle_.size(); }
  /// Connections opened so far (a reused one is not counted again).
  std::size_t opened() const { return opened_; }

 private:
  struct Connection;
  boost::asio::awaitable<core::Status> Connect(std::unique_ptr<Connection>& out);
  boost::asio::awaitable<core::Status> Exchange(Connection& c, const std::string& out,
                                                std::size_t want,
                                                std::chrono::steady_clock::time_point deadline,
                                                std::vector<RespValue>& replies,
                                                std::size_t& bytes_read,
                                                boost::system::error_code& ec);

  boost::asio::any_io_executor executor_;
  RedisOptions options_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t opened_ = 0;
};

/// The SHA-1 hex Redis names a script by (EVALSHA).
std::string ScriptSha(std::string_view script);

/// Runs a Lua script: EVALSHA `sha`, and EVAL `script` when Redis does not have it yet (first
/// use, after a restart or SCRIPT FLUSH; Redis caches it then).
boost::asio::awaitable<RedisResult> EvalScript(RedisPool& pool, const std::string& script,
                                               const std::string& sha,
                                               std::vector<std::string> keys,
                                               std::vector<std::string> args);

}  // namespace meridian::store
