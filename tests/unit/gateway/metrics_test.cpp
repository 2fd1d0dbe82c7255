// Metrics: exact Prometheus text rendering, escaping, name validation, duplicates, callback and
// info metrics, exact totals under concurrency, and (when installed) `promtool check metrics`.
#include "gateway/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace meridian::metrics {
namespace {

TEST(MetricsTest, UnlabelledCounterRendersExactText) {
  Registry r;
  Counter& c = r.AddCounter("requests_total", "Requests served.");
  c.Inc();
  c.Add(4);
  EXPECT_EQ(c.Value(), 5u);
  EXPECT_EQ(r.Render(),
            "# HELP requests_total Requests served.\n"
            "# TYPE requests_total counter\n"
            "requests_total 5\n");
}

TEST(MetricsTest, FamiliesInRegistrationOrderChildrenInCreationOrder) {
  Registry r;
  auto& req = r.AddCounter("meridian_requests_total", "Requests.", {"route", "code"});
  auto& inflight = r.AddGauge("meridian_inflight", "In flight.", {"route"});
  Counter& b200 = req.With({"b", "200"});
  Counter& a500 = req.With({"a", "500"});
  b200.Add(3);
  a500.Inc();
  inflight.With({"z"}).Set(-7);
  inflight.With({"a"}).Add(2);
  EXPECT_EQ(r.Render(),
            "# HELP meridian_requests_total Requests.\n"
            "# TYPE meridian_requests_total counter\n"
            "meridian_requests_total{route=\"b\",code=\"200\"} 3\n"
            "meridian_requests_total{route=\"a\",code=\"500\"} 1\n"
            "# HELP meridian_inflight In flight.\n"
            "# TYPE meridian_inflight gauge\n"
            "meridian_inflight{route=\"z\"} -7\n"
            "meridian_inflight{route=\"a\"} 2\n");
}

TEST(MetricsTest, WithReturnsTheSameChildAndChecksValueCount) {
  Registry r;
  auto& f = r.AddCounter("x_total", "X.", {"a", "b"});
  Counter& c1 = f.With({"1", "2"});
  Counter& c2 = f.With(std::vector<std::string>{"1", "2"});
  EXPECT_EQ(&c1, &c2);
  EXPECT_NE(&c1, &f.With({"2", "1"}));
  EXPECT_EQ(f.size(), 2u);
  EXPECT_THROW(f.With({"1"}), std::invalid_argument);
  EXPECT_THROW(f.With({"1", "2", "3"}), std::invalid_argument);
  EXPECT_THROW(f.With({}), std::invalid_argument);
  EXPECT_EQ(f.size(), 2u);
}

TEST(MetricsTest, GaugeSetAddSub) {
  Registry r;
  Gauge& g = r.AddGauge("queue_depth", "Depth.");
  g.Set(10);
  g.Add(5);
  g.Sub(20);
  g.Inc();
  g.Dec();
  g.Dec();
  EXPECT_EQ(g.Value(), -6);
  EXPECT_EQ(r.Render(),
            "# HELP queue_depth Depth.\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth -6\n");
}

TEST(MetricsTest, HistogramRendersCumulativeBucketsSumAndCount) {
  Registry r;
  Histogram& h = r.AddHistogram("lat_seconds", "Latency.", {0.25, 0.5, 1});
  h.Observe(0.125);
  h.Observe(0.25);  // on the bound: counted in le="0.25"
  h.Observe(0.375);
  h.Observe(2);
  EXPECT_EQ(r.Render(),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.25\"} 2\n"
            "lat_seconds_bucket{le=\"0.5\"} 3\n"
            "lat_seconds_bucket{le=\"1\"} 3\n"
            "lat_seconds_bucket{le=\"+Inf\"} 4\n"
            "lat_seconds_sum 2.75\n"
            "lat_seconds_count 4\n");
}

TEST(MetricsTest, LabelledHistogramPutsLeLast) {
  Registry r;
  auto& f = r.AddHistogram("ttft_seconds", "TTFT.", {"provider"}, {0.5});
  f.With({"qwen"}).Observe(0.5);
  f.With({"openai"}).Observe(1.5);
  EXPECT_EQ(r.Render(),
            "# HELP ttft_seconds TTFT.\n"
            "# TYPE ttft_seconds histogram\n"
            "ttft_seconds_bucket{provider=\"qwen\",le=\"0.5\"} 1\n"
            "ttft_seconds_bucket{provider=\"qwen\",le=\"+Inf\"} 1\n"
            "ttft_seconds_sum{provider=\"qwen\"} 0.5\n"
            "ttft_seconds_count{provider=\"qwen\"} 1\n"
            "ttft_seconds_bucket{provider=\"openai\",le=\"0.5\"} 0\n"
            "ttft_seconds_bucket{provider=\"openai\",le=\"+Inf\"} 1\n"
            "ttft_seconds_sum{provider=\"openai\"} 1.5\n"
            "ttft_seconds_count{provider=\"openai\"} 1\n");
}

TEST(MetricsTest, HistogramNanAndInfinityLandInInfBucket) {
  Histogram h({1.0});
  h.Observe(std::numeric_limits<double>::quiet_NaN());
  h.Observe(-std::numeric_limits<double>::infinity());
  h.Observe(std::numeric_limits<double>::infinity());
  const Histogram::Snapshot s = h.Collect();
  ASSERT_EQ(s.cumulative.size(), 2u);
  EXPECT_EQ(s.cumulative[0], 1u);  // -Inf <= 1
  EXPECT_EQ(s.cumulative[1], 3u);
  EXPECT_EQ(s.count, 3u);
  EXPECT_TRUE(std::isnan(s.sum));
}

TEST(MetricsTest, HistogramWithoutBoundsHasOnlyInfBucket) {
  Registry r;
  r.AddHistogram("h_seconds", "H.", {}).Observe(3);
  EXPECT_EQ(r.Render(),
            "# HELP h_seconds H.\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"+Inf\"} 1\n"
            "h_seconds_sum 3\n"
            "h_seconds_count 1\n");
}

TEST(MetricsTest, BadBucketsThrow) {
  Registry r;
  EXPECT_THROW(r.AddHistogram("a", "A.", {1, 1}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("b", "B.", {2, 1}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("c", "C.", {1, std::numeric_limits<double>::infinity()}),
               std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("d", "D.", {std::numeric_limits<double>::quiet_NaN()}),
               std::invalid_argument);
  EXPECT_THROW(Histogram({0.5, 0.1}), std::invalid_argument);
  EXPECT_EQ(r.Render(), "");
  // A refused registration does not reserve the name.
  EXPECT_NO_THROW(r.AddHistogram("a", "A.", {1, 2}));
}

TEST(MetricsTest, LabelledFamilyWithoutChildrenIsOmitted) {
  Registry r;
  r.AddCounter("a_total", "A.", {"x"});
  r.AddGauge("b", "B.").Set(1);
  EXPECT_EQ(r.Render(),
            "# HELP b B.\n"
            "# TYPE b gauge\n"
            "b 1\n");
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeLabelValue("plain ünïcode {},="), "plain ünïcode {},=");
  EXPECT_EQ(EscapeHelp("a\\b\"c\nd"), "a\\\\b\"c\\nd");
  Registry r;
  r.AddCounter("e_total", "Line one\nsays \"C:\\dir\".", {"v"}).With({"x\"y\\z\nw"}).Inc();
  EXPECT_EQ(r.Render(),
            "# HELP e_total Line one\\nsays \"C:\\\\dir\".\n"
            "# TYPE e_total counter\n"
            "e_total{v=\"x\\\"y\\\\z\\nw\"} 1\n");
}

TEST(MetricsTest, ValidatesNames) {
  EXPECT_TRUE(IsValidMetricName("a"));
  EXPECT_TRUE(IsValidMetricName("_a:b_C9"));
  EXPECT_TRUE(IsValidMetricName(":x"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("9a"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName("a b"));
  EXPECT_FALSE(IsValidMetricName("a.b"));
  EXPECT_TRUE(IsValidLabelName("a"));
  EXPECT_TRUE(IsValidLabelName("_a9"));
  EXPECT_FALSE(IsValidLabelName(""));
  EXPECT_FALSE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName("9a"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("a-b"));

  Registry r;
  EXPECT_THROW(r.AddCounter("bad-name", "X."), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("", "X."), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("ok_total", "X.", {"bad-label"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("ok_total", "X.", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("ok_total", "X.", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("ok_seconds", "X.", {"le"}, {1}), std::invalid_argument);
  EXPECT_THROW(r.AddGaugeCallback("bad name", "X.", [] { return 1.0; }), std::invalid_argument);
  EXPECT_THROW(r.SetInfo("bad.info", "X.", {}), std::invalid_argument);
  EXPECT_THROW(r.SetInfo("ok_info", "X.", {{"bad-label", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.AddGaugeCallback("empty", "X.", nullptr), std::invalid_argument);
  // "le" is an ordinary label outside histograms; nothing refused above was registered.
  EXPECT_NO_THROW(r.AddGauge("ok_total", "X.", {"le"}));
  EXPECT_NO_THROW(r.AddHistogram("ok_seconds", "X.", {"a"}, {1}));
}

TEST(MetricsTest, RefusesDuplicateNames) {
  Registry r;
  r.AddCounter("x_total", "X.");
  EXPECT_THROW(r.AddCounter("x_total", "X."), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("x_total", "X.", {"a"}), std::invalid_argument);
  EXPECT_THROW(r.AddGaugeCallback("x_total", "X.", [] { return 1.0; }), std::invalid_argument);
  EXPECT_THROW(r.AddCounterCallback("x_total", "X.", [] { return 1.0; }), std::invalid_argument);
  EXPECT_THROW(r.SetInfo("x_total", "X.", {}), std::invalid_argument);
  // A histogram reserves its _bucket/_sum/_count sample names, in both orders.
  r.AddHistogram("h_seconds", "H.", {1});
  EXPECT_THROW(r.AddCounter("h_seconds_count", "X."), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("h_seconds_bucket", "X."), std::invalid_argument);
  r.AddGauge("g_sum", "X.");
  EXPECT_THROW(r.AddHistogram("g", "X.", {1}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("h_seconds", "X.", {2}), std::invalid_argument);
}

TEST(MetricsTest, CallbacksAreEvaluatedAtRender) {
  Registry r;
  double value = 1.5;
  std::uint64_t calls = 0;
  r.AddGaugeCallback("pool_idle_connections", "Idle.", [&] { return value; });
  r.AddCounterCallback("gc_runs_total", "Runs.", [&] { return static_cast<double>(++calls); });
  const std::string first = r.Render();
  EXPECT_EQ(first,
            "# HELP pool_idle_connections Idle.\n"
            "# TYPE pool_idle_connections gauge\n"
            "pool_idle_connections 1.5\n"
            "# HELP gc_runs_total Runs.\n"
            "# TYPE gc_runs_total counter\n"
            "gc_runs_total 1\n");
  value = 1e-05;
  EXPECT_EQ(r.Render(),
            "# HELP pool_idle_connections Idle.\n"
            "# TYPE pool_idle_connections gauge\n"
            "pool_idle_connections 1e-05\n"
            "# HELP gc_runs_total Runs.\n"
            "# TYPE gc_runs_total counter\n"
            "gc_runs_total 2\n");
}

TEST(MetricsTest, FamilyCallbacksRenderTheSamplesOfTheMomentEscaped) {
  Registry r;
  Registry::Samples now = {{{"ds-cn", "qwen-plus"}, 0}, {{"oai \"us\"", "gpt"}, 2}};
  r.AddGaugeFamilyCallback("circuit_state", "State.", {"provider", "model"}, [&] { return now; });
  EXPECT_EQ(r.Render(),
            "# HELP circuit_state State.\n"
            "# TYPE circuit_state gauge\n"
            "circuit_state{provider=\"ds-cn\",model=\"qwen-plus\"} 0\n"
            "circuit_state{provider=\"oai \\\"us\\\"\",model=\"gpt\"} 2\n");
  now = {{{"only-one-label"}, 1}};  // a sample with the wrong number of labels is dropped
  EXPECT_EQ(r.Render(), "# HELP circuit_state State.\n# TYPE circuit_state gauge\n");
  EXPECT_THROW(r.AddGaugeFamilyCallback("circuit_state", "Again.", {"x"},
                                        [] { return Registry::Samples{}; }),
               std::invalid_argument);
}

TEST(MetricsTest, RendersFloatsLikeTheGoClient) {
  Registry r;
  r.AddGaugeCallback("a", "A.", [] { return std::numeric_limits<double>::quiet_NaN(); });
  r.AddGaugeCallback("b", "B.", [] { return std::numeric_limits<double>::infinity(); });
  r.AddGaugeCallback("c", "C.", [] { return -std::numeric_limits<double>::infinity(); });
  r.AddGaugeCallback("d", "D.", [] { return 123456789.0; });
  r.AddGaugeCallback("e", "E.", [] { return 0.0005; });
  r.AddGaugeCallback("f", "F.", [] { return 123456.0; });
  r.AddGaugeCallback("g", "G.", [] { return 1e6; });
  r.AddGaugeCallback("h", "H.", [] { return -0.25; });
  EXPECT_EQ(r.Render(),
            "# HELP a A.\n# TYPE a gauge\na NaN\n"
            "# HELP b B.\n# TYPE b gauge\nb +Inf\n"
            "# HELP c C.\n# TYPE c gauge\nc -Inf\n"
            "# HELP d D.\n# TYPE d gauge\nd 1.23456789e+08\n"
            "# HELP e E.\n# TYPE e gauge\ne 0.0005\n"
            "# HELP f F.\n# TYPE f gauge\nf 123456\n"
            "# HELP g G.\n# TYPE g gauge\ng 1e+06\n"
            "# HELP h H.\n# TYPE h gauge\nh -0.25\n");
}

TEST(MetricsTest, InfoMetricIsReplaceableAndKeepsItsPosition) {
  Registry r;
  r.AddCounter("a_total", "A.").Inc();
  r.SetInfo("meridian_policy_info", "Loaded policy.", {{"version", "v1"}, {"sha", "ab\"c"}});
  r.AddGauge("z", "Z.").Set(2);
  EXPECT_EQ(r.Render(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
            "# HELP meridian_policy_info Loaded policy.\n"
            "# TYPE meridian_policy_info gauge\n"
            "meridian_policy_info{version=\"v1\",sha=\"ab\\\"c\"} 1\n"
            "# HELP z Z.\n# TYPE z gauge\nz 2\n");
  r.SetInfo("meridian_policy_info", "Loaded policy (reloaded).", {{"version", "v2"}});
  EXPECT_EQ(r.Render(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
            "# HELP meridian_policy_info Loaded policy (reloaded).\n"
            "# TYPE meridian_policy_info gauge\n"
            "meridian_policy_info{version=\"v2\"} 1\n"
            "# HELP z Z.\n# TYPE z gauge\nz 2\n");
  r.SetInfo("meridian_policy_info", "Nothing loaded.", {});
  EXPECT_EQ(r.Render(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
            "# HELP meridian_policy_info Nothing loaded.\n"
            "# TYPE meridian_policy_info gauge\n"
            "meridian_policy_info 1\n"
            "# HELP z Z.\n# TYPE z gauge\nz 2\n");
  // A refused replacement leaves the previous labels.
  EXPECT_THROW(r.SetInfo("meridian_policy_info", "X.", {{"a", "1"}, {"a", "2"}}),
               std::invalid_argument);
  EXPECT_NE(r.Render().find("meridian_policy_info 1\n"), std::string::npos);
}

TEST(MetricsTest, DefaultLatencyBuckets) {
  const std::vector<double> b = DefaultLatencyBuckets();
  ASSERT_GE(b.size(), 2u);
  EXPECT_EQ(b.front(), 0.0005);
  EXPECT_EQ(b.back(), 60.0);
  for (std::size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
  Registry r;
  EXPECT_NO_THROW(r.AddHistogram("request_duration_seconds", "D.", b));
  const std::string text = r.Render();
  EXPECT_NE(text.find("request_duration_seconds_bucket{le=\"0.0005\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("request_duration_seconds_bucket{le=\"60\"} 0\n"), std::string::npos);
}

TEST(MetricsTest, ConcurrentUpdatesGiveExactTotals) {
  constexpr int kThreads = 6;
  constexpr int kIters = 50000;
  Registry r;
  auto& fam = r.AddCounter("c_total", "C.", {"k"});
  auto& hfam = r.AddHistogram("h_seconds", "H.", {"k"}, {1, 2});
  Gauge& g = r.AddGauge("g", "G.");
  std::atomic<bool> done{false};
  std::atomic<int> ready{0};
  // A scraper renders concurrently; rendered counter values never decrease.
  std::thread scraper([&] {
    std::uint64_t last = 0;
    while (!done.load()) {
      const Counter& c = fam.With({"same"});
      const std::uint64_t v = c.Value();
      EXPECT_GE(v, last);
      last = v;
      (void)r.Render();
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Every thread creates / finds the same children concurrently.
      Counter& c = fam.With({"same"});
      Histogram& h = hfam.With({"same"});
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < kIters; ++i) {
        c.Inc();
        h.Observe(static_cast<double>((i + t) % 3) + 0.5);  // 0.5, 1.5, 2.5
        g.Add(2);
        g.Sub(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  done.store(true);
  scraper.join();

  EXPECT_EQ(fam.size(), 1u);
  EXPECT_EQ(hfam.size(), 1u);
  constexpr std::uint64_t kTotal = std::uint64_t{kThreads} * kIters;
  EXPECT_EQ(fam.With({"same"}).Value(), kTotal);
  EXPECT_EQ(g.Value(), static_cast<std::int64_t>(kTotal));
  const Histogram::Snapshot s = hfam.With({"same"}).Collect();
  // Per thread, (i + t) % 3 hits each residue; count them exactly.
  std::uint64_t n[3] = {0, 0, 0};
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kIters; ++i) ++n[(i + t) % 3];
  }
  ASSERT_EQ(s.cumulative.size(), 3u);
  EXPECT_EQ(s.cumulative[0], n[0]);
  EXPECT_EQ(s.cumulative[1], n[0] + n[1]);
  EXPECT_EQ(s.cumulative[2], kTotal);
  EXPECT_EQ(s.count, kTotal);
  // Every value is a multiple of 0.5 and the sum stays far below 2^53: exact.
  EXPECT_EQ(s.sum, 0.5 * static_cast<double>(n[0]) + 1.5 * static_cast<double>(n[1]) +
                       2.5 * static_cast<double>(n[2]));
  const std::string text = r.Render();
  EXPECT_NE(text.find("c_total{k=\"same\"} " + std::to_string(kTotal) + "\n"), std::string::npos);
  EXPECT_NE(text.find("h_seconds_count{k=\"same\"} " + std::to_string(kTotal) + "\n"),
            std::string::npos);
}

TEST(MetricsTest, PromtoolAcceptsEveryMetricKind) {
  // The check is part of the suite: a missing promtool fails it rather than skipping it.
  ASSERT_EQ(std::system("command -v promtool >/dev/null 2>&1"), 0)
      << "promtool not on PATH: install the Debian package `prometheus` (scripts/install-deps.sh)";
  Registry r;
  r.AddCounter("meridian_requests_total", "Requests by route and code.", {"route", "code"})
      .With({"chat", "200"})
      .Add(42);
  r.AddCounter("meridian_errors_total", "Errors.").Inc();
  r.AddGauge("meridian_inflight_requests", "Requests in flight.", {"front_end"})
      .With({"http"})
      .Set(3);
  r.AddGauge("meridian_queue_depth", "Queued.").Set(-1);
  auto& lat = r.AddHistogram("meridian_request_duration_seconds", "Request duration.", {"provider"},
                             DefaultLatencyBuckets());
  lat.With({"qwen \"local\"\nC:\\"}).Observe(0.042);
  lat.With({"openai"}).Observe(75);
  r.AddHistogram("meridian_time_to_first_token_seconds", "TTFT.", DefaultLatencyBuckets())
      .Observe(0.3);
  r.AddGaugeCallback("meridian_pool_idle_connections", "Idle \\ connections\nin the pool.",
                     [] { return 4.0; });
  r.AddCounterCallback("meridian_reloads_total", "Reloads.", [] { return 2.0; });
  r.SetInfo("meridian_policy_info", "Loaded policy.", {{"version", "2024-06-01"}, {"sha", "f00"}});
  r.AddGaugeFamilyCallback("meridian_provider_circuit_state", "Circuits.", {"provider", "model"},
                           [] {
                             return Registry::Samples{{{"a", "m"}, 2}};
                           });
  const std::string text = r.Render();

  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("meridian_metrics_test_" + std::to_string(::getpid()) + ".prom");
  {
    std::ofstream out(path, std::ios::binary);
    out << text;
    ASSERT_TRUE(out.good());
  }
  const std::string cmd = "promtool check metrics < '" + path.string() + "'";
  const int rc = std::system(cmd.c_str());
  std::filesystem::remove(path);
  EXPECT_EQ(rc, 0) << cmd << "\n" << text;
}

}  // namespace
}  // namespace meridian::metrics
