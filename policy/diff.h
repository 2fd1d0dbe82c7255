// Policy diff and replay (pure): what a policy change does, before it ships.
//
// Diff enumerates the finite request space both policies can tell apart and decides every
// point of it under each:
//   tenants      every tenant either policy names, and one it does not ("*other*")
//   regions      one code per class of codes no condition of either policy tells apart (the
//                others are listed with it), one code no condition names, and unknown
//   cities       every city either policy names, and none (only when a policy names cities)
//   data classes each class, and none stated (the policy's default_data_class)
//   consent      every combination, when a policy asks for consent
//   tenant flags every combination of the flags either policy declares
//   mechanisms   every combination of the mechanisms either policy's conditions name
//   meter        unknown, 0 and each side of every threshold a meter condition compares with
//   models       every alias either policy serves, and one neither does
//   capabilities every combination of those a condition asks for or some provider lacks
// A point whose decision differs (allowed, reason, rule, guards, the provider set or its
// order) is a change; changes are grouped by (before, after).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "policy/decide.h"
#include "policy/snapshot.h"

namespace meridian::policy {

/// One point of the request space, by name.
struct RequestPoint {
  std::string tenant;
  std::string region;      ///< a code, or "unknown"
  std::string city;        ///< "" when none
  std::string data_class;  ///< "" when none stated
  std::uint32_t consent = 0;
  std::vector<std::string> tenant_flags;
  std::uint32_t mechanisms = 0;
  std::optional<std::uint64_t> meter_non_sensitive;
  std::optional<std::uint64_t> meter_sensitive;
  std::string model;
  std::uint32_t capabilities = 0;

  /// The point as a request JSON for `meridian policy explain --request`.
  std::string Json() const;
};

/// What one policy decided for a point.
struct Outcome {
  bool allowed = false;
  std::string reason;                  ///< ReasonCode(); "" when allowed
  std::string rule;                    ///< the matched route, or the denying guard
  std::vector<std::string> guards;     ///< applied, in order
  std::vector<std::string> providers;  ///< allowed, in order (the first is chosen)
  /// "allow via rule R -> [a, b] (guards G1, G2)" / "deny denied_by_guard:G8 (rule R)".
  std::string Summary() const;
  friend bool operator==(const Outcome&, const Outcome&) = default;
};

/// The decision's outcome by name.
Outcome OutcomeOf(const Decision& d);

/// The region codes `snapshots` can tell apart: one class per group of codes no region set of
/// any of them distinguishes (each policy's unknown_region_as alone), and one class for a code
/// none of them names (`unnamed`). Each class's first code stands for it.
struct RegionClass {
  std::vector<std::string> codes;
  bool unnamed = false;
};
std::vector<RegionClass> RegionClasses(std::span<const Snapshot* const> snapshots);

struct DiffGroup {
  Outcome before;
  Outcome after;
  std::vector<std::string> what;  ///< "allow -> deny", "chosen provider", "provider set", ...
  std::size_t points = 0;
  std::vector<RequestPoint> examples;  ///< the first few
};

struct DiffOptions {
  std::size_t examples = 3;  ///< per group
};

struct DiffReport {
  std::string error;               ///< set when the space cannot even be counted (nothing decided)
  std::size_t points = 0;          ///< in the whole space
  std::size_t changed = 0;         ///< points whose decision changes
  std::size_t decided = 0;         ///< decisions made: points that stand for others count once
  std::vector<std::string> space;  ///< one line per dimension: "regions: 6 (CN; HK; ...)"
  std::vector<DiffGroup> groups;   ///< most points first
};

DiffReport Diff(const SnapshotPtr& before, const SnapshotPtr& after,
                const DiffOptions& options = {});

/// Human-readable report (groups with counts and examples) and the same as JSON.
std::string FormatDiff(const DiffReport& report);
std::string DiffJson(const DiffReport& report);

/// A decided request as its audit line recorded it (gateway/audit.h): what the replay can
/// re-decide from. Consent, tenant flags, mechanisms, the meter and the capabilities a request
/// needed are not in audit lines; they are replayed as none.
struct ReplayRecord {
  std::string request_id;
  std::string tenant;
  std::string region;      ///< "" when unknown
  std::string data_class;  ///< effective_class
  std::string model;
  bool allowed = false;
  std::string rule;
  std::vector<std::string> candidates;
};

struct ReplayReport {
  std::size_t records = 0;
  std::size_t changed = 0;
  std::map<std::string, std::size_t> by_change;  ///< "allow -> deny", "rule", "providers", ...
  std::vector<std::string> samples;              ///< "req_...: what: was ..., now ..."
};

/// Re-decides each record under `policy` and counts those whose decision would change.
ReplayReport Replay(const SnapshotPtr& policy, const std::vector<ReplayRecord>& records,
                    std::size_t samples = 5);

}  // namespace meridian::policy
