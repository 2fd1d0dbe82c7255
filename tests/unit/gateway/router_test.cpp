// The router's safety properties as unit tests: a scripted provider (no sockets) and a
// recording sink stand in for the upstreams and the front end. Before the commit a provider's
// failure moves to the next candidate of the decision, never outside it; the request's own
// verdicts (400) do not move; after the commit nothing moves; cancellation stops at once; an
// attempt past its max_duration_ms ends as the provider's timeout.
#include "gateway/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <map>
#include <string>
#include <vector>

#include "tests/unit/gateway/scripted_provider.h"
#include "tests/unit/policy/policy_test_util.h"

namespace meridian::gateway {
namespace {

namespace asio = boost::asio;
using ::testing::ElementsAre;

/// Commits with the first chunk after the start, as the HTTP and gRPC sinks do.
class RecordingSink final : public providers::ChunkSink {
 public:
  std::vector<std::string> attempts;
  std::vector<std::string> delivered;  ///< content that reached "the client"

  asio::awaitable<bool> Emit(const core::Chunk& chunk) override {
    if (chunk.kind == core::Chunk::Kind::kStart) co_return true;
    committed_ = true;
    delivered.push_back(chunk.content);
    co_return true;
  }
  bool committed() const override { return committed_; }
  void Reset() override {}
  void BeginAttempt(std::string_view id) override { attempts.emplace_back(id); }

 private:
  bool committed_ = false;
};

const std::string kPolicy = std::string(kScriptedProviders) + R"(routes:
  - id: r
    allow: [a, b, c, outside]
)";

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    auto provider = std::make_unique<ScriptedProvider>(io_.get_executor());
    provider_ = provider.get();
    adapters_ = std::make_unique<AdapterSet>(std::move(provider));
    table_ = RoutingTable::Build(testing::MustCompile(kPolicy));
    request_.model = "chat";
  }

  /// Routes over `candidates` (by id; "outside" is never among them) and runs to the end.
  RouteOutcome Run(const std::vector<std::string>& candidates, bool cancelled = false) {
    cancel_ = providers::CancelToken{};
    policy::Decision d;
    d.snapshot = table_->policy;
    for (const auto& id : candidates) {
      for (std::size_t i = 0; i < d.snapshot->providers.size(); ++i) {
        if (d.snapshot->providers[i].id == id) {
          d.candidates_after.push_back(static_cast<policy::ProviderIndex>(i));
        }
      }
    }
    auto fut = asio::co_spawn(io_, Route(d, *table_, request_, *adapters_, sink_, cancel_),
                              asio::use_future);
    // Runs once the route is under way: the client goes away mid-attempt.
    if (cancelled) asio::post(io_, [this] { cancel_.Cancel(); });
    io_.run();
    io_.restart();
    return fut.get();
  }

  std::string ServedBy(const RouteOutcome& o) const {
    return o.served_by ? table_->policy->providers[*o.served_by].id : "";
  }

  asio::io_context io_;
  ScriptedProvider* provider_ = nullptr;
  std::unique_ptr<AdapterSet> adapters_;
  RoutingTablePtr table_;
  core::CompletionRequest request_;
  RecordingSink sink_;
  providers::CancelToken cancel_;
};

TEST_F(RouterTest, AFailureBeforeTheCommitMovesToTheNextCandidateOnly) {
  provider_->scripts["a"] = {
      .status = Failure(core::StatusCode::kUnavailable, "upstream_unavailable"), .deltas = 0};
  const RouteOutcome o = Run({"a", "c"});
  EXPECT_TRUE(o.status.ok());
  EXPECT_EQ(ServedBy(o), "c");
  EXPECT_THAT(provider_->calls, ElementsAre("a", "c"));
  EXPECT_THAT(sink_.delivered, ElementsAre("c-0", "c-1"));
  ASSERT_EQ(o.attempts.size(), 2u);
  EXPECT_EQ(o.attempts[0].status.reason, "upstream_unavailable");
}

TEST_F(RouterTest, WhenEveryCandidateFailsTheLastFailureIsTheAnswerAndNothingOutsideIsTried) {
  for (const char* id : {"a", "c"}) {
    provider_->scripts[id] = {
        .status = Failure(core::StatusCode::kBadUpstream, std::string(id) + "_bad"), .deltas = 0};
  }
  const RouteOutcome o = Run({"a", "c"});
  EXPECT_EQ(o.status.reason, "c_bad");
  EXPECT_FALSE(o.served_by.has_value());
  EXPECT_THAT(provider_->calls, ElementsAre("a", "c"));  // "outside" never
}

TEST_F(RouterTest, TheUpstreamsVerdictOnTheRequestItselfDoesNotMove) {
  provider_->scripts["a"] = {
      .status = Failure(core::StatusCode::kInvalidArgument, "context_length_exceeded"),
      .deltas = 0};
  const RouteOutcome o = Run({"a", "c"});
  EXPECT_EQ(o.status.code, core::StatusCode::kInvalidArgument);
  EXPECT_THAT(provider_->calls, ElementsAre("a"));
}

TEST_F(RouterTest, AfterTheCommitNothingMoves) {
  provider_->scripts["a"] = {
      .status = Failure(core::StatusCode::kBadUpstream, "upstream_truncated_stream"), .deltas = 1};
  const RouteOutcome o = Run({"a", "c"});
  EXPECT_EQ(o.status.reason, "upstream_truncated_stream");
  EXPECT_THAT(provider_->calls, ElementsAre("a"));
  EXPECT_THAT(sink_.delivered, ElementsAre("a-0"));
}

TEST_F(RouterTest, AnAnswerWithoutACompletionIsTheProvidersFailure) {
  provider_->scripts["a"] = {.status = core::Status::Ok(), .deltas = 0, .silent = true};
  const RouteOutcome o = Run({"a", "c"});
  EXPECT_TRUE(o.status.ok());
  EXPECT_EQ(ServedBy(o), "c");
  ASSERT_FALSE(o.attempts.empty());
  EXPECT_EQ(o.attempts[0].status.reason, "upstream_empty_answer");
}

TEST_F(RouterTest, ACancelledRequestStopsAtOnce) {
  provider_->scripts["a"] = {.hang = true};
  const RouteOutcome o = Run({"a", "c"}, /*cancelled=*/true);
  EXPECT_EQ(o.status.code, core::StatusCode::kCancelled);
  EXPECT_THAT(provider_->calls, ElementsAre("a"));
}

TEST_F(RouterTest, AnAttemptPastItsMaxDurationIsATimeoutAndFallsBack) {
  provider_->scripts["b"] = {.hang = true};  // b's max_duration_ms is 50
  const RouteOutcome o = Run({"b", "c"});
  EXPECT_TRUE(o.status.ok());
  EXPECT_EQ(ServedBy(o), "c");
  ASSERT_EQ(o.attempts.size(), 2u);
  EXPECT_EQ(o.attempts[0].status.code, core::StatusCode::kUpstreamTimeout);
  EXPECT_EQ(o.attempts[0].status.reason, "upstream_max_duration");
}

TEST_F(RouterTest, AProviderWhoseCircuitOpenedIsSkippedWithoutAnAttempt) {
  provider_->scripts["a"] = {
      .status = Failure(core::StatusCode::kUnavailable, "upstream_unavailable"), .deltas = 0};
  for (std::uint32_t i = 0; i < HealthTracker::kTripAfter; ++i) (void)Run({"a", "c"});
  provider_->calls.clear();
  const RouteOutcome o = Run({"a", "c"});
  EXPECT_EQ(ServedBy(o), "c");
  EXPECT_THAT(provider_->calls, ElementsAre("c"));
}

}  // namespace
}  // namespace meridian::gateway
