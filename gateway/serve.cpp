#include "gateway/serve.h"

#include <algorithm>

#include "config/gateway_config.h"
#include "config/policy_file.h"
#include "gateway/log.h"

namespace meridian::gateway {
namespace {

std::string Report(const std::vector<config::FileDiagnostic>& errors) {
  std::string out;
  for (const auto& e : errors) out += config::FormatDiagnostic(e) + "\n";
  out += std::to_string(errors.size()) + (errors.size() == 1 ? " error" : " errors") +
         ": the gateway did not start\n";
  return out;
}

}  // namespace

Gateway::~Gateway() {
  Stop();
}

void Gateway::Stop() {
  if (state_) state_->ready.store(false);
  // In-flight gRPC calls get a moment to finish, then are cancelled (upstreams too).
  if (grpc_) grpc_->Shutdown(std::chrono::milliseconds(1000));
  if (server_) server_->Stop();
}

std::unique_ptr<Gateway> Gateway::Create(const ServeInputs& in, std::string& error) {
  std::vector<config::FileDiagnostic> errors;
  config::GatewayConfig cfg =
      in.config_text.empty()
          ? config::LoadGatewayConfigFile(in.config_name, errors)
          : config::LoadGatewayConfigYaml(in.config_text, in.config_name, errors);
  if (!in.policy_text.empty()) {
    // The policy comes with the config (embedded default): its policy_file is not read.
    std::erase_if(errors, [&](const config::FileDiagnostic& e) {
      return e.pos == cfg.policy_file_pos && e.pos.line != 0;
    });
  }
  if (!in.listen_override.empty()) {
    std::string why;
    if (auto listen = config::ParseListenAddress(in.listen_override, &why)) {
      cfg.listen = *listen;
    } else {
      errors.push_back({"--listen", {}, why});
    }
  }
  if (!errors.empty()) {
    error = Report(errors);
    return nullptr;
  }

  config::LoadedPolicy policy = in.policy_text.empty()
                                    ? config::LoadPolicyFile(cfg.policy_file)
                                    : config::LoadPolicyText(in.policy_text, in.policy_name);
  if (!policy.snapshot) {
    error = Report(policy.errors);
    return nullptr;
  }
  errors = config::CheckTenantFlags(cfg, *policy.snapshot, in.config_name);
  auto trusted = identity::ParseTrustedProxies(cfg, in.config_name, errors);
  if (!errors.empty()) {
    error = Report(errors);
    return nullptr;
  }

  std::unique_ptr<Gateway> g(new Gateway());
  g->state_ = std::make_unique<GatewayState>();
  GatewayState& state = *g->state_;
  state.tenants = identity::TenantRegistry(cfg.tenants);
  state.trusted_proxies = std::move(trusted);
  state.config = std::move(cfg);
  auto table = RoutingTable::Build(policy.snapshot, in.simulate);
  for (const auto& w : table->warnings) Log(LogLevel::kWarning, w);
  state.table.store(table);

  g->server_ = std::make_unique<HttpServer>(state);
  if (auto st = g->server_->Start(); !st.ok()) {
    error = st.message + "\n";
    return nullptr;
  }
  if (state.config.grpc) {
    g->grpc_ = std::make_unique<GrpcServer>(state, *g->server_);
    if (auto st = g->grpc_->Start(); !st.ok()) {
      error = st.message + "\n";
      g->grpc_.reset();
      return nullptr;
    }
  }
  state.ready.store(true);
  Log(LogLevel::kInfo, "policy " + table->policy->version + " loaded (" +
                           std::to_string(table->policy->providers.size()) + " providers, " +
                           std::to_string(table->policy->routes.size()) + " routes" +
                           (in.simulate ? ", every provider simulated" : "") + ")");
  Log(LogLevel::kInfo, std::string("listening on ") + (state.config.tls ? "https://" : "http://") +
                           (state.config.listen.ipv6 ? "[" + state.config.listen.host + "]"
                                                     : state.config.listen.host) +
                           ":" + std::to_string(g->port()));
  if (g->grpc_) {
    const auto& grpc = *state.config.grpc;
    Log(LogLevel::kInfo,
        std::string("gRPC listening on ") + (grpc.plaintext ? "" : "TLS ") +
            (grpc.tls && !grpc.tls->client_ca_file.empty()
                 ? (grpc.tls->require_client_cert ? "(mTLS required) " : "(mTLS optional) ")
                 : "") +
            (grpc.listen.ipv6 ? "[" + grpc.listen.host + "]" : grpc.listen.host) + ":" +
            std::to_string(g->grpc_port()));
  }
  return g;
}

}  // namespace meridian::gateway
