// `meridian audit verify`: checks audit files and their signed checkpoints without trusting
// the gateway that wrote them (pure: the files' contents in, findings out; no I/O).
//
// What it finds, each with the file and line (and seq) where it shows:
//   modified            a line whose chain does not follow from the line before it
//   deleted             seqs missing inside a file
//   gap                 seqs missing between two files (a rotated file removed or cut)
//   inserted            a line without a chain link, or a second line with a seq already seen
//   reordered           a line whose seq comes after a later one's
//   rewritten           the chain at a checkpoint's seq is not the one the checkpoint signed
//                       (lines up to it were rewritten, chain and all)
//   truncated           a checkpoint covers seqs beyond the end of the log, or a rotated file
//                       ends in a fragment of a line
//   checkpoint_missing  a break in the checkpoints' numbering or chain, or none at all where
//                       a key says there should be
//   checkpoint_forged   a checkpoint whose signature does not verify with the given key, or
//                       signed by another key
//   torn_tail           the newest file ends in a fragment of a line that no checkpoint
//                       covers: a writer that stopped mid-line (killed, power lost). Not
//                       tampering; the gateway truncates it on its next start.
// and as notes (not tampering): where the history begins when older files were rotated away,
// lines written after the last checkpoint (chained, not yet signed), checkpoints that cover
// seqs before the files given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/audit_chain.h"

namespace meridian::audit {

struct NamedText {
  std::string name;  ///< shown in findings (a path)
  std::string text;  ///< the file's bytes
};

struct Finding {
  std::string kind;  ///< one of the kinds above, or "note"
  bool tampering = false;
  std::string file;
  std::size_t line = 0;  ///< 1-based; 0 when the finding is about a file or the log
  std::uint64_t seq = 0;
  std::string message;
};

struct VerifyReport {
  std::vector<Finding> findings;
  std::size_t files = 0;
  std::size_t records = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::size_t checkpoints = 0;        ///< read
  std::size_t checkpoints_valid = 0;  ///< signature verified (with a key)
  std::uint64_t signed_through = 0;   ///< seq of the last valid checkpoint inside the log
  std::int64_t signed_at_ms = 0;      ///< its time

  bool tampered() const;
  std::size_t Count(std::string_view kind) const;
};

/// `logs` in any order (they are ordered by their seqs); `checkpoints` the checkpoint files'
/// contents; `key` the public key to check signatures with (null: signatures unchecked, which
/// the report notes).
VerifyReport Verify(const std::vector<NamedText>& logs, const std::vector<NamedText>& checkpoints,
                    const Ed25519Key* key);

/// The report as text lines ("FILE:LINE: kind: message") and a summary.
std::string FormatReport(const VerifyReport& report);
/// The report as one JSON object.
std::string ReportJson(const VerifyReport& report);

}  // namespace meridian::audit
