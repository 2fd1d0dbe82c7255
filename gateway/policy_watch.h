// Watches the directory that holds a file and reports changes, so a policy edit is picked up
// without a signal. The directory, not the file: editors replace files by renaming, and a
// Kubernetes ConfigMap volume swaps a `..data` symlink, neither of which a watch on the file
// itself survives. The directory's parent is watched too: when the directory itself is
// replaced (`rm -rf dir && mkdir dir`, `mv dir dir.old && mkdir dir`, a symlinked directory
// repointed), the watch moves to the new one, says so in the log, and reports a change.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "gateway/core/status.h"

namespace meridian::gateway {

class DirectoryWatcher {
 public:
  /// Watches the directory of `file` (inotify). After any change in it, once the directory has
  /// been quiet for `settle` milliseconds, calls `on_change` on the watcher's own thread (the
  /// callback decides whether the file's content really changed), into `out`. An error
  /// (kInternal: the directory cannot be watched) leaves `out` null.
  static core::Status Start(const std::string& file, std::function<void()> on_change,
                            std::unique_ptr<DirectoryWatcher>& out, int settle_ms = 50);
  /// Stops the thread (prompt: it waits on the inotify descriptor and a stop pipe).
  ~DirectoryWatcher();
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

 private:
  DirectoryWatcher() = default;
  void Run();
  /// Watches the directory's path again (it was replaced, or came back); true when the watch
  /// now follows a different directory than before.
  bool Rewatch();

  int inotify_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int dir_wd_ = -1;     ///< the directory's watch; -1 while the path does not exist
  int parent_wd_ = -1;  ///< its parent's (events about the directory's own name); -1 if none
  std::string dir_;     ///< absolute path of the watched directory
  std::string name_;    ///< its last component, as the parent's events name it
  int settle_ms_ = 50;
  std::function<void()> on_change_;
  std::thread thread_;
};

}  // namespace meridian::gateway
