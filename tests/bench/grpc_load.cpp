// Load generator for the gRPC front end: N concurrent Generate streams (callback API), repeated
// for R rounds; reports time to first message (TTFB) and total stream time percentiles, and the
// gateway's RSS (VmRSS of --pid) idle and while every stream of a round is open.
//
//   grpc_load --target 127.0.0.1:9090 --key sk-meridian-demo --streams 200 --rounds 5 --pid PID
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "meridian/v1/assistant.grpc.pb.h"

namespace {

namespace v1 = meridian::v1;
using Clock = std::chrono::steady_clock;

long RssKiB(const std::string& pid) {
  if (pid.empty()) return -1;
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

struct Round {
  std::mutex mu;
  std::condition_variable cv;
  int first_pending = 0;
  int done_pending = 0;
  int failed = 0;
  std::vector<double> ttfb_ms;
  std::vector<double> total_ms;
};

class Call final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  Call(v1::Assistant::Stub& stub, const std::string& key, const std::string& model, Round& round)
      : round_(round) {
    ctx_.AddMetadata("authorization", "Bearer " + key);
    req_.set_model(model);
    auto* m = req_.add_messages();
    m->set_role(v1::ROLE_USER);
    m->add_content()->set_text("Say something about load testing.");
    start_ = Clock::now();
    stub.async()->Generate(&ctx_, &req_, this);
    StartRead(&msg_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (!got_first_) {
      got_first_ = true;
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
      std::lock_guard lock(round_.mu);
      round_.ttfb_ms.push_back(ms);
      --round_.first_pending;
      round_.cv.notify_all();
    }
    StartRead(&msg_);
  }
  void OnDone(const grpc::Status& s) override {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
    {
      std::lock_guard lock(round_.mu);
      if (!s.ok()) {
        ++round_.failed;
        if (round_.failed <= 3) std::cerr << "call failed: " << s.error_message() << "\n";
      } else {
        round_.total_ms.push_back(ms);
      }
      if (!got_first_) --round_.first_pending;
      --round_.done_pending;
      round_.cv.notify_all();
    }
    delete this;
  }

 private:
  Round& round_;
  grpc::ClientContext ctx_;
  v1::GenerateRequest req_;
  v1::GenerateResponse msg_;
  Clock::time_point start_;
  bool got_first_ = false;
};

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  std::string target = "127.0.0.1:9090", key = "sk-meridian-demo", model = "qwen-plus";
  std::string pid;
  int streams = 200, rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--target")
      target = v;
    else if (a == "--key")
      key = v;
    else if (a == "--model")
      model = v;
    else if (a == "--streams")
      streams = std::stoi(v);
    else if (a == "--rounds")
      rounds = std::stoi(v);
    else if (a == "--pid")
      pid = v;
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::Assistant::NewStub(channel);
  const long idle = RssKiB(pid);
  std::vector<double> ttfb, total;
  long peak = -1;
  int failed = 0;
  for (int r = 0; r < rounds; ++r) {
    Round round;
    round.first_pending = streams;
    round.done_pending = streams;
    for (int i = 0; i < streams; ++i) new Call(*stub, key, model, round);
    std::unique_lock lock(round.mu);
    round.cv.wait(lock, [&] { return round.first_pending == 0; });
    peak = std::max(peak, RssKiB(pid));  // every stream of the round is open now
    round.cv.wait(lock, [&] { return round.done_pending == 0; });
    ttfb.insert(ttfb.end(), round.ttfb_ms.begin(), round.ttfb_ms.end());
    total.insert(total.end(), round.total_ms.begin(), round.total_ms.end());
    failed += round.failed;
  }
  std::printf("streams=%d rounds=%d failed=%d\n", streams, rounds, failed);
  std::printf("ttfb_ms  p50=%.2f p90=%.2f p99=%.2f max=%.2f\n", Pct(ttfb, 0.5), Pct(ttfb, 0.9),
              Pct(ttfb, 0.99), Pct(ttfb, 1.0));
  std::printf("total_ms p50=%.2f p90=%.2f p99=%.2f max=%.2f\n", Pct(total, 0.5), Pct(total, 0.9),
              Pct(total, 0.99), Pct(total, 1.0));
  if (!pid.empty()) std::printf("rss_kib idle=%ld during=%ld\n", idle, peak);
  return failed == 0 ? 0 : 1;
}
