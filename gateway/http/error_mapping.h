// The one place where core::Status becomes an HTTP status and OpenAI error JSON. Everything
// the HTTP front end sends on failure (plain responses and the mid-stream SSE error event)
// goes through here, so clients see one vocabulary.
//
// Status → HTTP → error.type:
//   kInvalidArgument 400, kNotFound 404, kMethodNotAllowed 405, kPayloadTooLarge 413,
//   kHeadersTooLarge 431, kNotImplemented 501, kRequestTimeout 408 → invalid_request_error
//   kUnauthenticated 401                                   → authentication_error
//   kPermissionDenied 403                                  → policy_denied (data-residency §3)
//   kRateLimited 429                                       → rate_limit_error
//   kInternal 500, kBadUpstream 502, kUnavailable 503,
//   kUpstreamTimeout 504                                   → server_error (OpenAI's spelling,
//                                                            also for its 503 "overloaded")
//   kCancelled 499 (nginx's "client closed request"; never actually sent) → request_cancelled
//   kOk is a caller bug and is reported as a 500 server_error.
// error.code = Status::reason or null; error.param = Status::param or null; an empty
// message is replaced by a generic one for the status.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gateway/core/status.h"

namespace meridian::http {

struct HttpError {
  unsigned status = 500;
  std::string body;  ///< application/json; the server sets Content-Type itself
  /// Extra response headers, lower-case names. Only `retry-after` (seconds) today, and only
  /// when Status::retry_after_s is set: no default is invented for 429/503, because
  /// openai-python's own exponential backoff is better than a guessed fixed delay.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Maps a failure to the full HTTP error response.
HttpError ToHttpError(const core::Status& status);

/// The HTTP status code for `code` (see the table above).
unsigned HttpStatusFor(core::StatusCode code);

/// OpenAI's `error.type` for `code` (see the table above).
const char* ErrorTypeFor(core::StatusCode code);

/// `{"error":{"message":..,"type":..,"param":..,"code":..}}` for `status`.
std::string ErrorJson(const core::Status& status);

/// Same as ErrorJson, appended to `out` (the SSE encoder writes it in place).
void AppendErrorJson(const core::Status& status, std::string& out);

}  // namespace meridian::http
