// Residency echo checks (vector T16 of the data-residency reference): some providers say in
// their answer where they processed it; the gateway compares that with where the policy file
// declares the provider processes (`processing:`), and raises an alert when the answer says
// somewhere outside it. Pure: strings and location sets in, a verdict out.
//
// What vendors send (docs/operations.md, "Residency echo"):
//   Anthropic     `usage.inference_geo` in the Messages answer (body, and the stream's usage):
//                 "us" (US only) or "global" (any region) -- platform.claude.com/docs/en/
//                 build-with-claude/data-residency.
//   Azure OpenAI  the `x-ms-region` response header, the Azure region that served the call
//                 ("East US 2", "Sweden Central"); not a per-request processing guarantee for
//                 Global/DataZone deployments, but where this request ran.
//   OpenAI, DashScope, OpenAI-compatible engines: nothing per request (OpenAI's data
//                 residency is chosen by the regional base URL, e.g. eu.api.openai.com).
// An echo arrives as "<source>=<value>", e.g. "inference_geo=global", "x-ms-region=East US".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/regions.h"

namespace meridian::gateway {

/// Where an echo says the request was processed; nullopt when the value is not one this
/// gateway knows (reported as unrecognised, which also alerts: it cannot be confirmed).
std::optional<policy::LocationSet> EchoLocation(std::string_view echo);

enum class EchoVerdict {
  kNone,          ///< the provider said nothing
  kWithin,        ///< inside the declared processing locations
  kOutside,       ///< somewhere the declaration does not allow: a mismatch
  kUnrecognised,  ///< a value this gateway cannot place: a mismatch too
};

/// `declared` is the provider's `processing:` (nullopt: not stated, so nothing is within).
EchoVerdict CheckEcho(std::string_view echo, const std::optional<policy::LocationSet>& declared);

std::string_view Name(EchoVerdict v);  ///< "none" | "within" | "outside" | "unrecognised"

}  // namespace meridian::gateway
