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

void AppendFloat32Base64(std::string& out, std::span<const float> v) {
  const std::size_t bytes = v.size() * 4;
  out.reserve(out.size() + (bytes + 2) / 3 * 4);
  std::uint32_t acc = 0;
  int have = 0;  // bytes in acc
  auto flush3 = [&out](std::uint32_t a) {
    out.push_back(kAlphabet[(a >> 18) & 63]);
    out.push_back(kAlphabet[(a >> 12) & 63]);
    out.push_back(kAlphabet[(a >> 6) & 63]);
    out.push_back(kAlphabet[a & 63]);
  };
  for (float f : v) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    for (int b = 0; b < 4; ++b) {  // least significant byte first: little-endian on any host
      acc = (acc << 8) | ((u >> (8 * b)) & 0xffu);
      if (++have == 3) {
        flush3(acc);
        acc = 0;
        have = 0;
      }
    }
  }
  if (have == 1) {
    acc <<= 16;
    out.push_back(kAlphabet[(acc >> 18) & 63]);
    out.push_back(kAlphabet[(acc >> 12) & 63]);
    out.append("==");
  } else if (have == 2) {
    acc <<= 8;
    out.push_back(kAlphabet[(acc >> 18) & 63]);
    out.push_back(kAlphabet[(acc >> 12) & 63]);
    out.push_back(kAlphabet[(acc >> 6) & 63]);
    out.push_back('=');
  }
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
