// The circuit breaker as a pure state machine over explicit time points (no sockets, no
// sleeps): per (provider, model) circuits, the half-open probe, Retry-After, trips, disables.
#include <gtest/gtest.h>

#include <chrono>

#include "gateway/routing_table.h"

namespace meridian::gateway {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr policy::ProviderIndex kA = 0;
constexpr policy::ProviderIndex kB = 1;
constexpr std::uint32_t kChat = 0;
constexpr std::uint32_t kOther = 1;

class HealthTrackerTest : public ::testing::Test {
 protected:
  HealthTracker health_{2, 2};
  const Clock::time_point t0_ = Clock::now();

  /// kTripAfter consecutive failures at `at`; true when the last one opened the circuit.
  bool Fail(policy::ProviderIndex p, std::uint32_t model, Clock::time_point at,
            std::optional<std::uint32_t> retry_after_s = std::nullopt) {
    bool opened = false;
    for (std::uint32_t i = 0; i < HealthTracker::kTripAfter; ++i) {
      opened = health_.RecordFailure(p, model, at, retry_after_s);
      if (i + 1 < HealthTracker::kTripAfter) {
        EXPECT_FALSE(opened) << "opened after " << i + 1;
      }
    }
    return opened;
  }
};

TEST_F(HealthTrackerTest, ConsecutiveFailuresOpenOnlyThatProvidersModel) {
  EXPECT_TRUE(Fail(kA, kChat, t0_));
  EXPECT_FALSE(health_.Admit(kA, kChat, t0_ + 1s));
  EXPECT_TRUE(health_.Unhealthy(t0_ + 1s, kChat).test(kA));
  // The provider's other model, another provider's same model, and an unknown alias: closed.
  EXPECT_TRUE(health_.Admit(kA, kOther, t0_ + 1s));
  EXPECT_TRUE(health_.Admit(kB, kChat, t0_ + 1s));
  EXPECT_TRUE(health_.Admit(kA, std::nullopt, t0_ + 1s));
  EXPECT_FALSE(health_.Unhealthy(t0_ + 1s, kOther).test(kA));
}

TEST_F(HealthTrackerTest, ASuccessBetweenFailuresStartsTheCountAgain) {
  EXPECT_FALSE(health_.RecordFailure(kA, kChat, t0_));
  EXPECT_FALSE(health_.RecordFailure(kA, kChat, t0_));
  health_.RecordSuccess(kA, kChat);
  EXPECT_FALSE(health_.RecordFailure(kA, kChat, t0_));
  EXPECT_FALSE(health_.RecordFailure(kA, kChat, t0_));
  EXPECT_TRUE(health_.Admit(kA, kChat, t0_));
}

TEST_F(HealthTrackerTest, AfterTheOpenPeriodOneProbeGoesThroughAndItsSuccessCloses) {
  ASSERT_TRUE(Fail(kA, kChat, t0_));
  const auto later = t0_ + HealthTracker::kOpenFor + 1ms;
  EXPECT_FALSE(health_.Admit(kA, kChat, t0_ + HealthTracker::kOpenFor - 1ms));
  EXPECT_TRUE(health_.Admit(kA, kChat, later));   // the probe
  EXPECT_FALSE(health_.Admit(kA, kChat, later));  // others still route around it
  EXPECT_TRUE(health_.Unhealthy(later, kChat).test(kA));
  health_.RecordSuccess(kA, kChat);
  EXPECT_TRUE(health_.Admit(kA, kChat, later));
  EXPECT_TRUE(health_.Admit(kA, kChat, later));
  EXPECT_FALSE(health_.Unhealthy(later, kChat).test(kA));
}

TEST_F(HealthTrackerTest, AFailedProbeOpensTheCircuitAgainAtOnce) {
  ASSERT_TRUE(Fail(kA, kChat, t0_));
  const auto later = t0_ + HealthTracker::kOpenFor + 1ms;
  ASSERT_TRUE(health_.Admit(kA, kChat, later));
  EXPECT_TRUE(health_.RecordFailure(kA, kChat, later));  // one failure is enough now
  EXPECT_FALSE(health_.Admit(kA, kChat, later + 1s));
  EXPECT_TRUE(health_.Admit(kA, kChat, later + HealthTracker::kOpenFor + 1ms));
}

TEST_F(HealthTrackerTest, AnAbandonedProbeIsGivenToTheNextRequest) {
  ASSERT_TRUE(Fail(kA, kChat, t0_));
  const auto later = t0_ + HealthTracker::kOpenFor + 1ms;
  ASSERT_TRUE(health_.Admit(kA, kChat, later));
  EXPECT_FALSE(health_.Admit(kA, kChat, later));
  health_.Abandon(kA, kChat);  // the client went away: the probe proved nothing
  EXPECT_TRUE(health_.Admit(kA, kChat, later));
}

TEST_F(HealthTrackerTest, RetryAfterSetsTheOpenPeriodWithinItsBounds) {
  ASSERT_TRUE(Fail(kA, kChat, t0_, 2));
  EXPECT_FALSE(health_.Admit(kA, kChat, t0_ + 1900ms));
  EXPECT_TRUE(health_.Admit(kA, kChat, t0_ + 2001ms));
  // A day-long Retry-After is capped; zero still opens for at least a second.
  ASSERT_TRUE(Fail(kB, kChat, t0_, 86'400));
  EXPECT_FALSE(health_.Admit(kB, kChat, t0_ + HealthTracker::kMaxOpenFor - 1ms));
  EXPECT_TRUE(health_.Admit(kB, kChat, t0_ + HealthTracker::kMaxOpenFor + 1ms));
  ASSERT_TRUE(Fail(kA, kOther, t0_, 0));
  EXPECT_FALSE(health_.Admit(kA, kOther, t0_ + 500ms));
}

TEST_F(HealthTrackerTest, ATripOpensAtOnceAndDisableIsForEveryModelForGood) {
  health_.Trip(kA, kChat, t0_);
  EXPECT_FALSE(health_.Admit(kA, kChat, t0_));
  EXPECT_TRUE(health_.Admit(kA, kOther, t0_));
  health_.Disable(kB);
  for (const auto model : {std::optional<std::uint32_t>(kChat),
                           std::optional<std::uint32_t>(kOther), std::optional<std::uint32_t>()}) {
    EXPECT_FALSE(health_.Admit(kB, model, t0_ + 1h));
    EXPECT_TRUE(health_.Unhealthy(t0_ + 1h, model).test(kB));
  }
  health_.RecordSuccess(kB, kChat);  // a disabled provider stays out
  EXPECT_FALSE(health_.Admit(kB, kChat, t0_ + 1h));
}

TEST_F(HealthTrackerTest, StateSaysClosedOpenHalfOpenAsTheMetricShowsIt) {
  using S = HealthTracker::CircuitState;
  EXPECT_EQ(health_.State(kA, kChat, t0_), S::kClosed);
  health_.Trip(kA, kChat, t0_);
  EXPECT_EQ(health_.State(kA, kChat, t0_), S::kOpen);
  EXPECT_EQ(health_.State(kA, kOther, t0_), S::kClosed) << "per model";
  EXPECT_EQ(health_.State(kA, kChat, t0_ + HealthTracker::kOpenFor + 1ms), S::kHalfOpen);
  health_.RecordSuccess(kA, kChat);
  EXPECT_EQ(health_.State(kA, kChat, t0_ + HealthTracker::kOpenFor + 1ms), S::kClosed);
  health_.Disable(kB);
  EXPECT_EQ(health_.State(kB, kOther, t0_ + 1h), S::kOpen);
}

}  // namespace
}  // namespace meridian::gateway
