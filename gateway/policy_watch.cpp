#include "gateway/policy_watch.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace meridian::gateway {

std::unique_ptr<DirectoryWatcher> DirectoryWatcher::Start(const std::string& file,
                                                          std::function<void()> on_change,
                                                          std::string& error, int settle_ms) {
  std::unique_ptr<DirectoryWatcher> w(new DirectoryWatcher());
  w->on_change_ = std::move(on_change);
  w->settle_ms_ = settle_ms;
  std::filesystem::path dir = std::filesystem::path(file).parent_path();
  if (dir.empty()) dir = ".";
  w->inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (w->inotify_fd_ < 0 || pipe2(w->stop_pipe_, O_CLOEXEC) != 0) {
    error = std::string("cannot watch ") + dir.string() + ": " + std::strerror(errno);
    return nullptr;
  }
  constexpr std::uint32_t kEvents =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MODIFY;
  if (inotify_add_watch(w->inotify_fd_, dir.c_str(), kEvents) < 0) {
    error = "cannot watch " + dir.string() + ": " + std::strerror(errno);
    return nullptr;
  }
  w->thread_ = std::thread([raw = w.get()] { raw->Run(); });
  return w;
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

void DirectoryWatcher::Run() {
  std::array<char, 4096> buf{};
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
    if (fds[0].revents != 0) {
      while (::read(inotify_fd_, buf.data(), buf.size()) > 0) {
      }
      pending = true;
    }
  }
}

}  // namespace meridian::gateway
