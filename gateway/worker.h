// A worker thread of `meridian serve` as other front ends see it: one io_context with its own
// upstream adapters (and connection pool). Work for a request is posted to one worker and
// stays on its thread, so adapters need no locks.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <string>

#include "gateway/router.h"

namespace meridian::gateway {

class WorkerContext {
 public:
  virtual ~WorkerContext() = default;
  virtual boost::asio::any_io_executor executor() = 0;
  /// Only on this worker's thread.
  virtual AdapterSet& adapters() = 0;
  /// A fresh request id ("req_" + 16 hex digits). Only on this worker's thread.
  virtual std::string NewRequestId() = 0;
};

}  // namespace meridian::gateway
