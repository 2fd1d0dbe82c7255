// Rate limits as token buckets shared by every replica: a bucket holds up to `capacity` units
// (requests or tokens) and refills at capacity per `window_ms` (a minute for RPM/TPM); a
// request takes its cost from every bucket it is subject to (tenant, API key, subject) or
// from none. The arithmetic is one pure function (TakeFromBuckets), run inside Redis as a Lua
// script (atomic: concurrent replicas cannot lose an update or over-admit, and Redis's clock
// is the only clock) or in process for the embedded demo and single-process development.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/core/status.h"

namespace meridian::store {

class RedisPool;

struct BucketSpec {
  std::string key;  ///< e.g. "meridian:rl:key:<key id>:rpm" (never a secret)
  double capacity = 0;
  /// Refills `capacity` per window_ms. 0: a budget that never refills; it ends with its
  /// period (the key names the period) in `period_left_ms`.
  std::int64_t window_ms = 60000;
  double cost = 1;  ///< what this request takes (1 request, or its estimated tokens)
  std::int64_t period_left_ms = 0;  ///< window_ms 0: until the budget's period ends
};

/// A bucket after the take (or after the refusal: unchanged).
struct BucketReading {
  std::int64_t remaining = 0;  ///< whole units left (floor; 0 when in debt)
  std::int64_t reset_ms = 0;   ///< until the bucket is full again (x-ratelimit-reset-*)
};

struct TakeResult {
  core::Status status;  ///< not ok: the store could not answer (nothing was taken)
  bool allowed = false;
  std::size_t denied = 0;              ///< the first bucket that was short, when !allowed
  std::int64_t retry_after_ms = 0;     ///< until that bucket holds the cost, when !allowed
  std::vector<BucketReading> buckets;  ///< one per spec, in order
};

/// One bucket's stored state: its level and when it was last written (ms, the store's clock).
struct BucketState {
  double level = 0;
  std::int64_t at_ms = 0;
  bool exists = false;
};

/// The arithmetic both stores run: refills every bucket to `now_ms` (a new bucket is full),
/// then takes every cost if each bucket holds its own, else takes nothing. A cost larger than
/// a bucket's capacity can never be met: refused with retry_after_ms = -1. `states` is
/// updated when allowed (levels may go negative only through Settle).
TakeResult TakeFromBuckets(const std::vector<BucketSpec>& specs, std::vector<BucketState>& states,
                           std::int64_t now_ms);

/// Settles a bucket after the fact: `delta` > 0 takes more (the answer used more tokens than
/// reserved, possibly into debt down to -capacity), < 0 gives back (never above capacity).
void SettleBucket(const BucketSpec& spec, BucketState& state, double delta, std::int64_t now_ms);

/// A bound on concurrent holders: at most `limit` leases on `key` at once. A lease is held by
/// an id until it is released or expires (its holder stopped renewing it: a crashed replica).
struct LeaseSpec {
  std::string key;  ///< e.g. "meridian:rl:{tenant}:t:streams"
  std::int64_t limit = 0;
};

struct LeaseResult {
  core::Status status;  ///< not ok: the store could not answer (nothing was acquired)
  bool allowed = false;
  std::size_t denied = 0;  ///< the first spec that was full, when !allowed
  std::int64_t held = 0;   ///< the leases that spec held then
};

/// The holders of one lease key: lease id -> expiry (ms, the store's clock).
using LeaseHolders = std::unordered_map<std::string, std::int64_t>;

/// The arithmetic both stores run: drops expired leases, then gives `id` a lease on every
/// spec (until now_ms + ttl_ms) if each has room (or already holds `id`), else on none. With
/// `commit` false only checks (the holders lose only their expired leases).
LeaseResult AcquireLeases(const std::vector<LeaseSpec>& specs,
                          const std::vector<LeaseHolders*>& holders, const std::string& id,
                          std::int64_t ttl_ms, std::int64_t now_ms, bool commit = true);

/// The leases one request asks for (or holds), under one id.
struct LeaseRequest {
  std::vector<LeaseSpec> specs;
  std::string id;
  std::int64_t ttl_ms = 0;
};

/// What Admit did: the leases first; the buckets only when the leases were granted.
struct AdmitResult {
  core::Status status;  ///< not ok: the store could not answer (nothing was taken)
  LeaseResult leases;   ///< allowed when granted (also when none were asked for)
  TakeResult taken;     ///< evaluated only when leases.allowed
  bool allowed() const { return leases.allowed && taken.allowed; }
};

/// Where the buckets and the leases live. One request costs two calls: Admit at admission and
/// Finish when it ends (plus a Renew per third of the lease TTL while it runs).
class BucketStore {
 public:
  virtual ~BucketStore() = default;
  /// AcquireLeases, then TakeFromBuckets, all or none, atomically across every replica that
  /// shares the store: a request refused by a bucket holds no lease.
  virtual boost::asio::awaitable<AdmitResult> Admit(LeaseRequest leases,
                                                    std::vector<BucketSpec> specs) = 0;
  /// Releases `leases` and settles `settle` (SettleBucket with spec.cost as the delta).
  virtual boost::asio::awaitable<core::Status> Finish(LeaseRequest leases,
                                                      std::vector<BucketSpec> settle) = 0;
  /// Extends `id`'s leases to now + ttl_ms (a lease that already expired stays gone).
  virtual boost::asio::awaitable<core::Status> Renew(LeaseRequest leases) = 0;

  /// Admit with buckets only / leases only; Finish with settling only / releasing only.
  boost::asio::awaitable<TakeResult> Take(std::vector<BucketSpec> specs);
  boost::asio::awaitable<LeaseResult> Acquire(std::vector<LeaseSpec> specs, std::string id,
                                              std::int64_t ttl_ms);
  boost::asio::awaitable<core::Status> Settle(std::vector<BucketSpec> specs);
  boost::asio::awaitable<core::Status> Release(std::vector<LeaseSpec> specs, std::string id);
};

/// In this process only: not shared between replicas, lost on restart. Thread-safe (every
/// worker shares it); uses the steady clock.
class MemoryBucketStore final : public BucketStore {
 public:
  boost::asio::awaitable<AdmitResult> Admit(LeaseRequest leases,
                                            std::vector<BucketSpec> specs) override;
  boost::asio::awaitable<core::Status> Finish(LeaseRequest leases,
                                              std::vector<BucketSpec> settle) override;
  boost::asio::awaitable<core::Status> Renew(LeaseRequest leases) override;
  /// For tests: the buckets' clock (default: steady clock ms).
  void SetClockForTest(std::int64_t (*now_ms)()) { now_ms_ = now_ms; }
  /// Buckets held (expired ones are forgotten every 1024 writes).
  std::size_t size();
  /// Lease keys with a holder (a key whose last lease is released is forgotten).
  std::size_t lease_keys();

 private:
  struct Kept {
    BucketState state;
    std::int64_t expires_at_ms = 0;  ///< full again, or its period over: as if absent
  };
  BucketState Load(const std::string& key, std::int64_t now);
  void Keep(const BucketSpec& spec, const BucketState& state, std::int64_t now);
  void ForgetEmptyLeases(const std::vector<LeaseSpec>& specs);
  std::int64_t Now() const;

  std::mutex mu_;
  std::unordered_map<std::string, Kept> buckets_;
  std::unordered_map<std::string, LeaseHolders> leases_;
  std::uint64_t writes_ = 0;
  std::int64_t (*now_ms_)() = nullptr;
};

/// In Redis: Admit is one Lua script (EVALSHA, loaded on first use and again after a Redis
/// restart), Finish one pipeline (ZREMs and the settle script). Buckets are hashes
/// {level, at} that expire once full; leases sorted sets {id: expiry} that expire with their
/// last lease. `pool` is the worker's.
class RedisBucketStore final : public BucketStore {
 public:
  explicit RedisBucketStore(RedisPool& pool) : pool_(pool) {}
  boost::asio::awaitable<AdmitResult> Admit(LeaseRequest leases,
                                            std::vector<BucketSpec> specs) override;
  boost::asio::awaitable<core::Status> Finish(LeaseRequest leases,
                                              std::vector<BucketSpec> settle) override;
  boost::asio::awaitable<core::Status> Renew(LeaseRequest leases) override;

  /// The scripts' source (for `SCRIPT LOAD` by an operator, and tests).
  static std::string_view AdmitScript();
  static std::string_view SettleScript();

 private:
  RedisPool& pool_;
};

}  // namespace meridian::store
