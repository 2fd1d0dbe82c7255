// Region codes and location sets. A region code is an ISO 3166-1 alpha-2 code (CN, HK, MO and
// TW are distinct) or "EU" for the European Union as one place; codes are packed into the
// 26*26 space so sets are fixed-size bitsets and membership is one bit test.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meridian::policy {

inline constexpr std::size_t kRegionSpace = 26 * 26;

/// A valid region code, as an index into the 26*26 space.
class RegionCode {
 public:
  /// Parses "CN", "HK", ...; nullopt for anything that is not a known code.
  static std::optional<RegionCode> Parse(std::string_view code);
  std::uint16_t index() const { return index_; }
  std::string ToString() const;
  friend bool operator==(RegionCode, RegionCode) = default;

 private:
  explicit RegionCode(std::uint16_t index) : index_(index) {}
  std::uint16_t index_;
};

using RegionSet = std::bitset<kRegionSpace>;

/// Renders a set as "{CN, HK}" in code order.
std::string ToString(const RegionSet& set);

/// Where a provider processes or stores data: a finite set of regions, or "anywhere except"
/// a finite set (anywhere when the exception set is empty).
struct LocationSet {
  RegionSet regions;
  bool anywhere_except = false;

  /// True if every place in this set is inside `allowed` (a finite set).
  bool Within(const RegionSet& allowed) const {
    if (anywhere_except) return false;  // unbounded: never inside a finite set
    return (regions & ~allowed).none();
  }
  /// True if this set shares no place with `forbidden` (a finite set).
  bool Excludes(const RegionSet& forbidden) const {
    if (anywhere_except) return (forbidden & ~regions).none();
    return (regions & forbidden).none();
  }
  std::string ToString() const;
  friend bool operator==(const LocationSet&, const LocationSet&) = default;
};

}  // namespace meridian::policy
