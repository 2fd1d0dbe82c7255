#include "gateway/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace meridian::gateway {

namespace {

std::string ReadAll(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

template <class T>
bool ToNumber(std::string_view text, T& out) {
  const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

}  // namespace

std::optional<ProcessStats> ParseProcStat(std::string_view stat, long ticks_per_second,
                                          long page_size, double boot_time_seconds) {
  // "pid (comm) state ppid ...": the fields after the last ')' are space-separated; field 3
  // (state) is the first of them.
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  std::vector<std::string_view> fields;
  std::string_view rest = stat.substr(close + 1);
  while (!rest.empty()) {
    const auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const auto end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  // Field n (1-based, proc(5)) is fields[n - 3].
  auto field = [&](std::size_t n) { return fields[n - 3]; };
  if (fields.size() < 24 - 2) return std::nullopt;
  std::uint64_t utime = 0, stime = 0, starttime = 0, vsize = 0;
  std::int64_t rss = 0;
  if (!ToNumber(field(14), utime) || !ToNumber(field(15), stime) ||
      !ToNumber(field(22), starttime) || !ToNumber(field(23), vsize) || !ToNumber(field(24), rss)) {
    return std::nullopt;
  }
  ProcessStats s;
  const auto ticks = static_cast<double>(ticks_per_second);
  s.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  s.start_time_seconds = boot_time_seconds + static_cast<double>(starttime) / ticks;
  s.virtual_bytes = vsize;
  s.resident_bytes =
      rss > 0 ? static_cast<std::uint64_t>(rss) * static_cast<std::uint64_t>(page_size) : 0;
  return s;
}

std::optional<double> ParseBootTime(std::string_view proc_stat) {
  std::size_t at = 0;
  while (at < proc_stat.size()) {
    const auto end = proc_stat.find('\n', at);
    const std::string_view line =
        proc_stat.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (line.starts_with("btime ")) {
      std::uint64_t v = 0;
      if (ToNumber(line.substr(6), v)) return static_cast<double>(v);
      return std::nullopt;
    }
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  return std::nullopt;
}

ProcessStats ReadProcessStats() {
  static const double boot = ParseBootTime(ReadAll("/proc/stat")).value_or(0);
  ProcessStats s = ParseProcStat(ReadAll("/proc/self/stat"), ::sysconf(_SC_CLK_TCK),
                                 ::sysconf(_SC_PAGESIZE), boot)
                       .value_or(ProcessStats{});
  if (DIR* d = ::opendir("/proc/self/fd")) {
    std::uint64_t n = 0;
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    s.open_fds = n > 0 ? n - 1 : 0;  // not the descriptor reading the directory
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) s.max_fds = limit.rlim_cur;
  return s;
}

}  // namespace meridian::gateway
