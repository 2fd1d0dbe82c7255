#include "gateway/residency_echo.h"

#include <array>
#include <cctype>
#include <utility>

namespace meridian::gateway {
namespace {

policy::LocationSet In(std::string_view code) {
  policy::LocationSet s;
  if (const auto r = policy::RegionCode::Parse(code)) s.regions.set(r->index());
  return s;
}

policy::LocationSet Anywhere() {
  policy::LocationSet s;
  s.anywhere_except = true;  // with no exceptions
  return s;
}

// Azure region names, lower case without spaces ("East US 2" -> "eastus2"), to the country
// the region is in (learn.microsoft.com/azure/reliability/regions-list). EU members map to
// their country; a policy that says [EU] accepts them (the EU is one place there, see below).
constexpr std::array<std::pair<std::string_view, std::string_view>, 44> kAzureRegions{{
    {"eastus", "US"},          {"eastus2", "US"},
    {"westus", "US"},          {"westus2", "US"},
    {"westus3", "US"},         {"centralus", "US"},
    {"northcentralus", "US"},  {"southcentralus", "US"},
    {"westcentralus", "US"},   {"canadacentral", "CA"},
    {"canadaeast", "CA"},      {"brazilsouth", "BR"},
    {"mexicocentral", "MX"},   {"westeurope", "NL"},
    {"northeurope", "IE"},     {"swedencentral", "SE"},
    {"francecentral", "FR"},   {"germanywestcentral", "DE"},
    {"italynorth", "IT"},      {"polandcentral", "PL"},
    {"spaincentral", "ES"},    {"switzerlandnorth", "CH"},
    {"switzerlandwest", "CH"}, {"norwayeast", "NO"},
    {"uksouth", "GB"},         {"ukwest", "GB"},
    {"japaneast", "JP"},       {"japanwest", "JP"},
    {"koreacentral", "KR"},    {"koreasouth", "KR"},
    {"australiaeast", "AU"},   {"australiasoutheast", "AU"},
    {"southeastasia", "SG"},   {"eastasia", "HK"},
    {"centralindia", "IN"},    {"southindia", "IN"},
    {"westindia", "IN"},       {"uaenorth", "AE"},
    {"qatarcentral", "QA"},    {"southafricanorth", "ZA"},
    {"israelcentral", "IL"},   {"newzealandnorth", "NZ"},
    {"chinaeast2", "CN"},      {"chinanorth3", "CN"},
}};

constexpr std::array<std::string_view, 27> kEuMembers{
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"};

std::string Squash(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == ' ' || c == '-' || c == '_') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

std::optional<policy::LocationSet> EchoLocation(std::string_view echo) {
  const auto eq = echo.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  const std::string_view source = echo.substr(0, eq);
  const std::string value = Squash(echo.substr(eq + 1));
  if (source == "inference_geo") {
    if (value == "us") return In("US");
    if (value == "global") return Anywhere();
    return std::nullopt;
  }
  if (source == "x-ms-region") {
    for (const auto& [name, country] : kAzureRegions) {
      if (name == value) return In(country);
    }
  }
  return std::nullopt;
}

EchoVerdict CheckEcho(std::string_view echo, const std::optional<policy::LocationSet>& declared) {
  if (echo.empty()) return EchoVerdict::kNone;
  const auto where = EchoLocation(echo);
  if (!where) return EchoVerdict::kUnrecognised;
  if (!declared) return EchoVerdict::kOutside;
  if (declared->anywhere_except) {
    // Anywhere except a finite set: within unless the echo may be in one of the exceptions.
    return where->Excludes(declared->regions) ? EchoVerdict::kWithin : EchoVerdict::kOutside;
  }
  if (where->anywhere_except) return EchoVerdict::kOutside;
  policy::RegionSet allowed = declared->regions;
  if (const auto eu = policy::RegionCode::Parse("EU"); eu && allowed.test(eu->index())) {
    for (const std::string_view m : kEuMembers) {
      if (const auto r = policy::RegionCode::Parse(m)) allowed.set(r->index());
    }
  }
  return where->Within(allowed) ? EchoVerdict::kWithin : EchoVerdict::kOutside;
}

std::string_view Name(EchoVerdict v) {
  switch (v) {
    case EchoVerdict::kNone:
      return "none";
    case EchoVerdict::kWithin:
      return "within";
    case EchoVerdict::kOutside:
      return "outside";
    case EchoVerdict::kUnrecognised:
      return "unrecognised";
  }
  return "none";
}

}  // namespace meridian::gateway
