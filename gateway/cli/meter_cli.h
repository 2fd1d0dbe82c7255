// `meridian meter show|export`: the PIPL export meter of a gateway config's tenants, read from
// the store the gateways share.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace meridian::cli {

/// Adds `meter show` and `meter export` to `app`.
void AddMeterCommands(CLI::App& app, std::function<int()>& run);

}  // namespace meridian::cli
