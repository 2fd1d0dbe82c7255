#include "gateway/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <deque>
#include <system_error>
#include <utility>

#include "gateway/core/json_text.h"

namespace meridian::audit {
namespace {

// The writer wakes early when this many records are queued ("a large batch").
constexpr std::size_t kBatchRecords = 1024;
// One write(2) carries at most about this many bytes (whole lines).
constexpr std::size_t kMaxChunkBytes = 1u << 20;

void AppendInt(std::string& out, std::int64_t v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

void AppendKey(std::string& out, std::string_view key) {
  out += ',';
  out += '"';
  out += key;  // keys are fixed ASCII identifiers
  out += "\":";
}

void AppendStringField(std::string& out, std::string_view key, std::string_view value) {
  AppendKey(out, key);
  core::AppendJsonString(out, value);
}

void AppendIntField(std::string& out, std::string_view key, std::int64_t value) {
  AppendKey(out, key);
  AppendInt(out, value);
}

void AppendOptionalField(std::string& out, std::string_view key,
                         const std::optional<std::int64_t>& value) {
  AppendKey(out, key);
  if (value) {
    AppendInt(out, *value);
  } else {
    out += "null";
  }
}

void AppendStringArrayField(std::string& out, std::string_view key,
                            const std::vector<std::string>& values) {
  AppendKey(out, key);
  out += '[';
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i != 0) out += ',';
    core::AppendJsonString(out, values[i]);
  }
  out += ']';
}

std::string ErrnoText(std::string_view what, const std::string& path, int err) {
  std::string s = "audit: ";
  s += what;
  s += '(';
  s += path;
  s += "): ";
  s += std::error_code(err, std::generic_category()).message();
  return s;
}

// write(2) until everything is written; handles short writes and EINTR. Returns 0 or errno;
// `done` is the number of bytes written either way.
int WriteAll(int fd, const char* data, std::size_t size, std::size_t& done) {
  done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

}  // namespace

std::string ToJsonLine(const Record& r) {
  std::string out;
  out.reserve(512);
  out += "{\"v\":1";
  AppendIntField(out, "time_unix_ms", r.time_unix_ms);
  AppendStringField(out, "request_id", r.request_id);
  AppendStringField(out, "front_end", r.front_end);
  AppendStringField(out, "tenant", r.tenant);
  AppendStringField(out, "model", r.model);
  AppendStringField(out, "upstream_model", r.upstream_model);
  AppendStringField(out, "region", r.region);
  AppendStringField(out, "region_source", r.region_source);
  AppendStringField(out, "declared_class", r.declared_class);
  AppendStringField(out, "effective_class", r.effective_class);
  AppendStringArrayField(out, "raised_by", r.raised_by);
  AppendKey(out, "allowed");
  out += r.allowed ? "true" : "false";
  AppendStringField(out, "reason_code", r.reason_code);
  AppendStringField(out, "rule", r.rule);
  AppendStringArrayField(out, "guards", r.guards);
  AppendStringArrayField(out, "candidates", r.candidates);
  AppendKey(out, "attempts");
  out += '[';
  for (std::size_t i = 0; i < r.attempts.size(); ++i) {
    const Attempt& a = r.attempts[i];
    if (i != 0) out += ',';
    out += "{\"provider\":";
    core::AppendJsonString(out, a.provider);
    AppendStringField(out, "outcome", a.outcome);
    AppendIntField(out, "duration_us", a.duration_us);
    out += '}';
  }
  out += ']';
  AppendKey(out, "exported");
  out += r.exported ? "true" : "false";
  AppendKey(out, "new_individual");
  out += r.new_individual ? "true" : "false";
  AppendKey(out, "echo");
  if (r.echo_said.empty()) {
    out += "null";
  } else {
    out += "{\"said\":";
    core::AppendJsonString(out, r.echo_said);
    AppendStringField(out, "verdict", r.echo_verdict);
    out += '}';
  }
  AppendIntField(out, "status", r.status);
  AppendStringField(out, "status_reason", r.status_reason);
  AppendOptionalField(out, "prompt_tokens", r.prompt_tokens);
  AppendOptionalField(out, "completion_tokens", r.completion_tokens);
  AppendOptionalField(out, "total_tokens", r.total_tokens);
  AppendOptionalField(out, "ttft_us", r.ttft_us);
  AppendIntField(out, "total_us", r.total_us);
  AppendStringField(out, "policy_version", r.policy_version);
  out += '}';
  return out;
}

std::string ToChainedLine(const Record& r, ChainState& state) {
  std::string line = ToJsonLine(r);
  ChainLine(line, state);
  return line;
}

namespace {

// A writer that stopped mid-line (killed, a power loss, a disk that filled) leaves a fragment
// without its '\n', and the next record appended would join it: one unparseable line, one record
// lost. So a non-empty regular file that does not end in '\n' is truncated back to its last
// complete line before anything is appended; if it cannot be truncated, a '\n' fences the
// fragment off. Returns 0 or errno (then nothing may be appended); `note` says what was done,
// and `repaired` whether there was a torn line.
int RepairTornTail(int fd, const std::string& path, const struct stat& st, std::string& note,
                   bool& repaired) {
  // Read through a descriptor of its own: the writer's is write-only (a FIFO must stay so).
  const int rd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (rd < 0) {
    note = ErrnoText("open for reading", path, errno) +
           " (cannot check it for a torn last line; appending)";
    return 0;
  }
  struct stat rst {};
  const bool same = ::fstat(rd, &rst) == 0 && rst.st_dev == st.st_dev && rst.st_ino == st.st_ino;
  auto size = static_cast<std::uint64_t>(st.st_size);
  char last = '\n';
  if (!same || ::pread(rd, &last, 1, static_cast<off_t>(size - 1)) != 1 || last == '\n') {
    ::close(rd);
    return 0;
  }
  // Back to the last '\n' (a fragment is at most one line; the scan is bounded by the file).
  constexpr std::size_t kStep = 64 * 1024;
  std::string buf(kStep, '\0');
  std::uint64_t keep = 0;
  for (std::uint64_t end = size; end > 0 && keep == 0;) {
    const std::uint64_t begin = end > kStep ? end - kStep : 0;
    const auto n = ::pread(rd, buf.data(), end - begin, static_cast<off_t>(begin));
    if (n != static_cast<ssize_t>(end - begin)) break;
    for (std::uint64_t i = end - begin; i > 0; --i) {
      if (buf[i - 1] == '\n') {
        keep = begin + i;
        break;
      }
    }
    end = begin;
  }
  ::close(rd);
  const std::uint64_t torn = size - keep;
  repaired = true;
  std::string what = "audit: " + path + " ended in a torn line (" + std::to_string(torn) +
                     " bytes after the last complete record, left by a writer that stopped "
                     "mid-line): ";
  if (::ftruncate(fd, static_cast<off_t>(keep)) == 0) {
    note = what + "truncated to the last complete line";
    return 0;
  }
  const int truncate_err = errno;
  std::size_t done = 0;
  if (WriteAll(fd, "\n", 1, done) == 0) {
    note = what + "cannot truncate (" +
           std::error_code(truncate_err, std::generic_category()).message() +
           "), fenced with a newline";
    return 0;
  }
  return truncate_err;
}

}  // namespace

namespace {

// The last complete line of a regular file (without its '\n'); empty when there is none or
// the file cannot be read. Used once, when the log opens, to resume the chain.
std::string LastLine(const std::string& path) {
  const int rd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (rd < 0) return {};
  struct stat st {};
  std::string line;
  if (::fstat(rd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    constexpr std::size_t kStep = 64 * 1024;
    constexpr std::uint64_t kMaxLine = 64u << 20;
    auto end = static_cast<std::uint64_t>(st.st_size);
    char last = 0;
    if (::pread(rd, &last, 1, static_cast<off_t>(end - 1)) == 1 && last == '\n') --end;
    std::string buf(kStep, '\0');
    std::uint64_t begin_line = 0;
    bool found = false;
    for (std::uint64_t hi = end; hi > 0 && !found && end - hi < kMaxLine;) {
      const std::uint64_t lo = hi > kStep ? hi - kStep : 0;
      if (::pread(rd, buf.data(), hi - lo, static_cast<off_t>(lo)) !=
          static_cast<ssize_t>(hi - lo)) {
        ::close(rd);
        return {};
      }
      for (std::uint64_t i = hi - lo; i > 0; --i) {
        if (buf[i - 1] == '\n') {
          begin_line = lo + i;
          found = true;
          break;
        }
      }
      hi = lo;
    }
    line.resize(end - begin_line);
    if (::pread(rd, line.data(), line.size(), static_cast<off_t>(begin_line)) !=
        static_cast<ssize_t>(line.size())) {
      line.clear();
    }
  }
  ::close(rd);
  return line;
}

// Opens `path` for appending (created 0640); a regular file's torn last line is repaired
// first (RepairTornTail). 0 with `fd` and `st` (after the repair) set, or errno.
int OpenForAppend(const std::string& path, int& fd, struct stat& st, std::string& note,
                  bool& repaired) {
  const int f = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (f < 0) return errno;
  int err = ::fstat(f, &st) != 0 ? errno : 0;
  if (err == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    err = RepairTornTail(f, path, st, note, repaired);
    if (err == 0 && ::fstat(f, &st) != 0) err = errno;
  }
  if (err != 0) {
    ::close(f);
    return err;
  }
  fd = f;
  return 0;
}

}  // namespace

// Writer-thread state. Only the writer thread touches it once the thread runs.
struct AuditLog::Pending {
  int fd = -1;
  bool regular = false;             // rotation only for regular files
  std::uint64_t file_size = 0;      // bytes in the active file (regular files)
  std::deque<std::string> lines;    // formatted, '\n'-terminated, not yet fully written
  std::size_t front_offset = 0;     // bytes of lines.front() already written
  std::vector<Record> batch;        // swapped with AuditLog::queue_
  std::string chunk;                // bytes of one write(2)
  std::uint64_t torn_repaired = 0;  // torn tails repaired on opening, not yet counted
  std::vector<std::string> notes;   // warnings (torn tails), not yet reported
  ChainState chain;                 // of the last line formatted
  ChainState written;               // of the last line fully written
  std::deque<ChainState> states;    // of each of `lines`
  // Signed checkpoints (when a key is configured).
  int cp_fd = -1;
  bool cp_regular = false;
  std::uint64_t cp_n = 0;    // number of the last checkpoint
  Digest cp_prev{};          // SHA-256 of the last checkpoint line
  std::uint64_t cp_seq = 0;  // the seq the last checkpoint covered
  std::chrono::steady_clock::time_point next_checkpoint{};

  ~Pending() {
    CloseFd();
    if (cp_fd >= 0) ::close(cp_fd);
  }

  // Where the chain of an existing log stands: its last line (or, after a rotation, the
  // previous file's).
  void ResumeChain(const std::string& path) {
    if (!regular) return;
    std::string last = LastLine(path);
    if (last.empty()) last = LastLine(path + ".1");
    if (const auto f = ParseChainFields(last)) chain = ChainState{f->seq, f->chain};
    written = chain;
  }

  // Opens the checkpoint file; with `resume`, takes the numbering (and, if it is further on,
  // the chain) from its last checkpoint. Returns 0 or errno.
  int OpenCheckpoints(const std::string& path, bool resume) {
    struct stat st {};
    std::string note;
    bool repaired = false;
    if (const int err = OpenForAppend(path, cp_fd, st, note, repaired); err != 0) return err;
    if (!note.empty()) notes.push_back(std::move(note));
    cp_regular = S_ISREG(st.st_mode);
    if (!resume || !cp_regular) return 0;
    const std::string last = LastLine(path);
    if (last.empty()) return 0;
    if (const auto c = ParseCheckpoint(last)) {
      cp_n = c->n;
      cp_prev = Sha256(last);
      cp_seq = c->at.seq;
      if (c->at.seq > chain.seq) chain = written = c->at;
    } else {
      notes.push_back("audit: the last line of " + path +
                      " is not a checkpoint; numbering checkpoints afresh (audit verify will "
                      "report the break)");
    }
    return 0;
  }

  // Appends a signed checkpoint of the last line written. "" or what failed.
  std::string WriteCheckpoint(const std::string& path, bool sync, const Ed25519Key& key,
                              const char* reason) {
    if (cp_fd < 0) {
      if (const int err = OpenCheckpoints(path, false); err != 0) {
        return ErrnoText("open", path, err);
      }
    }
    Checkpoint c;
    c.n = cp_n + 1;
    c.time_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    c.reason = reason;
    c.at = written;
    c.prev = cp_prev;
    std::string line = FormatCheckpoint(c, key);
    const Digest hash = Sha256(line);
    line += '\n';
    struct stat st {};
    const bool sized = cp_regular && ::fstat(cp_fd, &st) == 0;
    std::size_t done = 0;
    int err = WriteAll(cp_fd, line.data(), line.size(), done);
    if (err == 0 && sync && ::fsync(cp_fd) != 0) err = errno;
    if (err != 0) {
      if (done > 0 && sized) (void)::ftruncate(cp_fd, st.st_size);
      ::close(cp_fd);
      cp_fd = -1;
      return ErrnoText("write checkpoint", path, err);
    }
    cp_n = c.n;
    cp_prev = hash;
    cp_seq = written.seq;
    return {};
  }

  void CloseFd() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  int OpenFile(const std::string& path) {
    struct stat st {};
    std::string note;
    bool repaired = false;
    if (const int err = OpenForAppend(path, fd, st, note, repaired); err != 0) return err;
    regular = S_ISREG(st.st_mode);
    if (repaired) ++torn_repaired;
    if (!note.empty()) notes.push_back(std::move(note));
    file_size = regular ? static_cast<std::uint64_t>(st.st_size) : 0;
    return 0;
  }

  // After a failed write to a regular file: the part of the front line that did reach the file
  // is cut off again, so the line is rewritten whole and no fragment precedes the next record.
  // If the cut fails the descriptor is closed anyway (the caller's fail()), and the reopen
  // repairs the torn tail.
  void DropPartialLine() {
    if (!regular || front_offset == 0) return;
    struct stat st {};
    if (fd >= 0 && ::fstat(fd, &st) == 0 &&
        static_cast<std::uint64_t>(st.st_size) >= front_offset &&
        ::ftruncate(fd, st.st_size - static_cast<off_t>(front_offset)) == 0) {
      file_size = static_cast<std::uint64_t>(st.st_size) - front_offset;
    }
    front_offset = 0;
  }
};

namespace {

struct Attempted {
  std::uint64_t written = 0;
  std::uint64_t dropped = 0;
  std::uint64_t errors = 0;
  std::uint64_t rotations = 0;
  bool ok = true;
  bool did_io = false;  // a write or probe was attempted (health can only change then)
  std::string error;
  std::uint64_t checkpoints = 0;
  std::string checkpoint_error;
};

}  // namespace

AuditLog::AuditLog(Options options)
    : options_(std::move(options)), writer_(std::make_unique<Pending>()) {}

core::Status AuditLog::Open(Options options, std::unique_ptr<AuditLog>& out) {
  out.reset();
  if (options.path.empty()) {
    return core::Status::Error(core::StatusCode::kInvalidArgument, "audit: path is empty");
  }
  if (options.queue_capacity == 0 || options.max_files == 0 || options.max_file_bytes == 0 ||
      options.flush_interval.count() <= 0 || options.checkpoint_interval.count() <= 0) {
    return core::Status::Error(core::StatusCode::kInvalidArgument,
                               "audit: queue_capacity, max_files, max_file_bytes, "
                               "flush_interval and checkpoint_interval must be > 0");
  }
  if (options.checkpoint_path.empty()) options.checkpoint_path = options.path + ".checkpoints";
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options)));
  if (!log->options_.signing_key_pem.empty()) {
    if (auto st = Ed25519Key::FromPrivatePem(log->options_.signing_key_pem, log->signing_key_);
        !st.ok()) {
      return core::Status::Error(core::StatusCode::kInvalidArgument,
                                 "audit: signing key: " + st.message);
    }
  }
  if (const int err = log->writer_->OpenFile(log->options_.path); err != 0) {
    return core::Status::Error(core::StatusCode::kInternal,
                               ErrnoText("open", log->options_.path, err));
  }
  Pending& w = *log->writer_;
  w.ResumeChain(log->options_.path);
  if (log->signing_key_) {
    if (const int err = w.OpenCheckpoints(log->options_.checkpoint_path, true); err != 0) {
      return core::Status::Error(core::StatusCode::kInternal,
                                 ErrnoText("open", log->options_.checkpoint_path, err));
    }
    w.next_checkpoint = std::chrono::steady_clock::now() + log->options_.checkpoint_interval;
  }
  log->last_seq_ = w.written.seq;
  log->torn_repaired_ = std::exchange(log->writer_->torn_repaired, 0);
  log->Warn(std::exchange(log->writer_->notes, {}));
  log->thread_ = std::thread([raw = log.get()] { raw->WriterLoop(); });
  out = std::move(log);
  return core::Status::Ok();
}

void AuditLog::Warn(const std::vector<std::string>& messages) const {
  const auto& sink = options_.on_warning ? options_.on_warning : options_.on_error;
  if (!sink) return;
  for (const std::string& m : messages) sink(m);
}

AuditLog::~AuditLog() {
  Close();
}

bool AuditLog::Reserve() {
  std::lock_guard<std::mutex> lk(mu_);
  if (options_.on_failure == OnFailure::kDropAndCount) {
    if (!closing_) {
      ++reserved_;
      ++occupied_;
    }
    return true;
  }
  if (closing_ || !healthy_ || occupied_ >= options_.queue_capacity) return false;
  ++reserved_;
  ++occupied_;
  return true;
}

void AuditLog::Submit(Record record) {
  bool wake_writer = false;
  bool wake_closer = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    const bool had_reservation = reserved_ > 0;
    if (had_reservation) {
      --reserved_;
      --occupied_;
      wake_closer = closing_ && reserved_ == 0;
    }
    // A reserved record in fail-closed mode always has its place; anything else needs room.
    const bool guaranteed = had_reservation && options_.on_failure == OnFailure::kRejectRequests;
    if (stopped_ || (!guaranteed && occupied_ >= options_.queue_capacity)) {
      ++dropped_;
    } else {
      ++occupied_;
      ++unwritten_;
      queue_.push_back(std::move(record));
      wake_writer = queue_.size() == kBatchRecords;
    }
  }
  if (wake_writer) writer_cv_.notify_one();
  if (wake_closer) state_cv_.notify_all();
}

bool AuditLog::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (stopped_) return false;
  const std::uint64_t mine = ++flush_requested_;
  writer_cv_.notify_one();
  const bool done =
      state_cv_.wait_for(lk, timeout, [&] { return flush_done_ >= mine || stopped_; });
  return done && flush_done_ >= mine && flush_ok_;
}

void AuditLog::Close(std::chrono::milliseconds deadline) {
  std::lock_guard<std::mutex> close_lock(close_mu_);
  if (closed_) return;
  closed_ = true;
  std::size_t abandoned = 0;
  {
    std::unique_lock<std::mutex> lk(mu_);
    closing_ = true;
    const auto until = std::chrono::steady_clock::now() + deadline;
    state_cv_.wait_until(lk, until, [&] { return reserved_ == 0; });
    abandoned = reserved_;
    stop_ = true;
    stop_deadline_ = until;
  }
  writer_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (abandoned != 0 && options_.on_error) {
    options_.on_error("audit: " + std::to_string(abandoned) +
                      " reserved record(s) not submitted before the close deadline");
  }
}

AuditLog::Stats AuditLog::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return Stats{written_, dropped_,  write_errors_,  rotations_,   unwritten_,
               healthy_, !closing_, torn_repaired_, checkpoints_, last_seq_};
}

void AuditLog::WriterLoop() {
  Pending& w = *writer_;
  const Options& o = options_;
  const bool drop_mode = o.on_failure == OnFailure::kDropAndCount;

  // Writes w.lines (rotating as needed). On failure closes the fd so the next attempt reopens.
  auto write_lines = [&](Attempted& a) {
    auto fail = [&](std::string_view what, int err) {
      a.ok = false;
      ++a.errors;
      a.error = ErrnoText(what, o.path, err);
      w.CloseFd();
    };
    while (!w.lines.empty()) {
      if (w.fd < 0) {
        if (const int err = w.OpenFile(o.path); err != 0) return fail("open", err);
      }
      if (w.front_offset == 0 && w.regular && w.file_size > 0 &&
          w.file_size + w.lines.front().size() > o.max_file_bytes) {
        if (o.fsync && ::fsync(w.fd) != 0) return fail("fsync", errno);
        w.CloseFd();
        for (unsigned k = o.max_files - 1; k >= 2; --k) {
          const std::string from = o.path + "." + std::to_string(k - 1);
          const std::string to = o.path + "." + std::to_string(k);
          if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
            return fail("rename", errno);
          }
        }
        const int rc = o.max_files >= 2 ? ::rename(o.path.c_str(), (o.path + ".1").c_str())
                                        : ::unlink(o.path.c_str());
        if (rc != 0 && errno != ENOENT) return fail("rotate", errno);
        if (rc == 0) ++a.rotations;
        if (const int err = w.OpenFile(o.path); err != 0) return fail("open", err);
      }
      // One chunk: the rest of the front line plus whole lines that fit the file and chunk.
      const std::string& first = w.lines.front();
      w.chunk.assign(first, w.front_offset, std::string::npos);
      std::uint64_t projected = w.file_size + w.chunk.size();
      for (std::size_t i = 1; i < w.lines.size(); ++i) {
        const std::string& line = w.lines[i];
        if (w.chunk.size() + line.size() > kMaxChunkBytes) break;
        if (w.regular && projected + line.size() > o.max_file_bytes) break;
        w.chunk += line;
        projected += line.size();
      }
      std::size_t done = 0;
      const int err = WriteAll(w.fd, w.chunk.data(), w.chunk.size(), done);
      if (w.regular) w.file_size += done;
      // Retire the bytes written: whole lines popped, a partial front line remembered.
      std::size_t left = done;
      while (left > 0) {
        const std::size_t rest = w.lines.front().size() - w.front_offset;
        if (left >= rest) {
          left -= rest;
          w.lines.pop_front();
          w.written = w.states.front();
          w.states.pop_front();
          w.front_offset = 0;
          ++a.written;
        } else {
          w.front_offset += left;
          left = 0;
        }
      }
      if (err != 0) {
        w.DropPartialLine();
        return fail("write", err);
      }
    }
    if (a.written > 0 && o.fsync && ::fsync(w.fd) != 0) fail("fsync", errno);
  };

  std::unique_lock<std::mutex> lk(mu_);
  bool retry_wait = false;  // the last attempt failed: wait a full interval before retrying
  for (;;) {
    if (retry_wait) {
      const auto retry_at = std::chrono::steady_clock::now() + o.flush_interval;
      for (;;) {
        const auto until = stop_ ? std::min(retry_at, stop_deadline_) : retry_at;
        if (std::chrono::steady_clock::now() >= until) break;
        writer_cv_.wait_until(lk, until);
      }
    } else if (!stop_) {
      writer_cv_.wait_for(lk, o.flush_interval, [&] {
        return stop_ || flush_requested_ > flush_done_ || queue_.size() >= kBatchRecords;
      });
    }
    const bool stopping = stop_;
    const std::uint64_t request = flush_requested_;
    w.batch.swap(queue_);
    const bool was_healthy = healthy_;
    lk.unlock();

    for (const Record& r : w.batch) {
      std::string line = ToChainedLine(r, w.chain);
      line += '\n';
      w.lines.push_back(std::move(line));
      w.states.push_back(w.chain);
    }
    w.batch.clear();

    Attempted a;
    if (!w.lines.empty()) {
      a.did_io = true;
      write_lines(a);
    } else if (!was_healthy && !drop_mode) {
      a.did_io = true;
      // Unhealthy with nothing pending (e.g. a failed fsync): probe the sink so that
      // Reserve() can succeed again.
      if (w.fd < 0) {
        if (const int err = w.OpenFile(o.path); err != 0) {
          a.ok = false;
          ++a.errors;
          a.error = ErrnoText("open", o.path, err);
        }
      }
      if (a.ok && o.fsync && ::fsync(w.fd) != 0) {
        a.ok = false;
        ++a.errors;
        a.error = ErrnoText("fsync", o.path, errno);
        w.CloseFd();
      }
    }
    if (!a.ok && drop_mode) {
      // Drop every line not yet started. A partial line was cut off a regular file
      // (DropPartialLine); on a FIFO or device, where nothing can be taken back, it is finished
      // later, so the reader never gets a torn line followed by another record.
      const std::size_t keep = w.front_offset > 0 ? 1 : 0;
      a.dropped = w.lines.size() - keep;
      w.lines.resize(keep);
      w.states.resize(keep);
      // The chain goes on from the last line that is (or will be) in the file.
      w.chain = keep != 0 ? w.states.back() : w.written;
    }
    const Ed25519Key* const key = signing_key_.get();
    if (key != nullptr && !stopping && w.written.seq != w.cp_seq &&
        std::chrono::steady_clock::now() >= w.next_checkpoint) {
      a.checkpoint_error = w.WriteCheckpoint(o.checkpoint_path, o.fsync, *key, "interval");
      if (a.checkpoint_error.empty()) ++a.checkpoints;
      w.next_checkpoint = std::chrono::steady_clock::now() + o.checkpoint_interval;
    }

    std::vector<std::string> messages;
    std::vector<std::string> warnings = std::exchange(w.notes, {});
    lk.lock();
    torn_repaired_ += std::exchange(w.torn_repaired, 0);
    written_ += a.written;
    dropped_ += a.dropped;
    write_errors_ += a.errors;
    rotations_ += a.rotations;
    checkpoints_ += a.checkpoints;
    last_seq_ = w.written.seq;
    if (!a.checkpoint_error.empty()) {
      ++write_errors_;
      messages.push_back(a.checkpoint_error + " (retried at the next checkpoint interval)");
    }
    unwritten_ -= static_cast<std::size_t>(a.written + a.dropped);
    occupied_ -= static_cast<std::size_t>(a.written + a.dropped);
    if (!a.ok) {
      if (healthy_) messages.push_back(a.error + " (audit sink unhealthy)");
      healthy_ = false;
    } else if (!healthy_ && a.did_io && w.lines.empty()) {
      healthy_ = true;
      messages.emplace_back("audit: sink healthy again");
    }
    flush_done_ = request;
    flush_ok_ = a.ok && w.lines.empty();
    retry_wait = !a.ok;
    bool exit_now = false;
    if (stopping) {
      if (queue_.empty() && w.lines.empty()) {
        exit_now = true;
      } else if (std::chrono::steady_clock::now() >= stop_deadline_) {
        const std::size_t lost = queue_.size() + w.lines.size();
        dropped_ += lost;
        unwritten_ -= lost;
        occupied_ -= lost;
        queue_.clear();
        w.lines.clear();
        w.states.clear();
        w.front_offset = 0;
        messages.push_back("audit: " + std::to_string(lost) +
                           " record(s) not written before the close deadline");
        exit_now = true;
      }
    }
    if (exit_now) {
      stopped_ = true;
      state_cv_.notify_all();
      lk.unlock();
      if (w.fd >= 0 && o.fsync && ::fsync(w.fd) != 0) {
        messages.push_back(ErrnoText("fsync", o.path, errno));
        std::lock_guard<std::mutex> relock(mu_);
        ++write_errors_;
      }
      w.CloseFd();
      // The last checkpoint: everything this process wrote is signed.
      if (const Ed25519Key* signer = signing_key_.get(); signer != nullptr) {
        std::string err = w.WriteCheckpoint(o.checkpoint_path, o.fsync, *signer, "shutdown");
        std::lock_guard<std::mutex> relock(mu_);
        if (err.empty()) {
          ++checkpoints_;
        } else {
          ++write_errors_;
          messages.push_back(std::move(err));
        }
      }
      Warn(warnings);
      if (o.on_error) {
        for (const std::string& m : messages) o.on_error(m);
      }
      return;
    }
    state_cv_.notify_all();
    if (!warnings.empty() || (!messages.empty() && o.on_error)) {
      lk.unlock();
      Warn(warnings);
      if (o.on_error) {
        for (const std::string& m : messages) o.on_error(m);
      }
      lk.lock();
    }
  }
}

}  // namespace meridian::audit
