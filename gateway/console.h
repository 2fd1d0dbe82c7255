// The operator console (GET /admin/console on the admin listener): a page compiled into the
// binary (gateway/console/*, embedded at build time; no CDN, nothing fetched from elsewhere)
// and the JSON it reads, all under the admin token (docs/operations.md#operator-console):
//
//   GET /admin/api/overview          policy version, tenants, model aliases
//   GET /admin/api/matrix            the residency matrix (policy/matrix.h) of ?tenant=&model=
//   GET /admin/api/explain           the explained decision of ?tenant=&region=&city=&class=&model=
//   GET /admin/api/providers         each provider's processing location, circuits, quarantine
//   GET /admin/api/reloads           the start and the last reloads, newest first
//   GET /admin/api/reloads/diff?n=N  the policy diff reload N made (policy/diff.h), computed once
//   GET /admin/api/audit             the audit log's chain and its last verified checkpoint
//   GET /admin/meter                 the export meter against its bands (gateway/meter.h)
//
// The functions build answers from the gateway's state; ReloadDiff and AuditStatus read or
// compute for up to seconds, so the server runs them on the control thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "gateway/core/status.h"
#include "gateway/gateway_state.h"

namespace meridian::gateway::console {

struct Asset {
  std::string_view body;
  std::string_view content_type;
};
/// The page's files by the path after /admin/console ("" and "/" are the page itself).
std::optional<Asset> FindAsset(std::string_view path);

/// Headers every console answer carries: no caching, no framing, nothing but this origin.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A JSON answer, or the error to send (status not ok).
struct Reply {
  core::Status status = core::Status::Ok();
  std::string body;
};

std::string Overview(const GatewayState& state);
Reply Matrix(const GatewayState& state, std::string_view query);
Reply Explain(const GatewayState& state, std::string_view query);
std::string Providers(const GatewayState& state);
std::string Reloads(const GatewayState& state);
Reply ReloadDiff(GatewayState& state, std::string_view query);
std::string AuditStatus(const GatewayState& state);

}  // namespace meridian::gateway::console
