#include "gateway/gateway_state.h"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "gateway/audit.h"
#include "gateway/core/json_text.h"
#include "gateway/gateway_metrics.h"

namespace meridian::gateway {

bool Quarantine::Add(Entry entry) {
  std::lock_guard<std::mutex> lk(mu_);
  for (const Entry& e : entries_) {
    if (e.provider == entry.provider) return false;
  }
  entries_.push_back(std::move(entry));
  size_.store(entries_.size(), std::memory_order_release);
  return true;
}

bool Quarantine::Release(std::string_view provider) {
  std::lock_guard<std::mutex> lk(mu_);
  const auto n = std::erase_if(entries_, [&](const Entry& e) { return e.provider == provider; });
  size_.store(entries_.size(), std::memory_order_release);
  return n != 0;
}

std::vector<Quarantine::Entry> Quarantine::List() const {
  std::lock_guard<std::mutex> lk(mu_);
  return entries_;
}

policy::ProviderSet Quarantine::Of(const policy::Snapshot& snapshot) const {
  policy::ProviderSet out;
  if (size_.load(std::memory_order_acquire) == 0) return out;
  std::lock_guard<std::mutex> lk(mu_);
  for (std::size_t p = 0; p < snapshot.providers.size(); ++p) {
    for (const Entry& e : entries_) {
      if (e.provider == snapshot.providers[p].id) out.set(p);
    }
  }
  return out;
}

std::string Quarantine::Json() const {
  std::string out = "{\"quarantined\":[";
  bool first = true;
  for (const Entry& e : List()) {
    out += first ? "{" : ",{";
    first = false;
    out += "\"provider\":";
    core::AppendJsonString(out, e.provider);
    out += ",\"since_unix_ms\":" + std::to_string(e.since_unix_ms) + ",\"said\":";
    core::AppendJsonString(out, e.said);
    out += ",\"request_id\":";
    core::AppendJsonString(out, e.request_id);
    out += '}';
  }
  out += "]}";
  return out;
}

void ReloadHistory::Add(std::string trigger, std::int64_t at_unix_ms, const ReloadResult& result,
                        policy::SnapshotPtr before, policy::SnapshotPtr after) {
  std::lock_guard lock(mu_);
  Entry e;
  e.n = next_++;
  e.at_unix_ms = at_unix_ms;
  e.trigger = std::move(trigger);
  e.result = result;
  e.before = std::move(before);
  e.after = std::move(after);
  entries_.push_back(std::move(e));
  if (entries_.size() > kKept) entries_.erase(entries_.begin());
  const std::uint64_t oldest = entries_.front().n;
  std::erase_if(diffs_, [oldest](const auto& d) { return d.first < oldest; });
}

std::vector<ReloadHistory::Entry> ReloadHistory::List() const {
  std::lock_guard lock(mu_);
  return entries_;
}

std::optional<ReloadHistory::Entry> ReloadHistory::Find(std::uint64_t n) const {
  std::lock_guard lock(mu_);
  for (const Entry& e : entries_) {
    if (e.n == n) return e;
  }
  return std::nullopt;
}

std::optional<std::string> ReloadHistory::Diff(
    std::uint64_t n, const std::function<std::string(const Entry&)>& compute) {
  std::optional<Entry> entry;
  {
    std::lock_guard lock(mu_);
    for (const auto& [at, json] : diffs_) {
      if (at == n) return json;
    }
    for (const Entry& e : entries_) {
      if (e.n == n) entry = e;
    }
  }
  if (!entry || !entry->before || !entry->after) return std::nullopt;
  std::string json = compute(*entry);  // unlocked: seconds on a large policy
  std::lock_guard lock(mu_);
  const bool cached =
      std::any_of(diffs_.begin(), diffs_.end(), [n](const auto& d) { return d.first == n; });
  if (!cached && !entries_.empty() && n >= entries_.front().n) diffs_.emplace_back(n, json);
  return json;
}

GatewayState::GatewayState() = default;
GatewayState::~GatewayState() = default;

std::string RenderMetrics(const GatewayState& state) {
  const Counters& c = state.counters;
  std::string out = state.metrics ? state.metrics->Render() : std::string();
  // Counters kept as plain atomics by the front ends, with their fixed label sets.
  auto labelled = [&out](std::string_view name, std::string_view help, std::string_view label,
                         std::string_view value, const std::atomic<std::uint64_t>& v, bool first) {
    if (first) {
      out += "# HELP ";
      out += name;
      out += ' ';
      out += help;
      out += "\n# TYPE ";
      out += name;
      out += " counter\n";
    }
    out += name;
    out += '{';
    out += label;
    out += "=\"";
    out += value;
    out += "\"} " + std::to_string(v.load(std::memory_order_relaxed)) + "\n";
  };
  constexpr std::string_view kHttp = "meridian_http_responses_total";
  constexpr std::string_view kHttpHelp = "HTTP responses sent, by status class.";
  labelled(kHttp, kHttpHelp, "class", "2xx", c.responses_2xx, true);
  labelled(kHttp, kHttpHelp, "class", "4xx", c.responses_4xx, false);
  labelled(kHttp, kHttpHelp, "class", "5xx", c.responses_5xx, false);
  static constexpr std::array<std::string_view, 17> kGrpcCodes = {"OK",
                                                                  "CANCELLED",
                                                                  "UNKNOWN",
                                                                  "INVALID_ARGUMENT",
                                                                  "DEADLINE_EXCEEDED",
                                                                  "NOT_FOUND",
                                                                  "ALREADY_EXISTS",
                                                                  "PERMISSION_DENIED",
                                                                  "RESOURCE_EXHAUSTED",
                                                                  "FAILED_PRECONDITION",
                                                                  "ABORTED",
                                                                  "OUT_OF_RANGE",
                                                                  "UNIMPLEMENTED",
                                                                  "INTERNAL",
                                                                  "UNAVAILABLE",
                                                                  "DATA_LOSS",
                                                                  "UNAUTHENTICATED"};
  for (std::size_t i = 0; i < kGrpcCodes.size(); ++i) {
    labelled("meridian_grpc_responses_total", "gRPC calls finished, by status code.", "code",
             kGrpcCodes[i], c.grpc_responses[i], i == 0);
  }
  constexpr std::string_view kReloads = "meridian_policy_reloads_total";
  constexpr std::string_view kReloadsHelp =
      "Policy reloads that swapped in a new policy (ok) or were refused (error; the last good "
      "policy keeps serving).";
  labelled(kReloads, kReloadsHelp, "result", "ok", c.policy_reloads_ok, true);
  labelled(kReloads, kReloadsHelp, "result", "error", c.policy_reloads_failed, false);
  constexpr std::string_view kCors = "meridian_cors_preflights_total";
  constexpr std::string_view kCorsHelp =
      "CORS preflights answered (allowed) or refused (an origin not in cors.allowed_origins, or "
      "a malformed preflight).";
  labelled(kCors, kCorsHelp, "result", "allowed", c.cors_preflights_allowed, true);
  labelled(kCors, kCorsHelp, "result", "refused", c.cors_preflights_refused, false);
  return out;
}

std::string ReloadResult::Json() const {
  std::string out = "{\"result\":\"";
  out += !ok ? "refused" : changed ? "loaded" : "unchanged";
  out += "\",\"policy_version\":";
  core::AppendJsonString(out, version);
  out += ",\"changed\":[";
  if (policy_changed) out += "\"policy\"";
  if (config_changed) out += policy_changed ? ",\"config\"" : "\"config\"";
  out += "],\"errors\":[";
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (i) out += ',';
    core::AppendJsonString(out, errors[i]);
  }
  out += "]}";
  return out;
}

}  // namespace meridian::gateway
