// The audit log's tamper evidence (pure: OpenSSL's crypto, no I/O).
//
// Hash chain. Every audit line ends with two fields the writer adds after the record's own:
//   ..., "seq": N, "chain": "<64 hex>"}
// `seq` counts the lines of one log from 1, across rotation and restarts (the writer resumes
// from the last line it finds). `chain` is SHA-256(chain of line N-1 as 32 bytes || the
// line's bytes up to, not including, `,"chain":`); line 1 chains from 32 zero bytes. A line
// that is changed, removed, added or moved breaks the chain at that point.
//
// Checkpoints. A chain alone can be rewritten from the first changed line on by anyone who
// can write the file, so at an interval and at shutdown the writer appends a signed checkpoint
// to a file of its own (the audit path + ".checkpoints"):
//   {"v":1,"type":"checkpoint","n":K,"time_unix_ms":T,"reason":"interval"|"shutdown",
//    "seq":S,"chain":"<hex>","prev":"<hex>","key_id":"<16 hex>","sig":"<base64>"}
// `seq`/`chain` are the last line written when it was signed, `prev` is SHA-256 of the
// previous checkpoint line (zeros for K = 1), and `sig` an Ed25519 signature of the line's
// bytes up to, not including, `,"sig":`. Only the holder of the private key can sign, so a
// rewritten log no longer matches the checkpoints that covered it, and a removed checkpoint
// breaks theirs.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/core/status.h"

namespace meridian::audit {

using Digest = std::array<unsigned char, 32>;

std::string Hex(const Digest& d);
std::optional<Digest> ParseHex(std::string_view hex);
Digest Sha256(std::string_view bytes);

/// Where a log's chain stands: the last line's seq and chain (seq 0 and zeros before line 1).
struct ChainState {
  std::uint64_t seq = 0;
  Digest hash{};
};

/// Appends `,"seq":N,"chain":"..."` to the JSON object `line` (which ends with '}'), with
/// N = state.seq + 1, and advances `state`.
void ChainLine(std::string& line, ChainState& state);

/// The chain fields of a line (without its '\n'), when it ends as ChainLine leaves it.
struct ChainFields {
  std::uint64_t seq = 0;
  Digest chain{};
  std::size_t hashed_bytes = 0;  ///< the prefix the chain covers
};
std::optional<ChainFields> ParseChainFields(std::string_view line);

/// The hash a line should carry after `prev` (a line ParseChainFields accepted).
Digest ExpectedChain(const Digest& prev, std::string_view line, const ChainFields& fields);

/// An Ed25519 key: a private one signs, a public one verifies.
class Ed25519Key {
 public:
  /// A PEM private key ("-----BEGIN PRIVATE KEY-----", as `openssl genpkey -algorithm
  /// ed25519` writes it). kInvalidArgument when it is not one; the message never holds key
  /// material.
  static core::Status FromPrivatePem(std::string_view pem, std::unique_ptr<Ed25519Key>& out);
  /// A new private key as PEM (`meridian audit keygen`); empty if OpenSSL cannot make one.
  static std::string GeneratePrivatePem();
  /// A PEM public key ("-----BEGIN PUBLIC KEY-----", as `meridian audit pubkey` prints it).
  static core::Status FromPublicPem(std::string_view pem, std::unique_ptr<Ed25519Key>& out);
  ~Ed25519Key();
  Ed25519Key(const Ed25519Key&) = delete;
  Ed25519Key& operator=(const Ed25519Key&) = delete;

  bool has_private() const { return private_; }
  /// The public key as PEM.
  std::string PublicPem() const;
  /// First 8 bytes of SHA-256 of the raw 32-byte public key, as hex.
  const std::string& key_id() const { return key_id_; }
  /// The base64 signature of `message`; empty when this key has no private half.
  std::string Sign(std::string_view message) const;
  bool Verify(std::string_view message, std::string_view signature_base64) const;

 private:
  struct Impl;
  Ed25519Key(std::unique_ptr<Impl> impl, bool has_private);
  std::unique_ptr<Impl> impl_;
  bool private_ = false;
  std::string key_id_;
};

/// One checkpoint, as written and as read back.
struct Checkpoint {
  std::uint64_t n = 0;
  std::int64_t time_unix_ms = 0;
  std::string reason;  ///< "interval" | "shutdown"
  ChainState at;
  Digest prev{};  ///< SHA-256 of the previous checkpoint line
  std::string key_id;
  std::string sig;
  std::size_t signed_bytes = 0;  ///< when parsed: the prefix the signature covers
};

/// The signed checkpoint line (no '\n'); `c.key_id` and `c.sig` are filled from `key`.
std::string FormatCheckpoint(Checkpoint& c, const Ed25519Key& key);
std::optional<Checkpoint> ParseCheckpoint(std::string_view line);

}  // namespace meridian::audit
