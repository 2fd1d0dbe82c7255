#include "gateway/cli/serve_cli.h"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "config/gateway_config.h"
#include "config/policy_file.h"
#include "gateway/gateway_state.h"
#include "gateway/http/server.h"
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

/// Blocks SIGINT/SIGTERM/SIGHUP in every thread and waits for them on a dedicated thread, so
/// signals are handled in ordinary code instead of a signal handler. `fn` returns whether to
/// keep waiting (SIGHUP reloads; SIGINT/SIGTERM stop).
class SignalWaiter {
 public:
  SignalWaiter() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  void OnSignal(std::function<bool(int)> fn) {
    thread_ = std::thread([this, fn = std::move(fn)] {
      int sig = 0;
      while (!done_.load() && sigwait(&set_, &sig) == 0 && !done_.load() && fn(sig)) {
      }
    });
  }
  ~SignalWaiter() {
    if (thread_.joinable()) {
      done_.store(true);
      pthread_kill(thread_.native_handle(), SIGTERM);
      thread_.join();
    }
  }

 private:
  sigset_t set_{};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

int Serve(const ServeOptions& o) {
  gateway::ServeInputs inputs;
  if (o.config.empty()) {
    inputs.config_name = "<embedded>/gateway.yaml";
    inputs.config_text = std::string(embedded::kGatewayYaml);
    inputs.policy_name = "<embedded>/policy.yaml";
    inputs.policy_text = std::string(embedded::kPolicyYaml);
    inputs.simulate = true;
    gateway::Log(gateway::LogLevel::kInfo,
                 "no --config given: using the embedded demo configuration (every provider is "
                 "simulated; demo API key sk-meridian-demo)");
  } else {
    inputs.config_name = o.config;
    inputs.simulate = o.simulate;
  }
  inputs.listen_override = o.listen;
  SignalWaiter signals;
  std::string error;
  auto gateway = gateway::Gateway::Create(inputs, error);
  if (!gateway) {
    std::cerr << error;
    return 1;
  }
  signals.OnSignal([&gateway](int sig) {
    if (sig == SIGHUP) {
      (void)gateway->Reload("SIGHUP");
      return true;
    }
    gateway::Log(gateway::LogLevel::kInfo,
                 std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ": draining");
    gateway->Drain(gateway->state().config.limits.drain_timeout);
    gateway->Stop();
    return false;
  });
  gateway->Run();
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
}

}  // namespace meridian::cli
