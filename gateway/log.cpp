#include "gateway/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "gateway/core/json_text.h"

namespace meridian::gateway {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};
std::atomic<bool> g_access{true};

std::string Stamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[40];
  const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", static_cast<int>(ms.count()));
  return stamp;
}

std::string_view Name(LogLevel level) {
  return level == LogLevel::kInfo ? "info" : level == LogLevel::kWarning ? "warn" : "error";
}

void Write(std::string& line) {
  line += '\n';
  // One write(2) per line keeps lines from different threads whole.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

void Number(std::string& out, double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  out += buf;
}

}  // namespace

void ConfigureLog(const LogOptions& options) {
  g_level.store(static_cast<int>(options.level));
  g_json.store(options.json);
  g_access.store(options.access);
}

void Log(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  std::string line;
  if (g_json.load(std::memory_order_relaxed)) {
    line = "{\"time\":\"" + Stamp() + "\",\"level\":\"" + std::string(Name(level)) + "\",\"msg\":";
    core::AppendJsonString(line, message);
    line += '}';
  } else {
    line = Stamp() + " " + std::string(Name(level)) + " " + std::string(message);
  }
  Write(line);
}

void LogAccess(const AccessEntry& e) {
  if (!g_access.load(std::memory_order_relaxed) ||
      static_cast<int>(LogLevel::kInfo) < g_level.load(std::memory_order_relaxed)) {
    return;
  }
  std::string line;
  if (g_json.load(std::memory_order_relaxed)) {
    line = "{\"time\":\"" + Stamp() + "\",\"level\":\"info\",\"msg\":\"access\"";
    auto field = [&line](std::string_view k, std::string_view v) {
      if (v.empty()) return;
      line += ",\"";
      line += k;
      line += "\":";
      core::AppendJsonString(line, v);
    };
    field("request_id", e.request_id);
    field("front_end", e.front_end);
    field("method", e.method);
    field("path", e.path);
    field("tenant", e.tenant);
    line += ",\"status\":" + std::to_string(e.status);
    field("reason", e.reason);
    field("provider", e.provider);
    line += ",\"duration_ms\":";
    Number(line, e.duration_ms);
    if (e.ttft_ms) {
      line += ",\"ttft_ms\":";
      Number(line, *e.ttft_ms);
    }
    line += '}';
  } else {
    line = Stamp() + " info access " + std::string(e.front_end) + " " + std::string(e.method) +
           " " + std::string(e.path) + " status=" + std::to_string(e.status);
    auto kv = [&line](std::string_view k, std::string_view v) {
      if (v.empty()) return;
      line += ' ';
      line += k;
      line += '=';
      line += v;
    };
    kv("request_id", e.request_id);
    kv("tenant", e.tenant);
    kv("reason", e.reason);
    kv("provider", e.provider);
    line += " duration_ms=";
    Number(line, e.duration_ms);
    if (e.ttft_ms) {
      line += " ttft_ms=";
      Number(line, *e.ttft_ms);
    }
  }
  Write(line);
}

}  // namespace meridian::gateway
