#include "policy/explain.h"

#include <boost/json.hpp>

namespace meridian::policy {
namespace {

std::string ExclusionText(const Decision& d, const Exclusion& e) {
  const Snapshot& s = *d.snapshot;
  switch (e.by) {
    case Exclusion::By::kGuard: {
      const Guard& g = s.guards[e.guard];
      return "guard " + g.id + " (" + g.effect + ")";
    }
    case Exclusion::By::kCapability:
      return "capability (does not serve the requested model or capabilities)";
    case Exclusion::By::kHealth:
      return "health (marked unhealthy)";
  }
  return {};
}

std::string Join(const std::vector<std::string>& items, std::string_view empty = "(none)") {
  if (items.empty()) return std::string(empty);
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += ", ";
    out += i;
  }
  return out;
}

std::string RegionText(const Decision& d) {
  std::string out = d.region.ToString() + " (" + std::string(Name(d.region_source));
  if (d.region_source == RegionSource::kUnknown) out += ": treated as unknown_region_as";
  return out + ")";
}

}  // namespace

std::vector<std::string> ProviderIds(const Snapshot& s, const std::vector<ProviderIndex>& ps) {
  std::vector<std::string> out;
  out.reserve(ps.size());
  for (auto p : ps) out.push_back(s.providers[p].id);
  return out;
}

std::vector<std::string> GuardIds(const Decision& d) {
  std::vector<std::string> out;
  for (auto g : d.guards_applied) out.push_back(d.snapshot->guards[g].id);
  return out;
}

std::string ExplainText(const Decision& d, const std::vector<std::string>& notes) {
  const Snapshot& s = *d.snapshot;
  std::string out;
  auto line = [&](std::string_view label, const std::string& text) {
    out += std::string(label);
    out.append(label.size() < 12 ? 12 - label.size() : 1, ' ');
    out += text;
    out += '\n';
  };
  if (d.allowed) {
    line("decision", "ALLOW -> " + d.Chosen()->id);
  } else {
    line("decision", "DENY " + d.ReasonCode() + (d.Unavailable() ? " (all unhealthy)" : ""));
  }
  line("policy", s.version);
  line("region", RegionText(d));
  line("data class",
       std::string(Name(d.data_class)) + (d.data_class_defaulted ? " (default)" : ""));
  for (const auto& n : notes) line("note", n);
  if (const Route* r = d.MatchedRoute()) {
    line("rule", r->id + " (line " + std::to_string(r->pos.line) + ")" +
                     (r->description.empty() ? "" : ": " + r->description));
  } else {
    line("rule", "(no route matched)");
  }
  if (d.guards_applied.empty()) line("guards", "(none)");
  for (std::size_t i = 0; i < d.guards_applied.size(); ++i) {
    const Guard& g = s.guards[d.guards_applied[i]];
    line(i == 0 ? "guards" : "", g.id + ": " + g.effect);
  }
  if (d.deny_guard) line("denied", s.guards[*d.deny_guard].deny_reason);
  if (d.MatchedRoute() != nullptr) {
    line("before", Join(ProviderIds(s, d.candidates_before)));
    for (const auto& e : d.excluded) {
      line("", "- " + s.providers[e.provider].id + " dropped by " + ExclusionText(d, e));
    }
    line("after", Join(ProviderIds(s, d.candidates_after)));
  }
  return out;
}

boost::json::array JsonStrings(const std::vector<std::string>& items) {
  boost::json::array a;
  a.reserve(items.size());
  for (const auto& item : items) a.emplace_back(item);
  return a;
}

boost::json::object ExplainJson(const Decision& d, const std::vector<std::string>& notes) {
  namespace json = boost::json;
  const Snapshot& s = *d.snapshot;
  json::object o;
  o["decision"] = d.allowed ? "allow" : "deny";
  o["reason"] = d.allowed ? json::value(nullptr) : json::value(d.ReasonCode());
  o["unavailable"] = d.Unavailable();
  o["chosen"] = d.allowed ? json::value(d.Chosen()->id) : json::value(nullptr);
  o["matched_rule"] = d.route ? json::value(s.routes[*d.route].id) : json::value(nullptr);
  o["guards_applied"] = JsonStrings(GuardIds(d));
  if (d.deny_guard) o["deny_message"] = s.guards[*d.deny_guard].deny_reason;
  o["candidates_before"] = JsonStrings(ProviderIds(s, d.candidates_before));
  o["candidates_after"] = JsonStrings(ProviderIds(s, d.candidates_after));
  json::array excluded;
  for (const auto& e : d.excluded) {
    json::object x;
    x["provider"] = s.providers[e.provider].id;
    switch (e.by) {
      case Exclusion::By::kGuard:
        x["by"] = "guard";
        x["guard"] = s.guards[e.guard].id;
        x["effect"] = s.guards[e.guard].effect;
        break;
      case Exclusion::By::kCapability:
        x["by"] = "capability";
        break;
      case Exclusion::By::kHealth:
        x["by"] = "health";
        break;
    }
    excluded.push_back(std::move(x));
  }
  o["excluded"] = std::move(excluded);
  o["region"] = json::object{{"effective", d.region.ToString()},
                             {"source", std::string(Name(d.region_source))}};
  o["data_class"] = json::object{{"effective", std::string(Name(d.data_class))},
                                 {"defaulted", d.data_class_defaulted}};
  o["notes"] = JsonStrings(notes);
  o["policy_version"] = s.version;
  return o;
}

}  // namespace meridian::policy
