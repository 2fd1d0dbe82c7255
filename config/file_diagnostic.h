// Errors in operator files (policy, tests, gateway config), reported as FILE:LINE:COL. Kept
// free of yaml-cpp so that consumers of the loaders' results need not see the YAML library.
#pragma once

#include <string>

#include "policy/spec.h"

namespace meridian::config {

/// An error in a named file. `pos.line == 0` means the whole file.
struct FileDiagnostic {
  std::string file;
  policy::SourcePos pos;
  std::string message;
};

/// "FILE:LINE:COL: message" (or "FILE: message" without a position).
std::string FormatDiagnostic(const FileDiagnostic& d);

}  // namespace meridian::config
