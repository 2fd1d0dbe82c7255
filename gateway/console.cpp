#include "gateway/console.h"

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>
#include <charconv>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "gateway/audit.h"
#include "gateway/audit_verify.h"
#include "gateway/file_text.h"
#include "gateway/pipeline.h"
#include "policy/diff.h"
#include "policy/explain.h"
#include "policy/matrix.h"
#include "policy/request_json.h"

namespace meridian::embedded {
extern const std::string_view kConsoleHtml;
extern const std::string_view kConsoleJs;
extern const std::string_view kConsoleCss;
extern const std::string_view kConsoleIcon;
}  // namespace meridian::embedded

namespace meridian::gateway::console {

namespace json = boost::json;

namespace {

core::Status BadQuery(std::string message, std::string param = {}) {
  return core::Status::Error(core::StatusCode::kInvalidArgument, std::move(message),
                             "invalid_query", std::move(param));
}

/// The query's parameters, each at most once and each one of `known`.
core::Status ParseQuery(std::string_view query, std::initializer_list<std::string_view> known,
                        std::map<std::string, std::string, std::less<>>& out) {
  if (query.empty()) return core::Status::Ok();
  auto parsed = boost::urls::parse_query(query);
  if (!parsed) return BadQuery("the query string is not valid percent-encoding");
  std::string names;
  for (const std::string_view k : known) names += (names.empty() ? "" : ", ") + std::string(k);
  for (const auto& p : boost::urls::params_view(*parsed)) {
    if (std::find(known.begin(), known.end(), p.key) == known.end()) {
      return BadQuery("unknown parameter '" + p.key + "' (the parameters are " + names + ")",
                      p.key);
    }
    if (!out.emplace(p.key, p.value).second) {
      return BadQuery("parameter '" + p.key + "' given twice", p.key);
    }
  }
  return core::Status::Ok();
}

std::string Get(const std::map<std::string, std::string, std::less<>>& q, std::string_view k) {
  const auto it = q.find(k);
  return it == q.end() ? std::string() : it->second;
}

/// Every tenant the gateway authenticates and every tenant the policy names, in order.
std::vector<std::string> Tenants(const GatewayState& state, const policy::Snapshot& s) {
  std::vector<std::string> out;
  for (const auto& t : state.Callers()->tenants.tenants()) out.push_back(t.id);
  std::vector<std::string> named;
  for (const auto& [name, id] : s.tenant_ids) named.push_back(name);
  std::sort(named.begin(), named.end());
  for (auto& n : named) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(std::move(n));
  }
  return out;
}

const char* CircuitName(HealthTracker::CircuitState st) {
  switch (st) {
    case HealthTracker::CircuitState::kOpen:
      return "open";
    case HealthTracker::CircuitState::kHalfOpen:
      return "half_open";
    case HealthTracker::CircuitState::kClosed:
      break;
  }
  return "closed";
}

}  // namespace

std::optional<Asset> FindAsset(std::string_view path) {
  if (path.empty() || path == "/") return Asset{embedded::kConsoleHtml, "text/html; charset=utf-8"};
  if (path == "/console.js") return Asset{embedded::kConsoleJs, "text/javascript; charset=utf-8"};
  if (path == "/console.css") return Asset{embedded::kConsoleCss, "text/css; charset=utf-8"};
  if (path == "/favicon.svg") return Asset{embedded::kConsoleIcon, "image/svg+xml"};
  return std::nullopt;
}

std::string Overview(const GatewayState& state) {
  const policy::SnapshotPtr s = state.Table()->policy;
  json::object out;
  out["policy_version"] = s->version;
  out["tenants"] = policy::JsonStrings(Tenants(state, *s));
  out["models"] = policy::JsonStrings(s->model_names);
  json::array classes;
  for (const auto n : policy::kDataClassNames) classes.emplace_back(n);
  out["data_classes"] = std::move(classes);
  out["default_data_class"] = policy::Name(s->settings.default_data_class);
  out["unknown_region_as"] = s->settings.unknown_region_as.ToString();
  out["now_unix_ms"] = UnixMillisNow();
  return json::serialize(out);
}

Reply Matrix(const GatewayState& state, std::string_view query) {
  std::map<std::string, std::string, std::less<>> q;
  Reply r;
  if (r.status = ParseQuery(query, {"tenant", "model"}, q); !r.status.ok()) return r;
  const policy::SnapshotPtr s = state.Table()->policy;
  const std::vector<std::string> tenants = Tenants(state, *s);
  std::string tenant = Get(q, "tenant");
  std::string model = Get(q, "model");
  if (tenant.empty() && !tenants.empty()) tenant = tenants.front();
  if (model.empty() && !s->model_names.empty()) model = s->model_names.front();
  if (std::find(tenants.begin(), tenants.end(), tenant) == tenants.end()) {
    r.status = BadQuery("unknown tenant '" + tenant + "'", "tenant");
    return r;
  }
  if (!policy::Lookup(s->model_ids, model)) {
    r.status = BadQuery("no provider of the policy serves model '" + model + "'", "model");
    return r;
  }
  r.body = policy::MatrixJson(policy::ResidencyMatrix(s, tenant, model), *s);
  return r;
}

Reply Explain(const GatewayState& state, std::string_view query) {
  std::map<std::string, std::string, std::less<>> q;
  Reply r;
  if (r.status = ParseQuery(query, {"tenant", "region", "city", "class", "model"}, q);
      !r.status.ok()) {
    return r;
  }
  const policy::SnapshotPtr s = state.Table()->policy;
  json::object request;
  for (const auto& [param, field] :
       {std::pair<std::string_view, std::string_view>{"tenant", "tenant"},
        {"region", "region"},
        {"city", "city"},
        {"class", "data_class"},
        {"model", "model"}}) {
    if (const std::string v = Get(q, param); !v.empty()) request[field] = v;
  }
  const json::value as_value = request;
  policy::ParseRequestResult parsed = policy::ParseRequestJson(as_value, *s);
  if (!parsed.request) {
    r.status = BadQuery(parsed.error);
    return r;
  }
  const policy::Decision d = policy::Decide(parsed.request->Attributes(), s);
  json::object out;
  out["request"] = request;
  out["decision"] = policy::ExplainJson(d, parsed.request->ignored_signals);
  out["text"] = policy::ExplainText(d, parsed.request->ignored_signals);
  r.body = json::serialize(out);
  return r;
}

std::string Providers(const GatewayState& state) {
  const RoutingTablePtr table = state.Table();
  const policy::Snapshot& s = *table->policy;
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, Quarantine::Entry, std::less<>> quarantined;
  for (auto& e : state.quarantine.List()) quarantined.emplace(e.provider, e);
  json::array providers;
  for (std::size_t i = 0; i < s.providers.size(); ++i) {
    const policy::Provider& p = s.providers[i];
    const auto index = static_cast<policy::ProviderIndex>(i);
    json::object o;
    o["id"] = p.id;
    o["kind"] = policy::Name(p.kind);
    o["description"] = p.description;
    o["processing"] = p.processing ? p.processing->ToString() : "undeclared";
    o["storage"] = p.storage ? p.storage->ToString() : "undeclared";
    json::array circuits;
    // The states are ordered closed < half-open < open: the provider shows its worst.
    auto worst = HealthTracker::CircuitState::kClosed;
    for (const auto& m : p.models) {
      const auto st = table->health->State(index, policy::Lookup(s.model_ids, m.alias), now);
      worst = std::max(worst, st);
      json::object c;
      c["model"] = m.alias;
      c["upstream_model"] = m.upstream;
      c["state"] = CircuitName(st);
      circuits.push_back(std::move(c));
    }
    o["circuit"] = CircuitName(worst);
    o["circuits"] = std::move(circuits);
    if (const auto it = quarantined.find(p.id); it != quarantined.end()) {
      json::object qo;
      qo["since_unix_ms"] = it->second.since_unix_ms;
      qo["said"] = it->second.said;
      qo["request_id"] = it->second.request_id;
      o["quarantined"] = std::move(qo);
    } else {
      o["quarantined"] = nullptr;
    }
    providers.push_back(std::move(o));
  }
  json::object out;
  out["policy_version"] = s.version;
  out["providers"] = std::move(providers);
  out["warnings"] = policy::JsonStrings(table->warnings);
  return json::serialize(out);
}

std::string Reloads(const GatewayState& state) {
  std::vector<ReloadHistory::Entry> entries = state.reloads.List();
  std::reverse(entries.begin(), entries.end());
  json::array list;
  for (const ReloadHistory::Entry& e : entries) {
    json::object o;
    o["n"] = e.n;
    o["at_unix_ms"] = e.at_unix_ms;
    o["trigger"] = e.trigger;
    o["result"] = !e.result.ok ? "refused" : e.result.changed ? "loaded" : "unchanged";
    std::vector<std::string> changed;
    if (e.result.policy_changed) changed.emplace_back("policy");
    if (e.result.config_changed) changed.emplace_back("config");
    o["changed"] = policy::JsonStrings(changed);
    o["policy_before"] = e.before ? e.before->version : "";
    o["policy_after"] = e.after ? e.after->version : "";
    o["errors"] = policy::JsonStrings(e.result.errors);
    o["diff"] = e.before != nullptr && e.after != nullptr;
    list.push_back(std::move(o));
  }
  json::object out;
  out["reloads"] = std::move(list);
  return json::serialize(out);
}

Reply ReloadDiff(GatewayState& state, std::string_view query) {
  std::map<std::string, std::string, std::less<>> q;
  Reply r;
  if (r.status = ParseQuery(query, {"n"}, q); !r.status.ok()) return r;
  const std::string n_text = Get(q, "n");
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(n_text.data(), n_text.data() + n_text.size(), n);
  if (n_text.empty() || ec != std::errc() || end != n_text.data() + n_text.size()) {
    r.status = BadQuery("name the reload: ?n=N, a number from GET /admin/api/reloads", "n");
    return r;
  }
  std::optional<std::string> diff = state.reloads.Diff(n, [](const ReloadHistory::Entry& e) {
    const auto started = std::chrono::steady_clock::now();
    const policy::DiffReport report = policy::Diff(e.before, e.after);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    json::object out;
    out["n"] = e.n;
    out["policy_before"] = e.before->version;
    out["policy_after"] = e.after->version;
    out["computed_ms"] = ms;
    out["diff"] = json::parse(policy::DiffJson(report));
    out["text"] = policy::FormatDiff(report);
    return json::serialize(out);
  });
  if (!diff) {
    r.status = core::Status::Error(core::StatusCode::kNotFound,
                                   state.reloads.Find(n)
                                       ? "reload " + n_text + " changed no policy: there is no diff"
                                       : "no reload " + n_text + " is kept (the last " +
                                             std::to_string(ReloadHistory::kKept) + " are)",
                                   "not_found", "n");
    return r;
  }
  r.body = std::move(*diff);
  return r;
}

std::string AuditStatus(const GatewayState& state) {
  json::object out;
  const audit::AuditLog* log = state.audit.get();
  out["configured"] = log != nullptr;
  if (log == nullptr) return json::serialize(out);
  const audit::AuditLog::Stats st = log->stats();
  out["path"] = log->path();
  out["written"] = st.written;
  out["last_seq"] = st.last_seq;
  out["healthy"] = st.healthy;
  out["rotations"] = st.rotations;
  out["checkpoints_written"] = st.checkpoints;
  const audit::Ed25519Key* signer = log->signing_key();
  out["signed"] = signer != nullptr;
  if (signer == nullptr) return json::serialize(out);
  out["checkpoints_path"] = log->checkpoint_path();
  out["key_id"] = signer->key_id();
  const std::string public_pem = signer->PublicPem();
  out["public_key"] = public_pem;
  // Verified as an auditor would: with the public key alone, over what is on disk. The
  // checkpoints are read before the log, so every checkpoint read covers lines already
  // written. Only the current file: the rotated ones were verified when they were current.
  std::unique_ptr<audit::Ed25519Key> verifier;
  json::object verify;
  verify["at_unix_ms"] = UnixMillisNow();
  verify["file"] = log->path();
  std::vector<audit::NamedText> checkpoints(1);
  std::vector<audit::NamedText> logs(1);
  checkpoints[0].name = log->checkpoint_path();
  logs[0].name = log->path();
  if (!audit::Ed25519Key::FromPublicPem(public_pem, verifier).ok() ||
      !ReadWholeFile(checkpoints[0].name, checkpoints[0].text) ||
      !ReadWholeFile(logs[0].name, logs[0].text)) {
    verify["error"] = "cannot read " + logs[0].name + " or " + checkpoints[0].name;
  } else {
    audit::VerifyReport report = audit::Verify(logs, checkpoints, verifier.get());
    // A log no checkpoint has been written for yet (the first comes after
    // checkpoint_interval_s, or at shutdown) is young, not tampered with.
    if (checkpoints[0].text.empty() && st.checkpoints == 0) {
      std::erase_if(report.findings, [](const audit::Finding& f) {
        return f.kind == "checkpoint_missing" && f.line == 0;
      });
      verify["first_checkpoint_pending"] = true;
    }
    verify["report"] = json::parse(audit::ReportJson(report));
  }
  out["verify"] = std::move(verify);
  return json::serialize(out);
}

}  // namespace meridian::gateway::console
