// Durable audit log: one JSON line per request that reached a policy decision, written by a
// single writer thread off the request path (std + POSIX only).
//
// Request path contract (both front ends):
//   1. Every request that is about to be decided calls Reserve() first -- including requests
//      that the policy will deny. In the default fail-closed mode (kRejectRequests) a false
//      return means "the audit trail cannot take this request": the front end answers 503 and
//      does not route it. A successful Reserve() guarantees the record a place in the queue.
//   2. When the request ends (denied, served, failed, cancelled), it calls Submit(record)
//      exactly once. Submit never blocks on I/O: it moves the record into an in-memory queue
//      under a short critical section; formatting and write(2) happen on the writer thread.
//   There is no "enqueue without a reservation" path: denials reserve too, so the capacity
//   bound is never exceeded and the fail-closed guarantee has no exception.
//
// Durability:
//   * The writer batches records, writes them with write(2) (short writes and EINTR handled)
//     every flush_interval, or sooner when a batch is large or Flush() asks; with
//     Options::fsync it fsyncs after each successful flush.
//   * A record is never left half-written by this process: on a short write or an error
//     (ENOSPC, EFBIG) to a regular file, the part of the line that reached the file is
//     truncated away and the line is rewritten whole later (on a FIFO or device, where
//     nothing can be taken back, it is resumed from the byte where it stopped).
//   * Opening a regular file that does not end in '\n' (a torn last line: a previous writer
//     was killed or lost power mid-line) truncates it back to its last complete line (or,
//     if it cannot be truncated, fences the fragment with a '\n'), reports it through
//     on_warning and counts it in Stats::torn_tails_repaired; this happens on every open,
//     also the reopen after an error.
//   * On a write or open error the sink turns unhealthy and the fd is closed; the unwritten
//     lines stay pending and are retried every flush_interval by reopening the path. In
//     kRejectRequests mode Reserve() fails while unhealthy and nothing reserved is ever dropped; a
//     later successful write makes the sink healthy again. In kDropAndCount mode the lines of a
//     failed write that had not started are dropped and counted, and Reserve() always succeeds.
//   * Rotation (regular files only; a FIFO or device is never renamed): before a line that
//     would take the active file past max_file_bytes (and the file is not empty), the files
//     shift path.(max_files-2) -> path.(max_files-1), ..., path -> path.1 and a fresh `path`
//     is opened. At most max_files files exist: path plus path.1 .. path.(max_files-1); the
//     oldest is overwritten. A single line larger than max_file_bytes gets a file of its own.
//   * Close() stops new reservations, waits up to `deadline` for outstanding reservations to
//     be submitted, writes everything queued (retrying failed writes until the deadline),
//     fsyncs when configured, closes the file and joins the writer. Whatever is still
//     unwritten or unsubmitted at the deadline is counted in Stats::dropped and reported
//     through on_error. A write(2) blocked in the kernel (e.g. a FIFO nobody reads) cannot be
//     interrupted, so Close() waits for it.
//
// Nothing is printed: errors go only to Options::on_error, warnings (a repaired torn tail) to
// Options::on_warning (else on_error); both are called from the writer thread or from
// Open()/Close(), never while holding the log's lock.
//
// JSON line schema (ToJsonLine; keys always present, in this order; strings are JSON-escaped,
// invalid UTF-8 bytes become U+FFFD; optional numbers are null when absent):
//   v                  int      schema version, 1
//   time_unix_ms       int      decision time, ms since the Unix epoch
//   request_id         string
//   front_end          string   "http" | "grpc"
//   tenant             string
//   model              string   the model alias the client asked for
//   upstream_model     string   the provider's name for it, of the provider that answered
//                               (else the last one tried; "" when none was)
//   region             string
//   region_source      string
//   declared_class     string   data class the client declared (or the tenant default)
//   effective_class    string   class after the PII classifier (never lower than declared)
//   raised_by          [string] detector kinds that raised the class (never matched values)
//   allowed            bool
//   reason_code        string   policy reason for a denial ("" when allowed)
//   rule               string   matched route / denying guard
//   guards             [string] guards that applied
//   candidates         [string] providers the decision allowed, in order
//   attempts           [object] {"provider": string, "outcome": "ok" | reason code,
//                               "duration_us": int} in the order tried
//   echo               object|null {"said": string, "verdict": "within" | "outside" |
//                               "unrecognised"}: where the answering provider said it
//                               processed the request; null when it said nothing
//   status             int      HTTP status, or the gRPC status code for "grpc"
//   status_reason      string
//   prompt_tokens      int|null
//   completion_tokens  int|null
//   total_tokens       int|null
//   ttft_us            int|null time to first token
//   total_us           int      request duration
//   policy_version     string
//   seq                int      added by the writer: the line's number in the chain
//   chain              string   added by the writer: the hash chain (gateway/audit_chain.h)
// The Record has no field for prompt or completion content, credentials or matched PII.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gateway/audit_chain.h"
#include "gateway/core/status.h"

namespace meridian::audit {

struct Attempt {
  std::string provider;
  std::string outcome;  // "ok" or a reason code
  std::int64_t duration_us = 0;
};

struct Record {
  std::int64_t time_unix_ms = 0;
  std::string request_id;
  std::string front_end;  // "http" | "grpc"
  std::string tenant;
  std::string model;           // the alias requested
  std::string upstream_model;  // the provider's model name
  std::string region;
  std::string region_source;
  std::string declared_class;
  std::string effective_class;
  std::vector<std::string> raised_by;  // detector kinds, never values
  bool allowed = false;
  std::string reason_code;
  std::string rule;
  std::vector<std::string> guards;
  std::vector<std::string> candidates;
  std::vector<Attempt> attempts;
  /// Sent to a provider processing outside the mainland (an attempt the export meter refused
  /// sent nothing).
  bool exported = false;
  bool new_individual = false;  // the export meter counted a new individual (never which)
  /// The residency echo of the provider that answered (gateway/residency_echo.h): what it
  /// said ("inference_geo=global") and the verdict ("within", "outside", "unrecognised");
  /// both "" when it said nothing.
  std::string echo_said;
  std::string echo_verdict;
  int status = 0;  // HTTP status, or gRPC code for grpc
  std::string status_reason;
  std::optional<std::int64_t> prompt_tokens;
  std::optional<std::int64_t> completion_tokens;
  std::optional<std::int64_t> total_tokens;
  std::optional<std::int64_t> ttft_us;
  std::int64_t total_us = 0;
  std::string policy_version;
};

/// One line of JSON (no trailing newline) in the schema above, without the writer's `seq` and
/// `chain`. Pure and deterministic.
std::string ToJsonLine(const Record& r);
/// The line as the writer writes it after `state` (advanced): ToJsonLine + ChainLine.
std::string ToChainedLine(const Record& r, ChainState& state);

enum class OnFailure {
  kRejectRequests,  // fail closed (default): Reserve() fails when full or unhealthy
  kDropAndCount,    // Reserve() always succeeds; records that cannot be kept are counted
};

struct Options {
  std::string path;  // file to append to (O_APPEND, created 0640 if missing)
  std::chrono::milliseconds flush_interval{200};
  bool fsync = false;                         // fsync after each successful flush
  std::uint64_t max_file_bytes = 100u << 20;  // rotate before exceeding (regular files only)
  unsigned max_files = 5;                     // path + path.1 .. path.(max_files-1)
  std::size_t queue_capacity = 65536;         // reserved + queued + being written
  OnFailure on_failure = OnFailure::kRejectRequests;
  std::function<void(std::string_view)> on_error;    // optional; the module never prints
  std::function<void(std::string_view)> on_warning;  // optional; default: on_error
  /// Signed checkpoints (gateway/audit_chain.h): the PEM Ed25519 private key that signs
  /// them; empty: none are written (the lines are chained either way). A secret: never
  /// printed.
  std::string signing_key_pem;
  std::string checkpoint_path;  // default: path + ".checkpoints"
  std::chrono::milliseconds checkpoint_interval{std::chrono::minutes(5)};
};

class AuditLog {
 public:
  /// Opens (creates) the file with O_APPEND and starts the writer thread into `out`. An error
  /// (kInvalidArgument: invalid options; kInternal: the file cannot be opened) leaves `out`
  /// null.
  static core::Status Open(Options options, std::unique_ptr<AuditLog>& out);

  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();  // Close() with the default deadline

  /// Called BEFORE a request is decided/routed, for every request including denials.
  /// kRejectRequests: false when closing, when the sink is unhealthy, or when reservations +
  /// queued + unwritten records reached queue_capacity; the caller answers 503.
  /// kDropAndCount: always true.
  bool Reserve();

  /// Hands over the record of a request that Reserve()d (exactly once per successful
  /// Reserve). Never blocks on I/O. A record that cannot be kept (kDropAndCount and full, or
  /// submitted after Close() finished) is dropped and counted.
  void Submit(Record record);

  /// Asks the writer to write everything submitted before this call now, and waits up to
  /// `timeout` for that attempt. True when the attempt left nothing unwritten (records
  /// submitted concurrently may still be queued); false on a write error, timeout or when
  /// closed. Not needed for durability -- the writer flushes every flush_interval.
  bool Flush(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  /// Stops accepting, waits up to `deadline` for outstanding reservations' records, writes
  /// everything queued (retrying until the deadline), fsyncs if configured, closes the file
  /// and joins the writer. Idempotent and thread-safe.
  void Close(std::chrono::milliseconds deadline = std::chrono::seconds(5));

  struct Stats {
    std::uint64_t written;       // lines fully written
    std::uint64_t dropped;       // records lost (drop mode, after-close submits, deadline)
    std::uint64_t write_errors;  // failed write/open/rotate/fsync attempts
    std::uint64_t rotations;
    std::size_t queue_depth;            // submitted but not yet fully written
    bool healthy;                       // last write attempt succeeded
    bool accepting;                     // Close() has not started
    std::uint64_t torn_tails_repaired;  // files opened with a torn last line, repaired
    std::uint64_t checkpoints;          // signed checkpoints written
    std::uint64_t last_seq;             // the chain's seq of the last line written
  };
  Stats stats() const;

  /// Where it writes (checkpoint_path filled in when the options left it empty).
  const std::string& path() const { return options_.path; }
  const std::string& checkpoint_path() const { return options_.checkpoint_path; }
  unsigned max_files() const { return options_.max_files; }
  /// The key that signs checkpoints; null when none are written.
  const Ed25519Key* signing_key() const { return signing_key_.get(); }

 private:
  struct Pending;  // writer-owned state: fd, formatted lines, sizes
  explicit AuditLog(Options options);
  void WriterLoop();
  void Warn(const std::vector<std::string>& messages) const;

  const Options options_;
  std::unique_ptr<Pending> writer_;          // touched only by the writer thread (and Open/Close)
  std::unique_ptr<Ed25519Key> signing_key_;  // set when checkpoints are signed

  mutable std::mutex mu_;
  std::condition_variable writer_cv_;  // wakes the writer
  std::condition_variable state_cv_;   // wakes Close()/Flush() waiters
  std::vector<Record> queue_;          // submitted, not yet taken by the writer
  std::size_t occupied_ = 0;           // reserved + queued + taken-but-unwritten
  std::size_t reserved_ = 0;           // reservations not yet submitted
  std::size_t unwritten_ = 0;          // queued + taken-but-unwritten
  std::uint64_t written_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t write_errors_ = 0;
  std::uint64_t rotations_ = 0;
  std::uint64_t torn_repaired_ = 0;
  std::uint64_t checkpoints_ = 0;
  std::uint64_t last_seq_ = 0;
  std::uint64_t flush_requested_ = 0;
  std::uint64_t flush_done_ = 0;
  bool flush_ok_ = true;
  bool healthy_ = true;
  bool closing_ = false;  // Close() started: Reserve() fails
  bool stop_ = false;     // writer: drain and exit
  bool stopped_ = false;  // writer exited
  std::chrono::steady_clock::time_point stop_deadline_{};

  std::mutex close_mu_;
  bool closed_ = false;
  std::thread thread_;
};

}  // namespace meridian::audit
