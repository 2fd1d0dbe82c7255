// A worker thread of `meridian serve` as other front ends see it: one io_context with its own
// upstream adapters (and connection pool). Work for a request is posted to one worker and
// stays on its thread, so adapters need no locks.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <list>
#include <string>

#include "gateway/core/request_id.h"
#include "gateway/router.h"

namespace meridian::store {
class BucketStore;
class ExportMeterStore;
}  // namespace meridian::store

namespace meridian::gateway {

/// The two moments of a graceful drain at which a worker tells its connections and requests.
enum class DrainPhase {
  kStart,     ///< stop taking work: idle keep-alive connections close now
  kDeadline,  ///< the drain deadline passed: requests still running end with an error
};

/// Callbacks of one worker's connections and requests, fired on the worker's thread. Not
/// thread-safe: added, removed and fired on that thread only.
class DrainHooks {
 public:
  using Hook = std::function<void(DrainPhase)>;
  using Handle = std::list<Hook>::iterator;
  Handle Add(Hook hook) { return hooks_.insert(hooks_.end(), std::move(hook)); }
  void Remove(Handle h) { hooks_.erase(h); }
  /// Each hook may remove itself (or others) while running.
  void Fire(DrainPhase phase) {
    std::list<Hook> copy = hooks_;
    for (auto& h : copy) h(phase);
  }

 private:
  std::list<Hook> hooks_;
};

/// Registers a hook for its lifetime (construct and destroy on the worker's thread).
class ScopedDrainHook {
 public:
  ScopedDrainHook(DrainHooks& hooks, DrainHooks::Hook hook)
      : hooks_(hooks), handle_(hooks.Add(std::move(hook))) {}
  ~ScopedDrainHook() { hooks_.Remove(handle_); }
  ScopedDrainHook(const ScopedDrainHook&) = delete;
  ScopedDrainHook& operator=(const ScopedDrainHook&) = delete;

 private:
  DrainHooks& hooks_;
  DrainHooks::Handle handle_;
};

class WorkerContext {
 public:
  virtual ~WorkerContext() = default;
  virtual boost::asio::any_io_executor executor() = 0;
  /// Only on this worker's thread.
  virtual AdapterSet& adapters() = 0;
  /// A fresh request id. Only on this worker's thread.
  virtual core::RequestId NewRequestId() = 0;
  /// Only on this worker's thread.
  virtual DrainHooks& drain_hooks() = 0;
  /// The gateway's control thread: slow operator work (a policy compile for POST
  /// /admin/reload) runs there, never on a request thread.
  virtual boost::asio::any_io_executor control_executor() = 0;
  /// Where this worker's rate limits are counted (gateway/quota.h); null when no tenant has
  /// limits. Only on this worker's thread.
  virtual store::BucketStore* buckets() { return nullptr; }
  /// Where this worker's export meter counts (gateway/meter.h); null without `export_meter:`.
  virtual store::ExportMeterStore* meter() { return nullptr; }
};

/// The workers a front end hands its requests to (the Runtime, gateway/runtime.h, owns them).
class WorkerPool {
 public:
  virtual ~WorkerPool() = default;
  /// The workers in turn (thread-safe).
  virtual WorkerContext& NextWorker() = 0;
};

}  // namespace meridian::gateway
