#include "gateway/store/redis_client.h"

#include <openssl/sha.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <memory>
#include <utility>

namespace meridian::store {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
using core::Status;
using core::StatusCode;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

Status Failure(const std::string& what, const beast::error_code& ec) {
  const bool timeout = ec == beast::error::timeout;
  Status s = Status::Error(StatusCode::kUnavailable,
                           "shared state store " + what + ": " +
                               (timeout ? std::string("deadline exceeded") : ec.message()),
                           timeout ? "store_timeout" : "store_unavailable");
  s.retryable = true;
  return s;
}

}  // namespace

struct RedisPool::Connection {
  explicit Connection(asio::any_io_executor ex) : stream(std::move(ex)) {}
  beast::tcp_stream stream;
  RespReader reader;
};

RedisPool::RedisPool(asio::any_io_executor executor, RedisOptions options)
    : executor_(std::move(executor)), options_(std::move(options)) {}

RedisPool::~RedisPool() = default;

asio::awaitable<Status> RedisPool::Connect(std::unique_ptr<Connection>& out) {
  auto c = std::make_unique<Connection>(executor_);
  // A name lookup runs on Asio's resolver thread and is not bounded by the socket's deadline:
  // a timer cancels it (the lookup's late answer is then ignored).
  auto resolver = std::make_shared<tcp::resolver>(executor_);
  asio::steady_timer lookup_deadline(executor_, options_.connect_timeout);
  lookup_deadline.async_wait([resolver](const beast::error_code& ec) {
    if (!ec) resolver->cancel();
  });
  auto [rec, results] = co_await resolver->async_resolve(options_.host, options_.port, kTuple);
  lookup_deadline.cancel();
  if (rec == asio::error::operation_aborted) {
    co_return Failure("cannot resolve " + options_.host, beast::error::timeout);
  }
  if (rec) co_return Failure("cannot resolve " + options_.host, rec);
  c->stream.expires_after(options_.connect_timeout);  // then the call's own deadline
  auto [cec, ep] = co_await c->stream.async_connect(results, kTuple);
  (void)ep;
  if (cec) co_return Failure("cannot connect to " + options_.host + ":" + options_.port, cec);
  beast::error_code opt_ec;
  c->stream.socket().set_option(tcp::no_delay(true), opt_ec);
  ++opened_;
  out = std::move(c);
  co_return Status::Ok();
}

asio::awaitable<RedisResult> RedisPool::Call(std::vector<std::string> command) {
  std::vector<std::vector<std::string>> commands;
  commands.push_back(std::move(command));
  co_return co_await Pipeline(std::move(commands));
}

asio::awaitable<RedisResult> RedisPool::Pipeline(std::vector<std::vector<std::string>> commands) {
  RedisResult result;
  std::string body;
  for (const auto& command : commands) AppendCommand(body, command);
  const auto deadline = std::chrono::steady_clock::now() + options_.command_timeout;
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> c;
    const bool reused = !idle_.empty();
    std::size_t preamble = 0;  // AUTH / SELECT replies to read first on a new connection
    std::string out;
    if (reused) {
      c = std::move(idle_.back());
      idle_.pop_back();
    } else {
      result.status = co_await Connect(c);
      if (!result.status.ok()) co_return result;
      if (!options_.password.empty()) {
        std::vector<std::string> auth{"AUTH"};
        if (!options_.username.empty()) auth.push_back(options_.username);
        auth.push_back(options_.password);
        AppendCommand(out, auth);
        ++preamble;
      }
      if (options_.db != 0) {
        AppendCommand(out, {"SELECT", std::to_string(options_.db)});
        ++preamble;
      }
    }
    out += body;
    std::size_t bytes_read = 0;
    beast::error_code ec;
    std::vector<RespValue> replies;
    result.status =
        co_await Exchange(*c, out, preamble + commands.size(), deadline, replies, bytes_read, ec);
    if (!result.status.ok()) {
      // A kept connection the server closed while it was idle (a Redis restart, its
      // `timeout`): nothing of this call was read, so nothing of it ran. Once, on a new one.
      const bool closed = ec == asio::error::eof || ec == asio::error::connection_reset ||
                          ec == asio::error::broken_pipe;
      if (reused && closed && bytes_read == 0 && attempt == 0) continue;
      co_return result;  // the connection is dropped
    }
    for (std::size_t i = 0; i < preamble; ++i) {
      if (replies[i].is_error()) {
        // A rejected AUTH or SELECT: a configuration error, the same on every connection.
        // Only Redis's error code: the rest may quote the command.
        result.status = Status::Error(StatusCode::kUnavailable,
                                      "shared state store refused the connection setup: " +
                                          replies[i].str.substr(0, replies[i].str.find(' ')),
                                      "store_unavailable");
        co_return result;
      }
    }
    replies.erase(replies.begin(), replies.begin() + static_cast<std::ptrdiff_t>(preamble));
    c->stream.expires_never();
    if (idle_.size() < options_.max_idle) idle_.push_back(std::move(c));
    result.replies = std::move(replies);
    co_return result;
  }
}

asio::awaitable<Status> RedisPool::Exchange(Connection& c, const std::string& out, std::size_t want,
                                            std::chrono::steady_clock::time_point deadline,
                                            std::vector<RespValue>& replies,
                                            std::size_t& bytes_read, beast::error_code& ec) {
  c.stream.expires_at(deadline);
  auto [wec, written] = co_await asio::async_write(c.stream, asio::buffer(out), kTuple);
  (void)written;
  if (wec) {
    ec = wec;
    co_return Failure("write failed", wec);
  }
  replies.reserve(want);
  std::array<char, 4096> buf{};
  while (replies.size() < want) {
    if (auto v = c.reader.Next()) {
      replies.push_back(std::move(*v));
      continue;
    }
    if (!c.reader.error().empty()) {
      co_return Status::Error(StatusCode::kUnavailable,
                              "shared state store sent invalid RESP: " + c.reader.error(),
                              "store_unavailable");
    }
    auto [rec, n] = co_await c.stream.async_read_some(asio::buffer(buf), kTuple);
    if (rec) {
      ec = rec;
      co_return Failure("read failed", rec);
    }
    bytes_read += n;
    (void)c.reader.Feed(std::string_view(buf.data(), n));  // an error is reported above
  }
  co_return Status::Ok();
}

std::string ScriptSha(std::string_view script) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(script.data()), script.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

asio::awaitable<RedisResult> EvalScript(RedisPool& pool, const std::string& script,
                                        const std::string& sha, std::vector<std::string> keys,
                                        std::vector<std::string> args) {
  std::vector<std::string> command{"EVALSHA", sha, std::to_string(keys.size())};
  for (auto& k : keys) command.push_back(std::move(k));
  for (auto& a : args) command.push_back(std::move(a));
  RedisResult r = co_await pool.Call(command);
  if (r.status.ok() && !r.replies.empty() && r.replies[0].is_error() &&
      r.replies[0].str.starts_with("NOSCRIPT")) {
    command[0] = "EVAL";
    command[1] = script;
    r = co_await pool.Call(std::move(command));
  }
  co_return r;
}

}  // namespace meridian::store
