// The shared-state store against a real redis-server on loopback (tests/integration/
// redis_harness.h): the client's pipelining, deadlines and reconnects, and the token buckets'
// atomicity across "replicas" (pools on separate threads and event loops).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/store/rate_limit.h"
#include "gateway/store/redis_client.h"
#include "tests/integration/redis_harness.h"

namespace meridian::store {
namespace {

namespace asio = boost::asio;
using ::testing::HasSubstr;
using ::testing::Not;
using Type = RespValue::Type;

template <class T>
T RunOn(asio::io_context& io, asio::awaitable<T> task) {
  auto f = asio::co_spawn(io, std::move(task), asio::use_future);
  io.restart();
  io.run();
  return f.get();
}

RedisOptions Options(const meridian::testing::RedisServer& redis) {
  RedisOptions o;
  o.port = redis.port_string();
  o.command_timeout = std::chrono::milliseconds(2000);  // generous: sanitizer builds are slow
  o.connect_timeout = std::chrono::milliseconds(2000);
  return o;
}

TEST(RedisPool, PipelinedCommandsAndEveryReplyType) {
  meridian::testing::RedisServer redis;
  ASSERT_TRUE(redis.ok());
  asio::io_context io;
  RedisPool pool(io.get_executor(), Options(redis));
  const RedisResult r = RunOn(io, pool.Pipeline({{"SET", "k", std::string("v\r\n\0", 4)},
                                                 {"GET", "k"},
                                                 {"INCRBY", "n", "5"},
                                                 {"GET", "missing"},
                                                 {"HSET", "h", "a", "1"},
                                                 {"HGETALL", "h"},
                                                 {"NOSUCHCOMMAND"}}));
  ASSERT_TRUE(r.status.ok()) << r.status.message;
  ASSERT_EQ(r.replies.size(), 7u);
  EXPECT_EQ(r.replies[0].str, "OK");
  EXPECT_EQ(r.replies[1].str, std::string("v\r\n\0", 4));
  EXPECT_EQ(r.replies[2].integer, 5);
  EXPECT_EQ(r.replies[3].type, Type::kNil);
  ASSERT_EQ(r.replies[5].type, Type::kArray);
  EXPECT_EQ(r.replies[5].elements.size(), 2u);
  EXPECT_TRUE(r.replies[6].is_error()) << "an error reply is a reply, not a store failure";
  // The connection is kept and reused.
  ASSERT_TRUE(RunOn(io, pool.Call({"PING"})).status.ok());
  EXPECT_EQ(pool.opened(), 1u);
  EXPECT_EQ(pool.idle(), 1u);
}

TEST(RedisPool, AuthAndSelectOnEveryNewConnectionAndNoSecretInTheError) {
  meridian::testing::RedisServer redis({"--requirepass", "s3cret-pass"});
  ASSERT_TRUE(redis.ok());
  asio::io_context io;
  RedisOptions o = Options(redis);
  o.password = "s3cret-pass";
  o.db = 3;
  RedisPool pool(io.get_executor(), o);
  ASSERT_TRUE(RunOn(io, pool.Call({"SET", "in3", "x"})).status.ok());
  o.db = 0;
  RedisPool db0(io.get_executor(), o);
  EXPECT_EQ(RunOn(io, db0.Call({"EXISTS", "in3"})).replies.at(0).integer, 0) << "SELECT 3 held";

  o.password = "wrong-pass";
  RedisPool wrong(io.get_executor(), o);
  const RedisResult r = RunOn(io, wrong.Call({"PING"}));
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.reason, "store_unavailable");
  EXPECT_THAT(r.status.message, HasSubstr("WRONGPASS"));
  EXPECT_THAT(r.status.message, Not(HasSubstr("wrong-pass")));
}

TEST(RedisPool, NothingListeningAndASilentServerEndInTheirDeadline) {
  asio::io_context io;
  // A port nobody listens on: refused at once.
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  const unsigned short closed_port = probe.local_endpoint().port();
  probe.close();
  RedisOptions o;
  o.port = std::to_string(closed_port);
  RedisPool refused(io.get_executor(), o);
  const RedisResult r1 = RunOn(io, refused.Call({"PING"}));
  EXPECT_EQ(r1.status.reason, "store_unavailable") << r1.status.message;

  // A server that accepts and never answers: the call's deadline ends it.
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket held(io);
  silent.async_accept(held, [](boost::system::error_code) {});
  o.port = std::to_string(silent.local_endpoint().port());
  o.command_timeout = std::chrono::milliseconds(50);
  RedisPool hung(io.get_executor(), o);
  const RedisResult r2 = RunOn(io, hung.Call({"PING"}));
  EXPECT_EQ(r2.status.reason, "store_timeout") << r2.status.message;
  EXPECT_EQ(hung.idle(), 0u) << "a connection that timed out is not reused";
}

TEST(RedisPool, ARestartedRedisCostsNoFailedCall) {
  meridian::testing::RedisServer redis;
  ASSERT_TRUE(redis.ok());
  asio::io_context io;
  RedisPool pool(io.get_executor(), Options(redis));
  ASSERT_TRUE(RunOn(io, pool.Call({"PING"})).status.ok());
  ASSERT_TRUE(redis.Restart()) << redis.Log();
  const RedisResult r = RunOn(io, pool.Call({"PING"}));
  EXPECT_TRUE(r.status.ok()) << r.status.message;
  EXPECT_EQ(pool.opened(), 2u);
  redis.Stop();
  const RedisResult down = RunOn(io, pool.Call({"PING"}));
  EXPECT_FALSE(down.status.ok());
  EXPECT_EQ(down.status.reason, "store_unavailable");
}

// Two replicas (a pool each, on its own thread and event loop), 40 concurrent takes each, from
// one bucket of 30: exactly 30 are admitted, whatever the interleaving.
TEST(RedisBuckets, ConcurrentReplicasNeverOverAdmit) {
  meridian::testing::RedisServer redis;
  ASSERT_TRUE(redis.ok());
  for (int round = 0; round < 5; ++round) {
    std::atomic<int> allowed{0};
    std::atomic<int> failed{0};
    const std::string key = "meridian:rl:{t}:race" + std::to_string(round);
    auto replica = [&] {
      asio::io_context io;
      RedisPool pool(io.get_executor(), Options(redis));
      RedisBucketStore store(pool);
      for (int i = 0; i < 40; ++i) {
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
              // A day's window: no refill worth a request during the test.
              std::vector<BucketSpec> specs(1, BucketSpec{key, 30, 86'400'000, 1});
              const TakeResult r = co_await store.Take(std::move(specs));
              if (!r.status.ok()) ++failed;
              if (r.allowed) ++allowed;
            },
            asio::detached);
      }
      io.run();
    };
    std::thread a(replica);
    std::thread b(replica);
    a.join();
    b.join();
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(allowed.load(), 30) << "round " << round;
  }
}

TEST(RedisBuckets, ReadingsRefusalsSettlingAndAFlushedScriptCache) {
  meridian::testing::RedisServer redis;
  ASSERT_TRUE(redis.ok());
  asio::io_context io;
  RedisPool pool(io.get_executor(), Options(redis));
  RedisBucketStore store(pool);
  const std::string rpm = "meridian:rl:{t}:k:rpm";
  const std::string tpm = "meridian:rl:{t}:k:tpm";
  auto take = [&](double tokens) {
    return RunOn(io, store.Take({{rpm, 100, 60000, 1}, {tpm, 1000, 60000, tokens}}));
  };
  TakeResult r = take(800);
  ASSERT_TRUE(r.status.ok()) << r.status.message;
  ASSERT_TRUE(r.allowed);
  EXPECT_EQ(r.buckets.at(0).remaining, 99);
  EXPECT_EQ(r.buckets.at(1).remaining, 200);
  EXPECT_NEAR(static_cast<double>(r.buckets.at(1).reset_ms), 48000, 100);
  r = take(800);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.denied, 1u);
  EXPECT_NEAR(static_cast<double>(r.retry_after_ms), 36000, 100);
  EXPECT_EQ(r.buckets.at(0).remaining, 99) << "nothing taken from a refused request";
  // The answer used 300 of the 800 reserved: 500 back, and the next 600 fit.
  ASSERT_TRUE(RunOn(io, store.Settle({{tpm, 1000, 60000, -500}})).ok());
  ASSERT_TRUE(RunOn(io, pool.Call({"SCRIPT", "FLUSH"})).status.ok());
  r = take(600);
  ASSERT_TRUE(r.status.ok()) << r.status.message;
  EXPECT_TRUE(r.allowed) << "EVAL after NOSCRIPT";
  EXPECT_EQ(r.buckets.at(0).remaining, 98);
  // Buckets expire once they would be full again: Redis keeps no idle state.
  const RedisResult ttl = RunOn(io, pool.Call({"PTTL", tpm}));
  ASSERT_TRUE(ttl.status.ok());
  EXPECT_GT(ttl.replies.at(0).integer, 0);
  EXPECT_LE(ttl.replies.at(0).integer, 61000);
}

TEST(MemoryBuckets, ThreadsShareOneStoreWithoutOverAdmitting) {
  MemoryBucketStore store;
  std::atomic<int> allowed{0};
  auto worker = [&] {
    asio::io_context io;
    for (int i = 0; i < 200; ++i) {
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            std::vector<BucketSpec> specs(1, BucketSpec{"k", 150, 86'400'000, 1});
            const TakeResult r = co_await store.Take(std::move(specs));
            if (r.allowed) ++allowed;
          },
          asio::detached);
    }
    io.run();
  };
  std::thread a(worker);
  std::thread b(worker);
  a.join();
  b.join();
  EXPECT_EQ(allowed.load(), 150);
}

TEST(RedisBuckets, ABudgetNeverRefillsAndExpiresWithItsPeriod) {
  meridian::testing::RedisServer redis;
  ASSERT_TRUE(redis.ok());
  asio::io_context io;
  RedisPool pool(io.get_executor(), Options(redis));
  RedisBucketStore store(pool);
  const std::string day = "meridian:rl:{t}:t:day:20261203";
  auto take = [&](double tokens) {
    return RunOn(io, store.Take({{day, 100, 0, tokens, 5'000'000}}));
  };
  TakeResult r = take(60);
  ASSERT_TRUE(r.status.ok()) << r.status.message;
  ASSERT_TRUE(r.allowed);
  EXPECT_EQ(r.buckets.at(0).remaining, 40);
  EXPECT_EQ(r.buckets.at(0).reset_ms, 5'000'000);
  r = take(60);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.retry_after_ms, 5'000'000) << "the period's end, not a refill";
  ASSERT_TRUE(RunOn(io, store.Settle({{day, 100, 0, -30, 5'000'000}})).ok());
  r = take(70);
  EXPECT_TRUE(r.allowed) << "30 of the 60 reserved came back";
  EXPECT_EQ(r.buckets.at(0).remaining, 0);
  // The key outlives its period by a minute, then Redis forgets it.
  const RedisResult ttl = RunOn(io, pool.Call({"PTTL", day}));
  ASSERT_TRUE(ttl.status.ok());
  EXPECT_GT(ttl.replies.at(0).integer, 5'000'000);
  EXPECT_LE(ttl.replies.at(0).integer, 5'060'000);
}

TEST(MemoryBuckets, ForgetsBucketsOnceTheyAreFullAgain) {
  static std::int64_t now = 0;
  MemoryBucketStore store;
  store.SetClockForTest([] { return now; });
  asio::io_context io;
  // 2000 subjects seen once each, one request per minute each.
  for (int i = 0; i < 2000; ++i) {
    const TakeResult r = RunOn(io, store.Take({BucketSpec{"s:" + std::to_string(i), 1, 60000, 1}}));
    ASSERT_TRUE(r.allowed);
  }
  EXPECT_EQ(store.size(), 2000u);
  const TakeResult again = RunOn(io, store.Take({BucketSpec{"s:7", 1, 60000, 1}}));
  EXPECT_FALSE(again.allowed) << "within the minute the bucket is remembered";
  now = 61'000;  // every bucket is full again: as good as absent
  for (int i = 2000; i < 2100; ++i)
    (void)RunOn(io, store.Take({BucketSpec{"s:" + std::to_string(i), 1, 60000, 1}}));
  EXPECT_LT(store.size(), 200u);
  EXPECT_TRUE(RunOn(io, store.Take({BucketSpec{"s:7", 1, 60000, 1}})).allowed);
}

TEST(RedisLeases, ConcurrentReplicasNeverHoldMoreThanTheLimit) {
  meridian::testing::RedisServer redis;
  ASSERT_TRUE(redis.ok());
  for (int round = 0; round < 5; ++round) {
    std::atomic<int> allowed{0};
    std::atomic<int> failed{0};
    const std::string key = "meridian:rl:{t}:race" + std::to_string(round) + ":streams";
    auto replica = [&](char name) {
      asio::io_context io;
      RedisPool pool(io.get_executor(), Options(redis));
      RedisBucketStore store(pool);
      for (int i = 0; i < 40; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
              std::vector<LeaseSpec> specs(1, LeaseSpec{key, 7});
              const LeaseResult r = co_await store.Acquire(
                  std::move(specs), std::string(1, name) + std::to_string(i), 60'000);
              if (!r.status.ok()) ++failed;
              if (r.allowed) ++allowed;
            },
            asio::detached);
      }
      io.run();
    };
    std::thread a(replica, 'a');
    std::thread b(replica, 'b');
    a.join();
    b.join();
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(allowed.load(), 7) << "round " << round;
    EXPECT_EQ(meridian::testing::RedisInt(redis, {"ZCARD", key}), 7);
  }
}

TEST(RedisLeases, ReleasedAndExpiredLeasesMakeRoomAndRenewalExtendsOnlyLiveOnes) {
  meridian::testing::RedisServer redis;
  ASSERT_TRUE(redis.ok());
  asio::io_context io;
  RedisPool pool(io.get_executor(), Options(redis));
  RedisBucketStore store(pool);
  const std::string key = "meridian:rl:{t}:k:streams";
  const std::string other = "meridian:rl:{t}:t:streams";
  auto acquire = [&](const std::string& id) {
    return RunOn(io, store.Acquire({{other, 10}, {key, 1}}, id, 60'000));
  };
  auto score = [&](const std::string& id) {
    const RespValue v = meridian::testing::RedisCommand(redis, {"ZSCORE", key, id});
    return v.type == Type::kString ? std::stoll(v.str) : -1;
  };
  LeaseResult r = acquire("a");
  ASSERT_TRUE(r.status.ok()) << r.status.message;
  ASSERT_TRUE(r.allowed);
  r = acquire("b");
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.denied, 1u);
  EXPECT_EQ(r.held, 1);
  EXPECT_EQ(meridian::testing::RedisInt(redis, {"ZCARD", other}), 1) << "all or none";
  // Renewal moves the expiry forward; the key lives a second past its last lease.
  const long long before = score("a");
  ASSERT_TRUE(RunOn(io, store.Renew({{{other, 10}, {key, 1}}, "a", 600'000})).ok());
  EXPECT_GE(score("a"), before + 540'000);
  const long long ttl = meridian::testing::RedisInt(redis, {"PTTL", key});
  EXPECT_GT(ttl, 590'000);
  EXPECT_LE(ttl, 601'000);
  ASSERT_TRUE(RunOn(io, store.Release({{other, 10}, {key, 1}}, "a")).ok());
  EXPECT_EQ(meridian::testing::RedisInt(redis, {"EXISTS", key}), 0);
  ASSERT_TRUE(RunOn(io, store.Renew({{{key, 1}}, "a", 60'000})).ok());
  EXPECT_EQ(score("a"), -1) << "a released lease is not brought back by a late renewal";
  // A crashed replica's lease (expired long ago, never released) is no obstacle, and a late
  // renewal does not bring it back.
  ASSERT_EQ(meridian::testing::RedisInt(redis, {"ZADD", key, "1", "crashed"}), 1);
  ASSERT_TRUE(RunOn(io, store.Renew({{{key, 1}}, "crashed", 60'000})).ok());
  EXPECT_EQ(score("crashed"), 1);
  EXPECT_TRUE(acquire("c").allowed);
  EXPECT_EQ(score("crashed"), -1);
  // Replicas with different TTLs (a rolling config change): the key lives as long as its
  // longest lease, not as long as the last writer's TTL.
  ASSERT_TRUE(RunOn(io, store.Acquire({{other, 10}}, "long", 600'000)).allowed);
  ASSERT_TRUE(RunOn(io, store.Acquire({{other, 10}}, "short", 1'000)).allowed);
  EXPECT_GT(meridian::testing::RedisInt(redis, {"PTTL", other}), 590'000);
  // A flushed script cache costs nothing.
  ASSERT_TRUE(RunOn(io, pool.Call({"SCRIPT", "FLUSH"})).status.ok());
  ASSERT_TRUE(RunOn(io, store.Release({{key, 1}}, "c")).ok());
  EXPECT_TRUE(acquire("d").allowed);
}

// Admission is one call: a request a bucket refuses holds no lease; the end is one call too,
// and survives a Redis that lost its scripts.
template <class Store>
void AdmitIsAllOrNone(Store& store, asio::io_context& io,
                      const std::function<long long()>& lease_holders) {
  const std::string rpm = "meridian:rl:{t}:t:rpm";
  const std::string tpm = "meridian:rl:{t}:t:tpm";
  const LeaseRequest lease{{{"meridian:rl:{t}:t:streams", 5}}, "r1", 60'000};
  AdmitResult r = RunOn(io, store.Admit(lease, {{rpm, 10, 60000, 1}, {tpm, 100, 60000, 500}}));
  ASSERT_TRUE(r.status.ok()) << r.status.message;
  EXPECT_TRUE(r.leases.allowed);
  EXPECT_FALSE(r.taken.allowed);
  EXPECT_EQ(r.taken.denied, 1u);
  EXPECT_EQ(r.taken.retry_after_ms, -1) << "500 tokens never fit a bucket of 100";
  EXPECT_EQ(lease_holders(), 0) << "refused by a bucket: no lease kept";
  r = RunOn(io, store.Admit(lease, {{rpm, 10, 60000, 1}, {tpm, 100, 60000, 80}}));
  ASSERT_TRUE(r.allowed());
  EXPECT_EQ(r.taken.buckets.at(0).remaining, 9);
  EXPECT_EQ(r.taken.buckets.at(1).remaining, 20);
  EXPECT_EQ(lease_holders(), 1);
  // Used 30 of the 80 reserved: the lease goes and 50 tokens come back, in one call.
  ASSERT_TRUE(RunOn(io, store.Finish(lease, {{tpm, 100, 60000, -50}})).ok());
  EXPECT_EQ(lease_holders(), 0);
  r = RunOn(io, store.Admit(lease, {{tpm, 100, 60000, 70}}));
  EXPECT_TRUE(r.allowed()) << "the 50 came back";
}

TEST(RedisBuckets, AdmitIsAllOrNoneAndFinishIsOneCallEvenAfterAScriptFlush) {
  meridian::testing::RedisServer redis;
  ASSERT_TRUE(redis.ok());
  asio::io_context io;
  RedisPool pool(io.get_executor(), Options(redis));
  RedisBucketStore store(pool);
  AdmitIsAllOrNone(store, io, [&] {
    return std::max(0LL,
                    meridian::testing::RedisInt(redis, {"ZCARD", "meridian:rl:{t}:t:streams"}));
  });
  const std::string tpm = "meridian:rl:{t}:k:tpm";
  ASSERT_TRUE(RunOn(io, store.Take({{tpm, 100, 60000, 90}})).allowed);
  ASSERT_TRUE(RunOn(io, pool.Call({"SCRIPT", "FLUSH"})).status.ok());
  ASSERT_TRUE(RunOn(io, store.Settle({{tpm, 100, 60000, -60}})).ok()) << "NOSCRIPT, then EVAL";
  const TakeResult r = RunOn(io, store.Take({{tpm, 100, 60000, 60}}));
  EXPECT_TRUE(r.allowed) << "the settle was applied";
}

TEST(MemoryBuckets, AdmitIsAllOrNone) {
  MemoryBucketStore store;
  asio::io_context io;
  AdmitIsAllOrNone(store, io, [&] { return static_cast<long long>(store.lease_keys()); });
}

TEST(MemoryLeases, ReleasedLeasesAreForgottenAndExpiredOnesMakeRoom) {
  static std::int64_t now = 0;
  MemoryBucketStore store;
  store.SetClockForTest([] { return now; });
  asio::io_context io;
  const std::vector<LeaseSpec> specs{{"k:streams", 1}};
  ASSERT_TRUE(RunOn(io, store.Acquire(specs, "a", 1000)).allowed);
  EXPECT_FALSE(RunOn(io, store.Acquire(specs, "b", 1000)).allowed);
  now = 900;
  ASSERT_TRUE(RunOn(io, store.Renew({specs, "a", 1000})).ok());
  now = 1500;
  EXPECT_FALSE(RunOn(io, store.Acquire(specs, "b", 1000)).allowed) << "renewed until 1900";
  ASSERT_TRUE(RunOn(io, store.Release(specs, "a")).ok());
  EXPECT_EQ(store.lease_keys(), 0u);
  ASSERT_TRUE(RunOn(io, store.Acquire(specs, "b", 1000)).allowed);
  now = 2600;  // "b" was never released nor renewed
  EXPECT_TRUE(RunOn(io, store.Acquire(specs, "c", 1000)).allowed);
  EXPECT_EQ(store.lease_keys(), 1u);
}

}  // namespace
}  // namespace meridian::store
