#include "gateway/cli/meter_cli.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "config/policy_file.h"
#include "gateway/meter.h"
#include "gateway/pipeline.h"
#include "gateway/runtime.h"
#include "gateway/store/export_meter.h"
#include "gateway/store/redis_client.h"

namespace meridian::cli {
namespace {

namespace asio = boost::asio;

struct MeterOptions {
  std::string config;
  int year = 0;  ///< 0: the current year in China Standard Time
  bool json = false;
};

/// Reads the meter of every tenant of the config; 0 with `rows` filled, else the exit status
/// after printing why.
int Read(const MeterOptions& o, int& year, std::vector<gateway::MeterRow>& rows,
         policy::SnapshotPtr* policy = nullptr) {
  std::vector<config::FileDiagnostic> errors;
  const config::GatewayConfig cfg = config::LoadGatewayConfigFile(o.config, errors);
  if (!errors.empty()) {
    for (const auto& e : errors) std::cerr << config::FormatDiagnostic(e) << "\n";
    return 1;
  }
  if (!cfg.export_meter) {
    std::cerr << o.config << ": no export_meter: section: this gateway counts no exports\n";
    return 1;
  }
  if (cfg.store.kind != config::StoreConfig::Kind::kRedis) {
    std::cerr << o.config
              << ": store.kind is memory: the meter lives inside the serving process; read it "
                 "there with GET /admin/meter on its admin listener\n";
    return 1;
  }
  store::RedisOptions options;
  if (auto st = gateway::RedisOptionsFor(cfg.store, options); !st.ok()) {
    std::cerr << o.config << ": " << st.message << "\n";
    return 1;
  }
  if (policy != nullptr) {
    // For the next boundary of each count, as GET /admin/meter reports it: the config's policy.
    // One that does not load only leaves the boundaries out.
    config::LoadedPolicy loaded = config::LoadPolicyFile(cfg.policy_file);
    if (loaded.snapshot) {
      *policy = loaded.snapshot;
    } else {
      std::cerr << cfg.policy_file
                << ": the policy does not load; the report leaves out the next boundaries\n";
    }
  }
  year = o.year != 0 ? o.year : gateway::CstYear(gateway::UnixMillisNow());
  std::vector<std::string> tenants;
  for (const auto& t : cfg.tenants) tenants.push_back(t.id.value);
  asio::io_context io;
  store::RedisPool pool(io.get_executor(), options);
  store::RedisExportMeter meter(pool);
  auto done =
      asio::co_spawn(io, gateway::ReadMeter(meter, std::move(tenants), year), asio::use_future);
  io.run();
  rows = done.get();
  return 0;
}

int Show(const MeterOptions& o) {
  int year = 0;
  std::vector<gateway::MeterRow> rows;
  policy::SnapshotPtr policy;
  if (const int rc = Read(o, year, rows, o.json ? &policy : nullptr); rc != 0) return rc;
  bool failed = false;
  if (o.json) {
    std::cout << gateway::MeterReportJson(year, rows, policy.get()) << "\n";
    for (const auto& r : rows) failed = failed || !r.counts.status.ok();
    return failed ? 1 : 0;
  }
  std::printf(
      "export meter, %d (China Standard Time): individuals whose personal information "
      "went outside the mainland\n",
      year);
  std::printf("%-24s %14s  %-18s %10s  %-14s\n", "tenant", "non-sensitive", "band", "sensitive",
              "band");
  for (const auto& r : rows) {
    if (!r.counts.status.ok()) {
      failed = true;
      std::printf("%-24s unreadable: %s\n", r.tenant.c_str(), r.counts.status.message.c_str());
      continue;
    }
    std::printf("%-24s %14llu  %-18s %10llu  %-14s\n", r.tenant.c_str(),
                static_cast<unsigned long long>(r.counts.non_sensitive),
                std::string(gateway::LawBand(false, r.counts.non_sensitive)).c_str(),
                static_cast<unsigned long long>(r.counts.sensitive),
                std::string(gateway::LawBand(true, r.counts.sensitive)).c_str());
  }
  return failed ? 1 : 0;
}

}  // namespace

void AddMeterCommands(CLI::App& app, std::function<int()>& run) {
  auto* meter = app.add_subcommand(
      "meter", "The cross-border export meter (PIPL): distinct individuals per tenant and year");
  meter->require_subcommand(1);
  auto add = [&](const char* name, const char* help, bool json) {
    auto opts = std::make_shared<MeterOptions>();
    opts->json = json;
    auto* cmd = meter->add_subcommand(name, help);
    cmd->add_option("-c,--config", opts->config, "Gateway config file (YAML) naming the store")
        ->required();
    cmd->add_option("--year", opts->year,
                    "Calendar year in China Standard Time; default: the current one")
        ->check(CLI::Range(2000, 9999));
    if (!json) cmd->add_flag("--json", opts->json, "Print the report as JSON (as `export`)");
    cmd->callback([opts, &run] { run = [opts] { return Show(*opts); }; });
  };
  add("show",
      "Each tenant's count of individuals (non-sensitive, sensitive) and the band of the law it "
      "is in; exit 1 when the store cannot be read",
      false);
  add("export",
      "The same report as one JSON document (as GET /admin/meter), for a compliance archive", true);
}

}  // namespace meridian::cli
