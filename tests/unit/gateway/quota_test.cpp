// The pure parts of rate limiting at admission (gateway/quota.h): which buckets a request
// takes from, what it reserves and settles, and what a client is told.
#include "gateway/quota.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <span>
#include <string>

#include "gateway/identity.h"

namespace meridian::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// 2026-12-03T08:00:00Z.
constexpr std::int64_t kNow = 1'796'284'800'000;

config::TenantLimitsConfig AllLimits() {
  config::TenantLimitsConfig l;
  l.tenant = {600, 100'000};
  l.per_key = {60, 0};
  l.per_subject = {10, 5'000};
  l.tokens_per_day = 1'000'000;
  l.tokens_per_month = 20'000'000;
  return l;
}

TEST(Quota, EveryConfiguredLimitIsOneBucketUnderTheTenantsHashTag) {
  const QuotaPlan plan = PlanQuota(AllLimits(), "acme", "k0123456789abcdef", "alice", 300, kNow);
  std::vector<std::string> keys;
  for (const auto& s : plan.specs) keys.push_back(s.key);
  const std::string subject =
      "meridian:rl:{acme}:s:" +
      identity::ToHex(std::span<const std::uint8_t>(identity::Sha256("alice").data(), 16)) + ":";
  EXPECT_THAT(keys, ElementsAre("meridian:rl:{acme}:t:rpm", "meridian:rl:{acme}:t:tpm",
                                "meridian:rl:{acme}:k:k0123456789abcdef:rpm", subject + "rpm",
                                subject + "tpm", "meridian:rl:{acme}:t:day:20261203",
                                "meridian:rl:{acme}:t:month:202612"));
  for (const auto& k : keys) EXPECT_THAT(k, ::testing::Not(HasSubstr("alice")));
  // Requests cost 1, tokens the reservation; budgets end with their UTC day and month.
  EXPECT_EQ(plan.specs[0].cost, 1);
  EXPECT_EQ(plan.specs[1].cost, 300);
  EXPECT_EQ(plan.specs[5].window_ms, 0);
  EXPECT_EQ(plan.specs[5].period_left_ms, 16 * 3'600'000);
  EXPECT_EQ(plan.specs[6].period_left_ms, (28 * 24 + 16) * 3'600'000LL);
  EXPECT_FALSE(plan.fail_open);
}

TEST(Quota, NoSubjectNoKeyNoLimitsMeanNoBuckets) {
  const QuotaPlan plan = PlanQuota(AllLimits(), "acme", "", "", 10, kNow);
  EXPECT_EQ(plan.specs.size(), 4u);  // tenant rpm, tpm, day, month
  EXPECT_TRUE(PlanQuota(config::TenantLimitsConfig{}, "acme", "k1", "bob", 10, kNow).empty());
}

TEST(Quota, ConcurrentStreamLimitsAreLeasesPerScopeAndTheirRefusalSaysWhose) {
  config::TenantLimitsConfig l;
  l.tenant.concurrent_streams = 5;
  l.per_key.concurrent_streams = 2;
  l.per_subject.concurrent_streams = 1;
  const QuotaPlan plan = PlanQuota(l, "acme", "k0123456789abcdef", "alice", 10, kNow);
  EXPECT_TRUE(plan.specs.empty()) << "no bucket: a lease is held, not taken";
  EXPECT_FALSE(plan.empty());
  std::vector<std::string> keys;
  for (const auto& s : plan.leases) keys.push_back(s.key);
  const std::string subject =
      "meridian:rl:{acme}:s:" +
      identity::ToHex(std::span<const std::uint8_t>(identity::Sha256("alice").data(), 16)) + ":";
  EXPECT_THAT(keys,
              ElementsAre("meridian:rl:{acme}:t:streams",
                          "meridian:rl:{acme}:k:k0123456789abcdef:streams", subject + "streams"));
  EXPECT_EQ(plan.leases[0].limit, 5);
  EXPECT_EQ(plan.leases[1].limit, 2);
  EXPECT_THAT(plan.lease_scopes,
              ElementsAre(LimitScope::kTenant, LimitScope::kKey, LimitScope::kSubject));
  EXPECT_EQ(PlanQuota(l, "acme", "", "", 10, kNow).leases.size(), 1u)
      << "no key, no subject: the tenant's lease only";

  store::LeaseResult refused;
  refused.denied = 1;
  refused.held = 2;
  const core::Status st = LeaseRefusal(plan, refused, "acme");
  EXPECT_EQ(st.code, core::StatusCode::kRateLimited);
  EXPECT_EQ(st.reason, "concurrency_limit_exceeded");
  EXPECT_EQ(st.message,
            "Concurrency limit reached for concurrent streams of this API key: Limit 2, In "
            "flight 2. Please try again when one of them has ended.");
  EXPECT_EQ(st.retry_after_s, 1u);
}

TEST(Quota, TheMonthBudgetRollsOverAtTheEndOfDecember) {
  config::TenantLimitsConfig l;
  l.tokens_per_month = 10;
  // 2026-12-31T23:59:59.500Z.
  const QuotaPlan plan = PlanQuota(l, "t", "", "", 1, 1'798'761'599'500);
  ASSERT_EQ(plan.specs.size(), 1u);
  EXPECT_EQ(plan.specs[0].key, "meridian:rl:{t}:t:month:202612");
  EXPECT_EQ(plan.specs[0].period_left_ms, 500);
}

TEST(Quota, TheReservationIsThePromptEstimatePlusMaxTokens) {
  core::CompletionRequest r;
  core::Message m;
  m.role = "user";
  m.text = std::string(41, 'x');  // 11 tokens
  r.messages.push_back(m);
  EXPECT_EQ(EstimatePromptTokens(r), 11);
  EXPECT_EQ(EstimateTokens(r, 1024), 11 + 1024);
  r.max_tokens = 50;
  EXPECT_EQ(EstimateTokens(r, 1024), 61);
  r.max_completion_tokens = 20;  // the preferred form wins
  EXPECT_EQ(EstimateTokens(r, 1024), 31);
  core::CompletionRequest e;
  e.op = core::Operation::kEmbed;
  e.embedding.tokens = {{1, 2, 3}, {4}};
  EXPECT_EQ(EstimateTokens(e, 1024), 4) << "token ids count one each; nothing is generated";
}

TEST(Quota, SettlingAppliesWhatWasUsedBeyondOrShortOfTheReservation) {
  const QuotaPlan plan = PlanQuota(AllLimits(), "acme", "k1", "", 300, kNow);
  const auto specs = SettleSpecs(plan, 120);
  ASSERT_EQ(specs.size(), 3u);  // the token buckets only: tpm, day, month
  for (const auto& s : specs) EXPECT_EQ(s.cost, -180);
  EXPECT_TRUE(SettleSpecs(plan, 300).empty());
}

TEST(Quota, HeadersNameTheTightestPerMinuteBuckets) {
  const QuotaPlan plan = PlanQuota(AllLimits(), "acme", "k1", "", 300, kNow);
  store::TakeResult taken;
  taken.allowed = true;
  taken.buckets = {
      {599, 100}, {99'700, 180}, {59, 1000}, {999'700, 16 * 3'600'000}, {19'999'700, 1}};
  EXPECT_THAT(RateLimitHeaders(plan, taken),
              ElementsAre(Pair("x-ratelimit-limit-requests", "60"),
                          Pair("x-ratelimit-remaining-requests", "59"),
                          Pair("x-ratelimit-reset-requests", "1s"),
                          Pair("x-ratelimit-limit-tokens", "100000"),
                          Pair("x-ratelimit-remaining-tokens", "99700"),
                          Pair("x-ratelimit-reset-tokens", "180ms")));
}

TEST(Quota, RefusalsSayWhichLimitAndWhenToRetry) {
  const QuotaPlan plan = PlanQuota(AllLimits(), "acme", "k1", "", 300, kNow);
  store::TakeResult taken;
  taken.denied = 2;  // the key's rpm
  taken.retry_after_ms = 1500;
  taken.buckets = {{599, 0}, {99'700, 0}, {0, 1500}, {0, 0}, {0, 0}};
  core::Status st = QuotaRefusal(plan, taken, "acme");
  EXPECT_EQ(st.code, core::StatusCode::kRateLimited);
  EXPECT_EQ(st.reason, "rate_limit_exceeded");
  EXPECT_EQ(st.retry_after_s, 2u);
  EXPECT_THAT(st.message, HasSubstr("requests per minute (RPM) of this API key: Limit 60, "
                                    "Remaining 0, Requested 1. Please try again in 1.5s."));
  taken.denied = 3;  // the day
  taken.retry_after_ms = 16 * 3'600'000;
  st = QuotaRefusal(plan, taken, "acme");
  EXPECT_EQ(st.reason, "token_budget_exceeded");
  EXPECT_EQ(st.retry_after_s, 16u * 3600u);
  EXPECT_THAT(st.message, HasSubstr("Token budget reached for tokens per day of tenant 'acme'"));
  taken.retry_after_ms = -1;  // the request alone is larger than the limit
  st = QuotaRefusal(plan, taken, "acme");
  EXPECT_EQ(st.reason, "request_too_large");
  EXPECT_FALSE(st.retry_after_s.has_value());
}

TEST(Quota, ResetsAreWrittenLikeOpenAis) {
  EXPECT_EQ(FormatReset(0), "0ms");
  EXPECT_EQ(FormatReset(20), "20ms");
  EXPECT_EQ(FormatReset(1000), "1s");
  EXPECT_EQ(FormatReset(3012), "3.012s");
  EXPECT_EQ(FormatReset(1500), "1.5s");
  EXPECT_EQ(FormatReset(360'000), "6m0s");
  EXPECT_EQ(FormatReset(3'723'000), "1h2m3s");
}

}  // namespace
}  // namespace meridian::gateway
