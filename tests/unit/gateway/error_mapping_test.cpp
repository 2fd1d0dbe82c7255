#include "gateway/http/error_mapping.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace meridian::http {
namespace {

namespace json = boost::json;
using core::Status;
using core::StatusCode;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Headers = std::vector<std::pair<std::string, std::string>>;

struct MappingCase {
  const char* name;
  StatusCode code;
  unsigned http;
  const char* type;
};

class ErrorMappingTable : public ::testing::TestWithParam<MappingCase> {};

TEST_P(ErrorMappingTable, StatusTypeAndExactBody) {
  const MappingCase& c = GetParam();
  EXPECT_EQ(HttpStatusFor(c.code), c.http);
  EXPECT_STREQ(ErrorTypeFor(c.code), c.type);

  // Without param or reason both are null, as OpenAI sends them.
  const HttpError bare = ToHttpError(Status::Error(c.code, "boom"));
  EXPECT_EQ(bare.status, c.http);
  EXPECT_EQ(bare.body, std::string(R"({"error":{"message":"boom","type":")") + c.type +
                           R"(","param":null,"code":null}})");
  EXPECT_THAT(bare.headers, IsEmpty());

  const HttpError full = ToHttpError(Status::Error(c.code, "m", "some_code", "messages[0]"));
  EXPECT_EQ(full.body, std::string(R"({"error":{"message":"m","type":")") + c.type +
                           R"(","param":"messages[0]","code":"some_code"}})");
  const json::value v = json::parse(full.body);
  EXPECT_EQ(v.at("error").at("param"), "messages[0]");
  EXPECT_EQ(v.at("error").at("code"), "some_code");
  EXPECT_EQ(ErrorJson(Status::Error(c.code, "m", "some_code", "messages[0]")), full.body);
}

INSTANTIATE_TEST_SUITE_P(
    EveryCode, ErrorMappingTable,
    ::testing::Values(
        MappingCase{"InvalidArgument", StatusCode::kInvalidArgument, 400, "invalid_request_error"},
        MappingCase{"Unauthenticated", StatusCode::kUnauthenticated, 401, "authentication_error"},
        MappingCase{"PermissionDenied", StatusCode::kPermissionDenied, 403, "policy_denied"},
        MappingCase{"NotFound", StatusCode::kNotFound, 404, "invalid_request_error"},
        MappingCase{"MethodNotAllowed", StatusCode::kMethodNotAllowed, 405,
                    "invalid_request_error"},
        MappingCase{"PayloadTooLarge", StatusCode::kPayloadTooLarge, 413, "invalid_request_error"},
        MappingCase{"RateLimited", StatusCode::kRateLimited, 429, "rate_limit_error"},
        MappingCase{"HeadersTooLarge", StatusCode::kHeadersTooLarge, 431, "invalid_request_error"},
        MappingCase{"Cancelled", StatusCode::kCancelled, 499, "request_cancelled"},
        MappingCase{"Internal", StatusCode::kInternal, 500, "server_error"},
        MappingCase{"BadUpstream", StatusCode::kBadUpstream, 502, "server_error"},
        MappingCase{"Unavailable", StatusCode::kUnavailable, 503, "server_error"},
        MappingCase{"UpstreamTimeout", StatusCode::kUpstreamTimeout, 504, "server_error"},
        MappingCase{"NotImplemented", StatusCode::kNotImplemented, 501, "invalid_request_error"},
        MappingCase{"OkIsACallerBug", StatusCode::kOk, 500, "server_error"}),
    [](const ::testing::TestParamInfo<MappingCase>& p) { return std::string(p.param.name); });

TEST(ErrorMapping, PolicyDenialCarriesTheReasonCode) {
  // data-residency.md §3: {"error":{"type":"policy_denied","code":"<rule id>","message":…}}
  const HttpError e = ToHttpError(Status::Error(
      StatusCode::kPermissionDenied, "Denied by data-residency guard G8.", "denied_by_guard:G8"));
  EXPECT_EQ(e.status, 403u);
  EXPECT_EQ(
      e.body,
      R"({"error":{"message":"Denied by data-residency guard G8.","type":"policy_denied","param":null,"code":"denied_by_guard:G8"}})");
}

TEST(ErrorMapping, RetryAfterOnlyWhenKnown) {
  Status s = Status::Error(StatusCode::kRateLimited, "slow down", "rate_limit_exceeded");
  s.retry_after_s = 7;
  EXPECT_THAT(ToHttpError(s).headers,
              ElementsAre(std::pair<std::string, std::string>("retry-after", "7")));

  Status u = Status::Error(StatusCode::kUnavailable, "no healthy upstream");
  u.retry_after_s = 0;
  EXPECT_EQ(ToHttpError(u).headers, (Headers{{"retry-after", "0"}}));

  // No invented default: the SDK's own backoff applies.
  EXPECT_THAT(ToHttpError(Status::Error(StatusCode::kRateLimited, "x")).headers, IsEmpty());
  EXPECT_THAT(ToHttpError(Status::Error(StatusCode::kUnavailable, "x")).headers, IsEmpty());
}

TEST(ErrorMapping, EmptyMessageGetsAGenericOne) {
  for (StatusCode code :
       {StatusCode::kInvalidArgument, StatusCode::kUnauthenticated, StatusCode::kPermissionDenied,
        StatusCode::kNotFound, StatusCode::kMethodNotAllowed, StatusCode::kPayloadTooLarge,
        StatusCode::kRateLimited, StatusCode::kHeadersTooLarge, StatusCode::kCancelled,
        StatusCode::kInternal, StatusCode::kBadUpstream, StatusCode::kUnavailable,
        StatusCode::kUpstreamTimeout, StatusCode::kNotImplemented,
        StatusCode::kOk}) {
    const json::value v = json::parse(ErrorJson(Status::Error(code, "")));
    EXPECT_FALSE(v.at("error").at("message").as_string().empty());
  }
  EXPECT_EQ(
      ErrorJson(Status::Error(StatusCode::kInternal, "")),
      R"({"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}})");
}

TEST(ErrorMapping, EscapesUserControlledText) {
  // Messages often quote the client's own input back.
  const Status s = Status::Error(StatusCode::kInvalidArgument,
                                 "Invalid value for 'x': \"a\\b\"\n\x01", "c\"", "p\\");
  const std::string body = ErrorJson(s);
  EXPECT_EQ(
      body,
      R"({"error":{"message":"Invalid value for 'x': \"a\\b\"\n\u0001","type":"invalid_request_error","param":"p\\","code":"c\""}})");
  const json::value v = json::parse(body);
  EXPECT_EQ(v.at("error").at("message"), json::value(s.message));
  EXPECT_EQ(v.at("error").at("param"), "p\\");
  EXPECT_EQ(v.at("error").at("code"), "c\"");
}

TEST(ErrorMapping, AppendAddsToExistingBuffer) {
  std::string out = "data: ";
  AppendErrorJson(Status::Error(StatusCode::kBadUpstream, "x"), out);
  EXPECT_EQ(out,
            R"(data: {"error":{"message":"x","type":"server_error","param":null,"code":null}})");
}

}  // namespace
}  // namespace meridian::http
