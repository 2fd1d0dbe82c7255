// `meridian serve`: runs the gateway.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace meridian::cli {

/// Adds `serve` to `app`; after parsing, `run` starts the server and returns the exit status.
void AddServeCommand(CLI::App& app, std::function<int()>& run);

}  // namespace meridian::cli
