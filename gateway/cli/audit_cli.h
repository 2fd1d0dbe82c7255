// `meridian audit verify|pubkey`: check audit files against their hash chain and signed
// checkpoints (gateway/audit_verify.h), and publish the checkpoint signing key's public half.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace meridian::cli {

/// Adds `audit verify` and `audit pubkey` to `app`.
void AddAuditCommands(CLI::App& app, std::function<int()>& run);

}  // namespace meridian::cli
