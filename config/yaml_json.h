// YAML → JSON for the parts of operator files that are plain data (a test's `request:`).
#pragma once

#include <yaml-cpp/yaml.h>

#include <boost/json/value.hpp>
#include <cstddef>

namespace meridian::config {

/// yaml-cpp resolves aliases into shared nodes, so `&a [*a]` is a cycle and nested aliases
/// can expand exponentially. Every walk over a loaded tree stays within these bounds.
inline constexpr int kMaxYamlDepth = 100;
inline constexpr std::size_t kMaxYamlNodes = 200'000;

/// Mapping → object, sequence → array, null → null. A plain (unquoted) scalar is typed as in
/// the YAML 1.2 core schema: true/false → bool, an integer → int64 (beyond int64 → double),
/// a decimal → double, anything else → string. A quoted or explicitly tagged scalar is always
/// a string, so `"123"` stays text. Values beyond kMaxYamlDepth / kMaxYamlNodes become null:
/// callers that must report such files check the tree first (as the policy loader does).
boost::json::value YamlToJson(const YAML::Node& node);

}  // namespace meridian::config
