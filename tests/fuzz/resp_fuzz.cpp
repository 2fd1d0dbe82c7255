// libFuzzer: RESP, the Redis wire protocol (gateway/store/resp.h).
//
// Input layout: byte 0 — the size of the Feed pieces (1..256 bytes). The rest is a reply
// stream from a (possibly hostile or broken) Redis:
// - fed in pieces and whole, the reader yields the same replies and the same verdict (a
//   protocol error, or not), never crashes, and reads nothing after an error;
// - split at every 0 byte into arguments, framed by AppendCommand, the bytes read back as one
//   array of bulk strings equal to those arguments (what a Redis server parses).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chunk_invariants.h"
#include "gateway/store/resp.h"

namespace {

using meridian::store::RespReader;
using meridian::store::RespValue;

bool Same(const RespValue& a, const RespValue& b) {
  if (a.type != b.type || a.str != b.str || a.integer != b.integer ||
      a.elements.size() != b.elements.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.elements.size(); ++i) {
    if (!Same(a.elements[i], b.elements[i])) return false;
  }
  return true;
}

std::vector<RespValue> ReadAll(std::string_view bytes, std::size_t piece, bool& failed) {
  RespReader reader;
  std::vector<RespValue> out;
  for (std::size_t pos = 0; pos < bytes.size(); pos += piece) {
    if (!reader.Feed(bytes.substr(pos, piece))) break;
    while (auto v = reader.Next()) out.push_back(std::move(*v));
    if (!reader.error().empty()) break;
  }
  failed = !reader.error().empty();
  if (failed) {
    MERIDIAN_FUZZ_CHECK(!reader.Next());
    MERIDIAN_FUZZ_CHECK(!reader.Feed("+OK\r\n"));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t piece = 1 + data[0];

  bool failed_pieces = false;
  bool failed_whole = false;
  const auto pieces = ReadAll(rest, piece, failed_pieces);
  const auto whole = ReadAll(rest, rest.size() + 1, failed_whole);
  MERIDIAN_FUZZ_CHECK(failed_pieces == failed_whole);
  if (!failed_whole) {
    MERIDIAN_FUZZ_CHECK(pieces.size() == whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) MERIDIAN_FUZZ_CHECK(Same(pieces[i], whole[i]));
  }

  std::vector<std::string> args;
  std::string_view s = rest;
  for (;;) {
    const std::size_t nul = s.find('\0');
    args.emplace_back(s.substr(0, nul));
    if (nul == std::string_view::npos) break;
    s.remove_prefix(nul + 1);
  }
  std::string framed;
  meridian::store::AppendCommand(framed, args);
  bool failed = false;
  const auto back = ReadAll(framed, piece, failed);
  MERIDIAN_FUZZ_CHECK(!failed);
  MERIDIAN_FUZZ_CHECK(back.size() == 1);
  MERIDIAN_FUZZ_CHECK(back[0].type == RespValue::Type::kArray);
  MERIDIAN_FUZZ_CHECK(back[0].elements.size() == args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    MERIDIAN_FUZZ_CHECK(back[0].elements[i].type == RespValue::Type::kString);
    MERIDIAN_FUZZ_CHECK(back[0].elements[i].str == args[i]);
  }
  return 0;
}
