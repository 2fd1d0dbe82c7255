// The gateway config read by `meridian serve --config FILE`: listener, TLS, limits, upstream
// timeouts, trusted proxies, tenants and the path of the policy file (a separate file, loaded
// with config/policy_file.h). Errors are reported as FILE:LINE:COL like the policy file's, and
// every error of a file is reported in one run.
//
// The file, with every key and its default:
//
//   listen: 127.0.0.1:8080       # HOST:PORT; HOST is an IP address, IPv6 in brackets and the
//                                # value quoted ("[::1]:8080"); port 0 picks a free port
//   workers: 1                   # I/O threads, 1..64
//   tls:                         # optional; without it the listener speaks plain HTTP
//     cert_file: server.pem      # both required; PEM files that must exist and be readable
//     key_file: server.key
//   audit:                       # optional: one JSON line per decided request (docs/operations.md)
//     path: audit.jsonl          # REQUIRED; appended to; relative to the config's directory
//     flush_interval_ms: 200     # written at least this often
//     fsync: false               # fsync after each write
//     max_file_bytes: 104857600  # rotate: path -> path.1 -> ... (1 KiB..64 GiB)
//     max_files: 5               # path plus path.1 .. path.(max_files-1)   (1..1000)
//     queue_capacity: 65536      # records waiting to be written             (1..10000000)
//     on_failure: reject         # reject: refuse requests (503) while records cannot be
//                                # kept (fail closed); continue: serve, count dropped records
//     signing_key_file: audit-signing.pem  # optional: an Ed25519 private key (PEM) that signs
//     signing_key_env: AUDIT_KEY # checkpoints (path + ".checkpoints"); or the variable
//                                # holding it; one of the two; none: lines are chained only
//     checkpoint_interval_s: 300 # a signed checkpoint at least this often, and at shutdown
//   log:
//     level: info                # info | warn | error
//     format: text               # text | json (one JSON object per line)
//     access: true               # one access line per request (at level info)
//   admin:                       # optional: operations listener (POST /admin/reload,
//     listen: 127.0.0.1:9901     # /metrics, /healthz, /readyz); keep it on a private address
//     token_env: MERIDIAN_ADMIN_TOKEN  # the bearer token its routes (all but /healthz and
//     token_file: admin.token    # /readyz) require: from this variable, or this file (one
//                                # of the two; the token itself never in this file)
//   metrics:
//     public: false              # true: GET /metrics also on `listen`, without credentials
//   cors:                        # browsers calling the API from a web page (docs/api-http.md)
//     allowed_origins: []        # exact origins, "https://app.example.com[:port]", or "*"
//                                # for any; default none: no preflight is answered
//     max_age_s: 600             # how long a browser may cache a preflight (0..86400)
//   policy_file: policy.yaml     # REQUIRED; must exist and be readable
//   limits:
//     max_body_bytes: 20971520       # request body; 413 beyond            (1..1 GiB)
//     max_header_bytes: 16384        # request line + headers; 431 beyond  (1 KiB..1 MiB)
//     header_timeout_ms: 10000       # to receive a request's headers (slowloris); 408 beyond
//     body_timeout_ms: 30000         # to receive a request's body; 408 beyond
//     idle_timeout_ms: 60000         # keep-alive connection with no request in progress
//     max_concurrent_streams: 1000   # requests in flight; 503 + Retry-After beyond
//     retry_after_s: 1               # the Retry-After sent with that 503   (0..3600)
//     drain_timeout_ms: 30000        # SIGTERM: how long in-flight requests may finish
//     drain_delay_ms: 0              # SIGTERM: not ready at once, but keep serving and
//                                    # accepting this long before the listeners close
//                                    # (0..3600000; replaces a Kubernetes preStop sleep)
//   upstream:
//     connect_timeout_ms: 5000       # TCP + TLS handshake to a provider
//     first_byte_timeout_ms: 60000   # request sent -> first response byte
//     idle_timeout_ms: 60000         # between bytes of a streamed response
//     max_response_bytes: 16777216   # a provider's whole response         (1..1 GiB)
//     same_provider_retries: 0       # re-sends of a fully sent request on a fresh connection
//                                    # when a pooled one died before any answer byte (0..3)
//     ca_file: ca.pem                # optional CA bundle; default: the system's CAs
//   trusted_proxies:
//     cidrs: [10.0.0.0/8, "::1/128"] # peers allowed to assert the user's region; default none
//     region_header: x-meridian-user-region   # the header they assert it in (default shown)
//   grpc:                        # optional: the gRPC front end (docs/api-grpc.md)
//     listen: 127.0.0.1:9090     # REQUIRED; as `listen:` above; its own port
//     tls:                       # REQUIRED unless plaintext: true
//       cert_file: server.pem    # server certificate chain and key (PEM)
//       key_file: server.key
//       client_ca_file: ca.pem   # optional: request client certificates and verify them
//                                # against this CA (mTLS); without it, API keys only
//       require_client_cert: true  # with client_ca_file: refuse clients without a
//                                # certificate (default); false also accepts API keys
//     plaintext: false           # true: no TLS at all (development only; logged as a warning)
//     max_message_bytes: 20971520 # largest request message (1 KiB..64 MiB)
//   tenants:                     # REQUIRED, at least one
//     - id: demo                 # REQUIRED; letters, digits, _ - . (as tenant ids in policies)
//       api_key_sha256: [<64 hex>]   # SHA-256 of each accepted key, never the key; REQUIRED
//                                # unless the tenant has client certificate identities
//       client_cert_uris: [spiffe://example.org/ns/prod/sa/backend]  # gRPC mTLS identities:
//                                # URI SANs (e.g. SPIFFE ids) of this tenant's certificates
//       client_cert_cns: [backend.example.org]  # or their subject CNs (URI SANs win)
//       trust_region_claim: false  # true: this tenant's mTLS clients may state the user's
//                                # region per request (metadata x-meridian-user-region),
//                                # restricted to `regions`
//       regions: [CN, HK]        # user regions a trusted proxy may assert; default none
//       default_region: CN       # the tenant's binding, within regions; default unknown
//       default_data_class: personal # when a request declares none; default: the policy's
//       tenant_flags: [public_facing_cn] # checked against the policy by CheckTenantFlags
//       mechanisms: [cn_scc_filed]       # transfer mechanisms the tenant holds; default none
//       consent: {cross_border_separate: false, sensitive_separate: false}  # default false
//       limits:                  # optional: rate limits and token budgets (docs/configuration.md)
//         requests_per_minute: 600   # the whole tenant; absent or 0: no limit
//         tokens_per_minute: 200000  # prompt + completion tokens
//         tokens_per_day: 0          # budgets per calendar day / month (UTC); 0: none
//         tokens_per_month: 0
//         concurrent_streams: 0      # completions in flight at once (leases in the store)
//         per_key: {requests_per_minute: 0, tokens_per_minute: 0, concurrent_streams: 0}
//                                    # each API key or client certificate identity, separately
//         per_subject: {requests_per_minute: 0, tokens_per_minute: 0, concurrent_streams: 0}
//                                    # each end user (OpenAI `user`, gRPC subject_id)
//         default_max_tokens: 1024   # reserved for a request that sets no max_tokens
//         on_store_failure: fail_closed  # store unreachable: fail_closed (503) | fail_open
//   store:                       # where limits are counted, shared by every replica
//     kind: memory               # memory: this process only, lost on restart | redis
//     address: 127.0.0.1:6379    # redis: HOST:PORT (a name, an IPv4 or a [IPv6] address)
//     username: ""               # ACL user; default: the default user
//     password_env: MERIDIAN_REDIS_PASSWORD  # variable holding the password (never this file)
//     db: 0                      # SELECT (0..15)
//     connect_timeout_ms: 250    # TCP connect to Redis
//     command_timeout_ms: 100    # one round trip of the gateway's commands
//     lease_ttl_ms: 60000        # a concurrent-stream lease outlives its last renewal (>= 1000)
//   export_meter:                # optional: count individuals exported from the mainland (PIPL)
//     hmac_key_env: MERIDIAN_METER_KEY  # REQUIRED: variable holding the key subject ids are
//                                # hashed with (at least 32 bytes); never in this file
//     without_subject: refuse    # personal data with no subject id, to a provider outside
//                                # the mainland: refuse (default) | allow_uncounted
//     allow_memory_store: false  # true: count in process with store.kind memory (not durable)
//     allow_unpersisted_redis: false  # true: start even if Redis has no RDB/AOF persistence
//
// All timeouts are in milliseconds, 1..3600000. Relative paths (policy_file, tls files,
// ca_file) resolve against the directory of the config file.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/file_diagnostic.h"
#include "policy/model.h"
#include "policy/regions.h"
#include "policy/spec.h"

namespace meridian::policy {
struct Snapshot;
}  // namespace meridian::policy

namespace meridian::config {

/// `listen:`, parsed.
struct ListenAddress {
  std::string host = "127.0.0.1";  ///< an IP literal without brackets ("::1")
  std::uint16_t port = 8080;
  bool ipv6 = false;

  /// "127.0.0.1:8080" or "[::1]:8080".
  std::string ToString() const;
};

/// Parses a listen address as `listen:` takes it ("127.0.0.1:8080", "[::1]:0"); for command
/// line overrides, so they follow the file's syntax. nullopt for anything else, with the
/// reason (phrased for the operator) in `*why` when given.
std::optional<ListenAddress> ParseListenAddress(std::string_view text, std::string* why = nullptr);

/// `tls:`. Paths are resolved and were readable when the config was loaded.
struct TlsConfig {
  std::string cert_file;
  std::string key_file;
};

/// `limits:`: what one client may cost the gateway.
struct LimitsConfig {
  std::uint64_t max_body_bytes = 20'971'520;  // 20 MiB: an inline photo, as OpenAI allows
  std::uint64_t max_header_bytes = 16'384;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::uint32_t max_concurrent_streams = 1'000;
  std::uint32_t retry_after_s = 1;
  std::chrono::milliseconds drain_timeout{30'000};  ///< graceful shutdown: in-flight deadline
  /// Graceful shutdown: from the signal (readiness off at once) to closing the listeners;
  /// requests keep being accepted and served meanwhile. 0: close at once.
  std::chrono::milliseconds drain_delay{0};
};

/// `upstream:`: how the gateway talks to providers.
struct UpstreamConfig {
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds first_byte_timeout{60'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::uint64_t max_response_bytes = 16'777'216;
  /// How often a request whose body was fully sent on a pooled connection that then died
  /// before any response byte is sent again, on a fresh connection, to the same provider.
  /// 0 (default): the prompt never reaches one provider twice; the failure falls back to the
  /// next candidate instead. A request whose write failed is always retried once.
  std::uint64_t same_provider_retries = 0;
  std::string ca_file;  ///< resolved; empty: the system's CAs
};

/// `trusted_proxies:`.
struct TrustedProxiesConfig {
  /// As written, with positions. They are parsed (and errors reported at these positions)
  /// by identity::ParseTrustedProxies, which owns the CIDR syntax.
  policy::StringList cidrs;
  std::string region_header = "x-meridian-user-region";  ///< lower case
};

/// `grpc.tls:`. Paths are resolved and were readable when the config was loaded.
struct GrpcTlsConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  ///< empty: no client certificates requested
  bool require_client_cert = true;
};

/// `grpc:`: the gRPC front end, beside the HTTP one.
struct GrpcConfig {
  ListenAddress listen;
  std::optional<GrpcTlsConfig> tls;  ///< absent only with plaintext
  bool plaintext = false;
  std::uint64_t max_message_bytes = 20'971'520;
};

/// Requests and tokens per minute; 0: no limit.
struct RateLimitConfig {
  std::uint64_t requests_per_minute = 0;
  std::uint64_t tokens_per_minute = 0;
  /// Completions in flight at once (streamed or not), held as leases in the store; 0: none.
  std::uint64_t concurrent_streams = 0;
  bool any() const {
    return requests_per_minute != 0 || tokens_per_minute != 0 || concurrent_streams != 0;
  }
};

/// `tenants[].limits:`: what a tenant, each of its keys and each of its users may spend.
struct TenantLimitsConfig {
  RateLimitConfig tenant;              ///< the tenant as a whole
  RateLimitConfig per_key;             ///< each API key / client certificate identity
  RateLimitConfig per_subject;         ///< each subject (end user)
  std::uint64_t tokens_per_day = 0;    ///< budget per calendar day (UTC); 0: none
  std::uint64_t tokens_per_month = 0;  ///< budget per calendar month (UTC); 0: none
  /// Completion tokens reserved at admission when the request sets no max_tokens.
  std::uint64_t default_max_tokens = 1024;
  bool fail_open = false;  ///< the store unreachable: admit (true) or 503 (false)
};

/// `store:`: where shared state (rate limits) lives.
struct StoreConfig {
  enum class Kind : std::uint8_t { kMemory, kRedis };
  Kind kind = Kind::kMemory;
  std::string host = "127.0.0.1";
  std::string port = "6379";
  std::string username;
  std::string password_env;  ///< the variable holding the password ("" : no AUTH)
  std::uint32_t db = 0;
  std::chrono::milliseconds connect_timeout{250};
  std::chrono::milliseconds command_timeout{100};
  /// How long a concurrent-stream lease outlives its last renewal (renewed every third of it
  /// while the request runs): what a crashed replica's streams keep counting for.
  std::chrono::milliseconds lease_ttl{60'000};
  policy::SourcePos pos;  ///< of `store:`, to point startup errors at
};

/// `export_meter:`: the PIPL cross-border export meter (docs/configuration.md).
struct ExportMeterConfig {
  std::string hmac_key_env;
  bool allow_uncounted = false;  ///< `without_subject: allow_uncounted`
  bool allow_memory_store = false;
  bool allow_unpersisted_redis = false;
  policy::SourcePos pos;  ///< of `export_meter:`
};

/// One item of `tenants:`, validated except for the flag names (see CheckTenantFlags).
struct TenantConfig {
  policy::LocatedString id;
  /// Lower-case hex, 64 digits each, unique across all tenants.
  std::vector<policy::LocatedString> api_key_sha256;
  policy::StringList client_cert_uris;  ///< unique across tenants
  policy::StringList client_cert_cns;   ///< unique across tenants
  bool trust_region_claim = false;
  std::vector<policy::RegionCode> regions;  ///< in file order, without repeats
  std::optional<policy::RegionCode> default_region;
  std::optional<policy::DataClass> default_data_class;
  policy::StringList tenant_flags;  ///< names with positions, for CheckTenantFlags
  std::uint32_t mechanisms = 0;     ///< Bit(policy::Mechanism) mask
  std::uint32_t consent = 0;        ///< Bit(policy::Consent) mask
  std::optional<TenantLimitsConfig> limits;
  policy::SourcePos pos;
};

/// `admin.token_env` / `admin.token_file`: where the admin listener's bearer token is (exactly
/// one is set when `admin:` is). The token itself is read at startup, never from this file.
struct AdminTokenConfig {
  std::string env;        ///< the environment variable holding it, or
  std::string file;       ///< a file holding it (resolved; readable when loaded)
  policy::SourcePos pos;  ///< of the key naming the source, to point startup errors at
};

/// `audit:`.
struct AuditConfig {
  std::string path;  ///< resolved against the config's directory (need not exist yet)
  std::chrono::milliseconds flush_interval{200};
  bool fsync = false;
  std::uint64_t max_file_bytes = 100ull << 20;
  std::uint32_t max_files = 5;
  std::uint64_t queue_capacity = 65536;
  bool fail_closed = true;
  /// Signed checkpoints (gateway/audit_chain.h): where the Ed25519 private key is (at most one
  /// of the two; none: no checkpoints). The key itself is never in this file.
  std::string signing_key_file;  ///< resolved; readable when loaded
  std::string signing_key_env;   ///< the environment variable holding the PEM key
  policy::SourcePos signing_key_pos;
  std::uint32_t checkpoint_interval_s = 300;
};

/// `cors:`: the web origins whose pages may call the API from a browser.
struct CorsConfig {
  /// "scheme://host[:port]", lower case, in file order without repeats; "*" allows any.
  std::vector<std::string> allowed_origins;
  std::uint32_t max_age_s = 600;

  bool Allows(std::string_view origin) const;
};

/// `log:`.
struct LogConfig {
  std::string level = "info";  ///< info | warn | error (validated)
  bool json = false;
  bool access = true;
};

struct GatewayConfig {
  ListenAddress listen;
  std::uint32_t workers = 1;
  std::optional<TlsConfig> tls;
  std::optional<GrpcConfig> grpc;
  std::optional<ListenAddress> admin_listen;  ///< `admin.listen`
  AdminTokenConfig admin_token;               ///< `admin.token_env` / `admin.token_file`
  bool metrics_public = false;                ///< `metrics.public`: GET /metrics on `listen`
  CorsConfig cors;
  LogConfig log;
  std::optional<AuditConfig> audit;
  std::string policy_file;            ///< resolved against the config file's directory
  policy::SourcePos policy_file_pos;  ///< of the `policy_file:` key, to point errors at
  LimitsConfig limits;
  UpstreamConfig upstream;
  TrustedProxiesConfig trusted_proxies;
  std::vector<TenantConfig> tenants;
  StoreConfig store;
  std::optional<ExportMeterConfig> export_meter;

  /// Some tenant has `limits:` (the store is used).
  bool HasLimits() const;
};

/// Parses the text of a gateway config named `file` (relative paths in it resolve against
/// the directory of `file`; the files it names are checked to be readable). Appends every
/// error to `errors`; the result holds whatever could be read, so callers stop when errors is
/// non-empty. Never throws.
GatewayConfig LoadGatewayConfigYaml(std::string_view text, const std::string& file,
                                    std::vector<FileDiagnostic>& errors);

/// Reads and parses the gateway config at `path`; `text`, when given, receives what was read.
GatewayConfig LoadGatewayConfigFile(const std::string& path, std::vector<FileDiagnostic>& errors,
                                    std::string* text = nullptr);

/// The second pass over tenants, once the policy is compiled: every tenant flag must be known
/// to the policy (built in or declared under its `tenant_flags:`). Errors point into `file`,
/// the gateway config. Run it again on every policy reload: a reload that drops a flag a
/// tenant still uses must be refused.
std::vector<FileDiagnostic> CheckTenantFlags(const GatewayConfig& config,
                                             const policy::Snapshot& snapshot,
                                             const std::string& file);

/// The top-level keys of a gateway config that a reload (SIGHUP, POST /admin/reload) applies
/// to a running gateway: who may call (tenants, their keys, certificate bindings, regions,
/// flags, limits) and who may assert a region. Everything else (listeners, TLS material,
/// workers, the store, the audit log, ...) takes a restart.
inline constexpr std::string_view kReloadableKeys = "'tenants' and 'trusted_proxies'";
bool IsReloadableKey(std::string_view key);

/// The changes from `running_text` (the config a gateway started with, or last reloaded) to
/// `new_text` that a reload cannot apply: one error per top-level key outside IsReloadableKey
/// whose value differs (compared as data: comments, layout and key order do not count), at its
/// position in `new_text` (`file`), or without a position for a key that was removed. Both
/// texts are expected to be valid configs.
std::vector<FileDiagnostic> RestartOnlyChanges(std::string_view running_text,
                                               std::string_view new_text, const std::string& file);

}  // namespace meridian::config
