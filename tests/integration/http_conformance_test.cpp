// HTTP/1.1 at the edges (RFC 9112), byte by byte over a raw socket: framing the gateway must
// refuse with a status instead of a silent close, forms it must accept, and HTTP/1.0 clients.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/integration/serve_fixture.h"

namespace meridian::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class ConformanceTest : public ServeFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(
        StartGateway(PolicyYaml({Sim("sim-a", "[CN]", "{chat: sim-upstream}", 3)},
                                "  - id: everyone\n    allow: [sim-a]\n")));
  }

  /// Sends `bytes`, then reads until the gateway closes (or 5 s pass).
  std::string Exchange(const std::string& bytes) {
    RawConnection c(gateway_->port());
    EXPECT_TRUE(c.Send(bytes));
    return ReadAll(c);
  }

  static std::string ReadAll(RawConnection& c) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (c.Read(1s, out) == RawConnection::ReadResult::kClosed) break;
    }
    return out;
  }

  static std::string Body(bool stream = false) {
    ChatRequest r;
    r.stream = stream;
    return r.Json();
  }

  static std::string Head(const std::string& request_line, const std::string& extra) {
    return request_line + "\r\nContent-Type: application/json\r\nAuthorization: Bearer " +
           std::string(kTenantKey) + "\r\n" + extra;
  }
};

TEST_F(ConformanceTest, InvalidChunkSizeIs400NotASilentClose) {
  const std::string r = Exchange(
      Head("POST /v1/chat/completions HTTP/1.1", "Host: x\r\nTransfer-Encoding: chunked\r\n\r\n") +
      "zz\r\n{}\r\n0\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(r, HasSubstr("\"code\":\"bad_request\""));
}

TEST_F(ConformanceTest, OverflowingChunkSizeIsRefusedWithAStatus) {
  const std::string r = Exchange(
      Head("POST /v1/chat/completions HTTP/1.1", "Host: x\r\nTransfer-Encoding: chunked\r\n\r\n") +
      "ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 400") || r.starts_with("HTTP/1.1 413")) << r;
}

TEST_F(ConformanceTest, TransferCodingsOtherThanChunkedAre501) {
  for (const char* te : {"gzip, chunked", "chunked, chunked", "identity"}) {
    const std::string r =
        Exchange(Head("POST /v1/chat/completions HTTP/1.1",
                      std::string("Host: x\r\nTransfer-Encoding: ") + te + "\r\n\r\n") +
                 "2\r\n{}\r\n0\r\n\r\n");
    EXPECT_THAT(r, StartsWith("HTTP/1.1 501")) << te;
    EXPECT_THAT(r, HasSubstr("unsupported_transfer_encoding")) << te;
  }
}

TEST_F(ConformanceTest, HostIsRequiredOnceInHttp11) {
  const std::string body = Body();
  const std::string length = "Content-Length: " + std::to_string(body.size()) + "\r\n";
  const std::string none =
      Exchange(Head("POST /v1/chat/completions HTTP/1.1", length + "\r\n") + body);
  EXPECT_THAT(none, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(none, HasSubstr("Host"));
  const std::string two = Exchange(
      Head("POST /v1/chat/completions HTTP/1.1", "Host: a\r\nHost: b\r\n" + length + "\r\n") +
      body);
  EXPECT_THAT(two, StartsWith("HTTP/1.1 400"));
  // HTTP/1.0 has no Host requirement.
  const std::string old =
      Exchange(Head("POST /v1/chat/completions HTTP/1.0", length + "\r\n") + body);
  EXPECT_THAT(old, StartsWith("HTTP/1.1 200"));
}

TEST_F(ConformanceTest, AbsoluteFormTargetIsAccepted) {
  const std::string body = Body();
  const std::string r = Exchange(Head("POST http://127.0.0.1:" + std::to_string(gateway_->port()) +
                                          "/v1/chat/completions?x=1 HTTP/1.1",
                                      "Host: 127.0.0.1\r\nConnection: close\r\nContent-Length: " +
                                          std::to_string(body.size()) + "\r\n\r\n") +
                                 body);
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(r, HasSubstr("chat.completion"));
}

TEST_F(ConformanceTest, StreamToAnHttp10ClientIsNotChunkedAndEndsWithTheConnection) {
  const std::string body = Body(/*stream=*/true);
  const std::string r =
      Exchange(Head("POST /v1/chat/completions HTTP/1.0",
                    "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n") +
               body);
  ASSERT_THAT(r, StartsWith("HTTP/1.1 200"));
  const std::size_t end = r.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  const std::string head = r.substr(0, end);
  EXPECT_THAT(head, Not(HasSubstr("Transfer-Encoding")));
  EXPECT_THAT(head, HasSubstr("Connection: close"));
  const std::string payload = r.substr(end + 4);
  EXPECT_THAT(payload, StartsWith("data: {"));  // no chunk-size line
  EXPECT_THAT(payload, HasSubstr("data: [DONE]\n\n"));
  EXPECT_FALSE(payload.ends_with("0\r\n\r\n"));
}

// A client that half-closes (shutdown(SHUT_WR)) after its request still reads: it is answered,
// JSON or stream, whether the FIN arrives before the answer starts (the gateway then sends an
// interim 100 to tell a half-close from a client that is gone) or after.
TEST_F(ConformanceTest, AHalfCloseAfterTheRequestIsAnswered) {
  gateway_->Stop();
  ProviderYaml slow = Sim("sim-a", "[CN]", "{chat: sim-upstream}", 3);
  slow.extra.push_back("sim_delay_ms: 100");  // the FIN arrives while the answer is pending
  ASSERT_NO_FATAL_FAILURE(
      StartGateway(PolicyYaml({slow}, "  - id: everyone\n    allow: [sim-a]\n")));
  for (const bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "stream" : "json");
    const std::string body = Body(stream);
    RawConnection c(gateway_->port());
    ASSERT_TRUE(
        c.Send(Head("POST /v1/chat/completions HTTP/1.1",
                    "Host: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n") +
               body));
    c.ShutdownWrite();
    const std::string r = ReadAll(c);
    const std::size_t final_status = r.find("HTTP/1.1 200");
    ASSERT_NE(final_status, std::string::npos) << r;
    // Anything before the answer is an interim response the client skips.
    EXPECT_THAT(r.substr(0, final_status), ::testing::AnyOf("", "HTTP/1.1 100 Continue\r\n\r\n"));
    EXPECT_THAT(r, HasSubstr(stream ? "data: [DONE]" : "\"object\":\"chat.completion\""));
  }
  EXPECT_EQ(MetricValue(Metrics(), "meridian_client_disconnects_total"), 0);
}

// A body that stops arriving is answered 408 once limits.body_timeout_ms has passed.
TEST_F(ConformanceTest, ABodyThatStopsArrivingIs408) {
  gateway_->Stop();
  ASSERT_NO_FATAL_FAILURE(StartGateway(PolicyYaml({Sim("sim-a", "[CN]", "{chat: sim-upstream}", 3)},
                                                  "  - id: everyone\n    allow: [sim-a]\n"),
                                       {.limits = {"body_timeout_ms: 300"}}));
  const std::string r = Exchange(
      Head("POST /v1/chat/completions HTTP/1.1", "Host: x\r\nContent-Length: 100\r\n\r\n") +
      "{\"model\":");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 408"));
  EXPECT_THAT(r, HasSubstr("\"code\":\"request_timeout\""));
  EXPECT_THAT(r, HasSubstr("Connection: close"));
  EXPECT_EQ(MetricValue(Metrics(), "meridian_slow_clients_total"), 1);
}

}  // namespace
}  // namespace meridian::testing
