// Assembles a running gateway from its configuration: gateway config + policy, tenants,
// trusted proxies, routing table, HTTP server and (when configured) gRPC server. Used by `meridian
// serve` and by integration tests, which run the real server in-process on port 0.
#pragma once

#include <memory>
#include <string>

#include "gateway/gateway_state.h"
#include "gateway/grpc/server.h"
#include "gateway/http/server.h"

namespace meridian::gateway {

struct ServeInputs {
  std::string config_name;      ///< file path, or a display name when config_text is given
  std::string config_text;      ///< when non-empty, used instead of reading config_name
  std::string policy_name;      ///< display name of policy_text
  std::string policy_text;      ///< when non-empty, used instead of the config's policy_file
  std::string listen_override;  ///< HOST:PORT replacing `listen:`
  bool simulate = false;        ///< serve every provider with the built-in sim engine
};

class Gateway {
 public:
  /// Loads, validates and starts listening. On failure returns null and sets `error` to the
  /// complete report (every FILE:LINE:COL error, one per line).
  static std::unique_ptr<Gateway> Create(const ServeInputs& inputs, std::string& error);
  ~Gateway();

  unsigned short port() const { return server_->port(); }
  /// The gRPC listener's port; 0 when the config has no `grpc:` section.
  unsigned short grpc_port() const { return grpc_ ? grpc_->port() : 0; }
  GatewayState& state() { return *state_; }
  /// Serves until Stop().
  void Run() { server_->Run(); }
  /// Serves on background threads (tests).
  void RunInBackground() { server_->RunInBackground(); }
  /// gRPC first (its calls run on the HTTP workers and must finish while those still run),
  /// then HTTP. Safe from any thread.
  void Stop();

 private:
  Gateway() = default;
  std::unique_ptr<GatewayState> state_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<GrpcServer> grpc_;
};

}  // namespace meridian::gateway
