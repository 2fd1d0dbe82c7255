// The HTTP/1.1 front end: OpenAI-compatible /v1/chat/completions (JSON and SSE), /v1/models,
// /healthz, /readyz, /metrics. One io_context per worker thread, each with its own acceptor on
// the same port (SO_REUSEPORT) and its own upstream connection pool: a connection and every
// upstream request it causes stay on one thread, so the request path takes no locks.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/core/status.h"
#include "gateway/gateway_state.h"
#include "gateway/worker.h"

namespace meridian::gateway {

class Worker;

class HttpServer final : public WorkerPool {
 public:
  explicit HttpServer(GatewayState& state);
  ~HttpServer() override;

  /// Binds the listeners (port 0 picks a free port). Errors are returned, not thrown.
  core::Status Start();
  /// The bound port.
  unsigned short port() const { return port_; }
  /// The admin listener's port; 0 without `admin:`.
  unsigned short admin_port() const { return admin_port_; }
  /// Runs each worker on a thread of its own until Stop(); returns at once. Once only.
  void RunInBackground();
  /// Stops the workers and joins their threads; afterwards nothing runs on them. Idempotent
  /// and thread-safe (a concurrent call returns once the threads are joined); never from a
  /// worker thread.
  void Stop();
  /// The workers in turn (thread-safe), for front ends that hand requests to them. Valid
  /// after a successful Start().
  WorkerContext& NextWorker() override;
  /// Tells every worker a drain phase (asynchronously, on their threads): kStart closes the
  /// public listener and idle keep-alive connections (the admin listener stays open);
  /// kDeadline ends the requests still running with a "shutting down" error.
  void Drain(DrainPhase phase);

 private:
  GatewayState& state_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex threads_mu_;  ///< RunInBackground and Stop; held while joining
  std::vector<std::thread> threads_;
  bool stopped_ = false;
  unsigned short port_ = 0;
  unsigned short admin_port_ = 0;
  std::atomic<std::size_t> next_worker_{0};
  /// One thread for slow operator work (admin reloads), joined by Stop() after the workers.
  boost::asio::thread_pool control_{1};
};

}  // namespace meridian::gateway
