#include "gateway/store/export_meter.h"

#include <utility>
#include <vector>

#include "gateway/store/redis_client.h"

namespace meridian::store {

namespace asio = boost::asio;
using core::Status;
using core::StatusCode;

namespace {

// KEYS[1] the set; ARGV[1] the subject digest, ARGV[2] the limit. Returns {result, count}:
// 0 already counted, 1 added, 2 limit reached.
constexpr std::string_view kAddScript = R"lua(
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return {0, redis.call('SCARD', KEYS[1])}
end
local n = redis.call('SCARD', KEYS[1])
if n + 1 >= tonumber(ARGV[2]) then return {2, n} end
redis.call('SADD', KEYS[1], ARGV[1])
return {1, n + 1}
)lua";

Status MeterError(std::string message) {
  Status s = Status::Error(StatusCode::kUnavailable, "export meter: " + std::move(message),
                           "store_unavailable");
  s.retryable = true;
  return s;
}

}  // namespace

std::string MeterKey(std::string_view entity, int year, bool sensitive) {
  return "meridian:meter:{" + std::string(entity) + "}:" + std::to_string(year) +
         (sensitive ? ":s" : ":ns");
}

asio::awaitable<MeterCounts> MemoryExportMeter::Read(std::string entity, int year) {
  std::lock_guard lock(mu_);
  MeterCounts c;
  if (auto it = sets_.find(MeterKey(entity, year, false)); it != sets_.end()) {
    c.non_sensitive = it->second.size();
  }
  if (auto it = sets_.find(MeterKey(entity, year, true)); it != sets_.end()) {
    c.sensitive = it->second.size();
  }
  co_return c;
}

asio::awaitable<MeterAdd> MemoryExportMeter::Add(std::string entity, int year, bool sensitive,
                                                 std::string subject, std::uint64_t limit) {
  std::lock_guard lock(mu_);
  std::set<std::string>& set = sets_[MeterKey(entity, year, sensitive)];
  MeterAdd a;
  if (set.contains(subject)) {
    a.result = MeterAdd::Result::kAlreadyCounted;
  } else if (set.size() + 1 >= limit) {
    a.result = MeterAdd::Result::kLimitReached;
  } else {
    set.insert(std::move(subject));
    a.result = MeterAdd::Result::kAdded;
  }
  a.count = set.size();
  co_return a;
}

std::string_view RedisExportMeter::AddScript() {
  return kAddScript;
}

asio::awaitable<MeterCounts> RedisExportMeter::Read(std::string entity, int year) {
  MeterCounts c;
  std::vector<std::vector<std::string>> commands;
  commands.push_back({"SCARD", MeterKey(entity, year, false)});
  commands.push_back({"SCARD", MeterKey(entity, year, true)});
  RedisResult r = co_await pool_.Pipeline(std::move(commands));
  if (!r.status.ok()) {
    c.status = std::move(r.status);
    co_return c;
  }
  if (r.replies.size() != 2 || r.replies[0].type != RespValue::Type::kInteger ||
      r.replies[1].type != RespValue::Type::kInteger) {
    c.status = MeterError("unexpected reply to SCARD");
    co_return c;
  }
  c.non_sensitive = static_cast<std::uint64_t>(r.replies[0].integer);
  c.sensitive = static_cast<std::uint64_t>(r.replies[1].integer);
  co_return c;
}

asio::awaitable<MeterAdd> RedisExportMeter::Add(std::string entity, int year, bool sensitive,
                                                std::string subject, std::uint64_t limit) {
  static const std::string script(kAddScript);
  static const std::string sha = ScriptSha(kAddScript);
  MeterAdd a;
  // (Built first: GCC 12 cannot take brace-init lists as a co_await's arguments.)
  std::vector<std::string> keys{MeterKey(entity, year, sensitive)};
  std::vector<std::string> args{std::move(subject), std::to_string(limit)};
  RedisResult r = co_await EvalScript(pool_, script, sha, std::move(keys), std::move(args));
  if (!r.status.ok()) {
    a.status = std::move(r.status);
    co_return a;
  }
  const RespValue& v = r.replies.at(0);
  if (v.is_error()) {
    a.status = MeterError("script failed: " + v.str.substr(0, 200));
    co_return a;
  }
  if (v.type != RespValue::Type::kArray || v.elements.size() != 2 ||
      v.elements[0].type != RespValue::Type::kInteger ||
      v.elements[1].type != RespValue::Type::kInteger) {
    a.status = MeterError("unexpected reply");
    co_return a;
  }
  const std::int64_t result = v.elements[0].integer;
  a.result = result == 0   ? MeterAdd::Result::kAlreadyCounted
             : result == 1 ? MeterAdd::Result::kAdded
                           : MeterAdd::Result::kLimitReached;
  a.count = static_cast<std::uint64_t>(v.elements[1].integer);
  co_return a;
}

}  // namespace meridian::store
