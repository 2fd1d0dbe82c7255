// Rate limits and token budgets at admission: which buckets a request is subject to (its
// tenant's, its credential's, its subject's; requests and tokens per minute, tokens per day and
// month), what it reserves (its prompt estimated plus max_tokens), what it finally settles
// (the usage the provider reported, or an estimate from what was streamed), and what the
// client is told (x-ratelimit-* headers, 429 with Retry-After). The plan, headers and refusals
// are pure; Take/Settle run against the worker's store::BucketStore (in process or Redis).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/gateway_config.h"
#include "gateway/core/request.h"
#include "gateway/core/status.h"
#include "gateway/store/rate_limit.h"

namespace meridian::gateway {

struct GatewayState;

enum class LimitScope : std::uint8_t { kTenant, kKey, kSubject };
enum class LimitKind : std::uint8_t {
  kRequests,
  kTokens,
  kTokensPerDay,
  kTokensPerMonth,
  kConcurrentStreams,
};

/// "tenant", "key", "subject"; "requests_per_minute", "tokens_per_minute", "tokens_per_day",
/// "tokens_per_month", "concurrent_streams" (metric labels and messages).
std::string_view Name(LimitScope scope);
std::string_view Name(LimitKind kind);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// The buckets one request takes from and the concurrent-stream leases it holds.
struct QuotaPlan {
  std::vector<store::BucketSpec> specs;
  std::vector<std::pair<LimitScope, LimitKind>> what;  ///< one per spec
  double reserved_tokens = 0;                          ///< the cost taken from every token bucket
  bool fail_open = false;
  std::vector<store::LeaseSpec> leases;
  std::vector<LimitScope> lease_scopes;  ///< one per lease
  std::string lease_id;                  ///< set by TakeQuota, with the leases it holds
  bool leased = false;                   ///< the leases are held (to renew and release)

  bool empty() const { return specs.empty() && leases.empty(); }
};

/// The tokens a request may use: its input at one token per 4 bytes of text (rounded up; token
/// ids of an embeddings input count one each) plus its max_completion_tokens / max_tokens, or
/// `default_max_tokens` when it sets none (0 for embeddings, which generate nothing).
std::int64_t EstimateTokens(const core::CompletionRequest& request,
                            std::uint64_t default_max_tokens);
/// The input part of EstimateTokens.
std::int64_t EstimatePromptTokens(const core::CompletionRequest& request);

/// The tokens to settle for text an answer produced without reporting usage (one per 4 bytes).
std::int64_t TokensOfText(std::size_t bytes);

/// The buckets of `limits` for a request of `tenant` through credential `key_id` for
/// `subject` ("" : none, so no per-subject bucket), reserving `tokens`, at `unix_ms` (the
/// day and month budgets are calendar periods in UTC), and the leases of its concurrent-stream
/// limits. Keys share the hash tag {tenant}, so a
/// Redis Cluster keeps one request's keys in one slot; a subject appears only as a digest.
QuotaPlan PlanQuota(const config::TenantLimitsConfig& limits, std::string_view tenant,
                    std::string_view key_id, std::string_view subject, std::int64_t tokens,
                    std::int64_t unix_ms);

/// The token buckets of `plan`, each with cost = used - reserved (what Settle applies).
std::vector<store::BucketSpec> SettleSpecs(const QuotaPlan& plan, double used_tokens);

/// OpenAI's headers for the most constrained per-minute requests bucket and tokens bucket:
/// x-ratelimit-limit-requests, -remaining-requests, -reset-requests and the -tokens ones.
HeaderList RateLimitHeaders(const QuotaPlan& plan, const store::TakeResult& taken);

/// The 429 for a lease that was refused (a concurrent-stream limit reached).
core::Status LeaseRefusal(const QuotaPlan& plan, const store::LeaseResult& refused,
                          std::string_view tenant);

/// The 429 for a take that was refused: which limit, with Retry-After (none when the request
/// alone exceeds the limit and can never be admitted).
core::Status QuotaRefusal(const QuotaPlan& plan, const store::TakeResult& taken,
                          std::string_view tenant);

/// OpenAI's reset format: "20ms", "1s", "6m0s", "1h2m3s".
std::string FormatReset(std::int64_t ms);

/// Acquires `plan`'s leases (for store.lease_ttl, under a new random lease id) and takes its
/// buckets, all or none, in one store call: ok (and `headers` filled) when admitted; a 429 when
/// a limit is reached; when the store cannot answer, ok with a warning (fail_open) or 503
/// (fail_closed). Counts refusals and store failures.
boost::asio::awaitable<core::Status> TakeQuota(GatewayState& state, store::BucketStore& buckets,
                                               QuotaPlan& plan, std::string_view tenant,
                                               HeaderList& headers);

/// Settles a request's token buckets with what it used and releases its leases; a store
/// failure is logged, nothing else (the request is over; unreleased leases expire).
boost::asio::awaitable<void> SettleQuota(store::BucketStore& buckets, QuotaPlan& plan,
                                         double used_tokens);

/// Keeps a request's leases alive while it runs: renews them every third of the lease TTL on
/// `executor` until destroyed. Does nothing for a plan without leases held.
class LeaseRenewal {
 public:
  LeaseRenewal(boost::asio::any_io_executor executor, store::BucketStore& buckets,
               const QuotaPlan& plan, std::chrono::milliseconds ttl);
  ~LeaseRenewal();
  LeaseRenewal(const LeaseRenewal&) = delete;
  LeaseRenewal& operator=(const LeaseRenewal&) = delete;

 private:
  struct Loop;
  std::shared_ptr<Loop> loop_;
};

}  // namespace meridian::gateway
