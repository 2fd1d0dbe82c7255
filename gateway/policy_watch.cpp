#include "gateway/policy_watch.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "gateway/log.h"

namespace meridian::gateway {
namespace {

// Changes of the directory's entries.
constexpr std::uint32_t kDirEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                     IN_DELETE | IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF |
                                     IN_MOVE_SELF;
// The parent's entries: the directory's name appearing or going away.
constexpr std::uint32_t kParentEvents = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE;

}  // namespace

core::Status DirectoryWatcher::Start(const std::string& file, std::function<void()> on_change,
                                     std::unique_ptr<DirectoryWatcher>& out, int settle_ms) {
  out.reset();
  std::unique_ptr<DirectoryWatcher> w(new DirectoryWatcher());
  w->on_change_ = std::move(on_change);
  w->settle_ms_ = settle_ms;
  std::filesystem::path dir = std::filesystem::path(file).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(dir, ec).lexically_normal();
  if (!ec) dir = absolute;
  std::string text = dir.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();  // "a/b/" -> "a/b"
  dir = text;
  w->dir_ = text;
  w->inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (w->inotify_fd_ < 0 || pipe2(w->stop_pipe_, O_CLOEXEC) != 0) {
    return core::Status::Error(core::StatusCode::kInternal, std::string("cannot watch ") + w->dir_ +
                                                                ": " + std::strerror(errno));
  }
  w->dir_wd_ = inotify_add_watch(w->inotify_fd_, w->dir_.c_str(), kDirEvents | IN_ONLYDIR);
  if (w->dir_wd_ < 0) {
    return core::Status::Error(core::StatusCode::kInternal,
                               "cannot watch " + w->dir_ + ": " + std::strerror(errno));
  }
  // Without the parent's watch (no permission, or the directory is /) a replaced directory
  // is not followed; changes inside it still are.
  const std::filesystem::path parent = dir.parent_path();
  w->name_ = dir.filename().string();
  if (!w->name_.empty() && parent != dir) {
    w->parent_wd_ = inotify_add_watch(w->inotify_fd_, parent.c_str(), kParentEvents | IN_ONLYDIR);
    if (w->parent_wd_ < 0) {
      Log(LogLevel::kWarning, "cannot watch " + parent.string() + " (" + std::strerror(errno) +
                                  "): if " + w->dir_ +
                                  " is replaced, file-change reloads stop (SIGHUP and POST "
                                  "/admin/reload still work)");
    }
  }
  w->thread_ = std::thread([raw = w.get()] { raw->Run(); });
  out = std::move(w);
  return core::Status::Ok();
}

DirectoryWatcher::~DirectoryWatcher() {
  if (thread_.joinable()) {
    const char byte = 0;
    (void)!::write(stop_pipe_[1], &byte, 1);
    thread_.join();
  }
  for (int fd : {inotify_fd_, stop_pipe_[0], stop_pipe_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

bool DirectoryWatcher::Rewatch() {
  // The same directory returns the same watch descriptor; a new one (same path, another
  // inode) a new descriptor, and the old watch, if it still follows the moved directory, goes.
  const int wd = inotify_add_watch(inotify_fd_, dir_.c_str(), kDirEvents | IN_ONLYDIR);
  if (wd < 0 || wd == dir_wd_) return false;
  if (dir_wd_ >= 0) (void)inotify_rm_watch(inotify_fd_, dir_wd_);
  dir_wd_ = wd;
  Log(LogLevel::kInfo, "policy directory " + dir_ + " was replaced: watching the new one");
  return true;
}

void DirectoryWatcher::Run() {
  alignas(inotify_event) std::array<char, 4096> buf{};
  bool pending = false;
  for (;;) {
    std::array<pollfd, 2> fds{{{inotify_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}}};
    // Waiting for the directory to settle: a burst of events (an editor's write-then-rename,
    // a ConfigMap's symlink swap) becomes one callback.
    const int n = ::poll(fds.data(), fds.size(), pending ? settle_ms_ : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if (n == 0) {
      pending = false;
      on_change_();
      continue;
    }
    if (fds[0].revents == 0) continue;
    bool look_again = false;  // the directory's name changed in its parent
    for (;;) {
      const ssize_t len = ::read(inotify_fd_, buf.data(), buf.size());
      if (len <= 0) break;
      for (std::size_t at = 0; at + sizeof(inotify_event) <= static_cast<std::size_t>(len);) {
        inotify_event ev{};
        std::memcpy(&ev, buf.data() + at, sizeof ev);
        const char* name = buf.data() + at + sizeof(inotify_event);
        at += sizeof(inotify_event) + ev.len;
        if (ev.wd == parent_wd_ && parent_wd_ >= 0) {
          if (ev.len > 0 && name_ == name) look_again = true;
          continue;
        }
        if (ev.wd != dir_wd_ || dir_wd_ < 0) continue;  // a watch given up earlier
        if ((ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) != 0) {
          // Gone (or moved away, where the watch would follow it to the wrong place).
          if ((ev.mask & IN_MOVE_SELF) != 0) (void)inotify_rm_watch(inotify_fd_, dir_wd_);
          dir_wd_ = -1;
          Log(LogLevel::kWarning,
              "policy directory " + dir_ + " was removed or renamed: " +
                  (parent_wd_ >= 0 ? std::string("watching for it to come back")
                                   : std::string("file-change reloads stop (SIGHUP and POST "
                                                 "/admin/reload still work)")));
          look_again = true;  // it may be back already
          continue;
        }
        pending = true;
      }
    }
    // A new directory may already hold the new policy: its writes came before the watch.
    if (look_again && Rewatch()) pending = true;
  }
}

}  // namespace meridian::gateway
