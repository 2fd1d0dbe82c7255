// The process_* metrics every Prometheus client library exports (CPU, memory, descriptors,
// start time), read from /proc/self at scrape time. The parsing is a pure function; only
// ReadProcessStats touches the file system.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace meridian::gateway {

struct ProcessStats {
  double cpu_seconds = 0;         ///< user + system time
  double start_time_seconds = 0;  ///< since the Unix epoch
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;  ///< RLIMIT_NOFILE's soft limit
};

/// The fields of /proc/self/stat (`stat`) ProcessStats needs, given the clock ticks per second,
/// the page size and the boot time (btime of /proc/stat, seconds since the epoch). nullopt when
/// `stat` is not in that format (the command name, in parentheses, may hold spaces and ')').
std::optional<ProcessStats> ParseProcStat(std::string_view stat, long ticks_per_second,
                                          long page_size, double boot_time_seconds);

/// The boot time from /proc/stat's text (its `btime` line); nullopt without one.
std::optional<double> ParseBootTime(std::string_view proc_stat);

/// This process's figures now (zeros where /proc cannot be read).
ProcessStats ReadProcessStats();

}  // namespace meridian::gateway
