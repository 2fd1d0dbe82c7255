#include "config/gateway_config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "config/yaml_json.h"
#include "config/yaml_reader.h"
#include "policy/env_name.h"
#include "policy/snapshot.h"

namespace meridian::config {
namespace {

using policy::LocatedString;
using policy::SourcePos;
using policy::StringList;

using Entry = YamlEntry;

constexpr std::int64_t kMaxTimeoutMs = 3'600'000;
constexpr std::int64_t kKiB = 1024;
constexpr std::int64_t kMiB = 1024 * kKiB;
constexpr std::int64_t kGiB = 1024 * kMiB;

constexpr std::string_view kRawKeyMessage =
    "store the SHA-256 of the key, not the key: echo -n KEY | sha256sum";
// What `echo KEY | sha256sum` without -n cannot be told apart from, but an empty key can.
constexpr std::string_view kEmptyStringSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

using policy::IsEnvVarName;  // as credential_env in a policy

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return out;
}

// An HTTP field name is an RFC 9110 token.
bool IsHeaderName(std::string_view s) {
  constexpr std::string_view kTokenPunct = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           kTokenPunct.find(c) != std::string_view::npos;
  });
}

template <std::size_t N>
std::string JoinNames(const std::array<std::string_view, N>& names) {
  std::string out;
  for (const std::string_view n : names) {
    out += (out.empty() ? "" : ", ") + std::string(n);
  }
  return out;
}

constexpr std::string_view kListenUsage =
    "write HOST:PORT with an IP address, e.g. 127.0.0.1:8080, or \"[::1]:8080\" for IPv6";

// HOST:PORT split at its last colon, or "[IPV6]:PORT" split at the bracket: why it is not one
// (`usage`, or an IPv6 address without brackets), or nothing (and fills the parts).
std::optional<std::string> SplitHostPort(std::string_view text, std::string_view usage,
                                         std::string_view& host, std::string_view& port,
                                         bool& bracketed) {
  bracketed = text.starts_with('[');
  if (bracketed) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") {
      return std::string(usage);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    return std::nullopt;
  }
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::string(usage);
  host = text.substr(0, colon);
  port = text.substr(colon + 1);
  if (host.find(':') != std::string_view::npos) {
    return "an IPv6 address must be written in brackets, e.g. \"[::1]:8080\"";
  }
  return std::nullopt;
}

// Returns why `text` is not a listen address, or nothing (and fills `out`).
std::optional<std::string> ParseListen(std::string_view text, ListenAddress& out) {
  std::string_view host;
  std::string_view port;
  bool ipv6 = false;
  if (auto why = SplitHostPort(text, kListenUsage, host, port, ipv6)) return why;
  const std::string host_str(host);
  std::array<unsigned char, sizeof(in6_addr)> buf{};
  if (inet_pton(ipv6 ? AF_INET6 : AF_INET, host_str.c_str(), buf.data()) != 1) {
    return "'" + host_str + "' is not an IP" + (ipv6 ? "v6" : "v4") +
           " address (host names are not resolved): " + std::string(kListenUsage);
  }
  std::uint16_t value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size()) {
    return "the port must be a number between 0 and 65535";
  }
  out = {host_str, value, ipv6};
  return std::nullopt;
}

// Returns why `text` is not HOST:PORT (a host name, an IPv4 address or a bracketed IPv6 one,
// and a port 1..65535), or nothing (and fills `host` and `port`).
std::optional<std::string> ParseHostPort(std::string_view text, std::string& host,
                                         std::string& port) {
  constexpr std::string_view kUsage = "write HOST:PORT, e.g. 127.0.0.1:6379 or redis.internal:6379";
  std::string_view h;
  std::string_view p;
  bool bracketed = false;
  if (auto why = SplitHostPort(text, kUsage, h, p, bracketed)) return why;
  std::uint16_t value = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (h.empty() || p.empty() || ec != std::errc() || end != p.data() + p.size() || value == 0) {
    return std::string(kUsage) + " (the port 1..65535)";
  }
  host = std::string(h);
  port = std::string(p);
  return std::nullopt;
}

// Why `path` cannot be read, or nothing. Opening is the only honest test: permission bits do
// not tell what ACLs, mounts or the process's identity allow.
std::optional<std::string> Unreadable(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return "is a directory";
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::strerror(errno);
  }
  return std::nullopt;
}

/// Reads a gateway config's YAML tree; the generic reading is YamlReader's, this class adds
/// the gateway schema and its cross-checks.
class GatewayReader : public YamlReader {
 public:
  GatewayReader(const std::string& file, std::vector<FileDiagnostic>& errors)
      : YamlReader(file, errors), dir_(std::filesystem::path(file).parent_path()) {}

  GatewayConfig ReadConfig(const YAML::Node& root);

 private:
  Handler ReadablePath(std::string& out, SourcePos* key_pos = nullptr);
  /// Milliseconds in min..kMaxTimeoutMs (timeouts: from 1; delays: from 0).
  Handler Millis(std::chrono::milliseconds& out, std::int64_t min = 1);
  /// A string that must be one of `choices` ("'key' must be a, b or c"); `set` takes it.
  Handler OneOf(std::vector<std::string_view> choices, std::function<void(const std::string&)> set);
  void ReadListen(const Entry& e, ListenAddress& out);
  void ReadTls(const Entry& e, std::optional<TlsConfig>& out);
  void ReadGrpc(const Entry& e, std::optional<GrpcConfig>& out);
  void ReadAdmin(const Entry& e, GatewayConfig& c);
  void ReadCors(const Entry& e, CorsConfig& out);
  void ReadTrustedProxies(const Entry& e, TrustedProxiesConfig& out);
  void ReadTenants(const Entry& e, std::vector<TenantConfig>& out);
  void ReadTenant(const YAML::Node& node, SourcePos pos, std::vector<TenantConfig>& out);
  void ReadKeyHashes(const Entry& e, TenantConfig& t);
  void ReadRegions(const Entry& e, TenantConfig& t);
  void ReadMechanisms(const Entry& e, TenantConfig& t);
  void ReadConsent(const Entry& e, TenantConfig& t);
  void ReadLimits(const Entry& e, TenantConfig& t);
  void ReadRate(const Entry& e, RateLimitConfig& out);
  void ReadStore(const Entry& e, StoreConfig& out);
  /// The name of an environment variable (a secret's place, never the secret): not empty.
  Handler EnvName(std::string& out);
  void CheckAcrossTenants(const std::vector<TenantConfig>& tenants);

  std::filesystem::path dir_;  ///< the config file's directory
};

GatewayConfig GatewayReader::ReadConfig(const YAML::Node& root) {
  GatewayConfig c;
  LimitsConfig& l = c.limits;
  UpstreamConfig& u = c.upstream;
  ReadFields(
      root, ToPos(root.Mark()), "the gateway config",
      {
          {"listen", [&](const Entry& e) { ReadListen(e, c.listen); }},
          {"workers", IntIn(c.workers, 1, 64)},
          {"tls", [&](const Entry& e) { ReadTls(e, c.tls); }},
          {"grpc", [&](const Entry& e) { ReadGrpc(e, c.grpc); }},
          {"audit", Section([&](const Entry& e) {
             AuditConfig a;
             std::optional<SourcePos> key_file_pos;
             std::optional<SourcePos> key_env_pos;
             ReadSubFields(e, "audit",
                           {
                               {"path",
                                [&](const Entry& p) {
                                  LocatedString path;
                                  if (!Read(p, path)) return;
                                  if (path.value.empty()) {
                                    Error(p.pos, "'path' must not be empty");
                                    return;
                                  }
                                  const std::filesystem::path fp(path.value);
                                  a.path = fp.is_absolute() ? fp.string() : (dir_ / fp).string();
                                },
                                kRequired},
                               {"flush_interval_ms", Millis(a.flush_interval)},
                               {"fsync", Into(a.fsync)},
                               {"max_file_bytes", IntIn(a.max_file_bytes, kKiB, 64 * kGiB)},
                               {"max_files", IntIn(a.max_files, 1, 1000)},
                               {"queue_capacity", IntIn(a.queue_capacity, 1, 10'000'000)},
                               {"on_failure", OneOf({"reject", "continue"},
                                                    [&](const std::string& v) {
                                                      a.fail_closed = v == "reject";
                                                    })},
                               {"signing_key_file",
                                [&](const Entry& k) {
                                  key_file_pos = k.key_pos;
                                  ReadablePath(a.signing_key_file)(k);
                                }},
                               {"signing_key_env",
                                [&](const Entry& k) {
                                  key_env_pos = k.key_pos;
                                  LocatedString name;
                                  if (!Read(k, name)) return;
                                  if (!IsEnvVarName(name.value)) {
                                    // Never echo the value: it may be the key itself.
                                    Error(k.pos,
                                          "'signing_key_env' must be the NAME of an environment "
                                          "variable (upper case, digits and _), not the key");
                                    return;
                                  }
                                  a.signing_key_env = name.value;
                                }},
                               {"checkpoint_interval_s", IntIn(a.checkpoint_interval_s, 1, 86400)},
                           });
             if (key_file_pos && key_env_pos) {
               Error(*key_env_pos,
                     "'signing_key_file' and 'signing_key_env' exclude each other: name one "
                     "source of the audit signing key");
             }
             a.signing_key_pos = key_file_pos ? *key_file_pos : key_env_pos ? *key_env_pos : e.pos;
             c.audit = a;
           })},
          {"log", Section([&](const Entry& e) {
             ReadSubFields(
                 e, "log",
                 {
                     {"level", OneOf({"info", "warn", "error"},
                                     [&](const std::string& v) { c.log.level = v; })},
                     {"format", OneOf({"text", "json"},
                                      [&](const std::string& v) { c.log.json = v == "json"; })},
                     {"access", Into(c.log.access)},
                 });
           })},
          {"admin", Section([&](const Entry& e) { ReadAdmin(e, c); })},
          {"metrics", Section([&](const Entry& e) {
             ReadSubFields(e, "metrics", {{"public", Into(c.metrics_public)}});
           })},
          {"cors", Section([&](const Entry& e) { ReadCors(e, c.cors); })},
          {"policy_file", ReadablePath(c.policy_file, &c.policy_file_pos), kRequired},
          {"limits", Section([&](const Entry& e) {
             ReadSubFields(
                 e, "limits",
                 {
                     {"max_body_bytes", IntIn(l.max_body_bytes, 1, kGiB)},
                     {"max_header_bytes", IntIn(l.max_header_bytes, kKiB, kMiB)},
                     {"header_timeout_ms", Millis(l.header_timeout)},
                     {"body_timeout_ms", Millis(l.body_timeout)},
                     {"idle_timeout_ms", Millis(l.idle_timeout)},
                     {"max_concurrent_streams", IntIn(l.max_concurrent_streams, 1, 1'000'000)},
                     {"retry_after_s", IntIn(l.retry_after_s, 0, 3600)},
                     {"drain_timeout_ms", Millis(l.drain_timeout)},
                     {"drain_delay_ms", Millis(l.drain_delay, 0)},
                 });
           })},
          {"upstream", Section([&](const Entry& e) {
             ReadSubFields(e, "upstream",
                           {
                               {"connect_timeout_ms", Millis(u.connect_timeout)},
                               {"first_byte_timeout_ms", Millis(u.first_byte_timeout)},
                               {"idle_timeout_ms", Millis(u.idle_timeout)},
                               {"max_response_bytes", IntIn(u.max_response_bytes, 1, kGiB)},
                               {"same_provider_retries", IntIn(u.same_provider_retries, 0, 3)},
                               {"ca_file", ReadablePath(u.ca_file)},
                           });
           })},
          {"trusted_proxies",
           Section([&](const Entry& e) { ReadTrustedProxies(e, c.trusted_proxies); })},
          {"tenants", [&](const Entry& e) { ReadTenants(e, c.tenants); }, kRequired},
          {"store", Section([&](const Entry& e) { ReadStore(e, c.store); })},
          {"export_meter", Section([&](const Entry& e) {
             ExportMeterConfig m;
             m.pos = e.key_pos;
             ReadSubFields(e, "export_meter",
                           {
                               {"hmac_key_env", EnvName(m.hmac_key_env), kRequired},
                               {"without_subject", OneOf({"refuse", "allow_uncounted"},
                                                         [&](const std::string& v) {
                                                           m.allow_uncounted = v != "refuse";
                                                         })},
                               {"allow_memory_store", Into(m.allow_memory_store)},
                               {"allow_unpersisted_redis", Into(m.allow_unpersisted_redis)},
                           });
             c.export_meter = m;
           })},
      });
  if (c.export_meter && c.store.kind == StoreConfig::Kind::kMemory &&
      !c.export_meter->allow_memory_store) {
    Error(c.export_meter->pos,
          "export_meter needs a durable store shared by every replica: set store.kind: redis "
          "(or allow_memory_store: true for a single process whose counts are lost on restart)");
  }
  CheckAcrossTenants(c.tenants);
  return c;
}

// A path resolved against the config's directory, which must name a readable file. The error
// points at the key: the value is a path the operator may have to look up elsewhere.
YamlReader::Handler GatewayReader::ReadablePath(std::string& out, SourcePos* key_pos) {
  return [this, &out, key_pos](const Entry& e) {
    LocatedString path;
    if (!Read(e, path)) {
      return;
    }
    if (key_pos != nullptr) {
      *key_pos = e.key_pos;
    }
    if (path.value.empty()) {
      Error(e.pos, Quoted(e.name) + " must not be empty");
      return;
    }
    const std::filesystem::path p(path.value);
    out = p.is_absolute() ? p.string() : (dir_ / p).string();
    if (const auto why = Unreadable(out)) {
      Error(e.key_pos, Quoted(e.name) + ": cannot read '" + out + "': " + *why);
    }
  };
}

YamlReader::Handler GatewayReader::Millis(std::chrono::milliseconds& out, std::int64_t min) {
  return [this, &out, min](const Entry& e) {
    std::int64_t ms = 0;
    if (ReadInt(e, min, kMaxTimeoutMs, ms)) {
      out = std::chrono::milliseconds(ms);
    }
  };
}

YamlReader::Handler GatewayReader::OneOf(std::vector<std::string_view> choices,
                                         std::function<void(const std::string&)> set) {
  return [this, choices = std::move(choices), set = std::move(set)](const Entry& e) {
    LocatedString value;
    if (!Read(e, value)) {
      return;
    }
    if (std::find(choices.begin(), choices.end(), value.value) != choices.end()) {
      set(value.value);
      return;
    }
    std::string list;
    for (std::size_t i = 0; i < choices.size(); ++i) {
      list += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + std::string(choices[i]);
    }
    Error(e.pos, Quoted(e.name) + " must be " + list);
  };
}

void GatewayReader::ReadListen(const Entry& e, ListenAddress& out) {
  if (!e.value.IsScalar()) {
    // Unquoted, `[::1]:8080` starts a YAML list.
    Error(e.pos, "'listen' must be a string: " + std::string(kListenUsage));
    return;
  }
  if (const auto why = ParseListen(e.value.Scalar(), out)) {
    Error(e.pos, "'listen': " + *why);
  }
}

void GatewayReader::ReadTls(const Entry& e, std::optional<TlsConfig>& out) {
  if (!ExpectMapping(e)) {
    return;
  }
  TlsConfig tls;
  ReadFields(e.value, e.pos, "tls",
             {
                 {"cert_file", ReadablePath(tls.cert_file), kRequired},
                 {"key_file", ReadablePath(tls.key_file), kRequired},
             });
  out = std::move(tls);
}

void GatewayReader::ReadGrpc(const Entry& e, std::optional<GrpcConfig>& out) {
  if (!ExpectMapping(e)) {
    return;
  }
  GrpcConfig g;
  std::optional<SourcePos> ca_pos;
  std::optional<SourcePos> require_pos;
  std::optional<SourcePos> plaintext_pos;
  ReadFields(e.value, e.pos, "grpc",
             {
                 {"listen", [&](const Entry& l) { ReadListen(l, g.listen); }, kRequired},
                 {"tls",
                  [&](const Entry& t) {
                    if (!ExpectMapping(t)) {
                      return;
                    }
                    GrpcTlsConfig tls;
                    ReadFields(t.value, t.pos, "grpc.tls",
                               {
                                   {"cert_file", ReadablePath(tls.cert_file), kRequired},
                                   {"key_file", ReadablePath(tls.key_file), kRequired},
                                   {"client_ca_file",
                                    [&](const Entry& c) {
                                      ca_pos = c.key_pos;
                                      ReadablePath(tls.client_ca_file)(c);
                                    }},
                                   {"require_client_cert",
                                    [&](const Entry& r) {
                                      require_pos = r.key_pos;
                                      (void)Read(r, tls.require_client_cert);
                                    }},
                               });
                    if (require_pos && !ca_pos && tls.require_client_cert) {
                      Error(
                          *require_pos,
                          "'require_client_cert' needs 'client_ca_file' (the CA that signs client "
                          "certificates)");
                    }
                    if (!ca_pos) {
                      tls.require_client_cert = false;
                    }
                    g.tls = std::move(tls);
                  }},
                 {"plaintext",
                  [&](const Entry& p) {
                    plaintext_pos = p.key_pos;
                    (void)Read(p, g.plaintext);
                  }},
                 {"max_message_bytes", IntIn(g.max_message_bytes, kKiB, 64 * kMiB)},
             });
  if (g.plaintext && g.tls) {
    Error(*plaintext_pos, "'plaintext: true' and 'tls' exclude each other");
  } else if (!g.plaintext && !g.tls) {
    Error(e.key_pos,
          "'grpc' needs 'tls' (cert_file, key_file, and client_ca_file for mTLS), or "
          "'plaintext: true' for development");
  }
  out = std::move(g);
}

// The admin listener's routes (all but the probes) require a bearer token; the file names where
// it is, never holds it.
void GatewayReader::ReadAdmin(const Entry& e, GatewayConfig& c) {
  if (!ExpectMapping(e)) {
    return;
  }
  ListenAddress listen;
  AdminTokenConfig& token = c.admin_token;
  std::optional<SourcePos> env_pos;
  std::optional<SourcePos> file_pos;
  ReadFields(
      e.value, e.pos, "admin",
      {
          {"listen", [&](const Entry& l) { ReadListen(l, listen); }, kRequired},
          {"token_env",
           [&](const Entry& t) {
             env_pos = t.key_pos;
             LocatedString name;
             if (!Read(t, name)) {
               return;
             }
             if (!IsEnvVarName(name.value)) {
               // Never echo the value: it may be the token itself.
               Error(t.pos,
                     "'token_env' must be the NAME of an environment variable (upper case, digits "
                     "and _; e.g. MERIDIAN_ADMIN_TOKEN), not the token itself");
               return;
             }
             token.env = name.value;
           }},
          {"token_file",
           [&](const Entry& t) {
             file_pos = t.key_pos;
             ReadablePath(token.file)(t);
           }},
      },
      [this](const Entry& k) {
        if (!IsSecretKeyName(k.name)) {
          return false;
        }
        Error(k.key_pos,
              "the admin token must not be written in the gateway config: put it in an "
              "environment variable named by 'token_env', or in a file named by 'token_file'");
        return true;
      });
  if (env_pos && file_pos) {
    Error(*file_pos,
          "'token_env' and 'token_file' exclude each other: name one source of the "
          "admin token");
  } else if (!env_pos && !file_pos) {
    Error(e.pos,
          "admin needs 'token_env' (the environment variable holding its bearer token) or "
          "'token_file' (a file holding it): every admin route but /healthz and /readyz "
          "requires the token");
  }
  token.pos = env_pos ? *env_pos : file_pos ? *file_pos : e.pos;
  c.admin_listen = listen;
}

// An origin as a browser sends it (RFC 6454 §6.2): scheme "://" host [":" port], nothing else.
bool IsOrigin(std::string_view s) {
  std::size_t rest = 0;
  if (s.starts_with("https://")) {
    rest = 8;
  } else if (s.starts_with("http://")) {
    rest = 7;
  } else {
    return false;
  }
  const std::string_view authority = s.substr(rest);
  if (authority.empty() || authority.find_first_of("/?#@ \t") != std::string_view::npos) {
    return false;
  }
  std::string_view host = authority;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(0, close + 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return false;
  } else if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
  }
  if (host.empty() || host.size() == authority.size()) return !host.empty();
  const std::string_view port = authority.substr(host.size() + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  return ec == std::errc() && end == port.data() + port.size() && value <= 65535 &&
         port.size() <= 5;
}

void GatewayReader::ReadCors(const Entry& e, CorsConfig& out) {
  ReadSubFields(e, "cors",
                {
                    {"allowed_origins",
                     [&](const Entry& list) {
                       policy::StringList origins;
                       if (!Read(list, origins)) return;
                       for (const LocatedString& o : origins) {
                         const std::string origin = Lower(o.value);
                         if (origin != "*" && !IsOrigin(origin)) {
                           Error(o.pos, "'allowed_origins': '" + o.value +
                                            "' is not an origin: write scheme://host[:port] "
                                            "(https://app.example.com), or \"*\" for any");
                           continue;
                         }
                         if (std::find(out.allowed_origins.begin(), out.allowed_origins.end(),
                                       origin) == out.allowed_origins.end()) {
                           out.allowed_origins.push_back(origin);
                         }
                       }
                     }},
                    {"max_age_s", IntIn(out.max_age_s, 0, 86400)},
                });
}

void GatewayReader::ReadTrustedProxies(const Entry& e, TrustedProxiesConfig& out) {
  ReadSubFields(e, "trusted_proxies",
                {
                    {"cidrs", Into(out.cidrs)},
                    {"region_header",
                     [&](const Entry& h) {
                       LocatedString name;
                       if (!Read(h, name)) {
                         return;
                       }
                       if (!IsHeaderName(name.value)) {
                         Error(h.pos,
                               "'region_header': '" + name.value + "' is not an HTTP header name");
                         return;
                       }
                       out.region_header = Lower(name.value);
                     }},
                });
}

void GatewayReader::ReadTenants(const Entry& e, std::vector<TenantConfig>& out) {
  if (e.value.IsNull() || (e.value.IsSequence() && e.value.size() == 0)) {
    Error(e.pos,
          "'tenants' must list at least one tenant (without one, every request is "
          "refused)");
    return;
  }
  ForEachItem(e, [&](const YAML::Node& item, SourcePos pos) {
    if (ExpectMappingItem(e, item, pos)) {
      ReadTenant(item, pos, out);
    }
  });
}

void GatewayReader::ReadTenant(const YAML::Node& node, SourcePos pos,
                               std::vector<TenantConfig>& out) {
  TenantConfig t;
  t.pos = pos;
  std::optional<LocatedString> default_region;
  ReadFields(
      node, pos, "tenant",
      {
          {"id",
           [&](const Entry& e) {
             if (Read(e, t.id) && !policy::IsValidId(t.id.value)) {
               Error(e.pos, "tenant id '" + t.id.value +
                                "' must be 1 to 128 letters, digits, '_', '-' or '.', starting "
                                "with a letter or digit");
             }
           },
           kRequired},
          {"api_key_sha256", [&](const Entry& e) { ReadKeyHashes(e, t); }},
          {"client_cert_uris", Into(t.client_cert_uris)},
          {"client_cert_cns", Into(t.client_cert_cns)},
          {"trust_region_claim", Into(t.trust_region_claim)},
          {"regions", [&](const Entry& e) { ReadRegions(e, t); }},
          {"default_region", Into(default_region)},
          {"default_data_class",
           [&](const Entry& e) {
             LocatedString name;
             if (!Read(e, name)) {
               return;
             }
             t.default_data_class =
                 policy::ParseName<policy::DataClass>(policy::kDataClassNames, name.value);
             if (!t.default_data_class) {
               Error(e.pos, "unknown data class '" + name.value +
                                "' (expected one of: " + JoinNames(policy::kDataClassNames) + ")");
             }
           }},
          {"tenant_flags", Into(t.tenant_flags)},
          {"mechanisms", [&](const Entry& e) { ReadMechanisms(e, t); }},
          {"consent", [&](const Entry& e) { ReadConsent(e, t); }},
          {"limits", Section([&](const Entry& e) { ReadLimits(e, t); })},
      },
      [this](const Entry& e) {
        if (!IsSecretKeyName(e.name)) {
          return false;
        }
        Error(e.key_pos, "API keys must not be written in the gateway config: " +
                             std::string(kRawKeyMessage) + ", and list it under api_key_sha256");
        return true;
      });
  if (t.api_key_sha256.empty() && t.client_cert_uris.empty() && t.client_cert_cns.empty() &&
      !node["api_key_sha256"]) {
    Error(pos, "tenant '" + t.id.value +
                   "' needs 'api_key_sha256' or client certificate identities "
                   "('client_cert_uris', 'client_cert_cns'): otherwise nobody can call as it");
  }
  for (const LocatedString& uri : t.client_cert_uris) {
    if (uri.value.find("://") == std::string::npos) {
      Error(uri.pos, "client_cert_uris: '" + uri.value +
                         "' is not a URI (e.g. spiffe://example.org/ns/prod/sa/backend)");
    }
  }
  for (const LocatedString& cn : t.client_cert_cns) {
    if (cn.value.empty()) {
      Error(cn.pos, "client_cert_cns: a common name must not be empty");
    }
  }
  if (default_region) {
    t.default_region = policy::RegionCode::Parse(default_region->value);
    if (!t.default_region) {
      Error(default_region->pos,
            "default_region: unknown region code '" + default_region->value + "'");
    } else if (std::find(t.regions.begin(), t.regions.end(), *t.default_region) ==
               t.regions.end()) {
      Error(default_region->pos, "default_region '" + default_region->value +
                                     "' is not one of this tenant's regions (add it to "
                                     "'regions')");
    }
  }
  out.push_back(std::move(t));
}

// Only digests are stored, so a leaked config does not leak keys. A value that is not hex is
// most likely the key itself; the message never repeats the value, which may be a secret.
void GatewayReader::ReadKeyHashes(const Entry& e, TenantConfig& t) {
  StringList hashes;
  if (!Read(e, hashes)) {
    return;
  }
  if (hashes.empty()) {
    Error(e.pos, "'api_key_sha256' must list at least one key digest");
  }
  for (LocatedString& h : hashes) {
    if (!IsHex(h.value)) {
      Error(h.pos, "'api_key_sha256' is not a SHA-256 digest: " + std::string(kRawKeyMessage));
      continue;
    }
    if (h.value.size() != 64) {
      Error(h.pos, "'api_key_sha256' must be exactly 64 hex digits (this one has " +
                       std::to_string(h.value.size()) + ")");
      continue;
    }
    h.value = Lower(h.value);
    if (h.value == kEmptyStringSha256) {
      Error(h.pos, "'api_key_sha256' is the SHA-256 of an empty key");
      continue;
    }
    t.api_key_sha256.push_back(std::move(h));
  }
}

void GatewayReader::ReadRegions(const Entry& e, TenantConfig& t) {
  StringList codes;
  if (!Read(e, codes)) {
    return;
  }
  for (const LocatedString& code : codes) {
    const auto region = policy::RegionCode::Parse(code.value);
    if (!region) {
      Error(code.pos, "regions: unknown region code '" + code.value + "'");
    } else if (std::find(t.regions.begin(), t.regions.end(), *region) == t.regions.end()) {
      t.regions.push_back(*region);
    }
  }
}

void GatewayReader::ReadMechanisms(const Entry& e, TenantConfig& t) {
  StringList names;
  if (!Read(e, names)) {
    return;
  }
  for (const LocatedString& name : names) {
    const auto m = policy::ParseName<policy::Mechanism>(policy::kMechanismNames, name.value);
    if (!m) {
      Error(name.pos, "unknown mechanism '" + name.value +
                          "' (expected one of: " + JoinNames(policy::kMechanismNames) + ")");
      continue;
    }
    t.mechanisms |= policy::Bit(*m);
  }
}

void GatewayReader::ReadConsent(const Entry& e, TenantConfig& t) {
  Fields fields;
  for (std::size_t i = 0; i < policy::kConsentNames.size(); ++i) {
    const auto bit = policy::Bit(static_cast<policy::Consent>(i));
    fields.push_back({policy::kConsentNames[i], [this, &t, bit](const Entry& flag) {
                        bool value = false;
                        if (Read(flag, value) && value) {
                          t.consent |= bit;
                        }
                      }});
  }
  ReadSubFields(e, "consent", fields);
}

// The most a limit may say: far beyond any real quota, well inside a double's exact integers.
constexpr std::int64_t kMaxLimit = 1'000'000'000'000;

void GatewayReader::ReadRate(const Entry& e, RateLimitConfig& out) {
  ReadSubFields(e, e.name,
                {
                    {"requests_per_minute", IntIn(out.requests_per_minute, 0, kMaxLimit)},
                    {"tokens_per_minute", IntIn(out.tokens_per_minute, 0, kMaxLimit)},
                    {"concurrent_streams", IntIn(out.concurrent_streams, 0, 1'000'000)},
                });
}

void GatewayReader::ReadLimits(const Entry& e, TenantConfig& t) {
  TenantLimitsConfig l;
  ReadSubFields(e, "limits",
                {
                    {"requests_per_minute", IntIn(l.tenant.requests_per_minute, 0, kMaxLimit)},
                    {"tokens_per_minute", IntIn(l.tenant.tokens_per_minute, 0, kMaxLimit)},
                    {"concurrent_streams", IntIn(l.tenant.concurrent_streams, 0, 1'000'000)},
                    {"tokens_per_day", IntIn(l.tokens_per_day, 0, kMaxLimit)},
                    {"tokens_per_month", IntIn(l.tokens_per_month, 0, kMaxLimit)},
                    {"per_key", Section([&](const Entry& s) { ReadRate(s, l.per_key); })},
                    {"per_subject", Section([&](const Entry& s) { ReadRate(s, l.per_subject); })},
                    {"default_max_tokens", IntIn(l.default_max_tokens, 1, 10'000'000)},
                    {"on_store_failure",
                     OneOf({"fail_closed", "fail_open"},
                           [&](const std::string& v) { l.fail_open = v == "fail_open"; })},
                });
  t.limits = l;
}

YamlReader::Handler GatewayReader::EnvName(std::string& out) {
  return [this, &out](const Entry& e) {
    LocatedString v;
    if (!Read(e, v)) return;
    if (v.value.empty()) {
      Error(e.pos, Quoted(e.name) + " must name an environment variable");
      return;
    }
    out = v.value;
  };
}

void GatewayReader::ReadStore(const Entry& e, StoreConfig& out) {
  out.pos = e.key_pos;
  if (!ExpectMapping(e)) return;
  ReadFields(e.value, e.pos, "store",
             {
                 {"kind", OneOf({"memory", "redis"},
                                [&](const std::string& v) {
                                  out.kind = v == "redis" ? StoreConfig::Kind::kRedis
                                                          : StoreConfig::Kind::kMemory;
                                })},
                 {"address",
                  [&](const Entry& a) {
                    LocatedString v;
                    if (!Read(a, v)) return;
                    if (auto why = ParseHostPort(v.value, out.host, out.port)) {
                      Error(a.pos, "'address': " + *why);
                    }
                  }},
                 {"username",
                  [&](const Entry& a) {
                    LocatedString v;
                    if (Read(a, v)) out.username = v.value;
                  }},
                 {"password_env", EnvName(out.password_env)},
                 {"db", IntIn(out.db, 0, 15)},
                 {"connect_timeout_ms", Millis(out.connect_timeout)},
                 {"command_timeout_ms", Millis(out.command_timeout)},
                 {"lease_ttl_ms", Millis(out.lease_ttl, 1000)},
             },
             [this](const Entry& a) {
               if (a.name != "password") return false;
               Error(a.key_pos,
                     "the Redis password must not be written in the gateway config: put it in an "
                     "environment variable and name it with 'password_env'");
               return true;
             });
}

void GatewayReader::CheckAcrossTenants(const std::vector<TenantConfig>& tenants) {
  std::map<std::string, const TenantConfig*, std::less<>> ids;
  std::map<std::string, std::pair<const TenantConfig*, SourcePos>, std::less<>> hashes;
  std::map<std::string, std::pair<const TenantConfig*, SourcePos>, std::less<>> cert_ids;
  for (const TenantConfig& t : tenants) {
    for (const auto* list : {&t.client_cert_uris, &t.client_cert_cns}) {
      const std::string kind = list == &t.client_cert_uris ? "uri:" : "cn:";
      for (const LocatedString& id : *list) {
        const auto [it, fresh] = cert_ids.emplace(kind + id.value, std::pair(&t, id.pos));
        if (fresh) {
          continue;
        }
        const auto& [owner, first] = it->second;
        Error(id.pos, "certificate identity '" + id.value + "' is already listed at line " +
                          std::to_string(first.line) +
                          (owner == &t ? "" : " for tenant '" + owner->id.value + "'") +
                          ": a certificate must identify exactly one tenant");
      }
    }
    if (!t.id.value.empty()) {
      if (const auto [it, fresh] = ids.emplace(t.id.value, &t); !fresh) {
        Error(t.id.pos, "duplicate tenant id '" + t.id.value + "' (first at line " +
                            std::to_string(it->second->id.pos.line) + ")");
      }
    }
    for (const LocatedString& h : t.api_key_sha256) {
      const auto [it, fresh] = hashes.emplace(h.value, std::pair(&t, h.pos));
      if (fresh) {
        continue;
      }
      const auto& [owner, first] = it->second;
      Error(h.pos, "this key digest is already listed at line " + std::to_string(first.line) +
                       (owner == &t ? "" : " for tenant '" + owner->id.value + "'") +
                       ": a key must identify exactly one tenant");
    }
  }
}

}  // namespace

bool GatewayConfig::HasLimits() const {
  return std::any_of(tenants.begin(), tenants.end(),
                     [](const TenantConfig& t) { return t.limits.has_value(); });
}

std::optional<ListenAddress> ParseListenAddress(std::string_view text, std::string* why) {
  ListenAddress out;
  if (auto error = ParseListen(text, out)) {
    if (why != nullptr) {
      *why = std::move(*error);
    }
    return std::nullopt;
  }
  return out;
}

bool CorsConfig::Allows(std::string_view origin) const {
  for (const std::string& allowed : allowed_origins) {
    if (allowed == "*") return true;
    if (allowed.size() != origin.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < origin.size() && same; ++i) {
      same = allowed[i] == std::tolower(static_cast<unsigned char>(origin[i]));
    }
    if (same) return true;
  }
  return false;
}

std::string ListenAddress::ToString() const {
  return ipv6 ? "[" + host + "]:" + std::to_string(port) : host + ":" + std::to_string(port);
}

GatewayConfig LoadGatewayConfigYaml(std::string_view text, const std::string& file,
                                    std::vector<FileDiagnostic>& errors) {
  GatewayReader reader(file, errors);
  GatewayConfig config;
  reader.ReadDocument(text, "gateway config",
                      [&](const YAML::Node& root) { config = reader.ReadConfig(root); });
  return config;
}

GatewayConfig LoadGatewayConfigFile(const std::string& path, std::vector<FileDiagnostic>& errors,
                                    std::string* text) {
  std::string read;
  if (!ReadFileText(path, "gateway config", read, errors)) {
    return {};
  }
  GatewayConfig config = LoadGatewayConfigYaml(read, path, errors);
  if (text != nullptr) *text = std::move(read);
  return config;
}

std::vector<FileDiagnostic> CheckTenantFlags(const GatewayConfig& config,
                                             const policy::Snapshot& snapshot,
                                             const std::string& file) {
  std::vector<FileDiagnostic> errors;
  for (const TenantConfig& t : config.tenants) {
    for (const LocatedString& flag : t.tenant_flags) {
      if (snapshot.FlagBit(flag.value)) {
        continue;
      }
      std::string known;
      for (const std::string& name : snapshot.flag_names) {
        known += (known.empty() ? "" : ", ") + name;
      }
      errors.push_back({file, flag.pos,
                        "tenant '" + t.id.value + "': unknown tenant flag '" + flag.value +
                            "' (the policy knows: " + known +
                            "; declare others under tenant_flags: in the policy file)"});
    }
  }
  return errors;
}

std::vector<FileDiagnostic> RestartOnlyChanges(std::string_view running_text,
                                               std::string_view new_text, const std::string& file) {
  std::vector<FileDiagnostic> errors;
  // Both texts have been validated; the reader's checks bound the walks below anyway.
  std::map<std::string, boost::json::value> running;
  YamlReader old_reader(file, errors);
  old_reader.ReadDocument(running_text, "gateway config", [&](const YAML::Node& root) {
    for (const auto& kv : root) running[kv.first.Scalar()] = YamlToJson(kv.second);
  });
  if (!errors.empty()) return errors;
  YamlReader reader(file, errors);
  reader.ReadDocument(new_text, "gateway config", [&](const YAML::Node& root) {
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      const auto it = running.find(key);
      const bool reloadable = IsReloadableKey(key);
      if (it != running.end()) {
        const bool same = it->second == YamlToJson(kv.second);
        running.erase(it);
        if (same || reloadable) continue;
      } else if (reloadable) {
        continue;
      }
      reader.Error(ToPos(kv.first.Mark()), Quoted(key) + " changed: a reload applies only " +
                                               std::string(kReloadableKeys) +
                                               "; restart the gateway to apply it");
    }
  });
  for (const auto& [key, value] : running) {
    if (IsReloadableKey(key)) continue;
    errors.push_back({file,
                      {},
                      Quoted(key) + " was removed: a reload applies only " +
                          std::string(kReloadableKeys) + "; restart the gateway to apply it"});
  }
  return errors;
}

bool IsReloadableKey(std::string_view key) {
  return key == "tenants" || key == "trusted_proxies";
}

}  // namespace meridian::config
