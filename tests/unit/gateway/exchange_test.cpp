// The exchange's promises as unit tests, in microseconds: a scripted provider (no sockets)
// stands in for the upstreams and a recording writer for the front end. Before the commit a
// failure falls back, never after it; nothing outside the decision's candidates is tried;
// every decided request writes exactly one audit record, refused or served; cancellation by
// the client, the caller's deadline and the drain deadline end in their own final status.
#include "gateway/exchange.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gateway/audit.h"
#include "tests/unit/gateway/scripted_provider.h"
#include "tests/unit/policy/policy_test_util.h"

namespace meridian::gateway {
namespace {

using ::testing::ElementsAre;

/// Records what the exchange tells the front end, one line per call.
class RecordingWriter final : public ResponseWriter {
 public:
  std::vector<std::string> calls;
  const Admission* refused_admission = nullptr;

  asio::awaitable<void> Refuse(const core::Status& status, const Admission* admission,
                               std::string_view provider) override {
    refused_admission = admission;
    calls.push_back("refuse " + status.reason + (provider.empty() ? "" : " after ") +
                    std::string(provider));
    co_return;
  }
  asio::awaitable<bool> Commit(const Admission& admission, std::string_view provider,
                               const core::Chunk* start) override {
    (void)admission;
    calls.push_back("commit " + std::string(provider) + (start != nullptr ? " +start" : ""));
    co_return true;
  }
  asio::awaitable<bool> Write(const core::Chunk& chunk) override {
    calls.push_back("write " + chunk.content);
    co_return !gone_after_writes || --*gone_after_writes > 0;
  }
  asio::awaitable<void> Finish(const core::Status& status) override {
    calls.push_back("finish " + (status.ok() ? std::string("ok") : status.reason));
    co_return;
  }
  asio::awaitable<void> Complete(const Admission& admission, std::string_view provider,
                                 const core::Completion& answer) override {
    (void)admission;
    calls.push_back("complete " + std::string(provider) + " " + answer.content);
    co_return;
  }
  int WireStatus(const core::Status& final) const override { return final.ok() ? 200 : 500; }

  /// The client stops taking writes after this many.
  std::optional<int> gone_after_writes;
};

class FakeWorker final : public WorkerContext {
 public:
  FakeWorker(asio::io_context& io, std::unique_ptr<providers::Provider> provider)
      : io_(io), adapters_(std::move(provider)) {}
  asio::any_io_executor executor() override { return io_.get_executor(); }
  AdapterSet& adapters() override { return adapters_; }
  core::RequestId NewRequestId() override { return core::RequestId::From(++next_); }
  DrainHooks& drain_hooks() override { return hooks_; }
  asio::any_io_executor control_executor() override { return io_.get_executor(); }

 private:
  asio::io_context& io_;
  AdapterSet adapters_;
  DrainHooks hooks_;
  std::uint64_t next_ = 0;
};

const std::string kPolicy = std::string(kScriptedProviders) + R"(guards:
  - id: keep-out
    when:
      data_class: ">= personal"
    narrow:
      providers: [a, b, c]
  - id: no-sensitive
    when:
      data_class: sensitive_personal
    deny: sensitive data is not served here
routes:
  - id: r
    allow: [a, b, c, outside]
)";

class ExchangeTest : public ::testing::Test {
 protected:
  ExchangeTest() {
    auto provider = std::make_unique<ScriptedProvider>(io_.get_executor());
    provider_ = provider.get();
    worker_ = std::make_unique<FakeWorker>(io_, std::move(provider));
    state_.table.store(RoutingTable::Build(testing::MustCompile(kPolicy)));
    audit_path_ = std::filesystem::temp_directory_path() /
                  ("exchange_test_" + std::to_string(::getpid()) + "_" +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".log");
    std::filesystem::remove(audit_path_);
    audit::Options o;
    o.path = audit_path_.string();
    const core::Status st = audit::AuditLog::Open(o, state_.audit);
    EXPECT_TRUE(st.ok()) << st.message;
  }
  ~ExchangeTest() override {
    state_.audit.reset();
    std::filesystem::remove(audit_path_);
  }

  /// Runs one exchange to its end. `during` runs once the exchange is under way.
  ExchangeResult Run(bool stream, std::function<void(Cancellation&)> during = {},
                     std::optional<policy::DataClass> declared = std::nullopt,
                     std::chrono::milliseconds deadline = std::chrono::milliseconds(0)) {
    CallerContext caller;
    caller.id = worker_->NewRequestId();
    caller.tenant = "t";
    caller.attrs.tenant = "t";
    caller.attrs.data_class = declared.value_or(policy::DataClass::kPersonal);
    if (deadline.count() > 0) caller.deadline = std::chrono::system_clock::now() + deadline;
    core::CompletionRequest request;
    request.model = "chat";
    request.stream = stream;
    core::Message m;
    m.role = "user";
    m.text = "hello";
    request.messages.push_back(m);
    writer_ = RecordingWriter{};
    writer_.gone_after_writes = gone_after_writes_;
    Cancellation cancel;
    auto fut = asio::co_spawn(
        io_, Exchange(state_, *worker_, state_.Table(), caller, request, writer_, cancel),
        asio::use_future);
    if (during) asio::post(io_, [&] { during(cancel); });
    io_.run();
    io_.restart();
    return fut.get();
  }

  /// The audit records written so far, as (request_id, status_reason, candidates).
  std::vector<boost::json::object> AuditRecords() {
    state_.audit->Close();
    std::vector<boost::json::object> out;
    std::ifstream in(audit_path_);
    for (std::string line; std::getline(in, line);) {
      out.push_back(boost::json::parse(line).as_object());
    }
    return out;
  }

  asio::io_context io_;
  ScriptedProvider* provider_ = nullptr;
  std::unique_ptr<FakeWorker> worker_;
  GatewayState state_;
  std::filesystem::path audit_path_;
  RecordingWriter writer_;
  std::optional<int> gone_after_writes_;
};

TEST_F(ExchangeTest, AStreamCommitsWithItsFirstContentAndEndsOnce) {
  const ExchangeResult r = Run(/*stream=*/true);
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.provider, "a");
  EXPECT_TRUE(r.ttft_ms.has_value());
  EXPECT_THAT(writer_.calls, ElementsAre("commit a +start", "write a-0", "write a-1", "finish ok"));
}

TEST_F(ExchangeTest, AFailureBeforeTheCommitFallsBackWithinTheDecision) {
  provider_->scripts["a"] = {
      .status = Failure(core::StatusCode::kUnavailable, "upstream_unavailable"), .deltas = 0};
  provider_->scripts["b"] = {.status = Failure(core::StatusCode::kBadUpstream, "bad"), .deltas = 0};
  const ExchangeResult r = Run(/*stream=*/true);
  EXPECT_TRUE(r.status.ok());
  EXPECT_THAT(provider_->calls, ElementsAre("a", "b", "c"));
  EXPECT_THAT(writer_.calls, ElementsAre("commit c +start", "write c-0", "write c-1", "finish ok"));
}

TEST_F(ExchangeTest, AfterTheCommitAFailureEndsTheStreamAndNothingElseIsTried) {
  provider_->scripts["a"] = {
      .status = Failure(core::StatusCode::kUnavailable, "upstream_unavailable"), .deltas = 1};
  const ExchangeResult r = Run(/*stream=*/true);
  EXPECT_EQ(r.status.reason, "upstream_unavailable");
  EXPECT_THAT(provider_->calls, ElementsAre("a"));
  EXPECT_THAT(writer_.calls,
              ElementsAre("commit a +start", "write a-0", "finish upstream_unavailable"));
}

TEST_F(ExchangeTest, WhenEveryAllowedProviderFailsTheRequestIsRefusedAndOutsideIsNeverTried) {
  for (const char* id : {"a", "b", "c"}) {
    provider_->scripts[id] = {
        .status = Failure(core::StatusCode::kUnavailable, std::string(id) + "_down"), .deltas = 0};
  }
  for (const bool stream : {true, false}) {
    provider_->calls.clear();
    const ExchangeResult r = Run(stream);
    EXPECT_EQ(r.status.reason, "c_down");
    // The guard narrowed the route's four providers to three: "outside" is never called.
    EXPECT_THAT(provider_->calls, ElementsAre("a", "b", "c"));
    EXPECT_THAT(writer_.calls, ElementsAre("refuse c_down after c"));
  }
}

TEST_F(ExchangeTest, ANonStreamedAnswerIsCollectedWholeAndMayFallBackAfterContent) {
  provider_->scripts["a"] = {
      .status = Failure(core::StatusCode::kUnavailable, "upstream_unavailable"), .deltas = 2};
  const ExchangeResult r = Run(/*stream=*/false);
  EXPECT_TRUE(r.status.ok());
  // a's half answer is dropped: the client sees b's only.
  EXPECT_THAT(writer_.calls, ElementsAre("complete b b-0b-1"));
}

TEST_F(ExchangeTest, APolicyDenialIsRefusedWithItsDecisionAndNoProviderIsCalled) {
  const ExchangeResult r = Run(/*stream=*/true, {}, policy::DataClass::kSensitivePersonal);
  EXPECT_EQ(r.status.code, core::StatusCode::kPermissionDenied);
  EXPECT_TRUE(r.decided);
  EXPECT_TRUE(provider_->calls.empty());
  ASSERT_EQ(writer_.calls.size(), 1u);
  EXPECT_THAT(writer_.calls[0], ::testing::StartsWith("refuse denied_by_guard"));
  EXPECT_NE(writer_.refused_admission, nullptr);  // rule and guards go on the refusal too
}

TEST_F(ExchangeTest, AFullGatewayRefusesWithOverloaded) {
  state_.config.limits.max_concurrent_streams = 0;
  const ExchangeResult r = Run(/*stream=*/false);
  EXPECT_EQ(r.status.reason, "overloaded");
  EXPECT_EQ(r.status.retry_after_s, state_.config.limits.retry_after_s);
  EXPECT_TRUE(provider_->calls.empty());
  EXPECT_EQ(state_.in_flight.load(), 0);
}

TEST_F(ExchangeTest, TheDrainDeadlineRefusesARequestNotYetAnswered) {
  provider_->scripts["a"] = {.hang = true};
  const ExchangeResult r = Run(/*stream=*/true, [this](Cancellation&) {
    worker_->drain_hooks().Fire(DrainPhase::kDeadline);
  });
  EXPECT_EQ(r.status.reason, "shutting_down");
  EXPECT_EQ(r.status.code, core::StatusCode::kUnavailable);
  EXPECT_THAT(provider_->calls, ElementsAre("a"));  // no fallback on a drain
  EXPECT_THAT(writer_.calls, ElementsAre("refuse shutting_down after a"));
}

TEST_F(ExchangeTest, TheDrainDeadlineEndsACommittedStreamWithShuttingDown) {
  provider_->scripts["a"] = {.deltas = 1, .hang_after_deltas = true};
  const ExchangeResult r = Run(/*stream=*/true, [this](Cancellation&) {
    worker_->drain_hooks().Fire(DrainPhase::kDeadline);
  });
  EXPECT_EQ(r.status.reason, "shutting_down");
  EXPECT_THAT(provider_->calls, ElementsAre("a"));
  EXPECT_THAT(writer_.calls, ElementsAre("commit a +start", "write a-0", "finish shutting_down"));
}

TEST_F(ExchangeTest, ACutAtTheDrainDeadlineIsReportedAsSuch) {
  provider_->scripts["a"] = {.deltas = 1, .hang_after_deltas = true};
  const ExchangeResult r = Run(/*stream=*/true, [this](Cancellation& c) {
    worker_->drain_hooks().Fire(DrainPhase::kDeadline);
    c.Cancel(CancelCause::kDrainCut);  // the front end cut a client that stopped reading
    c.Cancel(CancelCause::kClient);    // ... whose write then failed: the cause stays
  });
  EXPECT_EQ(r.status.reason, "drain_deadline");
}

TEST_F(ExchangeTest, TheClientGoingAwayCancelsWithoutFallback) {
  provider_->scripts["a"] = {.hang = true};
  const ExchangeResult r =
      Run(/*stream=*/false, [](Cancellation& c) { c.Cancel(CancelCause::kClient); });
  EXPECT_EQ(r.status.code, core::StatusCode::kCancelled);
  EXPECT_THAT(provider_->calls, ElementsAre("a"));
}

TEST_F(ExchangeTest, AWriteTheClientNoLongerTakesCancelsTheStream) {
  provider_->scripts["a"] = {.deltas = 5};
  gone_after_writes_ = 2;
  const ExchangeResult r = Run(/*stream=*/true);
  EXPECT_EQ(r.status.code, core::StatusCode::kCancelled);
  EXPECT_THAT(provider_->calls, ElementsAre("a"));
  EXPECT_THAT(writer_.calls,
              ElementsAre("commit a +start", "write a-0", "write a-1", "finish cancelled"));
}

TEST_F(ExchangeTest, TheCallersDeadlineEndsTheRequestAsDeadlineExceeded) {
  provider_->scripts["a"] = {.hang = true};
  const ExchangeResult r = Run(/*stream=*/false, {}, std::nullopt, std::chrono::milliseconds(5));
  EXPECT_EQ(r.status.reason, "deadline_exceeded");
  EXPECT_THAT(provider_->calls, ElementsAre("a"));
}

TEST_F(ExchangeTest, EveryDecidedRequestWritesExactlyOneAuditRecord) {
  std::vector<std::string> ids;
  std::vector<std::string> reasons;
  auto run = [&](bool stream, auto&&... args) {
    const ExchangeResult r = Run(stream, args...);
    reasons.push_back(r.status.ok() ? "ok" : r.status.reason);
  };
  run(true);   // served, streamed
  run(false);  // served, whole
  run(true, std::function<void(Cancellation&)>{}, policy::DataClass::kSensitivePersonal);  // denied
  provider_->scripts["a"] = {.hang = true};
  run(false, std::function<void(Cancellation&)>(
                 [](Cancellation& c) { c.Cancel(CancelCause::kClient); }));  // cancelled
  provider_->scripts["a"] = {};
  state_.config.limits.max_concurrent_streams = 0;
  run(true);  // overloaded
  const auto records = AuditRecords();
  ASSERT_EQ(records.size(), 5u);
  std::set<std::string> unique;
  for (std::size_t i = 0; i < records.size(); ++i) {
    unique.insert(std::string(records[i].at("request_id").as_string()));
    for (const auto& c : records[i].at("candidates").as_array()) {
      EXPECT_NE(c.as_string(), "outside");
    }
  }
  EXPECT_EQ(unique.size(), 5u);
  EXPECT_THAT(reasons,
              ElementsAre("ok", "ok", "denied_by_guard:no-sensitive", "cancelled", "overloaded"));
}

}  // namespace
}  // namespace meridian::gateway
