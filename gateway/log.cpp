#include "gateway/log.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <string>

namespace meridian::gateway {

void Log(LogLevel level, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line = stamp;
  line += level == LogLevel::kInfo ? " info " : level == LogLevel::kWarning ? " warn " : " error ";
  line += message;
  line += '\n';
  // One write(2) per line keeps lines from different threads whole.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace meridian::gateway
