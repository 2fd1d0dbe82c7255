// The residency matrix (pure): what a policy decides for one tenant and model alias, region by
// region and data class by data class. The operator console draws it (GET /admin/api/matrix).
//
// Rows are the region classes the policy can tell apart (policy::RegionClasses: one code
// stands for the codes no condition distinguishes from it), a code no condition names, and
// unknown; the cities the policy names get rows under a region wherever some cell of them
// decides differently from the region's own row (cities deciding alike share one row). Columns are
// the data classes, then none stated (the policy's default_data_class). The region is asserted by
// the tenant binding, as `meridian policy explain --request '{"region": ...}'` does; no consent,
// flags, mechanisms, meter or capabilities.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policy/diff.h"
#include "policy/snapshot.h"

namespace meridian::policy {

struct MatrixCell {
  std::string data_class;  ///< "" when none is stated
  Outcome outcome;
};

struct MatrixRow {
  std::string region;               ///< a code, or "unknown"
  std::vector<std::string> codes;   ///< every code the row stands for (region first)
  bool unnamed = false;             ///< a code no condition names: any such code
  std::string city;                 ///< "" for the region's own row; else cities.front()
  std::vector<std::string> cities;  ///< the cities this row stands for (same decisions)
  std::vector<MatrixCell> cells;
};

struct Matrix {
  std::string tenant;
  std::string model;
  std::vector<MatrixRow> rows;
};

Matrix ResidencyMatrix(const SnapshotPtr& snapshot, std::string_view tenant,
                       std::string_view model);

/// {"policy_version","tenant","model","classes":[...],"providers":[{"id","kind","processing",
///  "storage","on_prem"}],"rows":[{"region","codes","unnamed","city","cities","cells":[{"class",
///  "allowed","reason","rule","guards","providers","chosen"}]}]}
std::string MatrixJson(const Matrix& matrix, const Snapshot& snapshot);

}  // namespace meridian::policy
