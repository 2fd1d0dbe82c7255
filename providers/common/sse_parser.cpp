#include "providers/common/sse_parser.h"

#include <cstring>
#include <limits>
#include <utility>

namespace meridian::providers {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

// memchr is vectorised; a byte loop testing two characters is not.
std::size_t Find(std::string_view s, std::size_t from, std::size_t to, char c) {
  const void* p = std::memchr(s.data() + from, c, to - from);
  if (p == nullptr) return std::string_view::npos;
  return static_cast<std::size_t>(static_cast<const char*>(p) - s.data());
}

std::optional<int> ParseRetry(std::string_view v) {
  if (v.empty()) return std::nullopt;
  long long n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
    // An unrepresentable value is as useless as a malformed one.
    if (n > std::numeric_limits<int>::max()) return std::nullopt;
  }
  return static_cast<int>(n);
}

}  // namespace

bool SseParser::Feed(std::string_view bytes, std::vector<SseEvent>& out) {
  if (!ok()) return false;
  if (!bom_done_) {
    // The BOM may itself be split across Feed calls, so match it byte by byte.
    while (!bytes.empty() && bom_matched_ < kBom.size() && bytes.front() == kBom[bom_matched_]) {
      ++bom_matched_;
      bytes.remove_prefix(1);
    }
    if (bom_matched_ == kBom.size()) {
      bom_done_ = true;
    } else if (bytes.empty()) {
      return true;  // still a possible BOM prefix
    } else {
      bom_done_ = true;
      // A partial BOM followed by something else was ordinary content after all.
      if (bom_matched_ > 0) Scan(kBom.substr(0, bom_matched_), out);
    }
  }
  if (ok()) Scan(bytes, out);
  return ok();
}

void SseParser::Scan(std::string_view bytes, std::vector<SseEvent>& out) {
  const std::size_t n = bytes.size();
  std::size_t pos = 0;
  if (skip_lf_ && n > 0) {
    skip_lf_ = false;
    if (bytes[0] == '\n') pos = 1;
  }
  constexpr std::size_t kUnknown = std::string_view::npos - 1;
  std::size_t next_lf = kUnknown;  // cached so that CR-only streams stay linear
  while (pos < n && ok()) {
    if (next_lf == kUnknown || (next_lf != std::string_view::npos && next_lf < pos)) {
      next_lf = Find(bytes, pos, n, '\n');
    }
    const std::size_t limit = next_lf == std::string_view::npos ? n : next_lf;
    std::size_t eol = Find(bytes, pos, limit, '\r');
    if (eol == std::string_view::npos) eol = next_lf;
    if (eol == std::string_view::npos) {
      partial_line_.append(bytes.substr(pos));
      if (partial_line_.size() + PendingEventBytes() > max_event_bytes_) Fail();
      return;
    }
    const std::string_view segment = bytes.substr(pos, eol - pos);
    if (partial_line_.empty()) {
      ProcessLine(segment, out);
    } else {
      partial_line_.append(segment);
      ProcessLine(partial_line_, out);
      partial_line_.clear();
    }
    pos = eol + 1;
    if (bytes[eol] == '\r') {
      if (pos < n) {
        if (bytes[pos] == '\n') ++pos;
      } else {
        skip_lf_ = true;  // the matching '\n' may start the next Feed
      }
    }
  }
}

void SseParser::ProcessLine(std::string_view line, std::vector<SseEvent>& out) {
  if (line.empty()) {
    Dispatch(out);
    return;
  }
  if (line.front() == ':') return;  // comment, e.g. DashScope's ":HTTP_STATUS/200"
  in_event_ = true;
  std::string_view field = line;
  std::string_view value;
  if (const std::size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    event_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) id_.assign(value);
  } else if (field == "retry") {
    if (auto r = ParseRetry(value)) retry_ = r;
  }
  if (PendingEventBytes() > max_event_bytes_) Fail();
}

void SseParser::Dispatch(std::vector<SseEvent>& out) {
  in_event_ = false;
  if (data_.empty()) {
    event_.clear();
    retry_.reset();
    return;
  }
  data_.pop_back();  // the '\n' after the last data line
  SseEvent& e = out.emplace_back();
  e.event = std::move(event_);
  e.data = std::move(data_);
  e.id = id_;
  e.retry = retry_;
  event_.clear();
  data_.clear();
  retry_.reset();
}

void SseParser::Fail() {
  status_ = core::Status::Error(core::StatusCode::kBadUpstream,
                                "upstream sent a server-sent event larger than " +
                                    std::to_string(max_event_bytes_) + " bytes",
                                "sse_event_too_large");
  partial_line_.clear();
  partial_line_.shrink_to_fit();
  data_.clear();
  data_.shrink_to_fit();
}

bool SseParser::Finish() {
  const bool clean =
      ok() && partial_line_.empty() && !in_event_ && (bom_done_ || bom_matched_ == 0);
  *this = SseParser(max_event_bytes_);
  return clean;
}

}  // namespace meridian::providers
