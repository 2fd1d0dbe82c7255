#pragma once

#include "policy/diagnostic.h"
#include "policy/snapshot.h"
#include "policy/spec.h"

namespace meridian::policy {

struct CompileResult {
  SnapshotPtr snapshot;  ///< null when errors is non-empty
  Diagnostics errors;    ///< every problem found, in file order where possible
};

/// Validates a policy spec and compiles it into an immutable snapshot. Pure: no I/O.
/// Checks every name and value (region codes, enum values, references to providers, groups,
/// conditions and flags, duplicate ids, URLs, credential env var names) and reports all
/// errors with their source positions.
CompileResult Compile(const PolicySpec& spec);

}  // namespace meridian::policy
