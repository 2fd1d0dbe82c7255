// Reading a whole file: a policy, a gateway config, an audit log or its checkpoints.
#pragma once

#include <fstream>
#include <iterator>
#include <string>

namespace meridian::gateway {

/// The bytes of the file at `path` into `out`; false when it cannot be opened or read (`out`
/// is then left as it was when the file could not be opened).
inline bool ReadWholeFile(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace meridian::gateway
