#include "gateway/runtime.h"

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdlib>
#include <random>

#include "gateway/router.h"
#include "gateway/store/export_meter.h"
#include "gateway/store/rate_limit.h"
#include "gateway/store/redis_client.h"

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
    // The Redis connections close while their io_context is still there.
    own_buckets_.reset();
    own_meter_.reset();
    redis_.reset();
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
  store::BucketStore* buckets() override { return buckets_; }
  store::ExportMeterStore* meter() override { return meter_; }
  void UseShared(store::BucketStore* buckets, store::ExportMeterStore* meter) {
    buckets_ = buckets;
    meter_ = meter;
  }
  void UseRedis(store::RedisOptions options, bool buckets, bool meter) {
    redis_ = std::make_unique<store::RedisPool>(io_->get_executor(), std::move(options));
    if (buckets) {
      own_buckets_ = std::make_unique<store::RedisBucketStore>(*redis_);
      buckets_ = own_buckets_.get();
    }
    if (meter) {
      own_meter_ = std::make_unique<store::RedisExportMeter>(*redis_);
      meter_ = own_meter_.get();
    }
  }

 private:
  asio::any_io_executor control_;
  std::unique_ptr<asio::io_context> io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<AdapterSet> adapters_;
  std::mt19937_64 rng_;
  DrainHooks drain_hooks_;
  std::unique_ptr<store::RedisPool> redis_;
  std::unique_ptr<store::BucketStore> own_buckets_;
  std::unique_ptr<store::ExportMeterStore> own_meter_;
  store::BucketStore* buckets_ = nullptr;
  store::ExportMeterStore* meter_ = nullptr;
};

Runtime::Runtime(unsigned workers, std::shared_ptr<asio::ssl::context> client_tls,
                 providers::ClientLimits limits) {
  for (unsigned i = 0; i < std::max(workers, 1u); ++i) {
    workers_.push_back(std::make_unique<Worker>(client_tls, limits, control_.get_executor()));
  }
}

core::Status RedisOptionsFor(const config::StoreConfig& sc, store::RedisOptions& out) {
  out.host = sc.host;
  out.port = sc.port;
  out.username = sc.username;
  out.db = static_cast<int>(sc.db);
  out.connect_timeout = sc.connect_timeout;
  out.command_timeout = sc.command_timeout;
  if (sc.password_env.empty()) return core::Status::Ok();
  const char* password = std::getenv(sc.password_env.c_str());
  if (password == nullptr || *password == '\0') {
    return core::Status::Error(
        core::StatusCode::kInvalidArgument,
        "store.password_env: the environment variable " + sc.password_env + " is not set or empty",
        "store_password_missing");
  }
  out.password = password;
  return core::Status::Ok();
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
  auto rt = std::make_unique<Runtime>(cfg.workers, std::move(client_tls), limits);
  const bool rate_limits = cfg.HasLimits();
  const bool meter = cfg.export_meter.has_value();
  if (rate_limits || meter) {
    const config::StoreConfig& sc = cfg.store;
    if (sc.kind == config::StoreConfig::Kind::kMemory) {
      if (rate_limits) rt->shared_buckets_ = std::make_unique<store::MemoryBucketStore>();
      if (meter) rt->shared_meter_ = std::make_unique<store::MemoryExportMeter>();
      for (auto& w : rt->workers_) w->UseShared(rt->shared_buckets_.get(), rt->shared_meter_.get());
    } else {
      store::RedisOptions options;
      if (auto st = RedisOptionsFor(sc, options); !st.ok()) return st;
      for (auto& w : rt->workers_) w->UseRedis(options, rate_limits, meter);
    }
  }
  out = std::move(rt);
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
