#include "gateway/cli/serve_cli.h"

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "config/gateway_config.h"
#include "config/policy_file.h"
#include "gateway/gateway_state.h"
#include "gateway/log.h"
#include "gateway/serve.h"

namespace meridian::embedded {
extern const std::string_view kGatewayYaml;
extern const std::string_view kPolicyYaml;
}  // namespace meridian::embedded

namespace meridian::cli {
namespace {

struct ServeOptions {
  std::string config;
  std::string listen;
  bool simulate = false;
};

const char* SignalName(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP";
}

/// The signals `meridian serve` handles, blocked in the calling thread. Called before any other
/// thread starts, so every thread inherits the mask and the signals reach only sigwait().
sigset_t BlockServeSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

/// Waits for SIGINT/SIGTERM/SIGHUP on a dedicated thread, so signals are handled in ordinary
/// code instead of a signal handler. The thread never drains, stops or destroys anything:
/// SIGHUP calls `on_reload`; SIGINT/SIGTERM only record a shutdown request, which the thread
/// that owns the gateway waits for (WaitForShutdown) and carries out. Destroy it before the
/// gateway `on_reload` uses: the destructor joins the thread.
class SignalThread {
 public:
  SignalThread(const sigset_t& set, std::function<void()> on_reload)
      : set_(set), on_reload_(std::move(on_reload)), thread_([this] { Loop(); }) {}
  ~SignalThread() {
    stopping_.store(true);
    // Directed at this thread, where SIGTERM is blocked: sigwait() returns it, sees stopping_.
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

  /// Blocks until SIGINT or SIGTERM arrived; returns it.
  int WaitForShutdown() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return shutdown_signal_ != 0; });
    return shutdown_signal_;
  }

 private:
  void Loop() {
    for (;;) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (stopping_.load()) return;
      std::unique_lock lock(mu_);
      if (shutdown_signal_ != 0) {
        lock.unlock();
        gateway::Log(gateway::LogLevel::kInfo,
                     std::string("received ") + SignalName(sig) + " while shutting down: ignored");
        continue;
      }
      if (sig == SIGHUP) {
        lock.unlock();
        on_reload_();
        continue;
      }
      shutdown_signal_ = sig;
      lock.unlock();
      cv_.notify_all();
    }
  }

  const sigset_t set_;
  const std::function<void()> on_reload_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int shutdown_signal_ = 0;  ///< guarded by mu_
  std::thread thread_;       ///< last: starts once everything above is initialised
};

/// The inputs of `serve` and `check`: the config file, or the embedded demo configuration.
gateway::ServeInputs InputsOf(const ServeOptions& o) {
  gateway::ServeInputs inputs;
  if (o.config.empty()) {
    inputs.config_name = "<embedded>/gateway.yaml";
    inputs.config_text = std::string(embedded::kGatewayYaml);
    inputs.policy_name = "<embedded>/policy.yaml";
    inputs.policy_text = std::string(embedded::kPolicyYaml);
    inputs.simulate = true;
  } else {
    inputs.config_name = o.config;
    inputs.simulate = o.simulate;
  }
  inputs.listen_override = o.listen;
  return inputs;
}

int Check(const ServeOptions& o) {
  const gateway::ServeInputs inputs = InputsOf(o);
  std::vector<std::string> warnings;
  if (auto st = gateway::Gateway::Check(inputs, warnings); !st.ok()) {
    std::cerr << st.message;
    return 1;
  }
  for (const auto& w : warnings) std::cout << inputs.config_name << ": warning: " << w << "\n";
  std::cout << inputs.config_name << ": ok" << (warnings.empty() ? "" : " (with warnings)") << "\n";
  return 0;
}

int Serve(const ServeOptions& o) {
  const gateway::ServeInputs inputs = InputsOf(o);
  if (o.config.empty()) {
    gateway::Log(gateway::LogLevel::kInfo,
                 "no --config given: using the embedded demo configuration (every provider is "
                 "simulated; demo API key sk-meridian-demo)");
  }
  const sigset_t signal_set = BlockServeSignals();
  // A file-size limit (ulimit -f, LimitFSIZE=) reached by the audit log must be a write error
  // the log handles (fail closed, the partial line cut off), not SIGXFSZ killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  std::unique_ptr<gateway::Gateway> gateway;
  if (auto st = gateway::Gateway::Create(inputs, gateway); !st.ok()) {
    std::cerr << st.message;
    return 1;
  }
  // This thread owns the gateway's whole life, in this order: start, wait for SIGINT/SIGTERM,
  // drain, stop (gRPC, audit log, workers: Gateway::Stop), join the signal thread, destroy.
  {
    SignalThread signals(signal_set, [&gateway] { (void)gateway->Reload("SIGHUP"); });
    gateway->RunInBackground();
    const int sig = signals.WaitForShutdown();
    gateway::Log(gateway::LogLevel::kInfo,
                 std::string("received ") + SignalName(sig) + ": draining");
    const auto& limits = gateway->state().config.limits;
    gateway->Drain(limits.drain_timeout, limits.drain_delay);
    gateway->Stop();
  }
  gateway.reset();
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app, std::function<int()>& run) {
  auto opts = std::make_shared<ServeOptions>();
  auto* serve = app.add_subcommand("serve",
                                   "Run the gateway (OpenAI-compatible HTTP, and gRPC when "
                                   "configured). Without --config it runs the embedded demo "
                                   "configuration with simulated providers.");
  serve->add_option("-c,--config", opts->config, "Gateway config file (YAML)");
  serve->add_option("--listen", opts->listen, "Override the listen address, HOST:PORT");
  serve->add_flag("--simulate", opts->simulate,
                  "Serve every provider of the policy with the built-in simulated engine");
  serve->callback([opts, &run] { run = [opts] { return Serve(*opts); }; });

  auto copts = std::make_shared<ServeOptions>();
  auto* check = app.add_subcommand(
      "check",
      "Validate a gateway config and the policy it names as `serve` would (tenants, trusted "
      "proxies, the admin token and the variables the store and the export meter name), "
      "without listening or connecting: exit 0 when serve would start, 1 with every error.");
  check->add_option("-c,--config", copts->config,
                    "Gateway config file (YAML); default: the embedded demo configuration");
  check->add_option("--listen", copts->listen, "Check this listen address, HOST:PORT");
  check->add_flag("--simulate", copts->simulate,
                  "As serve --simulate: provider credentials are not needed");
  check->callback([copts, &run] { run = [copts] { return Check(*copts); }; });

  // `meridian config check FILE`: the same check, named like `meridian policy check FILE`.
  auto* config = app.add_subcommand("config", "Gateway config files");
  config->require_subcommand(1);
  auto* config_check = config->add_subcommand(
      "check",
      "Validate a gateway config file and the policy it names (as `meridian check --config "
      "FILE`): every error as FILE:LINE:COL, exit 0 when serve would start");
  config_check->add_option("FILE", copts->config, "Gateway config file (YAML)")->required();
  config_check->add_flag("--simulate", copts->simulate,
                         "As serve --simulate: provider credentials are not needed");
  config_check->callback([copts, &run] { run = [copts] { return Check(*copts); }; });
}

}  // namespace meridian::cli
