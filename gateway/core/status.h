// One status type across module boundaries. Mapping to HTTP + OpenAI error JSON lives in
// gateway/http/error_mapping.{h,cpp}; to gRPC status in gateway/grpc (one place each).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace meridian::core {

enum class StatusCode : std::uint8_t {
  kOk,
  kInvalidArgument,     ///< 400: malformed JSON or an invalid field (param names it)
  kUnauthenticated,     ///< 401: missing or unknown API key / certificate
  kPermissionDenied,    ///< 403: policy denial (reason = the policy reason code)
  kNotFound,            ///< 404: unknown route or model
  kMethodNotAllowed,    ///< 405
  kPayloadTooLarge,     ///< 413
  kRateLimited,         ///< 429: upstream or gateway rate limit
  kHeadersTooLarge,     ///< 431
  kCancelled,           ///< client went away (never sent: there is nobody to send it to)
  kInternal,            ///< 500
  kBadUpstream,         ///< 502: upstream answered with something we cannot use
  kUnavailable,         ///< 503: no healthy candidate, overloaded, concurrency limit
  kUpstreamTimeout,     ///< 504
  kNotImplemented,      ///< 501: e.g. a transfer coding the gateway does not implement
  kRequestTimeout,      ///< 408: the client did not send its request in time
};

/// A failure (or kOk). `reason` is a stable machine-readable code (e.g. "invalid_api_key",
/// "denied_by_guard:G8", "model_not_found"); `param` names the offending request field.
struct Status {
  StatusCode code = StatusCode::kOk;
  std::string message;
  std::string reason;
  std::string param;
  /// For upstream failures: may the router try the next candidate (only before first byte)?
  bool retryable = false;
  /// Seconds a client should wait before retrying (Retry-After), when known.
  std::optional<std::uint32_t> retry_after_s;

  bool ok() const { return code == StatusCode::kOk; }
  static Status Ok() { return {}; }
  static Status Error(StatusCode code, std::string message, std::string reason = {},
                      std::string param = {}) {
    Status s;
    s.code = code;
    s.message = std::move(message);
    s.reason = std::move(reason);
    s.param = std::move(param);
    return s;
  }
};

}  // namespace meridian::core
