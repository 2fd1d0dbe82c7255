// Minimal structured logging to stderr. Never pass secrets or prompt content.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meridian::gateway {

enum class LogLevel { kInfo, kWarning, kError };

/// How lines look and which are written; set once at startup (ConfigureLog), read lock-free.
struct LogOptions {
  LogLevel level = LogLevel::kInfo;  ///< lines below it are dropped
  bool json = false;                 ///< one JSON object per line instead of text
  bool access = true;                ///< one access line per request (at level info)
};
void ConfigureLog(const LogOptions& options);

/// One line: "<UTC time> <level> <message>", or {"time","level","msg"} in JSON mode.
/// Thread-safe (a single write per line).
void Log(LogLevel level, std::string_view message);

/// One access-log line per request, whatever its outcome.
struct AccessEntry {
  std::string_view request_id;
  std::string_view front_end;  ///< "http" or "grpc"
  std::string_view method;     ///< HTTP method or gRPC method name
  std::string_view path;
  std::string_view tenant;    ///< empty: not authenticated
  int status = 0;             ///< HTTP status, or gRPC status code
  std::string_view reason;    ///< the error's reason code, when it failed
  std::string_view provider;  ///< the provider that answered (or was tried last)
  double duration_ms = 0;
  std::optional<double> ttft_ms;  ///< time to the first byte of the answer (streams)
};
void LogAccess(const AccessEntry& entry);

}  // namespace meridian::gateway
