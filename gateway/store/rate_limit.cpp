#include "gateway/store/rate_limit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <utility>

#include "gateway/store/redis_client.h"

namespace meridian::store {

namespace asio = boost::asio;
using core::Status;
using core::StatusCode;

namespace {

double Refilled(const BucketSpec& spec, const BucketState& state, std::int64_t now_ms) {
  if (!state.exists) return spec.capacity;
  if (spec.window_ms == 0) return state.level;
  const double elapsed = static_cast<double>(std::max<std::int64_t>(0, now_ms - state.at_ms));
  return std::min(spec.capacity,
                  state.level + elapsed * spec.capacity / static_cast<double>(spec.window_ms));
}

std::int64_t MsToHold(const BucketSpec& spec, double level, double amount) {
  if (spec.window_ms == 0) return level >= amount ? 0 : spec.period_left_ms;
  return static_cast<std::int64_t>(
      std::ceil((amount - level) * static_cast<double>(spec.window_ms) / spec.capacity));
}

BucketReading Reading(const BucketSpec& spec, double level) {
  return {static_cast<std::int64_t>(std::floor(std::max(0.0, level))),
          std::max<std::int64_t>(0, MsToHold(spec, level, spec.capacity))};
}

// The same arithmetic as TakeFromBuckets / SettleBucket, in Redis's Lua, on Redis's clock.
constexpr std::string_view kPrelude = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function refilled(key, cap, win)
  local s = redis.call('HMGET', key, 'level', 'at')
  if not s[1] then return cap end
  if win == 0 then return tonumber(s[1]) end
  return math.min(cap, tonumber(s[1]) + math.max(0, now - tonumber(s[2])) * cap / win)
end
local function hold(cap, win, left, level, amount)
  if level >= amount then return 0 end
  if win == 0 then return left end
  return math.ceil((amount - level) * win / cap)
end
local function store(key, cap, win, left, level)
  redis.call('HSET', key, 'level', string.format('%.17g', level), 'at', now)
  if win == 0 then
    redis.call('PEXPIRE', key, left + 60000)
  else
    redis.call('PEXPIRE', key, math.ceil((cap - level) * win / cap) + 1000)
  end
end
)lua";

// Admit: the leases (KEYS[1..nl]), then the buckets (the rest), all or none.
// ARGV: nl, lease id, ttl_ms, each lease key's limit, then 4 per bucket: capacity, window_ms,
// cost, period_left_ms. Returns {lease_denied, held, bucket_denied, retry, then level and
// reset of each bucket} (just the first four when a lease was refused).
constexpr std::string_view kAdmitBody = R"lua(
-- A lease key lives as long as its longest lease (replicas may run different TTLs).
local function expire_with_last(key)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', key, math.ceil(tonumber(top[2])) + 1000) end
end
local nl, id, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
for i = 1, nl do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local n = redis.call('ZCARD', KEYS[i])
  if not redis.call('ZSCORE', KEYS[i], id) and n >= tonumber(ARGV[3 + i]) then
    return {i, n, 0, 0}
  end
end
local b = 3 + nl
local levels = {}
local denied, retry = 0, 0
for i = 1, #KEYS - nl do
  local a = b + 4 * (i - 1)
  local cap, win, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local left = tonumber(ARGV[a + 4])
  local level = refilled(KEYS[nl + i], cap, win)
  levels[i] = level
  if denied == 0 then
    if cost > cap then denied, retry = i, -1
    elseif level < cost then denied, retry = i, hold(cap, win, left, level, cost) end
  end
end
local out = {0, 0, denied, retry}
for i = 1, #KEYS - nl do
  local a = b + 4 * (i - 1)
  local cap, win, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local left = tonumber(ARGV[a + 4])
  local level = levels[i]
  if denied == 0 then
    level = level - cost
    store(KEYS[nl + i], cap, win, left, level)
  end
  out[#out + 1] = math.floor(math.max(0, level))
  out[#out + 1] = hold(cap, win, left, level, cap)
end
if denied == 0 then
  for i = 1, nl do
    redis.call('ZADD', KEYS[i], now + ttl, id)
    expire_with_last(KEYS[i])
  end
end
return out
)lua";

constexpr std::string_view kSettleBody = R"lua(
for i = 1, #KEYS do
  local cap, win, delta = tonumber(ARGV[4*i-3]), tonumber(ARGV[4*i-2]), tonumber(ARGV[4*i-1])
  local left = tonumber(ARGV[4*i])
  local level = math.max(-cap, math.min(cap, refilled(KEYS[i], cap, win) - delta))
  store(KEYS[i], cap, win, left, level)
end
return #KEYS
)lua";

// ARGV: lease id, ttl_ms. A lease already released or expired is not brought back.
constexpr std::string_view kLeaseRenew = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, ttl = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS do
  local held = redis.call('ZSCORE', KEYS[i], id)
  if held and tonumber(held) > now then
    redis.call('ZADD', KEYS[i], 'XX', now + ttl, id)
    local top = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', KEYS[i], math.ceil(tonumber(top[2])) + 1000)
  end
end
return #KEYS
)lua";

struct Script {
  std::string source;
  std::string sha;
  explicit Script(std::string s) : source(std::move(s)), sha(ScriptSha(source)) {}
};

const Script& AdmitDef() {
  static const Script s(std::string(kPrelude) + std::string(kAdmitBody));
  return s;
}
const Script& SettleDef() {
  static const Script s(std::string(kPrelude) + std::string(kSettleBody));
  return s;
}
const Script& RenewDef() {
  static const Script s{std::string(kLeaseRenew)};
  return s;
}

std::string Number(double v) {
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%.17g", v);
  return std::string(buf, static_cast<std::size_t>(std::max(0, n)));
}

Status StoreError(std::string message) {
  Status s = Status::Error(StatusCode::kUnavailable, "shared state store: " + std::move(message),
                           "store_unavailable");
  s.retryable = true;
  return s;
}

void AppendBuckets(const std::vector<BucketSpec>& specs, std::vector<std::string>& keys,
                   std::vector<std::string>& args) {
  for (const BucketSpec& s : specs) {
    keys.push_back(s.key);
    args.push_back(Number(s.capacity));
    args.push_back(std::to_string(s.window_ms));
    args.push_back(Number(s.cost));
    args.push_back(std::to_string(s.period_left_ms));
  }
}

std::vector<std::string> EvalShaCommand(const Script& script, std::vector<std::string> keys,
                                        std::vector<std::string> args) {
  std::vector<std::string> command{"EVALSHA", script.sha, std::to_string(keys.size())};
  for (auto& k : keys) command.push_back(std::move(k));
  for (auto& a : args) command.push_back(std::move(a));
  return command;
}

// A script's reply that is an error, or not an array of integers of at least `n` elements.
std::optional<Status> BadReply(const RespValue& v, std::size_t n, std::string_view what) {
  if (v.is_error())
    return StoreError(std::string(what) + " script failed: " + v.str.substr(0, 200));
  bool ok = v.type == RespValue::Type::kArray && v.elements.size() >= n;
  for (std::size_t i = 0; ok && i < v.elements.size(); ++i) {
    ok = v.elements[i].type == RespValue::Type::kInteger;
  }
  if (!ok) return StoreError(std::string(what) + " script returned an unexpected reply");
  return std::nullopt;
}

}  // namespace

TakeResult TakeFromBuckets(const std::vector<BucketSpec>& specs, std::vector<BucketState>& states,
                           std::int64_t now_ms) {
  TakeResult r;
  states.resize(specs.size());
  std::vector<double> levels;
  levels.reserve(specs.size());
  r.allowed = true;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const double level = Refilled(specs[i], states[i], now_ms);
    levels.push_back(level);
    if (!r.allowed) continue;
    if (specs[i].cost > specs[i].capacity) {
      r.allowed = false;
      r.denied = i;
      r.retry_after_ms = -1;
    } else if (level < specs[i].cost) {
      r.allowed = false;
      r.denied = i;
      r.retry_after_ms = MsToHold(specs[i], level, specs[i].cost);
    }
  }
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (r.allowed) {
      levels[i] -= specs[i].cost;
      states[i] = {levels[i], now_ms, true};
    }
    r.buckets.push_back(Reading(specs[i], levels[i]));
  }
  return r;
}

void SettleBucket(const BucketSpec& spec, BucketState& state, double delta, std::int64_t now_ms) {
  const double level = Refilled(spec, state, now_ms) - delta;
  state = {std::clamp(level, -spec.capacity, spec.capacity), now_ms, true};
}

LeaseResult AcquireLeases(const std::vector<LeaseSpec>& specs,
                          const std::vector<LeaseHolders*>& holders, const std::string& id,
                          std::int64_t ttl_ms, std::int64_t now_ms, bool commit) {
  LeaseResult r;
  r.allowed = true;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    LeaseHolders& h = *holders[i];
    std::erase_if(h, [now_ms](const auto& kv) { return kv.second <= now_ms; });
    if (!h.contains(id) && static_cast<std::int64_t>(h.size()) >= specs[i].limit) {
      r.allowed = false;
      r.denied = i;
      r.held = static_cast<std::int64_t>(h.size());
      return r;
    }
  }
  if (commit) {
    for (LeaseHolders* h : holders) (*h)[id] = now_ms + ttl_ms;
  }
  return r;
}

// (GCC 12: no braced temporaries as arguments of a co_awaited call; named locals instead.)
asio::awaitable<TakeResult> BucketStore::Take(std::vector<BucketSpec> specs) {
  LeaseRequest none;
  AdmitResult r = co_await Admit(std::move(none), std::move(specs));
  r.taken.status = std::move(r.status);
  co_return std::move(r.taken);
}

asio::awaitable<LeaseResult> BucketStore::Acquire(std::vector<LeaseSpec> specs, std::string id,
                                                  std::int64_t ttl_ms) {
  LeaseRequest leases;
  leases.specs = std::move(specs);
  leases.id = std::move(id);
  leases.ttl_ms = ttl_ms;
  std::vector<BucketSpec> no_buckets;
  AdmitResult r = co_await Admit(std::move(leases), std::move(no_buckets));
  r.leases.status = std::move(r.status);
  co_return std::move(r.leases);
}

asio::awaitable<Status> BucketStore::Settle(std::vector<BucketSpec> specs) {
  LeaseRequest none;
  co_return co_await Finish(std::move(none), std::move(specs));
}

asio::awaitable<Status> BucketStore::Release(std::vector<LeaseSpec> specs, std::string id) {
  LeaseRequest leases;
  leases.specs = std::move(specs);
  leases.id = std::move(id);
  std::vector<BucketSpec> no_settle;
  co_return co_await Finish(std::move(leases), std::move(no_settle));
}

std::int64_t MemoryBucketStore::Now() const {
  if (now_ms_ != nullptr) return now_ms_();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

// When a stored bucket is no longer needed: full again (refilling), or its period over.
std::int64_t ExpiresAt(const BucketSpec& spec, const BucketState& state) {
  if (spec.window_ms == 0) return state.at_ms + spec.period_left_ms + 60000;
  return state.at_ms + std::max<std::int64_t>(0, MsToHold(spec, state.level, spec.capacity));
}

}  // namespace

BucketState MemoryBucketStore::Load(const std::string& key, std::int64_t now) {
  const auto it = buckets_.find(key);
  if (it == buckets_.end() || it->second.expires_at_ms < now) return {};
  return it->second.state;
}

void MemoryBucketStore::Keep(const BucketSpec& spec, const BucketState& state, std::int64_t now) {
  buckets_[spec.key] = {state, ExpiresAt(spec, state)};
  // Buckets of subjects seen once would pile up: every so often, forget the expired ones.
  if (++writes_ % 1024 == 0) {
    std::erase_if(buckets_, [now](const auto& kv) { return kv.second.expires_at_ms < now; });
  }
}

asio::awaitable<AdmitResult> MemoryBucketStore::Admit(LeaseRequest leases,
                                                      std::vector<BucketSpec> specs) {
  std::lock_guard lock(mu_);
  const std::int64_t now = Now();
  AdmitResult r;
  std::vector<LeaseHolders*> holders;
  holders.reserve(leases.specs.size());
  for (const LeaseSpec& s : leases.specs) holders.push_back(&leases_[s.key]);
  r.leases = AcquireLeases(leases.specs, holders, leases.id, leases.ttl_ms, now, false);
  if (r.leases.allowed) {
    std::vector<BucketState> states;
    states.reserve(specs.size());
    for (const BucketSpec& s : specs) states.push_back(Load(s.key, now));
    r.taken = TakeFromBuckets(specs, states, now);
    if (r.taken.allowed) {
      for (std::size_t i = 0; i < specs.size(); ++i) Keep(specs[i], states[i], now);
      for (LeaseHolders* h : holders) (*h)[leases.id] = now + leases.ttl_ms;
    }
  }
  ForgetEmptyLeases(leases.specs);
  co_return r;
}

asio::awaitable<Status> MemoryBucketStore::Finish(LeaseRequest leases,
                                                  std::vector<BucketSpec> settle) {
  std::lock_guard lock(mu_);
  const std::int64_t now = Now();
  for (const LeaseSpec& s : leases.specs) {
    if (const auto it = leases_.find(s.key); it != leases_.end()) it->second.erase(leases.id);
  }
  ForgetEmptyLeases(leases.specs);
  for (const BucketSpec& s : settle) {
    BucketState state = Load(s.key, now);
    SettleBucket(s, state, s.cost, now);
    Keep(s, state, now);
  }
  co_return Status::Ok();
}

asio::awaitable<Status> MemoryBucketStore::Renew(LeaseRequest leases) {
  std::lock_guard lock(mu_);
  const std::int64_t now = Now();
  for (const LeaseSpec& s : leases.specs) {
    const auto it = leases_.find(s.key);
    if (it == leases_.end()) continue;
    const auto lease = it->second.find(leases.id);
    if (lease != it->second.end() && lease->second > now) lease->second = now + leases.ttl_ms;
  }
  co_return Status::Ok();
}

void MemoryBucketStore::ForgetEmptyLeases(const std::vector<LeaseSpec>& specs) {
  for (const LeaseSpec& s : specs) {
    if (const auto it = leases_.find(s.key); it != leases_.end() && it->second.empty()) {
      leases_.erase(it);
    }
  }
}

std::size_t MemoryBucketStore::lease_keys() {
  std::lock_guard lock(mu_);
  return leases_.size();
}

std::size_t MemoryBucketStore::size() {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

std::string_view RedisBucketStore::AdmitScript() {
  return AdmitDef().source;
}
std::string_view RedisBucketStore::SettleScript() {
  return SettleDef().source;
}

asio::awaitable<AdmitResult> RedisBucketStore::Admit(LeaseRequest leases,
                                                     std::vector<BucketSpec> specs) {
  AdmitResult r;
  std::vector<std::string> keys;
  std::vector<std::string> args{std::to_string(leases.specs.size()), std::move(leases.id),
                                std::to_string(leases.ttl_ms)};
  for (const LeaseSpec& l : leases.specs) {
    keys.push_back(l.key);
    args.push_back(std::to_string(l.limit));
  }
  AppendBuckets(specs, keys, args);
  const Script& script = AdmitDef();
  RedisResult rr =
      co_await EvalScript(pool_, script.source, script.sha, std::move(keys), std::move(args));
  if (!rr.status.ok()) {
    r.status = std::move(rr.status);
    co_return r;
  }
  const RespValue& v = rr.replies.at(0);
  if (auto bad = BadReply(v, 4, "rate-limit")) {
    r.status = std::move(*bad);
    co_return r;
  }
  const auto& e = v.elements;
  r.leases.allowed = e[0].integer == 0;
  if (!r.leases.allowed) {
    r.leases.denied = static_cast<std::size_t>(e[0].integer - 1);
    r.leases.held = e[1].integer;
    co_return r;
  }
  if (e.size() != 4 + 2 * specs.size()) {
    r.status = StoreError("rate-limit script returned an unexpected reply");
    co_return r;
  }
  r.taken.allowed = e[2].integer == 0;
  r.taken.denied = e[2].integer > 0 ? static_cast<std::size_t>(e[2].integer - 1) : 0;
  r.taken.retry_after_ms = e[3].integer;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    r.taken.buckets.push_back({e[4 + 2 * i].integer, e[5 + 2 * i].integer});
  }
  co_return r;
}

asio::awaitable<Status> RedisBucketStore::Finish(LeaseRequest leases,
                                                 std::vector<BucketSpec> settle) {
  // One round trip: the releases and the settle script, pipelined.
  std::vector<std::vector<std::string>> commands;
  for (LeaseSpec& s : leases.specs) commands.push_back({"ZREM", std::move(s.key), leases.id});
  std::vector<std::string> keys;
  std::vector<std::string> args;
  AppendBuckets(settle, keys, args);
  if (!settle.empty()) commands.push_back(EvalShaCommand(SettleDef(), keys, args));
  if (commands.empty()) co_return Status::Ok();
  RedisResult rr = co_await pool_.Pipeline(std::move(commands));
  if (!rr.status.ok()) co_return rr.status;
  Status first = Status::Ok();
  for (std::size_t i = 0; i < rr.replies.size(); ++i) {
    const RespValue& v = rr.replies[i];
    if (!v.is_error()) continue;
    const bool settle_reply = !settle.empty() && i + 1 == rr.replies.size();
    if (settle_reply && v.str.starts_with("NOSCRIPT")) {
      // Redis lost its script cache (a restart, SCRIPT FLUSH): once more with the source,
      // which loads it again.
      std::vector<std::string> eval = EvalShaCommand(SettleDef(), std::move(keys), std::move(args));
      eval[0] = "EVAL";
      eval[1] = SettleDef().source;
      RedisResult again = co_await pool_.Call(std::move(eval));
      if (!again.status.ok()) co_return again.status;
      if (again.replies.at(0).is_error() && first.ok()) {
        first =
            StoreError("rate-limit settle script failed: " + again.replies[0].str.substr(0, 200));
      }
      continue;
    }
    if (first.ok()) {
      first = StoreError(std::string(settle_reply ? "rate-limit settle script" : "lease release") +
                         " failed: " + v.str.substr(0, 200));
    }
  }
  co_return first;
}

asio::awaitable<Status> RedisBucketStore::Renew(LeaseRequest leases) {
  std::vector<std::string> keys;
  for (const LeaseSpec& s : leases.specs) keys.push_back(s.key);
  std::vector<std::string> args{std::move(leases.id), std::to_string(leases.ttl_ms)};
  const Script& script = RenewDef();
  RedisResult rr =
      co_await EvalScript(pool_, script.source, script.sha, std::move(keys), std::move(args));
  if (!rr.status.ok()) co_return rr.status;
  if (rr.replies.at(0).is_error()) {
    co_return StoreError("lease renewal script failed: " + rr.replies[0].str.substr(0, 200));
  }
  co_return Status::Ok();
}

}  // namespace meridian::store
