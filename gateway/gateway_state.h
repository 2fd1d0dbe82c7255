// State shared by every worker thread of `meridian serve`: the routing table (swapped
// atomically as a whole), the tenant registry, and counters. Everything here is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/gateway_config.h"
#include "gateway/admin_auth.h"
#include "gateway/identity.h"
#include "gateway/routing_table.h"

namespace meridian::gateway {

/// Monotonic counters exposed on GET /metrics (Prometheus text format).
struct Counters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> responses_2xx{0};
  std::atomic<std::uint64_t> responses_4xx{0};
  std::atomic<std::uint64_t> responses_5xx{0};
  std::atomic<std::uint64_t> policy_denials{0};
  std::atomic<std::uint64_t> classifier_raises{0};
  std::atomic<std::uint64_t> region_header_ignored_untrusted{0};
  std::atomic<std::uint64_t> region_header_rejected{0};
  /// Requests whose region, data-class or consent signal came in several disagreeing copies
  /// (resolved to the most restrictive).
  std::atomic<std::uint64_t> conflicting_signals{0};
  /// Requests refused for carrying more than one credential.
  std::atomic<std::uint64_t> multiple_credentials{0};
  std::atomic<std::uint64_t> cors_preflights_allowed{0};
  /// Preflights refused: an origin not in cors.allowed_origins, or a malformed preflight.
  std::atomic<std::uint64_t> cors_preflights_refused{0};
  std::atomic<std::uint64_t> client_disconnects{0};
  /// Requests begun but not received within header_timeout_ms / body_timeout_ms (408).
  std::atomic<std::uint64_t> slow_clients{0};
  std::atomic<std::uint64_t> concurrency_rejections{0};
  std::atomic<std::uint64_t> grpc_requests{0};
  std::atomic<std::uint64_t> policy_reloads_ok{0};      ///< new policy swapped in
  std::atomic<std::uint64_t> policy_reloads_failed{0};  ///< refused (invalid file)
  /// gRPC calls finished, by status code (0 OK .. 16 UNAUTHENTICATED).
  std::array<std::atomic<std::uint64_t>, 17> grpc_responses{};
};

class GatewayMetrics;
}  // namespace meridian::gateway
namespace meridian::audit {
class AuditLog;
}  // namespace meridian::audit
namespace meridian::gateway {

/// What a reload of the policy and the gateway config did.
struct ReloadResult {
  bool ok = false;                  ///< what serves now is both files' current content
  bool changed = false;             ///< something new was swapped in
  bool policy_changed = false;      ///< a new policy snapshot
  bool config_changed = false;      ///< new tenants / keys / limits / trusted proxies
  std::string version;              ///< the policy version serving after the attempt
  std::vector<std::string> errors;  ///< FILE:LINE:COL messages when refused

  /// {"result":"loaded|unchanged|refused","policy_version":...,"changed":["policy","config"],
  ///  "errors":[...]}
  std::string Json() const;
};

/// Who may call and who may assert where the user is: the reloadable part of the gateway config
/// (config::IsReloadableKey), swapped as a whole by a reload. A request holds the snapshot it
/// was authenticated with (CallerContext::identities) until it ends, so a reload never changes
/// the tenant, limits or trusted proxies of a request in flight.
struct Identities {
  identity::TenantRegistry tenants;
  std::vector<identity::Cidr> trusted_proxies;
  std::string region_header;  ///< trusted_proxies.region_header (lower case)
};
using IdentitiesPtr = std::shared_ptr<const Identities>;

/// Providers taken out of rotation because an answer said it was processed outside their
/// declared locations (`on_echo_mismatch: quarantine`), until an operator releases them
/// (POST /admin/quarantine/release). Kept by provider id, so a reload does not release them.
class Quarantine {
 public:
  struct Entry {
    std::string provider;
    std::int64_t since_unix_ms = 0;
    std::string said;        ///< the echo that caused it ("inference_geo=global")
    std::string request_id;  ///< of the answer that said it
  };
  /// True when the provider was not quarantined before.
  bool Add(Entry entry);
  /// True when the provider was quarantined.
  bool Release(std::string_view provider);
  std::vector<Entry> List() const;
  /// The snapshot's providers that are quarantined (nothing to do while none is).
  policy::ProviderSet Of(const policy::Snapshot& snapshot) const;
  /// {"quarantined":[{"provider","since_unix_ms","said","request_id"}]}
  std::string Json() const;

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  std::atomic<std::size_t> size_{0};
};

/// The last reloads (and the start), newest last, for the operator console: what each did and
/// the policies on either side, so the diff a reload made can be computed when asked for
/// (policy::Diff takes seconds on a large policy: never at reload time).
class ReloadHistory {
 public:
  static constexpr std::size_t kKept = 20;
  struct Entry {
    std::uint64_t n = 0;  ///< 0: the start
    std::int64_t at_unix_ms = 0;
    std::string trigger;  ///< "start", "SIGHUP", "admin API", "policy file watch", ...
    ReloadResult result;
    policy::SnapshotPtr before;  ///< null for the start and when the policy did not change
    policy::SnapshotPtr after;   ///< the policy serving after it
  };
  void Add(std::string trigger, std::int64_t at_unix_ms, const ReloadResult& result,
           policy::SnapshotPtr before, policy::SnapshotPtr after);
  std::vector<Entry> List() const;
  std::optional<Entry> Find(std::uint64_t n) const;
  /// The diff of entry n as policy::DiffJson, computed once (by `compute`, which the caller
  /// runs off the request threads); nullopt when there is no such entry or it changed no policy.
  std::optional<std::string> Diff(std::uint64_t n,
                                  const std::function<std::string(const Entry&)>& compute);

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  std::vector<std::pair<std::uint64_t, std::string>> diffs_;  ///< cached, by entry n
  std::uint64_t next_ = 0;
};

struct GatewayState {
  GatewayState();
  ~GatewayState();

  /// The gateway config as started, except `tenants:` and `trusted_proxies:` (emptied): those
  /// are reloadable and live in `identities`.
  config::GatewayConfig config;
  std::atomic<std::shared_ptr<const Identities>> identities;
  std::atomic<std::shared_ptr<const RoutingTable>> table;
  std::atomic<std::int64_t> in_flight{0};  ///< completions being served
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};  ///< graceful shutdown in progress
  Counters counters;
  /// The labelled metrics (requests, latencies, attempts, tokens, ...). Set by Gateway.
  std::unique_ptr<GatewayMetrics> metrics;
  /// The audit log, when configured (`audit:`). Set by Gateway.
  std::unique_ptr<audit::AuditLog> audit;
  /// The admin listener's bearer token (with `admin:`). Set by Gateway.
  std::optional<AdminToken> admin_token;
  /// The export meter's HMAC key (`export_meter.hmac_key_env`), when configured. Secret:
  /// never logged. Set by Gateway.
  std::string meter_key;
  Quarantine quarantine;
  ReloadHistory reloads;
  /// POST /admin/reload: reloads the policy. Set by Gateway.
  std::function<ReloadResult()> reload;

  RoutingTablePtr Table() const { return table.load(std::memory_order_acquire); }
  IdentitiesPtr Callers() const { return identities.load(std::memory_order_acquire); }
};

}  // namespace meridian::gateway

namespace meridian::gateway {

/// The counters in Prometheus text exposition format.
std::string RenderMetrics(const GatewayState& state);

}  // namespace meridian::gateway
