#include "gateway/audit.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace meridian::audit {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "audit_test.XXXXXX").string();
    const char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(std::string_view name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Record MakeRecord(std::string id) {
  Record r;
  r.time_unix_ms = 1700000000000;
  r.request_id = std::move(id);
  r.front_end = "http";
  r.tenant = "acme";
  r.region = "cn-north";
  r.region_source = "tenant_binding";
  r.declared_class = "internal";
  r.effective_class = "personal";
  r.raised_by = {"cn_mobile"};
  r.allowed = true;
  r.rule = "cn-personal-local";
  r.candidates = {"local-qwen"};
  r.attempts = {{"local-qwen", "ok", 1234}};
  r.status = 200;
  r.total_us = 5678;
  r.policy_version = "v1";
  return r;
}

// The lines the writer writes for `records`, in order, chained from the start of a log.
std::vector<std::string> ChainedLines(const std::vector<Record>& records) {
  ChainState state;
  std::vector<std::string> lines;
  for (const Record& r : records) lines.push_back(ToChainedLine(r, state));
  return lines;
}

std::unique_ptr<AuditLog> MustOpen(Options o) {
  std::unique_ptr<AuditLog> log;
  const core::Status st = AuditLog::Open(std::move(o), log);
  EXPECT_TRUE(st.ok()) << st.message;
  EXPECT_NE(log, nullptr);
  return log;
}

// Records the on_error messages (called from the writer thread).
struct ErrorSink {
  std::mutex mu;
  std::vector<std::string> messages;
  std::function<void(std::string_view)> Callback() {
    return [this](std::string_view m) {
      std::lock_guard<std::mutex> lk(mu);
      messages.emplace_back(m);
    };
  }
  std::vector<std::string> Get() {
    std::lock_guard<std::mutex> lk(mu);
    return messages;
  }
};

TEST(AuditJson, FullRecordExactText) {
  Record r;
  r.time_unix_ms = 1732300000123;
  r.request_id = "req-1";
  r.front_end = "grpc";
  r.tenant = "acme";
  r.model = "qwen-plus";
  r.upstream_model = "qwen-plus-2025-01-25";
  r.region = "cn-north";
  r.region_source = "trusted_proxy";
  r.declared_class = "internal";
  r.effective_class = "sensitive_personal";
  r.raised_by = {"cn_resident_id", "bank_card"};
  r.allowed = true;
  r.reason_code = "";
  r.rule = "cn-sensitive";
  r.guards = {"no-offshore", "pii-local"};
  r.candidates = {"local-qwen", "dashscope"};
  r.attempts = {{"local-qwen", "upstream_timeout", 30000}, {"dashscope", "ok", 812345}};
  r.status = 0;
  r.status_reason = "OK";
  r.prompt_tokens = 12;
  r.completion_tokens = 34;
  r.total_tokens = 46;
  r.ttft_us = 90000;
  r.total_us = 842345;
  r.policy_version = "sha256:abc";
  r.exported = true;
  r.new_individual = true;
  r.echo_said = "inference_geo=global";
  r.echo_verdict = "outside";
  EXPECT_EQ(
      ToJsonLine(r),
      R"({"v":1,"time_unix_ms":1732300000123,"request_id":"req-1","front_end":"grpc",)"
      R"("tenant":"acme","model":"qwen-plus","upstream_model":"qwen-plus-2025-01-25",)"
      R"("region":"cn-north","region_source":"trusted_proxy",)"
      R"("declared_class":"internal","effective_class":"sensitive_personal",)"
      R"("raised_by":["cn_resident_id","bank_card"],"allowed":true,"reason_code":"",)"
      R"("rule":"cn-sensitive","guards":["no-offshore","pii-local"],)"
      R"("candidates":["local-qwen","dashscope"],"attempts":[)"
      R"({"provider":"local-qwen","outcome":"upstream_timeout","duration_us":30000},)"
      R"({"provider":"dashscope","outcome":"ok","duration_us":812345}],)"
      R"("exported":true,"new_individual":true,)"
      R"("echo":{"said":"inference_geo=global","verdict":"outside"},"status":0,"status_reason":"OK","prompt_tokens":12,"completion_tokens":34,)"
      R"("total_tokens":46,"ttft_us":90000,"total_us":842345,"policy_version":"sha256:abc"})");
}

TEST(AuditJson, MinimalRecordExactText) {
  Record r;
  r.request_id = "r";
  r.reason_code = "region_not_allowed";
  r.status = 403;
  r.total_us = -1;
  EXPECT_EQ(ToJsonLine(r),
            R"({"v":1,"time_unix_ms":0,"request_id":"r","front_end":"","tenant":"","model":"",)"
            R"("upstream_model":"","region":"",)"
            R"("region_source":"","declared_class":"","effective_class":"","raised_by":[],)"
            R"("allowed":false,"reason_code":"region_not_allowed","rule":"","guards":[],)"
            R"("candidates":[],"attempts":[],"exported":false,"new_individual":false,)"
            R"("echo":null,)"
            R"("status":403,"status_reason":"",)"
            R"("prompt_tokens":null,"completion_tokens":null,"total_tokens":null,)"
            R"("ttft_us":null,"total_us":-1,"policy_version":""})");
}

TEST(AuditJson, EscapesControlCharsQuotesAndUtf8InIds) {
  Record r;
  r.request_id =
      std::string("a\"b\\c\x01\n\t\x7f", 9) + "\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80" + "\xFF" + "z";
  r.tenant = "t\r\x1f";
  const std::string line = ToJsonLine(r);
  EXPECT_NE(line.find(R"("request_id":"a\"b\\c\u0001\n\t)"
                      "\x7f\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\xEF\xBF\xBDz\""),
            std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("tenant":"t\r\u001f")"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(line, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(
      std::string(v.at("request_id").as_string()),
      std::string("a\"b\\c\x01\n\t\x7f", 9) + "\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\xEF\xBF\xBDz");
}

TEST(AuditLog, OpenFailsForMissingDirectory) {
  TempDir dir;
  Options o;
  o.path = dir.File("missing/audit.log");
  std::unique_ptr<AuditLog> log;
  core::Status st = AuditLog::Open(o, log);
  EXPECT_EQ(log, nullptr);
  EXPECT_EQ(st.code, core::StatusCode::kInternal);
  EXPECT_NE(st.message.find("missing/audit.log"), std::string::npos) << st.message;
  o.path.clear();
  st = AuditLog::Open(o, log);
  EXPECT_EQ(log, nullptr);
  EXPECT_EQ(st.code, core::StatusCode::kInvalidArgument);
}

TEST(AuditLog, ConcurrentWritersLoseNothing) {
  TempDir dir;
  Options o;
  o.path = dir.File("audit.log");
  o.flush_interval = 5ms;
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::atomic<int> rejected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!log->Reserve()) {
          ++rejected;
          continue;
        }
        log->Submit(MakeRecord(std::to_string(t) + "-" + std::to_string(i)));
      }
    });
  }
  for (auto& th : threads) th.join();
  log->Close();
  EXPECT_EQ(rejected.load(), 0);
  const auto lines = ReadLines(o.path);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::set<std::string> ids;
  for (const auto& line : lines) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << line;
    ids.insert(std::string(v.at("request_id").as_string()));
  }
  EXPECT_EQ(ids.size(), lines.size());
  const auto s = log->stats();
  EXPECT_EQ(s.written, lines.size());
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.write_errors, 0u);
  EXPECT_EQ(s.queue_depth, 0u);
  EXPECT_FALSE(s.accepting);
}

TEST(AuditLog, CloseDrainsReservationsSubmittedAfterCloseStarted) {
  TempDir dir;
  Options o;
  o.path = dir.File("audit.log");
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  constexpr int kHeld = 5;
  for (int i = 0; i < kHeld; ++i) ASSERT_TRUE(log->Reserve());
  std::thread closer([&] { log->Close(10s); });
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (log->stats().accepting && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  ASSERT_FALSE(log->stats().accepting);
  EXPECT_FALSE(log->Reserve());  // closing: no new reservations
  for (int i = 0; i < kHeld; ++i) log->Submit(MakeRecord("late-" + std::to_string(i)));
  closer.join();
  EXPECT_EQ(ReadLines(o.path).size(), static_cast<std::size_t>(kHeld));
  EXPECT_EQ(log->stats().dropped, 0u);
}

TEST(AuditLog, CloseDeadlineThenLateSubmitIsCountedAsDropped) {
  TempDir dir;
  ErrorSink errors;
  Options o;
  o.path = dir.File("audit.log");
  o.on_error = errors.Callback();
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Reserve());
  log->Submit(MakeRecord("on-time"));
  ASSERT_TRUE(log->Reserve());
  log->Close(20ms);
  log->Submit(MakeRecord("too-late"));
  EXPECT_EQ(ReadLines(o.path).size(), 1u);
  EXPECT_EQ(log->stats().dropped, 1u);
  const auto messages = errors.Get();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_NE(messages[0].find("1 reserved record(s) not submitted"), std::string::npos);
  log->Close();  // idempotent
}

// Every line has the same length so the rotation points are exact.
std::string FixedId(int i) {
  std::string s = std::to_string(i);
  return std::string(6 - s.size(), '0') + s;
}

TEST(AuditLog, RotationKeepsEveryLineWhenFilesSuffice) {
  TempDir dir;
  Options o;
  o.path = dir.File("audit.log");
  ChainState two_digits{10, {}};  // the longest lines: seqs 10..20
  const std::size_t line_bytes = ToChainedLine(MakeRecord(FixedId(0)), two_digits).size() + 1;
  o.max_file_bytes = 3 * line_bytes + 10;  // three lines per file
  o.max_files = 100;
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(log->Reserve());
    log->Submit(MakeRecord(FixedId(i)));
    if (i % 7 == 0) {  // batch boundaries must not matter
      ASSERT_TRUE(log->Flush());
    }
  }
  log->Close();
  // 20 lines, 3 per file: 7 files, newest (2 lines) in `path`, oldest in path.6.
  EXPECT_EQ(log->stats().rotations, 6u);
  std::vector<std::string> all;
  for (int k = 6; k >= 0; --k) {
    const std::string p = k == 0 ? o.path : o.path + "." + std::to_string(k);
    const auto lines = ReadLines(p);
    EXPECT_EQ(lines.size(), k == 0 ? 2u : 3u) << p;
    EXPECT_LE(fs::file_size(p), o.max_file_bytes);
    all.insert(all.end(), lines.begin(), lines.end());
  }
  EXPECT_FALSE(fs::exists(o.path + ".7"));
  ASSERT_EQ(all.size(), 20u);
  std::vector<Record> records;
  for (int i = 0; i < 20; ++i) records.push_back(MakeRecord(FixedId(i)));
  EXPECT_EQ(all, ChainedLines(records));
}

TEST(AuditLog, RotationDropsOldestFilesBeyondMaxFiles) {
  TempDir dir;
  Options o;
  o.path = dir.File("audit.log");
  ChainState two_digits{10, {}};  // seqs 11..20 have two digits, 1..9 one
  const std::size_t line_bytes = ToChainedLine(MakeRecord(FixedId(0)), two_digits).size() + 1;
  o.max_file_bytes = 3 * line_bytes;  // exactly three lines fit
  o.max_files = 3;
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(log->Reserve());
    log->Submit(MakeRecord(FixedId(i)));
  }
  log->Close();
  EXPECT_FALSE(fs::exists(o.path + ".3"));
  const auto newest = ReadLines(o.path);
  const auto middle = ReadLines(o.path + ".1");
  const auto oldest = ReadLines(o.path + ".2");
  ASSERT_EQ(newest.size(), 2u);
  ASSERT_EQ(middle.size(), 3u);
  ASSERT_EQ(oldest.size(), 3u);
  std::vector<Record> records;
  for (int i = 0; i < 20; ++i) records.push_back(MakeRecord(FixedId(i)));
  const auto expected = ChainedLines(records);
  EXPECT_EQ(oldest[0], expected[12]);
  EXPECT_EQ(middle[0], expected[15]);
  EXPECT_EQ(newest[1], expected[19]);
  EXPECT_EQ(log->stats().written, 20u);
}

TEST(AuditLog, FailClosedWhenReservationsFillTheQueue) {
  TempDir dir;
  Options o;
  o.path = dir.File("audit.log");
  o.queue_capacity = 2;
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Reserve());
  ASSERT_TRUE(log->Reserve());
  EXPECT_FALSE(log->Reserve());
  log->Submit(MakeRecord("a"));
  EXPECT_FALSE(log->Reserve());  // queued but unwritten still occupies its place
  ASSERT_TRUE(log->Flush());
  EXPECT_TRUE(log->Reserve());
  log->Submit(MakeRecord("b"));
  log->Submit(MakeRecord("c"));
  log->Close();
  EXPECT_EQ(ReadLines(o.path).size(), 3u);
  EXPECT_EQ(log->stats().dropped, 0u);
}

TEST(AuditLog, FailClosedWhileWriterIsBlockedOnAFifo) {
  TempDir dir;
  const std::string fifo = dir.File("audit.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  Options o;
  o.path = fifo;
  o.queue_capacity = 4;
  o.flush_interval = 1ms;
  o.max_file_bytes = 1;  // must never try to rotate a FIFO
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  // Nobody reads: once the pipe buffer is full the writer blocks in write(2), a flush cannot
  // complete, and the queue stays full.
  std::size_t submitted = 0;
  for (; submitted < 1'000'000;) {
    if (log->Reserve()) {
      log->Submit(MakeRecord(FixedId(static_cast<int>(submitted))));
      ++submitted;
      continue;
    }
    if (!log->Flush(1s)) break;
  }
  EXPECT_FALSE(log->Reserve());
  auto s = log->stats();
  EXPECT_TRUE(s.healthy);
  EXPECT_GE(s.queue_depth, 1u);
  EXPECT_EQ(s.dropped, 0u);
  // Drain the FIFO; Close() then writes everything and closes the write end (EOF).
  ASSERT_EQ(::fcntl(reader, F_SETFL, 0), 0);
  std::string got;
  std::thread drain([&] {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(reader, buf, sizeof buf);
      if (n > 0) {
        got.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        break;
      }
    }
  });
  log->Close();
  drain.join();
  ::close(reader);
  EXPECT_EQ(static_cast<std::size_t>(std::count(got.begin(), got.end(), '\n')), submitted);
  s = log->stats();
  EXPECT_EQ(s.written, submitted);
  EXPECT_EQ(s.rotations, 0u);
  EXPECT_EQ(s.dropped, 0u);
}

TEST(AuditLog, FailClosedOnWriteErrorKeepsReservedRecords) {
  ErrorSink errors;
  Options o;
  o.path = "/dev/full";  // every write fails with ENOSPC
  o.flush_interval = 10ms;
  o.max_file_bytes = 1;  // a device is never rotated
  o.on_error = errors.Callback();
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Reserve());
  ASSERT_TRUE(log->Reserve());
  log->Submit(MakeRecord("a"));
  EXPECT_FALSE(log->Flush());
  auto s = log->stats();
  EXPECT_FALSE(s.healthy);
  EXPECT_GE(s.write_errors, 1u);
  EXPECT_EQ(s.written, 0u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.queue_depth, 1u);
  EXPECT_FALSE(log->Reserve());  // unhealthy: reject
  log->Submit(MakeRecord("b"));  // the outstanding reservation still has its place
  EXPECT_FALSE(log->Flush());
  s = log->stats();
  EXPECT_EQ(s.queue_depth, 2u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.rotations, 0u);
  log->Close(50ms);
  s = log->stats();
  EXPECT_EQ(s.dropped, 2u);  // lost only at the close deadline, and counted
  const auto messages = errors.Get();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_NE(messages[0].find("/dev/full"), std::string::npos) << messages[0];
  EXPECT_NE(messages[0].find("unhealthy"), std::string::npos) << messages[0];
  EXPECT_NE(messages[1].find("2 record(s) not written"), std::string::npos) << messages[1];
}

TEST(AuditLog, FailClosedWhileDirectoryIsGoneThenRecovers) {
  TempDir dir;
  const fs::path logs = dir.path() / "logs";
  const fs::path moved = dir.path() / "moved";
  fs::create_directory(logs);
  ErrorSink errors;
  Options o;
  o.path = (logs / "audit.log").string();
  o.flush_interval = 10ms;
  o.max_file_bytes = 1;  // every line after the first rotates, reopening the path
  o.on_error = errors.Callback();
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Reserve());
  log->Submit(MakeRecord("first"));
  ASSERT_TRUE(log->Flush());
  fs::rename(logs, moved);  // the path can no longer be opened
  ASSERT_TRUE(log->Reserve());
  log->Submit(MakeRecord("second"));
  EXPECT_FALSE(log->Flush());
  EXPECT_FALSE(log->stats().healthy);
  EXPECT_FALSE(log->Reserve());
  EXPECT_EQ(log->stats().queue_depth, 1u);
  fs::rename(moved, logs);
  ASSERT_TRUE(log->Flush());
  EXPECT_TRUE(log->stats().healthy);
  EXPECT_TRUE(log->Reserve());
  log->Submit(MakeRecord("third"));
  log->Close();
  const auto expected =
      ChainedLines({MakeRecord("first"), MakeRecord("second"), MakeRecord("third")});
  EXPECT_EQ(ReadLines(o.path + ".2"), std::vector<std::string>{expected[0]});
  EXPECT_EQ(ReadLines(o.path + ".1"), std::vector<std::string>{expected[1]});
  EXPECT_EQ(ReadLines(o.path), std::vector<std::string>{expected[2]});
  const auto s = log->stats();
  EXPECT_EQ(s.written, 3u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_GE(s.write_errors, 1u);
  const auto messages = errors.Get();
  ASSERT_GE(messages.size(), 2u);
  EXPECT_NE(messages[0].find("open("), std::string::npos) << messages[0];
  EXPECT_EQ(messages[1], "audit: sink healthy again");
}

TEST(AuditLog, DropModeCountsRecordsOfFailedWrites) {
  Options o;
  o.path = "/dev/full";
  o.on_failure = OnFailure::kDropAndCount;
  o.flush_interval = 10ms;
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(log->Reserve());
    log->Submit(MakeRecord(std::to_string(i)));
  }
  EXPECT_FALSE(log->Flush());
  auto s = log->stats();
  EXPECT_EQ(s.dropped, 10u);
  EXPECT_EQ(s.queue_depth, 0u);
  EXPECT_FALSE(s.healthy);
  EXPECT_TRUE(log->Flush());           // nothing pending: the flush succeeds...
  EXPECT_FALSE(log->stats().healthy);  // ...but health returns only with a successful write
  EXPECT_TRUE(log->Reserve());         // drop mode never rejects
  log->Submit(MakeRecord("x"));
  log->Close(1s);
  EXPECT_EQ(log->stats().dropped, 11u);
}

TEST(AuditLog, DropModeCountsRecordsThatDoNotFit) {
  TempDir dir;
  Options o;
  o.path = dir.File("audit.log");
  o.on_failure = OnFailure::kDropAndCount;
  o.queue_capacity = 3;
  o.flush_interval = std::chrono::hours(1);  // the writer only runs on Flush/Close
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(log->Reserve());
    log->Submit(MakeRecord(std::to_string(i)));
  }
  EXPECT_EQ(log->stats().dropped, 2u);
  EXPECT_EQ(log->stats().queue_depth, 3u);
  log->Close();
  EXPECT_EQ(ReadLines(o.path).size(), 3u);
  EXPECT_EQ(log->stats().written, 3u);
}

TEST(AuditLog, FsyncOptionWritesAndRotatesWithoutErrors) {
  TempDir dir;
  Options o;
  o.path = dir.File("audit.log");
  o.fsync = true;
  o.flush_interval = 1ms;
  o.max_file_bytes = 4096;
  o.max_files = 50;
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(log->Reserve());
    log->Submit(MakeRecord(FixedId(i)));
    if (i % 10 == 0) {
      ASSERT_TRUE(log->Flush());
    }
  }
  log->Close();
  const auto s = log->stats();
  EXPECT_EQ(s.written, 50u);
  EXPECT_EQ(s.write_errors, 0u);
  EXPECT_GE(s.rotations, 1u);
  std::size_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    total += ReadLines(entry.path().string()).size();
    const std::string text = ReadAll(entry.path().string());
    ASSERT_FALSE(text.empty()) << entry.path();
    EXPECT_EQ(text.back(), '\n');
  }
  EXPECT_EQ(total, 50u);
}

// --- Torn lines: a record is never left half-written, and a torn tail is repaired on open ---

/// Every line of `path` parses as a JSON object with a request id; returns the ids.
std::vector<std::string> ParsedIds(const std::string& path) {
  std::vector<std::string> ids;
  const std::string text = ReadAll(path);
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "torn last line:\n" << text;
  for (const std::string& line : ReadLines(path)) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(line, ec);
    if (ec || !v.is_object() || !v.as_object().contains("request_id")) {
      ADD_FAILURE() << "unparseable audit line: " << line;
      continue;
    }
    ids.emplace_back(v.at("request_id").as_string());
  }
  return ids;
}

TEST(AuditLog, TornTailOfAPreviousWriterIsTruncatedOnOpen) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  // Two whole records, then what a writer killed mid-line leaves: a fragment, no '\n'.
  const std::string whole =
      ToJsonLine(MakeRecord("old-1")) + "\n" + ToJsonLine(MakeRecord("old-2")) + "\n";
  const std::string fragment = ToJsonLine(MakeRecord("torn")).substr(0, 57);
  {
    std::ofstream out(path, std::ios::binary);
    out << whole << fragment;
  }
  ErrorSink warnings;
  ErrorSink errors;
  Options o;
  o.path = path;
  o.on_warning = warnings.Callback();
  o.on_error = errors.Callback();
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->stats().torn_tails_repaired, 1u);
  EXPECT_EQ(ReadAll(path), whole) << "the fragment is cut before anything is appended";
  const auto w = warnings.Get();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find(path), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("torn line (57 bytes"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("truncated to the last complete line"), std::string::npos) << w[0];
  ASSERT_TRUE(log->Reserve());
  log->Submit(MakeRecord("new-1"));
  log->Close();
  EXPECT_EQ(ParsedIds(path), (std::vector<std::string>{"old-1", "old-2", "new-1"}));
  EXPECT_TRUE(errors.Get().empty());
}

TEST(AuditLog, FileOfOnlyAFragmentIsTruncatedToEmpty) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  {
    std::ofstream out(path, std::ios::binary);
    out << R"({"v":1,"time_unix_ms":17000)";
  }
  ErrorSink warnings;
  Options o;
  o.path = path;
  o.on_warning = warnings.Callback();
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->stats().torn_tails_repaired, 1u);
  ASSERT_TRUE(log->Reserve());
  log->Submit(MakeRecord("a"));
  log->Close();
  EXPECT_EQ(ParsedIds(path), std::vector<std::string>{"a"});
  EXPECT_EQ(warnings.Get().size(), 1u);
}

TEST(AuditLog, CompleteOrEmptyFilesAreLeftAsTheyAre) {
  TempDir dir;
  for (const std::string& text : {std::string(), ToJsonLine(MakeRecord("old")) + "\n"}) {
    const std::string path = dir.File("audit.log");
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << text;
    }
    ErrorSink warnings;
    Options o;
    o.path = path;
    o.on_warning = warnings.Callback();
    auto log = MustOpen(o);
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->Reserve());
    log->Submit(MakeRecord("new"));
    log->Close();
    EXPECT_EQ(log->stats().torn_tails_repaired, 0u);
    EXPECT_TRUE(warnings.Get().empty());
    // A file without a chained line (empty, or written before lines were chained): the
    // chain starts afresh.
    EXPECT_EQ(ReadAll(path), text + ChainedLines({MakeRecord("new")})[0] + "\n");
  }
}

/// Makes the file system "full" for this process: writes beyond `bytes` of a file are short,
/// then fail with EFBIG (RLIMIT_FSIZE, no root needed; SIGXFSZ ignored so it is an error, not
/// a kill). Restored when the scope ends.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(std::uint64_t bytes) {
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &previous_);
    rlimit lim = previous_;
    lim.rlim_cur = static_cast<rlim_t>(bytes);
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  }
  void Lift() {
    if (lifted_) return;
    lifted_ = true;
    ::setrlimit(RLIMIT_FSIZE, &previous_);
  }
  ~FileSizeLimit() {
    Lift();
    std::signal(SIGXFSZ, previous_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit previous_{};
  void (*previous_handler_)(int) = SIG_DFL;
  bool lifted_ = false;
};

TEST(AuditLog, ShortWriteOnAFullDiskLeavesNoFragment) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  ErrorSink errors;
  ErrorSink warnings;
  Options o;
  o.path = path;
  // The retry after the failure comes a full interval later: long enough for the checks of the
  // file to run between the attempts, short enough for the test.
  o.flush_interval = 300ms;
  o.on_error = errors.Callback();
  o.on_warning = warnings.Callback();
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Reserve());
  log->Submit(MakeRecord("before"));
  ASSERT_TRUE(log->Flush());
  const auto before = fs::file_size(path);
  {
    // Room for 100 more bytes: the next line (~380 bytes) is written in part, then EFBIG.
    FileSizeLimit full(before + 100);
    ASSERT_TRUE(log->Reserve());
    log->Submit(MakeRecord("during"));
    EXPECT_FALSE(log->Flush());
    EXPECT_FALSE(log->stats().healthy);
    EXPECT_EQ(log->stats().queue_depth, 1u) << "the record stays pending, it is not dropped";
    EXPECT_EQ(fs::file_size(path), before) << "the part that was written is cut off again";
    EXPECT_EQ(ParsedIds(path), std::vector<std::string>{"before"});
    full.Lift();  // space again: the line is written whole
    ASSERT_TRUE(log->Flush());
  }
  EXPECT_TRUE(log->stats().healthy);
  ASSERT_TRUE(log->Reserve());
  log->Submit(MakeRecord("after"));
  log->Close();
  EXPECT_EQ(ParsedIds(path), (std::vector<std::string>{"before", "during", "after"}));
  const auto s = log->stats();
  EXPECT_EQ(s.written, 3u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_GE(s.write_errors, 1u);
  EXPECT_EQ(s.torn_tails_repaired, 0u) << "our own partial line is cut, not left for a repair";
  EXPECT_TRUE(warnings.Get().empty());
  const auto e = errors.Get();
  ASSERT_GE(e.size(), 2u);
  EXPECT_NE(e[0].find("write("), std::string::npos) << e[0];
  EXPECT_EQ(e[1], "audit: sink healthy again");
}

TEST(AuditLog, DropModeShortWriteDropsTheWholeLine) {
  TempDir dir;
  const std::string path = dir.File("audit.log");
  Options o;
  o.path = path;
  o.flush_interval = 10ms;
  o.on_failure = OnFailure::kDropAndCount;
  auto log = MustOpen(o);
  ASSERT_NE(log, nullptr);
  {
    FileSizeLimit full(100);
    ASSERT_TRUE(log->Reserve());
    log->Submit(MakeRecord("lost"));
    EXPECT_FALSE(log->Flush());
    EXPECT_EQ(log->stats().dropped, 1u);
    EXPECT_EQ(fs::file_size(path), 0u);
  }
  ASSERT_TRUE(log->Reserve());
  log->Submit(MakeRecord("kept"));
  log->Close();
  EXPECT_EQ(ParsedIds(path), std::vector<std::string>{"kept"});
}

}  // namespace
}  // namespace meridian::audit
