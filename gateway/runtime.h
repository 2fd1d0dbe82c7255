// The worker threads of `meridian serve`, owned by no front end. Each worker is one thread
// running one io_context with its own upstream adapters (and connection pool), drain hooks and
// request-id generator: work for a request is posted to one worker and stays on its thread, so
// adapters need no locks. One more thread (the control thread) takes slow operator work. The
// front ends put their listeners on the workers' io_contexts (HTTP) or hand calls to them
// (gRPC, through WorkerPool).
#pragma once

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "config/gateway_config.h"
#include "gateway/core/status.h"
#include "gateway/worker.h"
#include "providers/common/http_client.h"

namespace meridian::store {
class BucketStore;
class ExportMeterStore;
struct RedisOptions;
}  // namespace meridian::store

namespace meridian::gateway {

/// The Redis client options `store:` asks for, the password read from `store.password_env`
/// (an unset or empty variable is an error naming it).
core::Status RedisOptionsFor(const config::StoreConfig& store, store::RedisOptions& out);

class Runtime final : public WorkerPool {
 public:
  /// `workers` workers whose upstream clients use `client_tls` and `limits`. Nothing runs
  /// before RunInBackground().
  Runtime(unsigned workers, std::shared_ptr<boost::asio::ssl::context> client_tls,
          providers::ClientLimits limits);
  /// The runtime a gateway config asks for (`workers:`, `upstream:`, and `store:` when a
  /// tenant has `limits:`: one store shared in process, or one Redis client per worker).
  static core::Status Create(const config::GatewayConfig& config, std::unique_ptr<Runtime>& out);
  ~Runtime() override;

  std::size_t size() const { return workers_.size(); }
  WorkerContext& worker(std::size_t i);
  /// The workers in turn (thread-safe).
  WorkerContext& NextWorker() override;
  /// Runs each worker on a thread of its own until Stop(); returns at once. Once only.
  void RunInBackground();
  /// Tells every worker's drain hooks `phase`, on their threads (asynchronously).
  void Drain(DrainPhase phase);
  /// Stops the workers and joins their threads and the control thread; afterwards nothing runs
  /// on them. Idempotent and thread-safe (a concurrent call returns once the threads are
  /// joined); never from a worker thread. Work posted before Stop() runs first.
  void Stop();

 private:
  class Worker;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex threads_mu_;  ///< RunInBackground and Stop; held while joining
  std::vector<std::thread> threads_;
  bool stopped_ = false;
  std::atomic<std::size_t> next_worker_{0};
  std::unique_ptr<store::BucketStore> shared_buckets_;  ///< `store: {kind: memory}`
  std::unique_ptr<store::ExportMeterStore> shared_meter_;
  /// One thread for slow operator work (admin reloads), joined by Stop() after the workers.
  boost::asio::thread_pool control_{1};
};

}  // namespace meridian::gateway
