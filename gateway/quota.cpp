#include "gateway/quota.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cmath>
#include <random>

#include "gateway/gateway_metrics.h"
#include "gateway/gateway_state.h"
#include "gateway/identity.h"
#include "gateway/log.h"

namespace meridian::gateway {

namespace asio = boost::asio;
using core::Status;
using core::StatusCode;

namespace {

constexpr std::int64_t kMinuteMs = 60'000;

struct Period {
  std::string label;  ///< "20261203", "202612"
  std::int64_t left_ms = 0;
};

// The UTC calendar day or month holding `unix_ms`, and the time left in it.
Period PeriodOf(std::int64_t unix_ms, bool month) {
  using namespace std::chrono;
  const sys_time<milliseconds> now{milliseconds(unix_ms)};
  const sys_days today = floor<days>(now);
  const year_month_day ymd{today};
  char label[16];
  sys_days end;
  if (month) {
    std::snprintf(label, sizeof label, "%04d%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()));
    end = sys_days{(ymd.year() / ymd.month() / 1) + months(1)};
  } else {
    std::snprintf(label, sizeof label, "%04d%02u%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    end = today + days(1);
  }
  return {label, duration_cast<milliseconds>(end - now).count()};
}

std::int64_t Ceil4(std::size_t bytes) {
  return static_cast<std::int64_t>((bytes + 3) / 4);
}

bool IsTokens(LimitKind kind) {
  return kind != LimitKind::kRequests && kind != LimitKind::kConcurrentStreams;
}

std::string Whose(LimitScope scope, std::string_view tenant) {
  switch (scope) {
    case LimitScope::kTenant:
      return "tenant '" + std::string(tenant) + "'";
    case LimitScope::kKey:
      return "this API key";
    case LimitScope::kSubject:
      return "this subject (user)";
  }
  return "";
}

std::string NewLeaseId() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

std::string_view Short(LimitKind kind) {
  switch (kind) {
    case LimitKind::kRequests:
      return "requests per minute (RPM)";
    case LimitKind::kTokens:
      return "tokens per minute (TPM)";
    case LimitKind::kTokensPerDay:
      return "tokens per day";
    case LimitKind::kTokensPerMonth:
      return "tokens per month";
    case LimitKind::kConcurrentStreams:
      return "concurrent streams";
  }
  return "";
}

// The per-minute bucket of `kind` with the least left (the one a client should pace by).
std::optional<std::size_t> Tightest(const QuotaPlan& plan, const store::TakeResult& taken,
                                    LimitKind kind) {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < plan.specs.size() && i < taken.buckets.size(); ++i) {
    if (plan.what[i].second != kind) continue;
    if (!best || taken.buckets[i].remaining < taken.buckets[*best].remaining) best = i;
  }
  return best;
}

}  // namespace

std::string_view Name(LimitScope scope) {
  switch (scope) {
    case LimitScope::kTenant:
      return "tenant";
    case LimitScope::kKey:
      return "key";
    case LimitScope::kSubject:
      return "subject";
  }
  return "";
}

std::string_view Name(LimitKind kind) {
  switch (kind) {
    case LimitKind::kRequests:
      return "requests_per_minute";
    case LimitKind::kTokens:
      return "tokens_per_minute";
    case LimitKind::kTokensPerDay:
      return "tokens_per_day";
    case LimitKind::kTokensPerMonth:
      return "tokens_per_month";
    case LimitKind::kConcurrentStreams:
      return "concurrent_streams";
  }
  return "";
}

std::int64_t TokensOfText(std::size_t bytes) {
  return Ceil4(bytes);
}

std::int64_t EstimatePromptTokens(const core::CompletionRequest& request) {
  if (request.op == core::Operation::kEmbed) {
    std::int64_t n = 0;
    for (const auto& t : request.embedding.texts) n += Ceil4(t.size());
    for (const auto& t : request.embedding.tokens) n += static_cast<std::int64_t>(t.size());
    return n;
  }
  std::size_t bytes = request.tools_json.size();
  if (!request.native.json.empty()) {
    bytes += request.native.json.size();
  } else {
    for (const core::Message& m : request.messages) {
      bytes += m.text.size() + m.tool_calls_json.size();
    }
  }
  return Ceil4(bytes);
}

std::int64_t EstimateTokens(const core::CompletionRequest& request,
                            std::uint64_t default_max_tokens) {
  if (request.op == core::Operation::kEmbed) return EstimatePromptTokens(request);
  const auto cap = request.TokenLimit();
  const std::int64_t out = cap && *cap > 0 ? *cap : static_cast<std::int64_t>(default_max_tokens);
  return EstimatePromptTokens(request) + out;
}

QuotaPlan PlanQuota(const config::TenantLimitsConfig& limits, std::string_view tenant,
                    std::string_view key_id, std::string_view subject, std::int64_t tokens,
                    std::int64_t unix_ms) {
  QuotaPlan plan;
  plan.fail_open = limits.fail_open;
  plan.reserved_tokens = static_cast<double>(tokens);
  const std::string base = "meridian:rl:{" + std::string(tenant) + "}:";
  auto add = [&](LimitScope scope, LimitKind kind, const std::string& key, std::uint64_t limit,
                 std::int64_t window_ms, std::int64_t left_ms) {
    if (limit == 0) return;
    store::BucketSpec spec;
    spec.key = key;
    spec.capacity = static_cast<double>(limit);
    spec.window_ms = window_ms;
    spec.cost = IsTokens(kind) ? plan.reserved_tokens : 1.0;
    spec.period_left_ms = left_ms;
    plan.specs.push_back(std::move(spec));
    plan.what.emplace_back(scope, kind);
  };
  auto minute = [&](LimitScope scope, const std::string& prefix,
                    const config::RateLimitConfig& rate) {
    add(scope, LimitKind::kRequests, prefix + "rpm", rate.requests_per_minute, kMinuteMs, 0);
    add(scope, LimitKind::kTokens, prefix + "tpm", rate.tokens_per_minute, kMinuteMs, 0);
    if (rate.concurrent_streams != 0) {
      plan.leases.push_back(
          {prefix + "streams", static_cast<std::int64_t>(rate.concurrent_streams)});
      plan.lease_scopes.push_back(scope);
    }
  };
  minute(LimitScope::kTenant, base + "t:", limits.tenant);
  if (!key_id.empty())
    minute(LimitScope::kKey, base + "k:" + std::string(key_id) + ":", limits.per_key);
  if (!subject.empty() && limits.per_subject.any()) {
    const identity::Sha256Digest d = identity::Sha256(subject);
    const std::string id = identity::ToHex(std::span<const std::uint8_t>(d.data(), 16));
    minute(LimitScope::kSubject, base + "s:" + id + ":", limits.per_subject);
  }
  if (limits.tokens_per_day != 0) {
    const Period day = PeriodOf(unix_ms, false);
    add(LimitScope::kTenant, LimitKind::kTokensPerDay, base + "t:day:" + day.label,
        limits.tokens_per_day, 0, day.left_ms);
  }
  if (limits.tokens_per_month != 0) {
    const Period month = PeriodOf(unix_ms, true);
    add(LimitScope::kTenant, LimitKind::kTokensPerMonth, base + "t:month:" + month.label,
        limits.tokens_per_month, 0, month.left_ms);
  }
  return plan;
}

std::vector<store::BucketSpec> SettleSpecs(const QuotaPlan& plan, double used_tokens) {
  std::vector<store::BucketSpec> out;
  const double delta = used_tokens - plan.reserved_tokens;
  if (delta == 0) return out;
  for (std::size_t i = 0; i < plan.specs.size(); ++i) {
    if (!IsTokens(plan.what[i].second)) continue;
    store::BucketSpec s = plan.specs[i];
    s.cost = delta;
    out.push_back(std::move(s));
  }
  return out;
}

std::string FormatReset(std::int64_t ms) {
  if (ms < 1000) return std::to_string(std::max<std::int64_t>(0, ms)) + "ms";
  const std::int64_t h = ms / 3'600'000;
  const std::int64_t m = (ms % 3'600'000) / 60'000;
  const std::int64_t s = (ms % 60'000) / 1000;
  const std::int64_t frac = ms % 1000;
  std::string out;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  out += std::to_string(s);
  if (frac != 0) {
    char digits[8];
    std::snprintf(digits, sizeof digits, ".%03d", static_cast<int>(frac));
    std::string f(digits);
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  out += "s";
  return out;
}

HeaderList RateLimitHeaders(const QuotaPlan& plan, const store::TakeResult& taken) {
  HeaderList out;
  auto emit = [&](LimitKind kind, std::string_view suffix) {
    const auto i = Tightest(plan, taken, kind);
    if (!i) return;
    const std::string s(suffix);
    out.emplace_back("x-ratelimit-limit-" + s,
                     std::to_string(static_cast<std::int64_t>(plan.specs[*i].capacity)));
    out.emplace_back("x-ratelimit-remaining-" + s, std::to_string(taken.buckets[*i].remaining));
    out.emplace_back("x-ratelimit-reset-" + s, FormatReset(taken.buckets[*i].reset_ms));
  };
  emit(LimitKind::kRequests, "requests");
  emit(LimitKind::kTokens, "tokens");
  return out;
}

Status QuotaRefusal(const QuotaPlan& plan, const store::TakeResult& taken,
                    std::string_view tenant) {
  const std::size_t i = std::min(taken.denied, plan.specs.size() - 1);
  const auto [scope, kind] = plan.what[i];
  const store::BucketSpec& spec = plan.specs[i];
  const auto limit = static_cast<std::int64_t>(spec.capacity);
  const auto requested = static_cast<std::int64_t>(std::ceil(spec.cost));
  const std::string whose = Whose(scope, tenant);
  const bool budget = kind == LimitKind::kTokensPerDay || kind == LimitKind::kTokensPerMonth;
  Status st;
  if (taken.retry_after_ms < 0) {
    st = Status::Error(StatusCode::kRateLimited,
                       "Request too large for " + std::string(Short(kind)) + " of " + whose +
                           ": Limit " + std::to_string(limit) + ", Requested " +
                           std::to_string(requested) +
                           ". Send fewer tokens or a smaller max_tokens.",
                       "request_too_large");
    return st;
  }
  const std::int64_t remaining =
      i < taken.buckets.size() ? taken.buckets[i].remaining : std::int64_t{0};
  st = Status::Error(StatusCode::kRateLimited,
                     std::string(budget ? "Token budget" : "Rate limit") + " reached for " +
                         std::string(Short(kind)) + " of " + whose + ": Limit " +
                         std::to_string(limit) + ", Remaining " + std::to_string(remaining) +
                         ", Requested " + std::to_string(requested) + ". Please try again in " +
                         FormatReset(taken.retry_after_ms) + ".",
                     budget ? "token_budget_exceeded" : "rate_limit_exceeded");
  st.retry_after_s =
      static_cast<std::uint32_t>(std::max<std::int64_t>(1, (taken.retry_after_ms + 999) / 1000));
  return st;
}

Status LeaseRefusal(const QuotaPlan& plan, const store::LeaseResult& refused,
                    std::string_view tenant) {
  const std::size_t i = std::min(refused.denied, plan.leases.size() - 1);
  Status st = Status::Error(
      StatusCode::kRateLimited,
      "Concurrency limit reached for concurrent streams of " + Whose(plan.lease_scopes[i], tenant) +
          ": Limit " + std::to_string(plan.leases[i].limit) + ", In flight " +
          std::to_string(refused.held) + ". Please try again when one of them has ended.",
      "concurrency_limit_exceeded");
  st.retry_after_s = 1;
  return st;
}

namespace {

// What a request gets when the store cannot answer: admitted (fail_open) or a 503.
Status StoreFailure(GatewayState& state, const QuotaPlan& plan, std::string_view tenant,
                    const Status& failed) {
  if (state.metrics) state.metrics->RecordStoreFailure(plan.fail_open);
  Log(LogLevel::kWarning, "rate limits of tenant '" + std::string(tenant) +
                              "' not checked: " + failed.message +
                              (plan.fail_open ? " (on_store_failure: fail_open, admitted)"
                                              : " (on_store_failure: fail_closed, refused)"));
  if (plan.fail_open) return Status::Ok();
  Status st = Status::Error(StatusCode::kUnavailable,
                            "rate limits cannot be checked right now (shared state store "
                            "unavailable); retry shortly",
                            failed.reason);
  st.retry_after_s = state.config.limits.retry_after_s;
  return st;
}

asio::awaitable<void> ReleaseQuietly(store::BucketStore& buckets,
                                     std::vector<store::LeaseSpec> leases, std::string id) {
  (void)co_await buckets.Release(std::move(leases), std::move(id));
}

}  // namespace

asio::awaitable<Status> TakeQuota(GatewayState& state, store::BucketStore& buckets, QuotaPlan& plan,
                                  std::string_view tenant, HeaderList& headers) {
  if (plan.empty()) co_return Status::Ok();
  store::LeaseRequest leases;
  if (!plan.leases.empty()) {
    plan.lease_id = NewLeaseId();
    leases = {plan.leases, plan.lease_id, state.config.store.lease_ttl.count()};
  }
  // One round trip: the leases, then the buckets, all or none.
  const store::AdmitResult admitted = co_await buckets.Admit(std::move(leases), plan.specs);
  if (!admitted.status.ok()) {
    // The script may have run with only its reply lost (a timeout): release what it may have
    // leased, in the background — this request has had its one deadline.
    if (!plan.leases.empty()) {
      const auto executor = co_await asio::this_coro::executor;
      asio::co_spawn(executor, ReleaseQuietly(buckets, plan.leases, plan.lease_id), asio::detached);
    }
    co_return StoreFailure(state, plan, tenant, admitted.status);
  }
  if (!admitted.leases.allowed) {
    const std::size_t i = std::min(admitted.leases.denied, plan.leases.size() - 1);
    if (state.metrics) {
      state.metrics->RecordRateLimited(tenant, Name(plan.lease_scopes[i]),
                                       Name(LimitKind::kConcurrentStreams));
    }
    co_return LeaseRefusal(plan, admitted.leases, tenant);
  }
  const store::TakeResult& taken = admitted.taken;
  headers = RateLimitHeaders(plan, taken);
  if (taken.allowed) {
    plan.leased = !plan.leases.empty();
    co_return Status::Ok();
  }
  const std::size_t i = std::min(taken.denied, plan.specs.size() - 1);
  if (state.metrics) {
    state.metrics->RecordRateLimited(tenant, Name(plan.what[i].first), Name(plan.what[i].second));
  }
  // The OpenAI SDKs wait what retry-after-ms says before their own backoff.
  if (taken.retry_after_ms > 0) {
    headers.emplace_back("retry-after-ms", std::to_string(taken.retry_after_ms));
  }
  co_return QuotaRefusal(plan, taken, tenant);
}

asio::awaitable<void> SettleQuota(store::BucketStore& buckets, QuotaPlan& plan,
                                  double used_tokens) {
  store::LeaseRequest leases;
  if (plan.leased) leases = {plan.leases, plan.lease_id, 0};
  plan.leased = false;
  std::vector<store::BucketSpec> specs = SettleSpecs(plan, used_tokens);
  if (specs.empty() && leases.specs.empty()) co_return;
  const Status st = co_await buckets.Finish(std::move(leases), std::move(specs));
  if (!st.ok()) {
    Log(LogLevel::kWarning,
        "token usage not settled or concurrent-stream leases not released (they expire by "
        "themselves): " +
            st.message);
  }
}

struct LeaseRenewal::Loop {
  asio::steady_timer timer;
  store::BucketStore& buckets;
  std::vector<store::LeaseSpec> leases;
  std::string id;
  std::chrono::milliseconds ttl;
  bool stopped = false;

  static asio::awaitable<void> Run(std::shared_ptr<Loop> self) {
    bool warned = false;
    while (!self->stopped) {
      self->timer.expires_after(self->ttl / 3);
      boost::system::error_code ec;
      co_await self->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (self->stopped) co_return;
      store::LeaseRequest leases{self->leases, self->id, self->ttl.count()};
      const Status st = co_await self->buckets.Renew(std::move(leases));
      if (!st.ok() && !warned) {
        warned = true;
        Log(LogLevel::kWarning, "concurrent-stream leases not renewed: " + st.message);
      }
    }
  }
};

LeaseRenewal::LeaseRenewal(asio::any_io_executor executor, store::BucketStore& buckets,
                           const QuotaPlan& plan, std::chrono::milliseconds ttl) {
  if (!plan.leased) return;
  loop_ = std::make_shared<Loop>(
      Loop{asio::steady_timer(executor), buckets, plan.leases, plan.lease_id, ttl});
  asio::co_spawn(executor, Loop::Run(loop_), asio::detached);
}

LeaseRenewal::~LeaseRenewal() {
  if (!loop_) return;
  loop_->stopped = true;
  loop_->timer.cancel();
}

}  // namespace meridian::gateway
