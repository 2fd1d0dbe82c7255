// Watches the directory that holds a file and reports changes, so a policy edit is picked up
// without a signal. The directory, not the file: editors replace files by renaming, and a
// Kubernetes ConfigMap volume swaps a `..data` symlink, neither of which a watch on the file
// itself survives.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace meridian::gateway {

class DirectoryWatcher {
 public:
  /// Watches the directory of `file` (inotify). After any change in it, once the directory has
  /// been quiet for `settle` milliseconds, calls `on_change` on the watcher's own thread (the
  /// callback decides whether the file's content really changed). Null with `error` set when
  /// the directory cannot be watched.
  static std::unique_ptr<DirectoryWatcher> Start(const std::string& file,
                                                 std::function<void()> on_change,
                                                 std::string& error, int settle_ms = 50);
  /// Stops the thread (prompt: it waits on the inotify descriptor and a stop pipe).
  ~DirectoryWatcher();
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

 private:
  DirectoryWatcher() = default;
  void Run();

  int inotify_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int settle_ms_ = 50;
  std::function<void()> on_change_;
  std::thread thread_;
};

}  // namespace meridian::gateway
