// libFuzzer: the audit verifier and its parsers (gateway/audit_verify.h, audit_chain.h).
//
// Input layout: up to the first 0 byte, audit files' text; after it, checkpoint files' text
// (both split again at 0x01 bytes into several files). The verifier never crashes on them,
// and its findings are in file order. Then the input's lines (as JSON strings) are chained as
// the writer chains them: that log verifies untouched, and with any one byte after the first
// line changed to another value it is reported as tampered.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "gateway/audit_chain.h"
#include "gateway/audit_verify.h"
#include "gateway/core/json_text.h"

namespace {

using namespace meridian::audit;

std::vector<NamedText> Files(std::string_view text, const char* prefix) {
  std::vector<NamedText> out;
  std::size_t at = 0;
  for (;;) {
    const auto end = text.find('\x01', at);
    out.push_back({prefix + std::to_string(out.size()), std::string(text.substr(at, end - at))});
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  return out;
}

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto zero = in.find('\0');
  const std::string_view logs = in.substr(0, zero);
  const std::string_view cps = zero == std::string_view::npos ? "" : in.substr(zero + 1);
  const VerifyReport any = Verify(Files(logs, "log"), Files(cps, "cp"), nullptr);
  for (std::size_t i = 1; i < any.findings.size(); ++i) {
    Check(std::tie(any.findings[i - 1].file, any.findings[i - 1].line) <=
          std::tie(any.findings[i].file, any.findings[i].line));
  }
  (void)FormatReport(any);
  (void)ReportJson(any);
  for (std::size_t at = 0; at < in.size();) {  // the parsers on every line
    const auto nl = in.find('\n', at);
    const std::string_view line = in.substr(at, nl - at);
    if (const auto f = ParseChainFields(line)) Check(f->hashed_bytes < line.size());
    if (const auto c = ParseCheckpoint(line)) Check(c->signed_bytes < line.size());
    if (nl == std::string_view::npos) break;
    at = nl + 1;
  }

  // A log chained by the writer's rule from the input's lines.
  std::vector<std::string> lines;
  ChainState state;
  for (std::size_t at = 0; at < in.size() && lines.size() < 64;) {
    const auto nl = in.find('\n', at);
    std::string line = "{\"d\":";
    meridian::core::AppendJsonString(line, in.substr(at, nl - at));
    line += '}';
    ChainLine(line, state);
    lines.push_back(std::move(line));
    if (nl == std::string_view::npos) break;
    at = nl + 1;
  }
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  const VerifyReport clean = Verify({{"audit.jsonl", text}}, {}, nullptr);
  Check(!clean.tampered());
  Check(clean.records == lines.size());
  if (lines.size() >= 2 && size > 0) {
    // One byte of a line after the first, changed.
    const std::size_t first = lines[0].size() + 1;
    const std::size_t pos = first + data[0] % (text.size() - first - 1);
    if (text[pos] != '\n') {
      const char before = text[pos];
      text[pos] = static_cast<char>(before ^ (data[size - 1] | 1));
      const VerifyReport tampered = Verify({{"audit.jsonl", text}}, {}, nullptr);
      Check(tampered.tampered());
    }
  }
  return 0;
}
