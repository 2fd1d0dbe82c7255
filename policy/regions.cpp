#include "policy/regions.h"

#include <array>

namespace meridian::policy {
namespace {

// ISO 3166-1 alpha-2 officially assigned codes, plus EU (exceptionally reserved for the
// European Union, used here for EU-wide deployments such as Azure's EU Data Zone).
constexpr std::string_view kCodes =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW EU";

constexpr std::uint16_t PackedIndex(char a, char b) {
  return static_cast<std::uint16_t>((a - 'A') * 26 + (b - 'A'));
}

constexpr std::array<bool, kRegionSpace> BuildValid() {
  std::array<bool, kRegionSpace> valid{};
  for (std::size_t i = 0; i + 1 < kCodes.size(); i += 3) {
    valid[PackedIndex(kCodes[i], kCodes[i + 1])] = true;
  }
  return valid;
}

constexpr std::array<bool, kRegionSpace> kValid = BuildValid();

std::string IndexToString(std::size_t index) {
  return {static_cast<char>('A' + index / 26), static_cast<char>('A' + index % 26)};
}

}  // namespace

std::optional<RegionCode> RegionCode::Parse(std::string_view code) {
  if (code.size() != 2) return std::nullopt;
  const char a = code[0];
  const char b = code[1];
  if (a < 'A' || a > 'Z' || b < 'A' || b > 'Z') return std::nullopt;
  const std::uint16_t index = PackedIndex(a, b);
  if (!kValid[index]) return std::nullopt;
  return RegionCode(index);
}

std::string RegionCode::ToString() const {
  return IndexToString(index_);
}

std::string ToString(const RegionSet& set) {
  std::string out = "{";
  for (std::size_t i = 0; i < set.size(); ++i) {
    if (!set.test(i)) continue;
    if (out.size() > 1) out += ", ";
    out += IndexToString(i);
  }
  out += "}";
  return out;
}

std::string LocationSet::ToString() const {
  if (!anywhere_except) return policy::ToString(regions);
  if (regions.none()) return "anywhere";
  return "anywhere except " + policy::ToString(regions);
}

}  // namespace meridian::policy
