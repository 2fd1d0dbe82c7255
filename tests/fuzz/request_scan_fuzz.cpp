// libFuzzer: the residency property (residency_property.h) on arbitrary request bodies. A hash
// of the input chooses the string field the identifier is planted into; it is planted both
// appended to the value and as the whole value. A request whose planted identifier reaches an
// upstream body without being classified traps.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chunk_invariants.h"
#include "residency_property.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::uint64_t pick = 1469598103934665603ull;  // FNV-1a
  for (std::size_t i = 0; i < size; ++i) pick = (pick ^ data[i]) * 1099511628211ull;
  const std::string_view body(reinterpret_cast<const char*>(data), size);  // NOLINT
  namespace rp = meridian::residency_property;
  for (const bool replace : {false, true}) {
    MERIDIAN_FUZZ_CHECK(rp::Check(body, pick, replace) != rp::Outcome::kViolation);
  }
  return 0;
}
