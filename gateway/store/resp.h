// RESP, the Redis wire protocol, as pure functions: commands framed as arrays of bulk strings
// (every argument binary-safe), replies read with hiredis's reader (read.h, the parser Redis
// clients share) into plain values. No I/O: gateway/store/redis_client.h does the sockets.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meridian::store {

/// One reply. Redis 7 answers RESP2 to a client that did not ask for RESP3 (HELLO 3), so these
/// are the RESP2 types.
struct RespValue {
  enum class Type : std::uint8_t { kNil, kStatus, kError, kInteger, kString, kArray };
  Type type = Type::kNil;
  std::string str;                  ///< kStatus, kError, kString
  std::int64_t integer = 0;         ///< kInteger
  std::vector<RespValue> elements;  ///< kArray

  bool is_error() const { return type == Type::kError; }
};

/// Appends `args` as one command (`*<n>\r\n` then `$<len>\r\n<arg>\r\n` per argument).
void AppendCommand(std::string& out, const std::vector<std::string>& args);

/// Reads replies from a byte stream fed in any pieces.
class RespReader {
 public:
  RespReader();
  ~RespReader();
  RespReader(const RespReader&) = delete;
  RespReader& operator=(const RespReader&) = delete;

  /// Buffers `bytes`. False when the stream is not RESP (the connection must be dropped).
  bool Feed(std::string_view bytes);
  /// The next complete reply, or nullopt when more bytes are needed. On a protocol error
  /// returns nullopt and error() is set (the connection must be dropped).
  std::optional<RespValue> Next();
  /// The protocol error ("" when none).
  const std::string& error() const { return error_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string error_;
};

}  // namespace meridian::store
