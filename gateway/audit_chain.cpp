#include "gateway/audit_chain.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <charconv>
#include <cstring>
#include <utility>

namespace meridian::audit {
namespace {

constexpr std::string_view kSeqKey = ",\"seq\":";
constexpr std::string_view kChainKey = ",\"chain\":\"";
constexpr std::string_view kSigKey = ",\"sig\":\"";

void AppendUint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

bool ParseUint(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

// A strict reader of the checkpoint line's fixed shape.
struct Cursor {
  std::string_view rest;
  bool ok = true;

  void Lit(std::string_view lit) {
    if (ok && rest.substr(0, lit.size()) == lit) {
      rest.remove_prefix(lit.size());
    } else {
      ok = false;
    }
  }
  std::string_view Until(char end) {
    const auto at = rest.find(end);
    if (!ok || at == std::string_view::npos) {
      ok = false;
      return {};
    }
    const std::string_view v = rest.substr(0, at);
    rest.remove_prefix(at);
    return v;
  }
  std::string_view Str() {  // "<chars without quotes or backslashes>"
    Lit("\"");
    const std::string_view v = Until('"');
    if (v.find('\\') != std::string_view::npos) ok = false;
    Lit("\"");
    return v;
  }
  std::uint64_t Uint(char end) {
    std::uint64_t v = 0;
    if (!ParseUint(Until(end), v)) ok = false;
    return v;
  }
};

std::string Base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> Unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t size = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes.
  if (text.back() == '=') --size;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

}  // namespace

std::string Hex(const Digest& d) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(d.size() * 2, '0');
  for (std::size_t i = 0; i < d.size(); ++i) {
    out[2 * i] = kDigits[d[i] >> 4];
    out[2 * i + 1] = kDigits[d[i] & 0xf];
  }
  return out;
}

std::optional<Digest> ParseHex(std::string_view hex) {
  Digest d{};
  if (hex.size() != d.size() * 2) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < d.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return d;
}

Digest Sha256(std::string_view bytes) {
  Digest d{};
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), d.data(), &size, EVP_sha256(), nullptr);
  return d;
}

namespace {

// SHA-256 fetched once (OpenSSL 3 looks a digest up on every EVP_sha256() init otherwise) and
// one context per thread: half the cost of a line's chain.
const EVP_MD* Sha256Md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct MdCtx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~MdCtx() { EVP_MD_CTX_free(ctx); }
};

Digest ChainOf(const Digest& prev, std::string_view hashed) {
  thread_local MdCtx holder;
  Digest d{};
  unsigned int size = 0;
  EVP_MD_CTX* ctx = holder.ctx;
  EVP_DigestInit_ex2(ctx, Sha256Md(), nullptr);
  EVP_DigestUpdate(ctx, prev.data(), prev.size());
  EVP_DigestUpdate(ctx, hashed.data(), hashed.size());
  EVP_DigestFinal_ex(ctx, d.data(), &size);
  return d;
}

}  // namespace

void ChainLine(std::string& line, ChainState& state) {
  if (!line.empty() && line.back() == '}') line.pop_back();
  line += kSeqKey;
  AppendUint(line, state.seq + 1);
  state.hash = ChainOf(state.hash, line);
  ++state.seq;
  line += kChainKey;
  line += Hex(state.hash);
  line += "\"}";
}

std::optional<ChainFields> ParseChainFields(std::string_view line) {
  // ...,"seq":N,"chain":"<64 hex>"}
  constexpr std::size_t kTail = 64 + 2;  // hex + "}
  if (line.size() < kChainKey.size() + kTail || line.substr(line.size() - 2) != "\"}") {
    return std::nullopt;
  }
  const std::size_t chain_at = line.size() - kTail - kChainKey.size();
  if (line.substr(chain_at, kChainKey.size()) != kChainKey) return std::nullopt;
  const auto digest = ParseHex(line.substr(chain_at + kChainKey.size(), 64));
  if (!digest) return std::nullopt;
  const std::size_t seq_at = line.rfind(kSeqKey, chain_at);
  if (seq_at == std::string_view::npos) return std::nullopt;
  ChainFields f;
  const std::size_t digits = seq_at + kSeqKey.size();
  if (!ParseUint(line.substr(digits, chain_at - digits), f.seq) || f.seq == 0) {
    return std::nullopt;
  }
  f.chain = *digest;
  f.hashed_bytes = chain_at;
  return f;
}

Digest ExpectedChain(const Digest& prev, std::string_view line, const ChainFields& fields) {
  return ChainOf(prev, line.substr(0, fields.hashed_bytes));
}

struct Ed25519Key::Impl {
  EVP_PKEY* pkey = nullptr;
  ~Impl() { EVP_PKEY_free(pkey); }
};

Ed25519Key::Ed25519Key(std::unique_ptr<Impl> impl, bool has_private)
    : impl_(std::move(impl)), private_(has_private) {
  unsigned char raw[32];
  std::size_t size = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(impl_->pkey, raw, &size) == 1) {
    const Digest d = Sha256(std::string_view(reinterpret_cast<const char*>(raw), size));
    key_id_ = Hex(d).substr(0, 16);
  }
}

Ed25519Key::~Ed25519Key() = default;

namespace {

core::Status ReadPem(std::string_view pem, bool want_private, EVP_PKEY*& out) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  out = want_private ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                     : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  const char* what = want_private ? "private" : "public";
  if (out == nullptr) {
    return core::Status::Error(core::StatusCode::kInvalidArgument,
                               std::string("not a PEM ") + what + " key");
  }
  if (EVP_PKEY_id(out) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(out);
    out = nullptr;
    return core::Status::Error(
        core::StatusCode::kInvalidArgument,
        std::string("not an Ed25519 ") + what +
            " key (make one with: openssl genpkey -algorithm ed25519 -out audit-signing.pem)");
  }
  return core::Status::Ok();
}

}  // namespace

core::Status Ed25519Key::FromPrivatePem(std::string_view pem, std::unique_ptr<Ed25519Key>& out) {
  auto impl = std::make_unique<Impl>();
  if (auto st = ReadPem(pem, true, impl->pkey); !st.ok()) return st;
  out.reset(new Ed25519Key(std::move(impl), true));
  return core::Status::Ok();
}

std::string Ed25519Key::GeneratePrivatePem() {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (pkey == nullptr) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  std::string pem;
  if (PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    if (size > 0) pem.assign(data, static_cast<std::size_t>(size));
  }
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  return pem;
}

core::Status Ed25519Key::FromPublicPem(std::string_view pem, std::unique_ptr<Ed25519Key>& out) {
  auto impl = std::make_unique<Impl>();
  if (auto st = ReadPem(pem, false, impl->pkey); !st.ok()) return st;
  out.reset(new Ed25519Key(std::move(impl), false));
  return core::Status::Ok();
}

std::string Ed25519Key::PublicPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, impl_->pkey);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, size > 0 ? static_cast<std::size_t>(size) : 0);
  BIO_free(bio);
  return pem;
}

std::string Ed25519Key::Sign(std::string_view message) const {
  if (!private_) return {};
  unsigned char sig[64];
  std::size_t size = sizeof sig;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, impl_->pkey) == 1 &&
      EVP_DigestSign(ctx, sig, &size, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok ? Base64(sig, size) : std::string();
}

bool Ed25519Key::Verify(std::string_view message, std::string_view signature_base64) const {
  const auto sig = Unbase64(signature_base64);
  if (!sig || sig->size() != 64) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, impl_->pkey) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

std::string FormatCheckpoint(Checkpoint& c, const Ed25519Key& key) {
  c.key_id = key.key_id();
  std::string line = "{\"v\":1,\"type\":\"checkpoint\",\"n\":";
  AppendUint(line, c.n);
  line += ",\"time_unix_ms\":";
  AppendUint(line, static_cast<std::uint64_t>(c.time_unix_ms < 0 ? 0 : c.time_unix_ms));
  line += ",\"reason\":\"";
  line += c.reason;
  line += "\",\"seq\":";
  AppendUint(line, c.at.seq);
  line += ",\"chain\":\"";
  line += Hex(c.at.hash);
  line += "\",\"prev\":\"";
  line += Hex(c.prev);
  line += "\",\"key_id\":\"";
  line += c.key_id;
  line += '"';
  c.signed_bytes = line.size();
  c.sig = key.Sign(line);
  line += kSigKey;
  line += c.sig;
  line += "\"}";
  return line;
}

std::optional<Checkpoint> ParseCheckpoint(std::string_view line) {
  Checkpoint c;
  Cursor in{line};
  in.Lit("{\"v\":1,\"type\":\"checkpoint\",\"n\":");
  c.n = in.Uint(',');
  in.Lit(",\"time_unix_ms\":");
  c.time_unix_ms = static_cast<std::int64_t>(in.Uint(','));
  in.Lit(",\"reason\":");
  c.reason = std::string(in.Str());
  in.Lit(",\"seq\":");
  c.at.seq = in.Uint(',');
  in.Lit(",\"chain\":");
  const auto chain = ParseHex(in.Str());
  in.Lit(",\"prev\":");
  const auto prev = ParseHex(in.Str());
  in.Lit(",\"key_id\":");
  c.key_id = std::string(in.Str());
  c.signed_bytes = line.size() - in.rest.size();
  in.Lit(",\"sig\":");
  c.sig = std::string(in.Str());
  in.Lit("}");
  if (!in.ok || !in.rest.empty() || !chain || !prev) return std::nullopt;
  c.at.hash = *chain;
  c.prev = *prev;
  return c;
}

}  // namespace meridian::audit
