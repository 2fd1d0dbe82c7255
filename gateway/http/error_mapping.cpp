#include "gateway/http/error_mapping.h"

#include <string_view>

#include "gateway/core/json_text.h"

namespace meridian::http {
namespace {

using core::AppendJsonString;
using core::StatusCode;

// Used when a Status arrives without a message, so clients never see an empty one.
std::string_view DefaultMessage(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return "The request is invalid.";
    case StatusCode::kUnauthenticated:
      return "Missing or invalid credentials.";
    case StatusCode::kPermissionDenied:
      return "The request was denied by policy.";
    case StatusCode::kNotFound:
      return "Not found.";
    case StatusCode::kMethodNotAllowed:
      return "Method not allowed.";
    case StatusCode::kPayloadTooLarge:
      return "Request body too large.";
    case StatusCode::kRateLimited:
      return "Rate limit reached, please retry later.";
    case StatusCode::kHeadersTooLarge:
      return "Request headers too large.";
    case StatusCode::kNotImplemented:
      return "Not implemented.";
    case StatusCode::kRequestTimeout:
      return "The request was not received in time.";
    case StatusCode::kCancelled:
      return "The request was cancelled.";
    case StatusCode::kBadUpstream:
      return "The upstream provider returned an invalid response.";
    case StatusCode::kUnavailable:
      return "The service is currently overloaded, please try again later.";
    case StatusCode::kUpstreamTimeout:
      return "The upstream provider timed out.";
    case StatusCode::kOk:
    case StatusCode::kInternal:
      break;
  }
  return "The server had an error while processing your request.";
}

void AppendStringOrNull(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, s);
  }
}

}  // namespace

unsigned HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kMethodNotAllowed:
      return 405;
    case StatusCode::kPayloadTooLarge:
      return 413;
    case StatusCode::kRateLimited:
      return 429;
    case StatusCode::kHeadersTooLarge:
      return 431;
    case StatusCode::kNotImplemented:
      return 501;
    case StatusCode::kRequestTimeout:
      return 408;
    case StatusCode::kCancelled:
      return 499;
    case StatusCode::kBadUpstream:
      return 502;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kUpstreamTimeout:
      return 504;
    case StatusCode::kOk:  // a caller bug; never claim success on the error path
    case StatusCode::kInternal:
      break;
  }
  return 500;
}

const char* ErrorTypeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kMethodNotAllowed:
    case StatusCode::kPayloadTooLarge:
    case StatusCode::kHeadersTooLarge:
    case StatusCode::kNotImplemented:
    case StatusCode::kRequestTimeout:
      return "invalid_request_error";
    case StatusCode::kUnauthenticated:
      return "authentication_error";
    case StatusCode::kPermissionDenied:
      return "policy_denied";
    case StatusCode::kRateLimited:
      return "rate_limit_error";
    case StatusCode::kCancelled:
      return "request_cancelled";
    case StatusCode::kOk:
    case StatusCode::kInternal:
    case StatusCode::kBadUpstream:
    case StatusCode::kUnavailable:
    case StatusCode::kUpstreamTimeout:
      break;
  }
  return "server_error";
}

void AppendErrorJson(const core::Status& status, std::string& out) {
  out += "{\"error\":{\"message\":";
  AppendJsonString(
      out, status.message.empty() ? DefaultMessage(status.code) : std::string_view(status.message));
  out += ",\"type\":\"";
  out += ErrorTypeFor(status.code);  // fixed identifiers, nothing to escape
  out += "\",\"param\":";
  AppendStringOrNull(out, status.param);
  out += ",\"code\":";
  AppendStringOrNull(out, status.reason);
  out += "}}";
}

std::string ErrorJson(const core::Status& status) {
  std::string out;
  AppendErrorJson(status, out);
  return out;
}

HttpError ToHttpError(const core::Status& status) {
  HttpError e;
  e.status = HttpStatusFor(status.code);
  e.body = ErrorJson(status);
  if (status.retry_after_s) {
    e.headers.emplace_back("retry-after", std::to_string(*status.retry_after_s));
  }
  return e;
}

}  // namespace meridian::http
