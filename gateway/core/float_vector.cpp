#include "gateway/core/float_vector.h"

#include <array>
#include <bit>
#include <cstdint>

namespace meridian::core {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> MakeDecodeTable() {
  std::array<std::int8_t, 256> t{};
  for (auto& e : t) e = -1;
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  }
  return t;
}
constexpr std::array<std::int8_t, 256> kDecode = MakeDecodeTable();

}  // namespace

void AppendBase64(std::string& out, std::string_view bytes) {
  out.reserve(out.size() + (bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&bytes](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t a = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(kAlphabet[(a >> 18) & 63]);
    out.push_back(kAlphabet[(a >> 12) & 63]);
    out.push_back(kAlphabet[(a >> 6) & 63]);
    out.push_back(kAlphabet[a & 63]);
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    const std::uint32_t a = (byte(i) << 16) | (rest == 2 ? byte(i + 1) << 8 : 0);
    out.push_back(kAlphabet[(a >> 18) & 63]);
    out.push_back(kAlphabet[(a >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(a >> 6) & 63] : '=');
    out.push_back('=');
  }
}

void AppendFloat32Base64(std::string& out, std::span<const float> v) {
  std::string bytes(v.size() * 4, '\0');
  for (std::size_t k = 0; k < v.size(); ++k) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(v[k]);
    for (std::size_t b = 0; b < 4; ++b) {  // least significant first: little-endian on any host
      bytes[4 * k + b] = static_cast<char>((u >> (8 * b)) & 0xffu);
    }
  }
  AppendBase64(out, bytes);
}

bool DecodeFloat32Base64(std::string_view text, std::vector<float>& out) {
  out.clear();
  if (text.size() % 4 != 0) return false;
  std::string bytes;
  bytes.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    std::uint32_t acc = 0;
    int pad = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && last && j >= 2) {
        ++pad;
        acc <<= 6;
        continue;
      }
      if (pad > 0) return false;  // data after padding
      const std::int8_t d = kDecode[static_cast<unsigned char>(c)];
      if (d < 0) return false;
      acc = (acc << 6) | static_cast<std::uint32_t>(d);
    }
    bytes.push_back(static_cast<char>((acc >> 16) & 0xff));
    if (pad < 2) bytes.push_back(static_cast<char>((acc >> 8) & 0xff));
    if (pad < 1) bytes.push_back(static_cast<char>(acc & 0xff));
  }
  if (bytes.size() % 4 != 0) return false;
  out.resize(bytes.size() / 4);
  for (std::size_t k = 0; k < out.size(); ++k) {
    std::uint32_t u = 0;
    for (std::size_t b = 0; b < 4; ++b) {
      u |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[4 * k + b])) << (8 * b);
    }
    out[k] = std::bit_cast<float>(u);
  }
  return true;
}

}  // namespace meridian::core
