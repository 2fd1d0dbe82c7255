#include "policy/lint.h"

#include <string>
#include <vector>

namespace meridian::policy {
namespace {

using Kind = CondNode::Kind;

// Structural equality of two condition subtrees.
bool Same(const Snapshot& s, std::uint32_t x, std::uint32_t y) {
  const CondNode& a = s.nodes[x];
  const CondNode& b = s.nodes[y];
  if (a.kind != b.kind || a.op != b.op || a.value != b.value) return false;
  switch (a.kind) {
    case Kind::kTrue:
      return true;
    case Kind::kAll:
    case Kind::kAny:
      if (a.b != b.b) return false;
      for (std::uint32_t i = 0; i < a.b; ++i) {
        if (!Same(s, s.children[a.a + i], s.children[b.a + i])) return false;
      }
      return true;
    case Kind::kNot:
      return Same(s, a.a, b.a);
    case Kind::kRegion:
      return s.region_sets[a.a] == s.region_sets[b.a];
    case Kind::kCity:
    case Kind::kTenant:
    case Kind::kModel:
      return s.id_lists[a.a] == s.id_lists[b.a];
    default:
      return a.a == b.a && a.b == b.b;
  }
}

// True when the condition can hold for no request (a sound, not complete, check).
bool NeverHolds(const Snapshot& s, std::uint32_t n);

bool AlwaysHolds(const Snapshot& s, std::uint32_t n) {
  const CondNode& c = s.nodes[n];
  switch (c.kind) {
    case Kind::kTrue:
      return true;
    case Kind::kAll:
      for (std::uint32_t i = 0; i < c.b; ++i) {
        if (!AlwaysHolds(s, s.children[c.a + i])) return false;
      }
      return true;
    case Kind::kAny:
      for (std::uint32_t i = 0; i < c.b; ++i) {
        if (AlwaysHolds(s, s.children[c.a + i])) return true;
      }
      return false;
    case Kind::kNot:
      return NeverHolds(s, c.a);
    default:
      return false;
  }
}

bool NeverHolds(const Snapshot& s, std::uint32_t n) {
  const CondNode& c = s.nodes[n];
  switch (c.kind) {
    case Kind::kAll:
      for (std::uint32_t i = 0; i < c.b; ++i) {
        const std::uint32_t x = s.children[c.a + i];
        if (NeverHolds(s, x)) return true;
        // X and not X.
        for (std::uint32_t j = 0; j < c.b; ++j) {
          const std::uint32_t y = s.children[c.a + j];
          if (s.nodes[y].kind == Kind::kNot && Same(s, s.nodes[y].a, x)) return true;
        }
      }
      return false;
    case Kind::kAny:
      for (std::uint32_t i = 0; i < c.b; ++i) {
        if (!NeverHolds(s, s.children[c.a + i])) return false;
      }
      return true;
    case Kind::kNot:
      return AlwaysHolds(s, c.a);
    case Kind::kRegion:
      return s.region_sets[c.a].none();
    case Kind::kCity:
    case Kind::kTenant:
    case Kind::kModel:
      return s.id_lists[c.a].empty();
    case Kind::kConsent:
    case Kind::kFlags:
      return (c.a & c.b) != 0;  // a bit both required and forbidden
    default:
      return false;
  }
}

std::string Line(const SourcePos& p) {
  return "line " + std::to_string(p.line);
}

}  // namespace

Diagnostics Lint(const Snapshot& s) {
  Diagnostics out;
  if (s.routes.empty()) {
    out.push_back({{}, "the policy has no routes: every request is denied (no_rule_matched)"});
  }
  std::vector<bool> reachable(s.routes.size(), true);
  for (std::size_t j = 0; j < s.routes.size(); ++j) {
    const Route& r = s.routes[j];
    if (NeverHolds(s, r.when)) {
      reachable[j] = false;
      out.push_back({r.pos, "route '" + r.id +
                                "' can never match: its condition holds for no "
                                "request"});
      continue;
    }
    for (std::size_t i = 0; i < j; ++i) {
      const Route& earlier = s.routes[i];
      const bool always = AlwaysHolds(s, earlier.when);
      if (always || Same(s, earlier.when, r.when)) {
        reachable[j] = false;
        out.push_back({r.pos, "route '" + r.id + "' can never match: route '" + earlier.id + "' (" +
                                  Line(earlier.pos) + ") comes first and matches " +
                                  (always ? "every request" : "every request this one would") +
                                  " (routes are tried in order; the first match decides)"});
        break;
      }
    }
  }
  for (const Guard& g : s.guards) {
    if (NeverHolds(s, g.when)) {
      out.push_back(
          {g.pos, "guard '" + g.id + "' can never apply: its condition holds for no request"});
    }
  }
  ProviderSet allowed;
  ProviderSet allowed_unreachable;
  for (std::size_t j = 0; j < s.routes.size(); ++j) {
    (reachable[j] ? allowed : allowed_unreachable) |= s.routes[j].allow;
  }
  for (std::size_t p = 0; p < s.providers.size(); ++p) {
    if (allowed.test(p)) continue;
    out.push_back({s.providers[p].pos, "provider '" + s.providers[p].id +
                                           "' is allowed by no route" +
                                           (allowed_unreachable.test(p) ? " that can match" : "") +
                                           ": no request can reach it"});
  }
  return out;
}

}  // namespace meridian::policy
