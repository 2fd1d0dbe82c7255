// The shared-state store's pure parts: RESP framing and reading (gateway/store/resp.h) and
// the token-bucket arithmetic both stores run (gateway/store/rate_limit.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "gateway/store/rate_limit.h"
#include "gateway/store/resp.h"

namespace meridian::store {
namespace {

using Type = RespValue::Type;

TEST(Resp, CommandsAreArraysOfBinarySafeBulkStrings) {
  std::string out;
  AppendCommand(out, {"SET", "k", std::string("a\r\nb\0c", 6)});
  EXPECT_EQ(out, std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na\r\nb\0c\r\n", 32));
  AppendCommand(out, {"PING"});
  EXPECT_TRUE(out.ends_with("*1\r\n$4\r\nPING\r\n"));
}

constexpr std::string_view kReplies =
    "+OK\r\n:-42\r\n$5\r\nhe\r\no\r\n$-1\r\n*3\r\n:1\r\n*1\r\n$0\r\n\r\n-ERR x\r\n"
    "-NOSCRIPT No matching script. Please use EVAL.\r\n";

TEST(Resp, RepliesAtEverySplit) {
  for (std::size_t split = 0; split <= kReplies.size(); ++split) {
    RespReader reader;
    std::vector<RespValue> got;
    for (const std::string_view piece : {kReplies.substr(0, split), kReplies.substr(split)}) {
      ASSERT_TRUE(reader.Feed(piece));
      while (auto v = reader.Next()) got.push_back(std::move(*v));
    }
    ASSERT_EQ(reader.error(), "");
    ASSERT_EQ(got.size(), 6u) << "split " << split;
    EXPECT_EQ(got[0].type, Type::kStatus);
    EXPECT_EQ(got[0].str, "OK");
    EXPECT_EQ(got[1].type, Type::kInteger);
    EXPECT_EQ(got[1].integer, -42);
    EXPECT_EQ(got[2].type, Type::kString);
    EXPECT_EQ(got[2].str, "he\r\no");
    EXPECT_EQ(got[3].type, Type::kNil);
    ASSERT_EQ(got[4].type, Type::kArray);
    ASSERT_EQ(got[4].elements.size(), 3u);
    EXPECT_EQ(got[4].elements[1].elements.at(0).str, "");
    EXPECT_TRUE(got[4].elements[2].is_error());
    EXPECT_EQ(got[4].elements[2].str, "ERR x");
    EXPECT_TRUE(got[5].str.starts_with("NOSCRIPT"));
  }
}

TEST(Resp, ABrokenStreamIsAnErrorThatStays) {
  RespReader reader;
  EXPECT_TRUE(reader.Feed("?what\r\n"));
  EXPECT_FALSE(reader.Next());
  EXPECT_NE(reader.error(), "");
  EXPECT_FALSE(reader.Feed("+OK\r\n"));
  EXPECT_FALSE(reader.Next());
}

TEST(Resp, RepliesAreBoundedWhateverTheServerSends) {
  RespReader arrays;
  ASSERT_TRUE(arrays.Feed("*2000000\r\n"));
  EXPECT_FALSE(arrays.Next());
  EXPECT_NE(arrays.error(), "") << "an array of two million elements is refused";
  RespReader big;
  ASSERT_TRUE(big.Feed("$100000000\r\n"));
  const std::string mib(1u << 20, 'x');
  bool refused = false;
  for (int i = 0; i < 70 && !refused; ++i) refused = !big.Feed(mib);
  EXPECT_TRUE(refused);
  EXPECT_EQ(big.error(), "reply larger than 64 MiB");
  RespReader fine;
  ASSERT_TRUE(fine.Feed("*3\r\n:1\r\n:2\r\n:3\r\n"));
  const auto v = fine.Next();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->elements.size(), 3u);
}

BucketSpec Spec(std::string key, double capacity, double cost, std::int64_t window_ms = 60000) {
  return {std::move(key), capacity, window_ms, cost};
}

TEST(TokenBucket, TakesUntilEmptyThenSaysWhenTheNextOneFits) {
  std::vector<BucketState> states(1);
  const std::vector<BucketSpec> one{Spec("rpm", 3, 1)};
  for (std::int64_t left = 2; left >= 0; --left) {
    const TakeResult r = TakeFromBuckets(one, states, 1000);
    ASSERT_TRUE(r.allowed);
    EXPECT_EQ(r.buckets.at(0).remaining, left);
    EXPECT_EQ(r.buckets.at(0).reset_ms, (3 - left) * 20000) << "full again at 3 per minute";
  }
  TakeResult r = TakeFromBuckets(one, states, 1000);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.denied, 0u);
  EXPECT_EQ(r.retry_after_ms, 20000);
  EXPECT_EQ(r.buckets.at(0).remaining, 0);
  r = TakeFromBuckets(one, states, 11000);  // half a request refilled
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.retry_after_ms, 10000);
  EXPECT_TRUE(TakeFromBuckets(one, states, 21000).allowed);
  // Idle for an hour: full, never more than the capacity.
  r = TakeFromBuckets(one, states, 3'621'000);
  ASSERT_TRUE(r.allowed);
  EXPECT_EQ(r.buckets.at(0).remaining, 2);
}

TEST(TokenBucket, AllOrNothingAcrossBuckets) {
  std::vector<BucketState> states(2);
  const std::vector<BucketSpec> specs{Spec("key:rpm", 10, 1), Spec("key:tpm", 100, 80)};
  ASSERT_TRUE(TakeFromBuckets(specs, states, 0).allowed);
  const auto before = states;
  const TakeResult r = TakeFromBuckets(specs, states, 0);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.denied, 1u) << "the token bucket is short";
  EXPECT_EQ(r.retry_after_ms, 36000) << "60 more tokens at 100 per minute";
  EXPECT_EQ(states[0].level, before[0].level) << "the request bucket was not charged";
  EXPECT_EQ(r.buckets.at(0).remaining, 9);
  EXPECT_EQ(r.buckets.at(1).remaining, 20);
}

TEST(TokenBucket, ACostBeyondTheCapacityNeverFits) {
  std::vector<BucketState> states(1);
  const TakeResult r = TakeFromBuckets({Spec("tpm", 100, 101)}, states, 0);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.retry_after_ms, -1);
  EXPECT_FALSE(states[0].exists);
}

TEST(TokenBucket, SettlingGivesBackOrRunsIntoBoundedDebt) {
  const BucketSpec tpm = Spec("tpm", 100, 0);
  BucketState s;
  SettleBucket(tpm, s, 90, 0);  // a new bucket is full: 100 - 90
  EXPECT_EQ(s.level, 10);
  SettleBucket(tpm, s, -50, 0);  // reserved too much: 50 back
  EXPECT_EQ(s.level, 60);
  SettleBucket(tpm, s, -500, 0);
  EXPECT_EQ(s.level, 100) << "never above the capacity";
  SettleBucket(tpm, s, 1000, 0);
  EXPECT_EQ(s.level, -100) << "debt at most one capacity";
  std::vector<BucketState> states{s};
  const TakeResult r = TakeFromBuckets({Spec("tpm", 100, 1)}, states, 0);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.retry_after_ms, 60600) << "101 tokens at 100 per minute";
}

TEST(TokenBucket, ABudgetNeverRefillsAndIsBackWhenItsPeriodEnds) {
  BucketSpec day{"t:day:20261203", 100, 0, 60, 5'000'000};  // 5000 s left in the day
  std::vector<BucketState> states(1);
  TakeResult r = TakeFromBuckets({day}, states, 0);
  ASSERT_TRUE(r.allowed);
  EXPECT_EQ(r.buckets.at(0).remaining, 40);
  EXPECT_EQ(r.buckets.at(0).reset_ms, 5'000'000);
  r = TakeFromBuckets({day}, states, 3'600'000);  // an hour later: nothing came back
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.retry_after_ms, 5'000'000) << "the period's end, not a refill";
  SettleBucket(day, states[0], -30, 3'600'000);  // the answer used 30 of the 60 reserved
  EXPECT_EQ(states[0].level, 70);
  day.cost = 70;
  EXPECT_TRUE(TakeFromBuckets({day}, states, 3'600'000).allowed);
}

TEST(Leases, AllOrNoneAndAnExpiredHolderMakesRoom) {
  LeaseHolders tenant;
  LeaseHolders key;
  const std::vector<LeaseSpec> specs{{"t:streams", 2}, {"k:streams", 1}};
  const std::vector<LeaseHolders*> holders{&tenant, &key};
  LeaseResult r = AcquireLeases(specs, holders, "a", 1000, 0);
  ASSERT_TRUE(r.allowed);
  EXPECT_EQ(tenant.at("a"), 1000);
  r = AcquireLeases(specs, holders, "b", 1000, 10);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.denied, 1u);
  EXPECT_EQ(r.held, 1);
  EXPECT_FALSE(tenant.contains("b")) << "the tenant's lease is not kept when the key's is refused";
  EXPECT_TRUE(AcquireLeases(specs, holders, "a", 1000, 20).allowed) << "a holder again";
  EXPECT_EQ(key.at("a"), 1020);
  // "a" stopped renewing (its replica crashed): at its expiry the place is free again.
  r = AcquireLeases(specs, holders, "b", 1000, 1020);
  EXPECT_TRUE(r.allowed);
  EXPECT_FALSE(key.contains("a"));
  EXPECT_EQ(tenant.size(), 1u);
}

}  // namespace
}  // namespace meridian::store
