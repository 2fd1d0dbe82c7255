// Assembles a running gateway from its configuration: gateway config + policy, tenants,
// trusted proxies, routing table, HTTP server and (when configured) gRPC server. Used by `meridian
// serve` and by integration tests, which run the real server in-process on port 0.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/gateway_state.h"
#include "gateway/grpc/server.h"
#include "gateway/http/server.h"
#include "gateway/policy_watch.h"
#include "gateway/runtime.h"

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
  /// Loads, validates and starts listening into `out`. On failure `out` stays null and the
  /// status's message is the complete report (every FILE:LINE:COL error, one per line):
  /// kInvalidArgument for a config or policy that does not validate, another code when a
  /// listener, the audit log or TLS material cannot be set up.
  static core::Status Create(const ServeInputs& inputs, std::unique_ptr<Gateway>& out);
  /// `meridian check`: loads and validates what Create would (the config, its policy, the
  /// tenant flags, trusted proxies, the admin token, the variables the store and the export
  /// meter name) without listening or connecting to anything. Ok with `warnings` (e.g. a
  /// provider credential variable that is not set: that provider would be disabled).
  static core::Status Check(const ServeInputs& inputs, std::vector<std::string>& warnings);
  ~Gateway();

  unsigned short port() const { return server_->port(); }
  unsigned short admin_port() const { return server_->admin_port(); }
  /// The gRPC listener's port; 0 when the config has no `grpc:` section.
  unsigned short grpc_port() const { return grpc_ ? grpc_->port() : 0; }
  GatewayState& state() { return *state_; }
  /// Serves on the runtime's worker threads (one per `workers:`) until Stop(); returns at once.
  void RunInBackground() { runtime_->RunInBackground(); }
  /// Ends serving, in this order: gRPC (Shutdown, then Wait: its calls run on the workers and
  /// finish while those still run); the audit log (it stops taking reservations, waits for the
  /// requests still reporting, writes everything out and closes); the HTTP listeners; the
  /// runtime's workers (stopped and joined). Idempotent: a second call, also a concurrent one,
  /// returns once the first has finished. Call it from a thread that is not a worker, and after
  /// Drain() for a graceful end (`meridian serve` runs Drain and Stop on its main thread; the
  /// destructor calls Stop).
  void Stop();

  /// Re-reads the policy file and the gateway config, validates both completely (the policy,
  /// the tenants' flags against it, the config; only its reloadable keys may differ from the
  /// running one: config::RestartOnlyChanges) and swaps in what changed atomically: the
  /// routing table, and the tenants (keys, certificate bindings, limits) with the trusted
  /// proxies. Requests in flight finish on what they started with. If anything fails
  /// validation nothing changes: the errors are logged and counted and the running policy
  /// and tenants keep serving. Unchanged files are a no-op. Thread-safe; attempts are
  /// serialised.
  /// `trigger` names the cause in the log ("SIGHUP", "file change", "admin").
  ReloadResult Reload(std::string_view trigger);

  /// Graceful shutdown: /readyz and the gRPC health service turn unready at once; for `delay`
  /// (limits.drain_delay_ms) everything is still accepted and served, so a load balancer sees
  /// not-ready before any connection is refused; then the listeners stop accepting (the admin
  /// listener stays up), idle connections close, requests and streams in flight run until
  /// they finish or `deadline` passes; those still running then end with an error
  /// ("shutting_down"); one blocked writing to a client that stopped reading is cut
  /// ("drain_deadline"). Returns when none is left (or a short grace after the deadline).
  /// Stop() afterwards ends the process's serving. Call it from one thread that is not a
  /// worker; a second call returns at once.
  void Drain(std::chrono::milliseconds deadline,
             std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  /// Reload attempts so far (ok, unchanged or refused), and a wait for the count to reach `n`.
  std::uint64_t reload_attempts() const;
  bool WaitForReloadAttempts(std::uint64_t n, std::chrono::milliseconds timeout) const;

 private:
  Gateway() = default;
  std::unique_ptr<GatewayState> state_;
  std::unique_ptr<Runtime> runtime_;  ///< the workers: outlives both front ends
  std::unique_ptr<http::HttpServer> server_;
  std::unique_ptr<grpcfe::GrpcServer> grpc_;
  // Reload: the source of the policy (empty path: embedded text, not reloadable).
  std::string config_name_;
  std::string config_path_;        ///< empty: the config came as text (not reloadable)
  std::string config_text_;        ///< the config content serving now
  config::GatewayConfig running_;  ///< parsed from config_text_ (with its tenants)
  std::string policy_path_;
  std::string policy_text_;  ///< the content serving now
  bool simulate_ = false;
  std::unique_ptr<DirectoryWatcher> watcher_;
  std::atomic<bool> drain_started_{false};
  std::mutex stop_mu_;  ///< held for the whole of Stop()
  bool stopped_ = false;
  mutable std::mutex reload_mu_;
  mutable std::condition_variable reload_cv_;
  std::uint64_t reload_attempts_ = 0;
};

/// The audit signing key the config names (`audit.signing_key_file` / `_env`) as PEM, checked
/// to be an Ed25519 private key; "" when none is configured or on an error (appended to
/// `errors`, which never show key material).
std::string ReadAuditSigningKey(const config::GatewayConfig& cfg, const std::string& config_name,
                                std::vector<config::FileDiagnostic>& errors);

}  // namespace meridian::gateway
