// Renders a Decision for people (CLI) and machines (JSON). Pure.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "policy/decide.h"

namespace meridian::policy {

/// A JSON array of the strings, in order (the policy's JSON outputs name things this way).
boost::json::array JsonStrings(const std::vector<std::string>& items);

/// Names of providers, in order.
std::vector<std::string> ProviderIds(const Snapshot& s, const std::vector<ProviderIndex>& ps);
/// Ids of the guards applied, in order.
std::vector<std::string> GuardIds(const Decision& d);

/// Multi-line explanation: decision, region and class used, rule, guards with their effect,
/// candidates before and after, and why each dropped candidate was dropped.
std::string ExplainText(const Decision& d, const std::vector<std::string>& notes = {});

/// The same content as a JSON object (stable field names, documented in docs/policy.md).
boost::json::object ExplainJson(const Decision& d, const std::vector<std::string>& notes = {});

}  // namespace meridian::policy
