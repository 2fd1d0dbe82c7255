#include "gateway/serve.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "config/gateway_config.h"
#include "config/policy_file.h"
#include "gateway/audit.h"
#include "gateway/core/json_text.h"
#include "gateway/file_text.h"
#include "gateway/gateway_metrics.h"
#include "gateway/log.h"
#include "gateway/pipeline.h"
#include "gateway/store/redis_client.h"

namespace meridian::gateway {
namespace {

std::string Report(const std::vector<config::FileDiagnostic>& errors) {
  std::string out;
  for (const auto& e : errors) out += config::FormatDiagnostic(e) + "\n";
  out += std::to_string(errors.size()) + (errors.size() == 1 ? " error" : " errors") +
         ": the gateway did not start\n";
  return out;
}

}  // namespace

Gateway::~Gateway() {
  Stop();
}

namespace {

/// Runs the calling thread at a lower CPU priority (nice +10) while it lives. A reload compiles
/// on a thread of its own (the control, signal or watch thread), but on a machine with few
/// cores that thread shares one with a worker: at equal priority the scheduler hands the
/// compile whole time slices and the worker's requests wait behind them (p99 x3 with a
/// 1,000-route policy reloaded every 100 ms on one core, tests/bench/reload_latency.sh). A
/// thread's nice value is per thread on Linux; failing to change it changes nothing else.
class BackgroundPriority {
 public:
  BackgroundPriority() {
    const auto tid = static_cast<id_t>(::gettid());
    errno = 0;
    const int before = ::getpriority(PRIO_PROCESS, tid);
    if (errno != 0) return;
    if (before < kNice && ::setpriority(PRIO_PROCESS, tid, kNice) == 0) restore_ = before;
  }
  ~BackgroundPriority() {
    // Raising it back needs no privilege only up to the value the thread started with, on
    // kernels that allow it (RLIMIT_NICE); otherwise the thread stays at the background
    // value, which is right for the threads that reload anyway.
    if (restore_) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), *restore_);
  }
  BackgroundPriority(const BackgroundPriority&) = delete;
  BackgroundPriority& operator=(const BackgroundPriority&) = delete;

 private:
  static constexpr int kNice = 10;
  std::optional<int> restore_;
};

}  // namespace

namespace {

/// What the policy directory's watcher names its reloads.
constexpr std::string_view kFileChangeTrigger = "file change";

/// Limits need the store, which a gateway started without any did not start.
std::vector<config::FileDiagnostic> CheckLimitsNeedNoStore(const config::GatewayConfig& next,
                                                           const std::string& file) {
  std::vector<config::FileDiagnostic> errors;
  for (const auto& t : next.tenants) {
    if (!t.limits) continue;
    errors.push_back({file, t.pos,
                      "tenant '" + t.id.value +
                          "': limits added to a gateway that started without any: the store "
                          "they are counted in is not running; restart the gateway to apply "
                          "them"});
  }
  return errors;
}

std::size_t KeyCount(const config::GatewayConfig& cfg) {
  std::size_t n = 0;
  for (const auto& t : cfg.tenants) {
    n += t.api_key_sha256.size() + t.client_cert_uris.size() + t.client_cert_cns.size();
  }
  return n;
}

}  // namespace

ReloadResult Gateway::Reload(std::string_view trigger) {
  const BackgroundPriority background;
  std::unique_lock lock(reload_mu_);
  ReloadResult r;
  policy::SnapshotPtr before;
  auto finish = [&](ReloadResult result) {
    // A watched directory changes for many reasons (an audit log beside the policy): the
    // console lists what an operator did, and every reload that changed or refused something.
    if (!(result.ok && !result.changed && trigger == kFileChangeTrigger)) {
      state_->reloads.Add(std::string(trigger), UnixMillisNow(), result,
                          result.policy_changed ? before : nullptr, state_->Table()->policy);
    }
    ++reload_attempts_;
    (result.ok ? state_->counters.policy_reloads_ok : state_->counters.policy_reloads_failed)
        .fetch_add(result.ok ? (result.changed ? 1 : 0) : 1, std::memory_order_relaxed);
    lock.unlock();
    reload_cv_.notify_all();
    return result;
  };
  const RoutingTablePtr serving = state_->Table();
  before = serving->policy;
  r.version = serving->policy->version;
  if (policy_path_.empty()) {
    r.errors.push_back("the policy is embedded in the binary (no --config): nothing to reload");
    Log(LogLevel::kWarning, "reload (" + std::string(trigger) + "): " + r.errors.back());
    return finish(r);
  }
  // Both files are read and validated together; both are swapped in, or neither.
  std::string policy_text = policy_text_;
  std::string config_text = config_text_;
  if (!ReadWholeFile(policy_path_, policy_text)) r.errors.push_back(policy_path_ + ": cannot read");
  if (!config_path_.empty() && !ReadWholeFile(config_path_, config_text)) {
    r.errors.push_back(config_path_ + ": cannot read");
  }
  const bool policy_new = policy_text != policy_text_;
  const bool config_new = config_text != config_text_;
  if (r.errors.empty() && !policy_new && !config_new) {
    r.ok = true;
    return finish(r);
  }
  std::vector<config::FileDiagnostic> errors;
  config::GatewayConfig next;
  std::shared_ptr<Identities> callers;
  if (r.errors.empty() && config_new) {
    next = config::LoadGatewayConfigYaml(config_text, config_path_, errors);
    if (errors.empty())
      errors = config::RestartOnlyChanges(config_text_, config_text, config_path_);
    if (errors.empty() && !running_.HasLimits() && next.HasLimits()) {
      errors = CheckLimitsNeedNoStore(next, config_path_);
    }
    if (errors.empty()) {
      callers = std::make_shared<Identities>();
      callers->trusted_proxies = identity::ParseTrustedProxies(next, config_path_, errors);
      callers->tenants = identity::TenantRegistry(next.tenants);
      callers->region_header = next.trusted_proxies.region_header;
    }
  }
  policy::SnapshotPtr snapshot = serving->policy;
  if (r.errors.empty() && errors.empty() && policy_new) {
    config::LoadedPolicy policy = config::LoadPolicyText(policy_text, policy_path_);
    errors = policy.errors;
    snapshot = policy.snapshot;
  }
  if (r.errors.empty() && errors.empty() && snapshot) {
    errors = config::CheckTenantFlags(config_new ? next : running_, *snapshot, config_name_);
  }
  for (const auto& e : errors) r.errors.push_back(config::FormatDiagnostic(e));
  if (!r.errors.empty()) {
    for (const auto& e : r.errors) Log(LogLevel::kError, e);
    Log(LogLevel::kError, "reload (" + std::string(trigger) + ") refused with " +
                              std::to_string(r.errors.size()) +
                              " error(s); nothing changed: policy " + r.version +
                              " and the running tenants keep serving");
    return finish(r);
  }
  if (config_new) {
    state_->identities.store(std::move(callers));
    config_text_ = config_text;
    running_ = std::move(next);
    r.config_changed = true;
    Log(LogLevel::kInfo, "gateway config reloaded (" + std::string(trigger) +
                             "): " + std::to_string(running_.tenants.size()) + " tenants, " +
                             std::to_string(KeyCount(running_)) + " credentials");
  }
  if (policy_new) {
    auto table = RoutingTable::Build(snapshot, simulate_);
    for (const auto& w : table->warnings) Log(LogLevel::kWarning, w);
    state_->table.store(table);
    state_->metrics->SetPolicyVersion(table->policy->version);
    policy_text_ = policy_text;
    r.policy_changed = true;
    r.version = table->policy->version;
    Log(LogLevel::kInfo, "policy " + r.version + " loaded (" + std::string(trigger) + ")");
  }
  r.ok = true;
  r.changed = true;
  return finish(r);
}

std::uint64_t Gateway::reload_attempts() const {
  std::lock_guard lock(reload_mu_);
  return reload_attempts_;
}

bool Gateway::WaitForReloadAttempts(std::uint64_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(reload_mu_);
  return reload_cv_.wait_for(lock, timeout, [&] { return reload_attempts_ >= n; });
}

void Gateway::Drain(std::chrono::milliseconds deadline, std::chrono::milliseconds delay) {
  using Clock = std::chrono::steady_clock;
  GatewayState& state = *state_;
  if (drain_started_.exchange(true)) return;
  // Not ready first: load balancers take the instance out of rotation while it still accepts.
  state.ready.store(false);
  if (grpc_) grpc_->SetServing(false);
  if (delay.count() > 0) {
    Log(LogLevel::kInfo,
        "not ready (/readyz 503, gRPC health NOT_SERVING); still accepting and "
        "serving for " +
            std::to_string(delay.count()) +
            " ms (limits.drain_delay_ms) before the listeners close");
    // This thread owns the shutdown and has nothing else to do: the workers serve meanwhile.
    std::this_thread::sleep_for(delay);
  }
  state.draining.store(true);
  watcher_.reset();
  Log(LogLevel::kInfo, "draining: " + std::to_string(state.in_flight.load()) +
                           " request(s) in flight, deadline " + std::to_string(deadline.count()) +
                           " ms");
  server_->StopAccepting();
  runtime_->Drain(DrainPhase::kStart);
  auto wait_idle = [&](Clock::time_point until) {
    // The requests run on the workers; this thread only watches the count.
    while (state.in_flight.load() > 0 && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return state.in_flight.load() == 0;
  };
  if (!wait_idle(Clock::now() + deadline)) {
    Log(LogLevel::kWarning, "drain deadline passed: ending " +
                                std::to_string(state.in_flight.load()) +
                                " request(s) with an error");
    runtime_->Drain(DrainPhase::kDeadline);
    (void)wait_idle(Clock::now() + std::chrono::seconds(2));
  }
  // What this process answered, so a run's outcome is in its log even without the access log.
  const Counters& c = state.counters;
  Log(LogLevel::kInfo, "drained; since start: " + std::to_string(c.requests.load()) +
                           " HTTP requests (2xx " + std::to_string(c.responses_2xx.load()) +
                           ", 4xx " + std::to_string(c.responses_4xx.load()) + ", 5xx " +
                           std::to_string(c.responses_5xx.load()) + "; policy denials " +
                           std::to_string(c.policy_denials.load()) + ", over the concurrency " +
                           "limit " + std::to_string(c.concurrency_rejections.load()) +
                           ", client disconnects " + std::to_string(c.client_disconnects.load()) +
                           "), " + std::to_string(c.grpc_requests.load()) + " gRPC calls");
}

void Gateway::Stop() {
  std::lock_guard lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  watcher_.reset();
  if (state_) state_->ready.store(false);
  // In-flight gRPC calls get a moment to finish, then are cancelled (upstreams too); Wait
  // returns when every call has finished, and so reported. The workers still run: the calls'
  // upstream halves live on them.
  if (grpc_) grpc_->Shutdown(std::chrono::milliseconds(1000));
  // Still with the workers running, so an HTTP request that reserved its record can finish and
  // submit it: Close refuses new reservations (such a request is answered 503), waits for the
  // outstanding ones, writes everything and closes the file.
  if (state_ && state_->audit) state_->audit->Close(std::chrono::seconds(2));
  if (server_) server_->Close();
  if (runtime_) runtime_->Stop();
}

namespace {

/// Every request in flight holds two descriptors (client and upstream): raise the soft
/// open-file limit to the hard one (as nginx's worker_rlimit_nofile does), and say so when even
/// that cannot hold limits.max_concurrent_streams.
void RaiseFileLimit(std::uint64_t max_streams) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  const std::uint64_t needed = 2 * max_streams + 64;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < needed) {
    Log(LogLevel::kWarning, "open-file limit " + std::to_string(lim.rlim_cur) + " holds about " +
                                std::to_string(lim.rlim_cur / 2) +
                                " requests in flight, fewer than " +
                                "limits.max_concurrent_streams (" + std::to_string(max_streams) +
                                "): raise it (ulimit -n, LimitNOFILE=)");
  }
}

}  // namespace

namespace {

namespace asio = boost::asio;

// The export meter's HMAC key from the environment; nullptr when unset or shorter than 32 bytes.
const char* MeterKey(const config::ExportMeterConfig& m) {
  const char* key = std::getenv(m.hmac_key_env.c_str());
  return key != nullptr && std::strlen(key) >= 32 ? key : nullptr;
}

std::string MeterKeyProblem(const config::ExportMeterConfig& m) {
  return "the environment variable " + m.hmac_key_env +
         " must hold the key subject ids are hashed with, at least 32 bytes (e.g. openssl rand "
         "-hex 32)";
}

// The export meter's key, and a Redis that keeps the counts across its own restarts: RDB
// snapshots (`save` not empty) or the append-only file. Asked once, at startup.
core::Status StartExportMeter(GatewayState& state) {
  const auto& m = state.config.export_meter;
  if (!m) return core::Status::Ok();
  auto fail = [](std::string message) {
    return core::Status::Error(core::StatusCode::kInvalidArgument, "export_meter: " + message,
                               "export_meter_config");
  };
  const char* key = MeterKey(*m);
  if (key == nullptr) return fail(MeterKeyProblem(*m));
  state.meter_key = key;
  const config::StoreConfig& sc = state.config.store;
  if (sc.kind != config::StoreConfig::Kind::kRedis) {
    Log(LogLevel::kWarning,
        "export_meter counts in this process only (allow_memory_store): the counts are lost "
        "on restart and not shared with other replicas");
    return core::Status::Ok();
  }
  if (m->allow_unpersisted_redis) return core::Status::Ok();
  store::RedisOptions options;
  if (auto st = RedisOptionsFor(sc, options); !st.ok()) return st;
  // One startup question: more patience than a request's round trip.
  options.command_timeout = std::max(sc.command_timeout, std::chrono::milliseconds(1000));
  asio::io_context io;
  store::RedisPool pool(io.get_executor(), options);
  store::RedisResult result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::vector<std::vector<std::string>> commands;
        commands.push_back({"CONFIG", "GET", "save"});
        commands.push_back({"CONFIG", "GET", "appendonly"});
        result = co_await pool.Pipeline(std::move(commands));
      },
      asio::detached);
  io.run();
  if (!result.status.ok()) {
    return fail("cannot check that Redis at " + sc.host + ":" + sc.port +
                " persists its data: " + result.status.message +
                " (allow_unpersisted_redis: true starts without the check)");
  }
  auto value = [&](std::size_t i) -> std::string {
    if (i >= result.replies.size()) return {};
    const auto& v = result.replies[i];
    if (v.type != store::RespValue::Type::kArray || v.elements.size() < 2) return {};
    return v.elements[1].str;
  };
  if (value(0).empty() && value(1) != "yes") {
    return fail("Redis at " + sc.host + ":" + sc.port +
                " keeps no RDB snapshots ('save' is empty) and no append-only file "
                "(appendonly no): a Redis restart would lose the counts. Enable persistence "
                "(appendonly yes), or set allow_unpersisted_redis: true");
  }
  return core::Status::Ok();
}

}  // namespace

std::string ReadAuditSigningKey(const config::GatewayConfig& cfg, const std::string& config_name,
                                std::vector<config::FileDiagnostic>& errors) {
  if (!cfg.audit) return {};
  const config::AuditConfig& a = *cfg.audit;
  std::string pem;
  auto fail = [&](std::string message) {
    errors.push_back({config_name, a.signing_key_pos, "audit: " + std::move(message)});
    return std::string();
  };
  if (!a.signing_key_file.empty()) {
    if (!ReadWholeFile(a.signing_key_file, pem)) {
      return fail("'signing_key_file': cannot read '" + a.signing_key_file + "'");
    }
  } else if (!a.signing_key_env.empty()) {
    const char* v = std::getenv(a.signing_key_env.c_str());
    if (v == nullptr || *v == '\0') {
      return fail("'signing_key_env': the environment variable " + a.signing_key_env +
                  " is not set (it must hold the PEM Ed25519 private key)");
    }
    pem = v;
  } else {
    return {};
  }
  std::unique_ptr<audit::Ed25519Key> key;
  if (auto st = audit::Ed25519Key::FromPrivatePem(pem, key); !st.ok()) {
    return fail("signing key from " +
                (a.signing_key_file.empty() ? "$" + a.signing_key_env : a.signing_key_file) + ": " +
                st.message);
  }
  return pem;
}

namespace {

/// What Create and Check both load and validate before anything is started.
struct Loaded {
  std::string cfg_text;  ///< the gateway config as read
  config::GatewayConfig cfg;
  config::LoadedPolicy policy;
  std::vector<identity::Cidr> trusted;
  std::optional<AdminToken> admin_token;
  std::string audit_signing_key;  ///< PEM; a secret
};

core::Status Load(const ServeInputs& in, Loaded& out) {
  std::vector<config::FileDiagnostic> errors;
  config::GatewayConfig& cfg = out.cfg;
  out.cfg_text = in.config_text;
  cfg = in.config_text.empty()
            ? config::LoadGatewayConfigFile(in.config_name, errors, &out.cfg_text)
            : config::LoadGatewayConfigYaml(in.config_text, in.config_name, errors);
  if (!in.policy_text.empty()) {
    // The policy comes with the config (embedded default): its policy_file is not read.
    std::erase_if(errors, [&](const config::FileDiagnostic& e) {
      return e.pos == cfg.policy_file_pos && e.pos.line != 0;
    });
  }
  if (!in.listen_override.empty()) {
    std::string why;
    if (auto listen = config::ParseListenAddress(in.listen_override, &why)) {
      cfg.listen = *listen;
    } else {
      errors.push_back({"--listen", {}, why});
    }
  }
  if (!errors.empty()) {
    return core::Status::Error(core::StatusCode::kInvalidArgument, Report(errors));
  }
  out.policy = in.policy_text.empty() ? config::LoadPolicyFile(cfg.policy_file)
                                      : config::LoadPolicyText(in.policy_text, in.policy_name);
  if (!out.policy.snapshot) {
    return core::Status::Error(core::StatusCode::kInvalidArgument, Report(out.policy.errors));
  }
  errors = config::CheckTenantFlags(cfg, *out.policy.snapshot, in.config_name);
  out.trusted = identity::ParseTrustedProxies(cfg, in.config_name, errors);
  out.admin_token = AdminToken::Load(cfg, in.config_name, errors);
  out.audit_signing_key = ReadAuditSigningKey(cfg, in.config_name, errors);
  if (!errors.empty()) {
    return core::Status::Error(core::StatusCode::kInvalidArgument, Report(errors));
  }
  return core::Status::Ok();
}

}  // namespace

namespace {

/// What serve would find wrong building a TLS server context from these files (they are
/// readable: the config loader checked): "" when nothing. `what` names the section.
std::string TlsFilesProblem(std::string_view what, const std::string& cert, const std::string& key,
                            const std::string& client_ca) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()),
                                                        &SSL_CTX_free);
  auto why = [] {
    char buf[256] = {};
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    ERR_clear_error();
    return std::string(buf);
  };
  const std::string w(what);
  if (!ctx) return w + ": cannot create a TLS context: " + why();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
    return w + ".cert_file " + cert + ": not a PEM certificate chain (" + why() + ")";
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return w + ".key_file " + key + ": not a PEM private key, or not the certificate's (" + why() +
           ")";
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return w + ".key_file " + key + " does not match the certificate of " + cert;
  }
  if (!client_ca.empty() &&
      SSL_CTX_load_verify_locations(ctx.get(), client_ca.c_str(), nullptr) != 1) {
    return w + ".client_ca_file " + client_ca + ": no PEM CA certificate (" + why() + ")";
  }
  return {};
}

}  // namespace

core::Status Gateway::Check(const ServeInputs& in, std::vector<std::string>& warnings) {
  Loaded loaded;
  if (auto st = Load(in, loaded); !st.ok()) {
    constexpr std::string_view kServe = ": the gateway did not start\n";
    if (st.message.ends_with(kServe)) {
      st.message.replace(st.message.size() - kServe.size(), kServe.size(),
                         ": serve would not start\n");
    }
    return st;
  }
  const config::GatewayConfig& cfg = loaded.cfg;
  std::vector<std::string> problems;
  // What the start would read from the environment, without starting anything.
  // The store is used (and its password read) only for limits and the export meter.
  if (cfg.store.kind == config::StoreConfig::Kind::kRedis &&
      (cfg.HasLimits() || cfg.export_meter)) {
    store::RedisOptions options;
    if (auto st = RedisOptionsFor(cfg.store, options); !st.ok()) problems.push_back(st.message);
  }
  if (cfg.export_meter && MeterKey(*cfg.export_meter) == nullptr) {
    problems.push_back("export_meter: " + MeterKeyProblem(*cfg.export_meter));
  }
  // The TLS material as the listeners would load it (a key that is not the certificate's).
  if (cfg.tls) {
    if (auto p = TlsFilesProblem("tls", cfg.tls->cert_file, cfg.tls->key_file, ""); !p.empty()) {
      problems.push_back(p);
    }
  }
  if (cfg.grpc && cfg.grpc->tls) {
    const auto& t = *cfg.grpc->tls;
    if (auto p = TlsFilesProblem("grpc.tls", t.cert_file, t.key_file, t.client_ca_file);
        !p.empty()) {
      problems.push_back(p);
    }
  }
  if (!problems.empty()) {
    std::string message;
    for (const auto& p : problems) message += in.config_name + ": " + p + "\n";
    return core::Status::Error(core::StatusCode::kInvalidArgument, message);
  }
  const auto table = RoutingTable::Build(loaded.policy.snapshot, in.simulate);
  warnings = table->warnings;
  return core::Status::Ok();
}

core::Status Gateway::Create(const ServeInputs& in, std::unique_ptr<Gateway>& out) {
  out.reset();
  Loaded loaded;
  if (auto st = Load(in, loaded); !st.ok()) return st;
  config::GatewayConfig& cfg = loaded.cfg;
  config::LoadedPolicy& policy = loaded.policy;
  auto& trusted = loaded.trusted;
  auto& admin_token = loaded.admin_token;

  LogOptions log;
  log.level = cfg.log.level == "error"  ? LogLevel::kError
              : cfg.log.level == "warn" ? LogLevel::kWarning
                                        : LogLevel::kInfo;
  log.json = cfg.log.json;
  log.access = cfg.log.access;
  ConfigureLog(log);
  RaiseFileLimit(cfg.limits.max_concurrent_streams);

  std::unique_ptr<Gateway> g(new Gateway());
  g->state_ = std::make_unique<GatewayState>();
  GatewayState& state = *g->state_;
  state.metrics = std::make_unique<GatewayMetrics>(state);
  if (cfg.audit) {
    audit::Options o;
    o.path = cfg.audit->path;
    o.flush_interval = cfg.audit->flush_interval;
    o.fsync = cfg.audit->fsync;
    o.max_file_bytes = cfg.audit->max_file_bytes;
    o.max_files = cfg.audit->max_files;
    o.queue_capacity = static_cast<std::size_t>(cfg.audit->queue_capacity);
    o.on_failure = cfg.audit->fail_closed ? audit::OnFailure::kRejectRequests
                                          : audit::OnFailure::kDropAndCount;
    o.signing_key_pem = std::move(loaded.audit_signing_key);
    o.checkpoint_interval = std::chrono::seconds(cfg.audit->checkpoint_interval_s);
    o.on_error = [](std::string_view message) {
      Log(LogLevel::kError, "audit log: " + std::string(message));
    };
    o.on_warning = [](std::string_view message) {
      Log(LogLevel::kWarning, "audit log: " + std::string(message));
    };
    if (auto st = audit::AuditLog::Open(std::move(o), state.audit); !st.ok()) {
      st.message = "audit log: " + st.message + "\n";
      return st;
    }
    const audit::AuditLog* sink = state.audit.get();
    auto& reg = state.metrics->registry();
    reg.AddGaugeCallback("meridian_audit_queue_depth", "Audit records waiting to be written.",
                         [sink] { return static_cast<double>(sink->stats().queue_depth); });
    reg.AddCounterCallback("meridian_audit_records_written_total", "Audit lines written.",
                           [sink] { return static_cast<double>(sink->stats().written); });
    reg.AddCounterCallback("meridian_audit_records_dropped_total",
                           "Audit records lost (on_failure: continue, or unwritten at shutdown).",
                           [sink] { return static_cast<double>(sink->stats().dropped); });
    reg.AddCounterCallback("meridian_audit_write_errors_total",
                           "Failed audit writes (open, write, rotate, fsync).",
                           [sink] { return static_cast<double>(sink->stats().write_errors); });
    reg.AddCounterCallback(
        "meridian_audit_torn_tail_repaired_total",
        "Audit files opened with a torn last line (a writer stopped mid-line), truncated back "
        "to their last complete line.",
        [sink] { return static_cast<double>(sink->stats().torn_tails_repaired); });
    reg.AddCounterCallback("meridian_audit_checkpoints_total",
                           "Signed audit checkpoints written (audit.signing_key_*).",
                           [sink] { return static_cast<double>(sink->stats().checkpoints); });
    reg.AddGaugeCallback("meridian_audit_healthy", "1 while the audit sink writes successfully.",
                         [sink] { return sink->stats().healthy ? 1.0 : 0.0; });
  }
  g->config_text_ = loaded.cfg_text;
  g->running_ = cfg;
  auto callers = std::make_shared<Identities>();
  callers->tenants = identity::TenantRegistry(cfg.tenants);
  callers->trusted_proxies = std::move(trusted);
  callers->region_header = cfg.trusted_proxies.region_header;
  state.identities.store(std::move(callers));
  state.admin_token = std::move(admin_token);
  state.config = std::move(cfg);
  auto table = RoutingTable::Build(policy.snapshot, in.simulate);
  for (const auto& w : table->warnings) Log(LogLevel::kWarning, w);
  state.table.store(table);
  state.metrics->SetPolicyVersion(table->policy->version);

  if (auto st = Runtime::Create(state.config, g->runtime_); !st.ok()) {
    st.message += "\n";
    return st;
  }
  if (auto st = StartExportMeter(state); !st.ok()) {
    st.message += "\n";
    return st;
  }
  g->server_ = std::make_unique<http::HttpServer>(state, *g->runtime_);
  if (auto st = g->server_->Start(); !st.ok()) {
    st.message += "\n";
    return st;
  }
  if (state.config.grpc) {
    g->grpc_ = std::make_unique<grpcfe::GrpcServer>(state, *g->runtime_);
    if (auto st = g->grpc_->Start(); !st.ok()) {
      g->grpc_.reset();
      st.message += "\n";
      return st;
    }
  }
  g->config_name_ = in.config_name;
  if (in.config_text.empty()) g->config_path_ = in.config_name;
  g->simulate_ = in.simulate;
  if (in.policy_text.empty()) {
    g->policy_path_ = state.config.policy_file;
    (void)ReadWholeFile(g->policy_path_, g->policy_text_);  // what a reload compares with
    if (auto st = DirectoryWatcher::Start(
            g->policy_path_, [gw = g.get()] { (void)gw->Reload(kFileChangeTrigger); }, g->watcher_);
        !st.ok()) {
      Log(LogLevel::kWarning, st.message + " (reload with SIGHUP instead)");
    }
  }
  state.reload = [gw = g.get()] { return gw->Reload("admin"); };
  {
    ReloadResult started;
    started.ok = true;
    started.changed = true;
    started.policy_changed = true;
    started.config_changed = true;
    started.version = table->policy->version;
    state.reloads.Add("start", UnixMillisNow(), started, nullptr, table->policy);
  }
  // Reloadable: served from state.identities only, so nothing can read a stale copy here.
  state.config.tenants.clear();
  state.config.trusted_proxies = {};
  state.ready.store(true);
  Log(LogLevel::kInfo, "policy " + table->policy->version + " loaded (" +
                           std::to_string(table->policy->providers.size()) + " providers, " +
                           std::to_string(table->policy->routes.size()) + " routes" +
                           (in.simulate ? ", every provider simulated" : "") + ")");
  Log(LogLevel::kInfo, std::string("listening on ") + (state.config.tls ? "https://" : "http://") +
                           (state.config.listen.ipv6 ? "[" + state.config.listen.host + "]"
                                                     : state.config.listen.host) +
                           ":" + std::to_string(g->port()));
  if (g->admin_port() != 0) {
    const auto& admin = *state.config.admin_listen;
    Log(LogLevel::kInfo, "admin listening on http://" +
                             (admin.ipv6 ? "[" + admin.host + "]" : admin.host) + ":" +
                             std::to_string(g->admin_port()));
    Log(LogLevel::kInfo,
        "admin routes other than /healthz and /readyz require the bearer "
        "token from " +
            state.admin_token->source());
  }
  if (g->grpc_) {
    const auto& grpc = *state.config.grpc;
    Log(LogLevel::kInfo,
        std::string("gRPC listening on ") + (grpc.plaintext ? "" : "TLS ") +
            (grpc.tls && !grpc.tls->client_ca_file.empty()
                 ? (grpc.tls->require_client_cert ? "(mTLS required) " : "(mTLS optional) ")
                 : "") +
            (grpc.listen.ipv6 ? "[" + grpc.listen.host + "]" : grpc.listen.host) + ":" +
            std::to_string(g->grpc_port()));
  }
  out = std::move(g);
  return core::Status::Ok();
}

}  // namespace meridian::gateway
