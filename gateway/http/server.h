// The HTTP/1.1 front end: OpenAI-compatible /v1/chat/completions (JSON and SSE), /v1/models,
// /healthz, /readyz, /metrics. It puts one acceptor on each worker of the runtime (the same
// port, SO_REUSEPORT): a connection and every upstream request it causes stay on that
// worker's thread, so the request path takes no locks. The workers belong to the Runtime.
#pragma once

#include <memory>
#include <vector>

#include "gateway/core/status.h"
#include "gateway/gateway_state.h"

namespace meridian::gateway {
class Runtime;
}  // namespace meridian::gateway

namespace meridian::http {

class HttpWorker;

class HttpServer final {
 public:
  HttpServer(gateway::GatewayState& state, gateway::Runtime& runtime);
  /// Destroy before the runtime (the acceptors live on its io_contexts) and after it stopped.
  ~HttpServer();

  /// Binds the listeners (port 0 picks a free port). Errors are returned, not thrown.
  core::Status Start();
  /// The bound port.
  unsigned short port() const { return port_; }
  /// The admin listener's port; 0 without `admin:`.
  unsigned short admin_port() const { return admin_port_; }
  /// A drain starts: the public listeners stop accepting (asynchronously, on the workers'
  /// threads); the admin listener stays open for probes. Idle keep-alive connections close
  /// on the runtime's DrainPhase::kStart.
  void StopAccepting();
  /// Closes every listener (asynchronously, before the runtime's Stop).
  void Close();

 private:
  gateway::GatewayState& state_;
  gateway::Runtime& runtime_;
  std::vector<std::unique_ptr<HttpWorker>> workers_;
  unsigned short port_ = 0;
  unsigned short admin_port_ = 0;
};

}  // namespace meridian::http
