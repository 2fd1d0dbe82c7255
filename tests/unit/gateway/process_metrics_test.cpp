// The process_* figures (gateway/process_metrics.h): /proc's formats parsed as pure functions,
// and this test process read for real.
#include "gateway/process_metrics.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ctime>
#include <string>

namespace meridian::gateway {
namespace {

// proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
// utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss ...
constexpr const char* kStat =
    "4242 (meridian (w) 1) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 150 0 0 20 0 3 0 "
    "10000 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";

TEST(ProcessMetrics, StatFieldsAfterACommandNameWithSpacesAndParentheses) {
  const auto s = ParseProcStat(kStat, 100, 4096, 1'700'000'000);
  ASSERT_TRUE(s.has_value());
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 4.0);                     // (250 + 150) / 100
  EXPECT_DOUBLE_EQ(s->start_time_seconds, 1'700'000'100.0);  // boot + 10000 / 100
  EXPECT_EQ(s->virtual_bytes, 123456789u);
  EXPECT_EQ(s->resident_bytes, 2048u * 4096u);
}

TEST(ProcessMetrics, MalformedInputIsRefusedNotGuessed) {
  EXPECT_FALSE(ParseProcStat("", 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat("4242 (x) S 1 2 3", 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat(std::string(kStat).replace(60, 3, "2x0"), 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat(kStat, 0, 4096, 0).has_value());
  EXPECT_EQ(ParseBootTime("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"), 1'700'000'000.0);
  EXPECT_FALSE(ParseBootTime("cpu  1 2 3\n").has_value());
  EXPECT_FALSE(ParseBootTime("btime soon\n").has_value());
}

TEST(ProcessMetrics, ThisProcessReadsPlausibly) {
  const ProcessStats s = ReadProcessStats();
  EXPECT_GT(s.resident_bytes, 1u << 20);
  EXPECT_GE(s.virtual_bytes, s.resident_bytes);
  EXPECT_GE(s.open_fds, 3u);  // at least stdin, stdout, stderr
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(s.max_fds, limit.rlim_cur);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(s.start_time_seconds, now + 1);
  EXPECT_GT(s.start_time_seconds, now - 3600) << "started within the hour";
  EXPECT_GE(s.cpu_seconds, 0.0);
}

}  // namespace
}  // namespace meridian::gateway
