// A request's id as one value: 64 random bits, shown as "req_" + 16 hex digits (responses,
// logs, audit lines), and the same bits as the gateway's span id in W3C trace context, so a
// trace and the logs join on it without the text being parsed back.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace meridian::core {

struct RequestId {
  std::uint64_t bits = 0;
  std::string text;  ///< "req_" + 16 lowercase hex digits

  /// The 16 hex digits alone (for ids derived from this one: "resp_<hex>").
  std::string_view Hex() const { return std::string_view(text).substr(4); }

  static RequestId From(std::uint64_t bits) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "req_%016llx", static_cast<unsigned long long>(bits));  // NOLINT
    return {bits, buf};
  }
};

}  // namespace meridian::core
