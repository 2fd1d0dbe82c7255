// HTTP/1.1 client for upstream providers: keep-alive pool per upstream, TLS with SNI and
// certificate verification, connect / first-byte / idle timeouts, bounded response size.
// One HttpClient per worker io_context; not thread-safe (all use happens on that context).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/core/status.h"
#include "providers/provider.h"

namespace meridian::providers {

namespace http = boost::beast::http;

struct ClientLimits {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds first_byte_timeout{60000};  ///< request sent → response headers
  std::chrono::milliseconds idle_timeout{60000};        ///< between body reads
  std::size_t max_response_bytes = 16u << 20;
  std::size_t max_idle_per_upstream = 64;
  /// Re-sends of a fully written request after a pooled connection died before any response
  /// byte (it may have reached the upstream). A failed write is always retried once.
  int same_provider_retries = 0;
};

/// scheme://host:port/base-path of a provider endpoint.
struct Endpoint {
  bool tls = false;
  std::string host;
  std::string port;
  std::string base_path;  ///< without trailing slash, e.g. "/v1"
  /// Parses an http(s) URL (already validated by the policy compiler).
  static std::optional<Endpoint> Parse(std::string_view url);
  /// scheme://host:port: the connection pool's key, built once by Parse.
  const std::string& Key() const { return key; }
  std::string key;
};

/// The request line and header fields of `request` as HTTP/1.1 wire bytes (through the blank
/// line); the fields are written as set (prepare_payload has added Content-Length).
std::string SerializeHead(const http::request<http::string_body>& request);

class HttpClient;
struct Connection;

/// A response whose headers have arrived. The body is read incrementally; destroying the
/// response before the body is done closes the connection instead of pooling it.
class UpstreamResponse {
 public:
  UpstreamResponse(HttpClient& client, std::unique_ptr<Connection> connection);
  ~UpstreamResponse();
  UpstreamResponse(const UpstreamResponse&) = delete;
  UpstreamResponse& operator=(const UpstreamResponse&) = delete;

  unsigned status() const;
  std::string_view header(std::string_view name) const;
  bool done() const;
  /// Appends the next piece of the body to `out`; `done()` tells when the body ended.
  /// `timeout` overrides the idle timeout for this read.
  asio::awaitable<core::Status> ReadSome(
      std::string& out, CancelToken& cancel,
      std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Reads the whole (bounded) body.
  asio::awaitable<core::Status> ReadAll(std::string& out, CancelToken& cancel);

 private:
  HttpClient& client_;
  std::unique_ptr<Connection> connection_;
  std::size_t body_bytes_ = 0;
};

class HttpClient {
 public:
  /// `tls` is shared by all workers (an ssl::context is thread-safe for this use).
  HttpClient(asio::any_io_executor executor, std::shared_ptr<asio::ssl::context> tls,
             ClientLimits limits);
  ~HttpClient();

  /// Sends `request` (target and headers set by the adapter; Host, Content-Length and
  /// keep-alive are set here) and waits for the response headers. Errors:
  /// kUnavailable (connect/TLS failure, retryable), kUpstreamTimeout (retryable),
  /// kCancelled.
  asio::awaitable<core::Status> Send(const Endpoint& endpoint,
                                     http::request<http::string_body>& request,
                                     std::unique_ptr<UpstreamResponse>& response,
                                     CancelToken& cancel);

  const ClientLimits& limits() const { return limits_; }

  /// Closes every pooled connection; from then on finished responses close their connection
  /// instead of pooling it. Call before the io_context is destroyed, so coroutine frames torn
  /// down with it never hand a connection to a pool that is about to disappear.
  void Shutdown();

  /// A TLS context verifying peers with the system CAs, or with `ca_file` when non-empty.
  static core::Status MakeTlsContext(const std::string& ca_file,
                                     std::shared_ptr<asio::ssl::context>& out);

 private:
  friend class UpstreamResponse;
  void Release(std::unique_ptr<Connection> connection);
  /// True when an idle pooled connection was closed (FIN or reset) by the upstream.
  static bool PeerClosed(Connection& c);
  asio::awaitable<core::Status> Connect(const Endpoint& endpoint, std::unique_ptr<Connection>& out,
                                        CancelToken& cancel);

  asio::any_io_executor executor_;
  std::shared_ptr<asio::ssl::context> tls_;
  ClientLimits limits_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
  bool closing_ = false;
};

}  // namespace meridian::providers
