#include "gateway/runtime.h"

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <random>

#include "gateway/router.h"

namespace meridian::gateway {

namespace asio = boost::asio;

class Runtime::Worker final : public WorkerContext {
 public:
  Worker(std::shared_ptr<asio::ssl::context> client_tls, providers::ClientLimits limits,
         asio::any_io_executor control)
      : control_(std::move(control)),
        io_(std::make_unique<asio::io_context>(1)),
        work_(asio::make_work_guard(*io_)),
        adapters_(std::make_unique<AdapterSet>(io_->get_executor(), std::move(client_tls), limits)),
        rng_(std::random_device{}()) {}

  /// Teardown order matters: coroutine frames still owned by the io_context (sessions,
  /// upstream reads) point into the adapters, so the pool is closed first, then the
  /// io_context (destroying those frames, whose finished responses now close instead of
  /// pooling), and only then the adapters.
  ~Worker() override {
    work_.reset();
    adapters_->client().Shutdown();
    io_.reset();
    adapters_.reset();
  }

  /// Returns only after Stop(): the work guard keeps run() going while the worker has nothing
  /// to do (a drain closes the listeners; gRPC calls are posted to it until Stop).
  void Run() { io_->run(); }
  void Stop() {
    asio::post(*io_, [this] {
      work_.reset();
      io_->stop();
    });
  }
  void Drain(DrainPhase phase) {
    asio::post(*io_, [this, phase] { drain_hooks_.Fire(phase); });
  }

  asio::any_io_executor executor() override { return io_->get_executor(); }
  AdapterSet& adapters() override { return *adapters_; }
  DrainHooks& drain_hooks() override { return drain_hooks_; }
  asio::any_io_executor control_executor() override { return control_; }
  core::RequestId NewRequestId() override { return core::RequestId::From(rng_()); }

 private:
  asio::any_io_executor control_;
  std::unique_ptr<asio::io_context> io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<AdapterSet> adapters_;
  std::mt19937_64 rng_;
  DrainHooks drain_hooks_;
};

Runtime::Runtime(unsigned workers, std::shared_ptr<asio::ssl::context> client_tls,
                 providers::ClientLimits limits) {
  for (unsigned i = 0; i < std::max(workers, 1u); ++i) {
    workers_.push_back(std::make_unique<Worker>(client_tls, limits, control_.get_executor()));
  }
}

core::Status Runtime::Create(const config::GatewayConfig& cfg, std::unique_ptr<Runtime>& out) {
  std::shared_ptr<asio::ssl::context> client_tls;
  if (auto st = providers::HttpClient::MakeTlsContext(cfg.upstream.ca_file, client_tls); !st.ok()) {
    return st;
  }
  providers::ClientLimits limits;
  limits.connect_timeout = cfg.upstream.connect_timeout;
  limits.first_byte_timeout = cfg.upstream.first_byte_timeout;
  limits.idle_timeout = cfg.upstream.idle_timeout;
  limits.max_response_bytes = cfg.upstream.max_response_bytes;
  limits.same_provider_retries = static_cast<int>(cfg.upstream.same_provider_retries);
  out = std::make_unique<Runtime>(cfg.workers, std::move(client_tls), limits);
  return core::Status::Ok();
}

Runtime::~Runtime() {
  Stop();
}

WorkerContext& Runtime::worker(std::size_t i) {
  return *workers_.at(i);
}

WorkerContext& Runtime::NextWorker() {
  const auto n = next_worker_.fetch_add(1, std::memory_order_relaxed);
  return *workers_[n % workers_.size()];
}

void Runtime::RunInBackground() {
  std::lock_guard lock(threads_mu_);
  if (stopped_ || !threads_.empty()) return;
  for (auto& w : workers_) threads_.emplace_back([w = w.get()] { w->Run(); });
}

void Runtime::Drain(DrainPhase phase) {
  for (auto& w : workers_) w->Drain(phase);
}

void Runtime::Stop() {
  // One owner of the threads: whoever stops first joins them, under the lock; a concurrent
  // caller waits for that and finds nothing left to do.
  std::lock_guard lock(threads_mu_);
  if (stopped_) return;
  stopped_ = true;
  for (auto& w : workers_) w->Stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  control_.join();  // a reload still compiling finishes; its answer has nobody to go to
}

}  // namespace meridian::gateway
