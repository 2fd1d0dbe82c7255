// Residency echo checks (T16 of the data-residency reference): what a provider's answer says
// about where it ran, against the processing locations the policy declares for it.
#include "gateway/residency_echo.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace meridian::gateway {
namespace {

policy::LocationSet Set(std::initializer_list<const char*> codes, bool anywhere_except = false) {
  policy::LocationSet s;
  s.anywhere_except = anywhere_except;
  for (const char* c : codes) s.regions.set(policy::RegionCode::Parse(c)->index());
  return s;
}

struct Case {
  const char* echo;
  std::optional<policy::LocationSet> declared;
  EchoVerdict verdict;
};

TEST(ResidencyEcho, VerdictsForWhatVendorsSay) {
  const Case cases[] = {
      // T16: a US-residency provider whose answer says it ran anywhere.
      {"inference_geo=global", Set({"US"}), EchoVerdict::kOutside},
      {"inference_geo=us", Set({"US"}), EchoVerdict::kWithin},
      {"inference_geo=US", Set({"US"}), EchoVerdict::kWithin},
      {"inference_geo=us", Set({"EU"}), EchoVerdict::kOutside},
      {"inference_geo=global", Set({}, true), EchoVerdict::kWithin},  // processing: anywhere
      {"inference_geo=us", Set({"CN"}, true), EchoVerdict::kWithin},  // anywhere but CN
      {"inference_geo=global", Set({"CN"}, true), EchoVerdict::kOutside},
      {"inference_geo=mars", Set({"US"}), EchoVerdict::kUnrecognised},
      // Azure's x-ms-region: the region's country; EU members within a declared [EU].
      {"x-ms-region=East US 2", Set({"US"}), EchoVerdict::kWithin},
      {"x-ms-region=Sweden Central", Set({"EU"}), EchoVerdict::kWithin},
      {"x-ms-region=Sweden Central", Set({"US"}), EchoVerdict::kOutside},
      {"x-ms-region=swedencentral", Set({"SE"}), EchoVerdict::kWithin},
      {"x-ms-region=UK South", Set({"EU"}), EchoVerdict::kOutside},
      {"x-ms-region=East Asia", Set({"CN"}), EchoVerdict::kOutside},  // Hong Kong
      {"x-ms-region=China North 3", Set({"CN"}), EchoVerdict::kWithin},
      {"x-ms-region=Atlantis", Set({"US"}), EchoVerdict::kUnrecognised},
      // A provider that states no processing: nothing is within it.
      {"inference_geo=us", std::nullopt, EchoVerdict::kOutside},
      {"", Set({"US"}), EchoVerdict::kNone},
      {"no-equals-sign", Set({"US"}), EchoVerdict::kUnrecognised},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Name(CheckEcho(c.echo, c.declared)), Name(c.verdict))
        << c.echo << " vs " << (c.declared ? c.declared->ToString() : "(not stated)");
  }
}

}  // namespace
}  // namespace meridian::gateway
