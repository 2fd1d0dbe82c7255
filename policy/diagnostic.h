#pragma once

#include <string>
#include <vector>

#include "policy/spec.h"

namespace meridian::policy {

/// One validation error: where it is and what is wrong, phrased for the operator.
struct Diagnostic {
  SourcePos pos;
  std::string message;
};

using Diagnostics = std::vector<Diagnostic>;

}  // namespace meridian::policy
