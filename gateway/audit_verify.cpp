#include "gateway/audit_verify.h"

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "gateway/core/json_text.h"

namespace meridian::audit {
namespace {

struct Line {
  std::size_t number = 0;  // 1-based
  std::string_view text;
};

struct File {
  const NamedText* source = nullptr;
  std::vector<Line> lines;
  std::string_view fragment;  // bytes after the last '\n'
  std::size_t fragment_line = 0;
  std::optional<std::uint64_t> first_seq;
};

File Split(const NamedText& t) {
  File f;
  f.source = &t;
  std::string_view rest = t.text;
  std::size_t number = 0;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    ++number;
    if (nl == std::string_view::npos) {
      f.fragment = rest;
      f.fragment_line = number;
      break;
    }
    f.lines.push_back({number, rest.substr(0, nl)});
    rest.remove_prefix(nl + 1);
  }
  for (const Line& l : f.lines) {
    if (const auto c = ParseChainFields(l.text)) {
      f.first_seq = c->seq;
      break;
    }
  }
  return f;
}

std::string Range(std::uint64_t from, std::uint64_t to) {
  if (from == to) return "seq " + std::to_string(from);
  return "seqs " + std::to_string(from) + ".." + std::to_string(to) + " (" +
         std::to_string(to - from + 1) + " lines)";
}

struct Position {
  std::string file;
  std::size_t line = 0;
};

struct Gap {
  std::uint64_t from = 0, to = 0;
  Position at;           // the line after the gap
  std::string previous;  // the file before, when the gap is between files
};

class Verifier {
 public:
  explicit Verifier(VerifyReport& r) : r_(r) {}

  void Add(std::string kind, bool tampering, const Position& at, std::uint64_t seq,
           std::string message) {
    r_.findings.push_back({std::move(kind), tampering, at.file, at.line, seq, std::move(message)});
  }

  void Logs(const std::vector<NamedText>& logs) {
    std::vector<File> files;
    for (const NamedText& t : logs) files.push_back(Split(t));
    // Oldest first: by the first seq; files without a chained line last, as given.
    std::stable_sort(files.begin(), files.end(), [](const File& a, const File& b) {
      if (a.first_seq && b.first_seq) return *a.first_seq < *b.first_seq;
      return a.first_seq.has_value() && !b.first_seq.has_value();
    });
    r_.files = files.size();
    Digest prev{};
    std::uint64_t last = 0;
    Position last_at;
    for (std::size_t fi = 0; fi < files.size(); ++fi) {
      const File& f = files[fi];
      const std::string& name = f.source->name;
      bool first_in_file = true;
      for (const Line& l : f.lines) {
        const Position at{name, l.number};
        const auto c = ParseChainFields(l.text);
        if (!c) {
          Add("inserted", true, at, 0,
              l.text.empty() ? "an empty line: the writer writes none"
                             : "a line without a chain link (seq, chain): not written by the "
                               "gateway's audit writer");
          continue;
        }
        ++r_.records;
        const bool file_start = std::exchange(first_in_file, false);
        if (r_.records == 1) {
          r_.first_seq = c->seq;
          if (c->seq == 1) {
            if (ExpectedChain(Digest{}, l.text, *c) != c->chain) {
              Add("modified", true, at, c->seq,
                  "the first line's chain does not follow from the start: it was modified");
            }
          } else {
            Add("note", false, at, c->seq,
                "the history begins at seq " + std::to_string(c->seq) +
                    ": earlier lines are not in the files given (rotated away)");
          }
        } else if (const auto seen = seen_.find(c->seq); seen != seen_.end()) {
          Add("inserted", true, at, c->seq,
              "seq " + std::to_string(c->seq) + " again (first at " + seen->second.file + ":" +
                  std::to_string(seen->second.line) + "): a line was copied in");
          continue;
        } else if (c->seq < last) {
          Add("reordered", true, at, c->seq,
              "seq " + std::to_string(c->seq) + " comes after seq " + std::to_string(last) + " (" +
                  last_at.file + ":" + std::to_string(last_at.line) + "): lines were moved");
          seen_.emplace(c->seq, at);
          chains_.emplace(c->seq, std::make_pair(c->chain, at));
          continue;
        } else if (c->seq == last + 1) {
          if (ExpectedChain(prev, l.text, *c) != c->chain) {
            Add("modified", true, at, c->seq,
                "the line does not follow from seq " + std::to_string(last) +
                    ": it, or the chain field of the line before it, was modified");
          }
        } else {
          Gap g{last + 1, c->seq - 1, at, {}};
          if (file_start && fi > 0) g.previous = last_at.file;
          gaps_.push_back(std::move(g));
        }
        prev = c->chain;
        last = c->seq;
        last_at = at;
        seen_.emplace(c->seq, at);
        chains_.emplace(c->seq, std::make_pair(c->chain, at));
      }
      if (!f.fragment.empty()) {
        const Position at{name, f.fragment_line};
        if (fi + 1 == files.size()) {
          torn_ = at;
          torn_bytes_ = f.fragment.size();
        } else {
          Add("truncated", true, at, 0,
              "a rotated file ends in a fragment of a line (" + std::to_string(f.fragment.size()) +
                  " bytes): the writer rotates only after whole lines, so it was cut");
        }
      }
    }
    r_.last_seq = last;
    for (const Gap& g : gaps_) ReportGap(g);
  }

  void Checkpoints(const std::vector<NamedText>& files, const Ed25519Key* key) {
    std::optional<Checkpoint> prev;
    std::string_view prev_line;
    bool prev_valid = false;
    std::int64_t covered_beyond = 0;
    for (const NamedText& t : files) {
      const File f = Split(t);
      for (const Line& l : f.lines) {
        const Position at{t.name, l.number};
        auto c = ParseCheckpoint(l.text);
        if (!c) {
          Add("checkpoint_forged", true, at, 0, "not a checkpoint line");
          continue;
        }
        ++r_.checkpoints;
        bool valid = true;
        if (key != nullptr) {
          if (c->key_id != key->key_id()) {
            Add("checkpoint_forged", true, at, c->at.seq,
                "checkpoint " + std::to_string(c->n) + " names key " + c->key_id +
                    ", not the given key " + key->key_id());
            valid = false;
          } else if (!key->Verify(l.text.substr(0, c->signed_bytes), c->sig)) {
            Add("checkpoint_forged", true, at, c->at.seq,
                "checkpoint " + std::to_string(c->n) + ": the signature does not verify");
            valid = false;
          } else {
            ++r_.checkpoints_valid;
          }
        }
        if (!prev) {
          if (c->n != 1) {
            Add("checkpoint_missing", true, at, c->at.seq,
                "the checkpoints begin at " + std::to_string(c->n) + ": 1.." +
                    std::to_string(c->n - 1) + " are missing");
          }
        } else if (c->n == prev->n + 1) {
          if (prev_valid && valid && c->prev != Sha256(prev_line)) {
            Add("checkpoint_missing", true, at, c->at.seq,
                "checkpoint " + std::to_string(c->n) + " does not chain to checkpoint " +
                    std::to_string(prev->n) + ": that one was replaced");
          }
        } else if (c->n > prev->n + 1) {
          Add("checkpoint_missing", true, at, c->at.seq,
              "checkpoint " + std::to_string(c->n) + " follows checkpoint " +
                  std::to_string(prev->n) + ": " + std::to_string(prev->n + 1) + ".." +
                  std::to_string(c->n - 1) + " are missing");
        } else {
          Add("checkpoint_missing", true, at, c->at.seq,
              "checkpoint " + std::to_string(c->n) + " follows checkpoint " +
                  std::to_string(prev->n) + ": out of order or duplicated");
        }
        if (valid) Cover(*c, at, covered_beyond);
        prev = std::move(c);
        prev_line = l.text;
        prev_valid = valid;
      }
      if (!f.fragment.empty()) {
        Add("note", false, {t.name, f.fragment_line}, 0,
            "ends in a fragment of a checkpoint line (a writer stopped mid-line)");
      }
    }
    if (torn_) {
      if (covered_beyond > 0) {
        Add("truncated", true, *torn_, 0,
            "the log ends in a fragment of a line (" + std::to_string(torn_bytes_) +
                " bytes) and checkpoints cover lines beyond it: it was cut");
      } else {
        Add("torn_tail", false, *torn_, r_.last_seq + 1,
            "the newest file ends in a fragment of a line (" + std::to_string(torn_bytes_) +
                " bytes): a writer stopped mid-line (killed, power lost); not tampering, the "
                "gateway truncates it when it next opens the file");
      }
    }
    if (key == nullptr) {
      Add("note", false, {}, 0,
          r_.checkpoints == 0
              ? "no checkpoints given and no key: only the chain was checked, and a chain can "
                "be rewritten by anyone who can write the files"
              : "no key given (--pubkey): the checkpoints' signatures were not checked");
    } else if (r_.checkpoints == 0) {
      Add("checkpoint_missing", true, {}, 0,
          "no checkpoint: nothing signed covers these lines (is audit.signing_key set?)");
    }
    if (r_.records > 0 && r_.signed_through < r_.last_seq &&
        (key == nullptr || r_.checkpoints_valid > 0)) {
      const std::uint64_t from = std::max(r_.signed_through + 1, r_.first_seq);
      Add("note", false, {}, from,
          Range(from, r_.last_seq) + " written after the last checkpoint: chained, not yet signed");
    }
  }

 private:
  void Cover(const Checkpoint& c, const Position& at, std::int64_t& covered_beyond) {
    const std::string who = "checkpoint " + std::to_string(c.n);
    if (c.at.seq == 0) return;
    if (r_.records == 0 || c.at.seq > r_.last_seq) {
      ++covered_beyond;
      Add("truncated", true, at, c.at.seq,
          who + " signed seq " + std::to_string(c.at.seq) + " but the log ends at seq " +
              std::to_string(r_.last_seq) + ": " + Range(r_.last_seq + 1, c.at.seq) +
              " were removed");
      return;
    }
    if (c.at.seq < r_.first_seq) {
      Add("note", false, at, c.at.seq,
          who + " covers seq " + std::to_string(c.at.seq) + ", before the files given");
      return;
    }
    if (c.at.seq >= r_.signed_through) {
      r_.signed_through = c.at.seq;
      r_.signed_at_ms = c.time_unix_ms;
    }
    const auto it = chains_.find(c.at.seq);
    if (it == chains_.end()) return;  // reported as deleted
    if (it->second.first != c.at.hash) {
      Add("rewritten", true, it->second.second, c.at.seq,
          "the chain at seq " + std::to_string(c.at.seq) + " is not the one " + who +
              " signed: lines up to it were rewritten");
    }
  }

  void ReportGap(const Gap& g) {
    // Seqs that turned up elsewhere (reordered) are not missing.
    std::uint64_t run_from = 0;
    auto flush = [&](std::uint64_t to) {
      if (run_from == 0) return;
      if (!g.previous.empty()) {
        Add("gap", true, g.at, run_from,
            "between " + g.previous + " and " + g.at.file + ": " + Range(run_from, to) +
                " missing (a rotated file removed or cut)");
      } else {
        Add("deleted", true, g.at, run_from, Range(run_from, to) + " missing before this line");
      }
      run_from = 0;
    };
    constexpr std::uint64_t kScan = 1u << 22;
    if (g.to - g.from > kScan) {
      run_from = g.from;
      flush(g.to);
      return;
    }
    for (std::uint64_t s = g.from; s <= g.to; ++s) {
      if (seen_.count(s) != 0) {
        flush(s - 1);
      } else if (run_from == 0) {
        run_from = s;
      }
    }
    flush(g.to);
  }

  VerifyReport& r_;
  std::unordered_map<std::uint64_t, Position> seen_;
  std::unordered_map<std::uint64_t, std::pair<Digest, Position>> chains_;
  std::vector<Gap> gaps_;
  std::optional<Position> torn_;
  std::size_t torn_bytes_ = 0;
};

}  // namespace

bool VerifyReport::tampered() const {
  return std::any_of(findings.begin(), findings.end(),
                     [](const Finding& f) { return f.tampering; });
}

std::size_t VerifyReport::Count(std::string_view kind) const {
  return static_cast<std::size_t>(std::count_if(findings.begin(), findings.end(),
                                                [&](const Finding& f) { return f.kind == kind; }));
}

VerifyReport Verify(const std::vector<NamedText>& logs, const std::vector<NamedText>& checkpoints,
                    const Ed25519Key* key) {
  VerifyReport report;
  Verifier v(report);
  v.Logs(logs);
  v.Checkpoints(checkpoints, key);
  // In file order, then line order, so the report reads like the files.
  std::stable_sort(report.findings.begin(), report.findings.end(),
                   [](const Finding& a, const Finding& b) {
                     return std::tie(a.file, a.line) < std::tie(b.file, b.line);
                   });
  return report;
}

std::string FormatReport(const VerifyReport& r) {
  std::string out;
  for (const Finding& f : r.findings) {
    if (!f.file.empty()) {
      out += f.file;
      if (f.line != 0) out += ":" + std::to_string(f.line);
      out += ": ";
    }
    out += f.kind + ": " + f.message + "\n";
  }
  out += std::to_string(r.files) + " file(s), " + std::to_string(r.records) + " line(s)";
  if (r.records > 0) {
    out += ", seq " + std::to_string(r.first_seq) + ".." + std::to_string(r.last_seq);
  }
  out += "; " + std::to_string(r.checkpoints) + " checkpoint(s), " +
         std::to_string(r.checkpoints_valid) + " with a valid signature";
  if (r.signed_through > 0) out += ", signed through seq " + std::to_string(r.signed_through);
  out += "\n";
  if (!r.tampered()) {
    out += "verified: no tampering found\n";
    return out;
  }
  std::map<std::string, std::size_t> kinds;
  for (const Finding& f : r.findings) {
    if (f.tampering) ++kinds[f.kind];
  }
  out += "TAMPERED:";
  for (const auto& [kind, n] : kinds) out += " " + std::to_string(n) + " " + kind;
  out += "\n";
  return out;
}

std::string ReportJson(const VerifyReport& r) {
  std::string out = "{\"verified\":";
  out += r.tampered() ? "false" : "true";
  out += ",\"files\":" + std::to_string(r.files) + ",\"records\":" + std::to_string(r.records) +
         ",\"first_seq\":" + std::to_string(r.first_seq) +
         ",\"last_seq\":" + std::to_string(r.last_seq) +
         ",\"checkpoints\":" + std::to_string(r.checkpoints) +
         ",\"checkpoints_valid\":" + std::to_string(r.checkpoints_valid) +
         ",\"signed_through\":" + std::to_string(r.signed_through) +
         ",\"signed_at_unix_ms\":" + std::to_string(r.signed_at_ms) + ",\"findings\":[";
  for (std::size_t i = 0; i < r.findings.size(); ++i) {
    const Finding& f = r.findings[i];
    if (i != 0) out += ',';
    out += "{\"kind\":";
    core::AppendJsonString(out, f.kind);
    out += ",\"tampering\":";
    out += f.tampering ? "true" : "false";
    out += ",\"file\":";
    core::AppendJsonString(out, f.file);
    out += ",\"line\":" + std::to_string(f.line) + ",\"seq\":" + std::to_string(f.seq) +
           ",\"message\":";
    core::AppendJsonString(out, f.message);
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace meridian::audit
