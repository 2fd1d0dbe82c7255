// `meridian policy check|explain|test`: the operator's offline tools for policy files.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace meridian::cli {

/// Adds the `policy` subcommand tree to `app`. `run` receives the command to execute after
/// parsing; it returns the process exit status (0 ok, 1 invalid policy/request or failed tests).
void AddPolicyCommands(CLI::App& app, std::function<int()>& run);

}  // namespace meridian::cli
