// The cross-border export meter's store: per exporting entity (tenant) and calendar year, the
// set of distinct individuals (keyed digests of subject ids, never the ids) whose personal
// information was sent to a provider processing outside the mainland, one set for
// non-sensitive and one for sensitive personal information. Read returns both counts; Add
// adds one individual only while the count stays below a limit (count-and-check in one atomic
// step: one Lua script on Redis, one lock in process), so concurrent replicas cannot carry a
// count past the band the policy decided on.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "gateway/core/status.h"

namespace meridian::store {

class RedisPool;

struct MeterCounts {
  core::Status status;  ///< not ok: the store could not answer (counts unknown)
  std::uint64_t non_sensitive = 0;
  std::uint64_t sensitive = 0;
};

struct MeterAdd {
  core::Status status;  ///< not ok: the store could not answer (nothing added)
  enum class Result : std::uint8_t { kAlreadyCounted, kAdded, kLimitReached };
  Result result = Result::kLimitReached;
  std::uint64_t count = 0;  ///< the set's size after the call
};

/// The key of one year's set: "meridian:meter:{<entity>}:<year>:ns" or ":s".
std::string MeterKey(std::string_view entity, int year, bool sensitive);

class ExportMeterStore {
 public:
  virtual ~ExportMeterStore() = default;
  virtual boost::asio::awaitable<MeterCounts> Read(std::string entity, int year) = 0;
  /// Adds `subject` (a digest) unless already counted, only if the set then holds fewer than
  /// `limit` individuals.
  virtual boost::asio::awaitable<MeterAdd> Add(std::string entity, int year, bool sensitive,
                                               std::string subject, std::uint64_t limit) = 0;
};

/// In this process only: not durable, not shared. Thread-safe.
class MemoryExportMeter final : public ExportMeterStore {
 public:
  boost::asio::awaitable<MeterCounts> Read(std::string entity, int year) override;
  boost::asio::awaitable<MeterAdd> Add(std::string entity, int year, bool sensitive,
                                       std::string subject, std::uint64_t limit) override;

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::set<std::string>> sets_;
};

/// In Redis: one set per entity, year and class (SCARD to read; SISMEMBER, SCARD, SADD in one
/// script to add). The sets must survive a Redis restart: the gateway checks at startup that
/// Redis persists its data (RDB snapshots or AOF).
class RedisExportMeter final : public ExportMeterStore {
 public:
  explicit RedisExportMeter(RedisPool& pool) : pool_(pool) {}
  boost::asio::awaitable<MeterCounts> Read(std::string entity, int year) override;
  boost::asio::awaitable<MeterAdd> Add(std::string entity, int year, bool sensitive,
                                       std::string subject, std::uint64_t limit) override;
  static std::string_view AddScript();

 private:
  RedisPool& pool_;
};

}  // namespace meridian::store
