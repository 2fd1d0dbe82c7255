// The gRPC front end (service meridian.v1.Assistant, plus grpc.health.v1 and server
// reflection), running in the same process as the HTTP front end on its own port.
//
// Threading: gRPC's callback reactors run on gRPC's threads and never block. Identity and
// request validation (pure, microseconds) run there; the call is then handed to one of the
// runtime's worker io_contexts, where the exchange decides and routes it (the same adapters and
// connection pools), which sends chunks back one message at a time: at most one write is in flight,
// the next chunk is read from upstream only after OnWriteDone, so a slow reader slows the upstream
// read and memory per stream stays bounded. Client cancellation and the call's deadline cancel
// the upstream request. Every call is finished exactly once, by the side that owns it at that
// moment.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>

#include "gateway/core/status.h"
#include "gateway/gateway_state.h"
#include "gateway/worker.h"

namespace grpc {
class Server;
}  // namespace grpc

// Namespace grpcfe ("gRPC front end"), not meridian::grpc: inside meridian that name would hide
// gRPC's own ::grpc.
namespace meridian::grpcfe {

class GrpcServer {
 public:
  /// `workers` runs the upstream calls; it must keep running until Shutdown() returns.
  GrpcServer(gateway::GatewayState& state, gateway::WorkerPool& workers);
  ~GrpcServer();

  /// Binds state.config.grpc->listen (port 0 picks one) and starts serving.
  core::Status Start();
  unsigned short port() const { return port_; }
  /// Health service status for "" and meridian.v1.Assistant.
  void SetServing(bool serving);
  /// Stops accepting calls; calls still running after `grace` are cancelled (their upstream
  /// requests too). Returns when every call has finished. The server is shut down and waited
  /// for exactly once: idempotent and thread-safe (a concurrent call returns once the first
  /// has finished). The workers must still run.
  void Shutdown(std::chrono::milliseconds grace);

  class Service;  ///< the meridian.v1.Assistant implementation (server.cpp)

 private:
  gateway::GatewayState& state_;
  gateway::WorkerPool& workers_;
  std::unique_ptr<Service> service_;
  std::mutex server_mu_;  ///< guards server_ (held through Shutdown and Wait)
  std::unique_ptr<grpc::Server> server_;
  unsigned short port_ = 0;
};

}  // namespace meridian::grpcfe
