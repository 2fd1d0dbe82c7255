// Lint: mistakes an operator can make that still compile (pure, on the compiled snapshot).
// `meridian policy check` prints them as warnings; `--strict` makes them errors.
//   - a policy with no routes (every request is denied);
//   - a route that can never match, because an earlier one matches every request it would
//     (an unconditional route, or one with the same condition);
//   - a guard whose condition can never hold (an empty set, a contradiction);
//   - a provider no route allows (no request can reach it).
#pragma once

#include "policy/diagnostic.h"
#include "policy/snapshot.h"

namespace meridian::policy {

Diagnostics Lint(const Snapshot& snapshot);

}  // namespace meridian::policy
