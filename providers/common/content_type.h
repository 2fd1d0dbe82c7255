// Whether an upstream's 200 is the kind of body that was asked for, judged from its
// Content-Type alone (pure: no I/O).
#pragma once

#include <cctype>
#include <string>
#include <string_view>

#include "gateway/core/status.h"

namespace meridian::providers {

/// What a 200's Content-Type says about its body: Ok when it can be the answer asked for
/// (text/event-stream for a stream, JSON otherwise; parameters and case ignored; an absent one
/// gets the benefit of the doubt). Otherwise (a captive portal's text/html, a stream answered
/// with a JSON body) the provider failed before answering: kBadUpstream, retryable.
inline core::Status CheckContentType(std::string_view content_type, bool stream) {
  std::string media;
  for (const char ch : content_type.substr(0, content_type.find(';'))) {
    if (ch != ' ' && ch != '\t')
      media += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  const bool fits =
      media.empty() || (stream ? media == "text/event-stream"
                               : media == "application/json" || media.ends_with("+json"));
  if (fits) return core::Status::Ok();
  auto st = core::Status::Error(core::StatusCode::kBadUpstream,
                                "upstream answered 200 with Content-Type '" +
                                    std::string(content_type.substr(0, 100)) + "' instead of " +
                                    (stream ? "text/event-stream" : "application/json"),
                                "upstream_bad_content_type");
  st.retryable = true;
  return st;
}

}  // namespace meridian::providers
