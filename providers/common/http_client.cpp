#include "providers/common/http_client.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <cerrno>

namespace meridian::providers {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Connection {
  /// Every upstream request in flight holds both buffers below for its whole life, so they
  /// are most of a stream's memory (docs/performance.md: 10,000 paced streams). kReadChunk is
  /// what one recv asks for: a typical JSON answer or a burst of SSE events arrives in one.
  /// kBodyChunk is what the parser hands over per step; bigger bodies take more steps out of
  /// the already-received bytes, not more syscalls.
  static constexpr std::size_t kReadChunk = 2 * 1024;
  static constexpr std::size_t kBodyChunk = 1024;
  std::string key;
  /// Body bytes land here, then are appended to the caller's string: reused for the
  /// connection's life instead of growing (and zero-filling) the caller's buffer per read.
  std::unique_ptr<char[]> read_buffer = std::make_unique_for_overwrite<char[]>(kBodyChunk);
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::buffer_body>> parser;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  void Close() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
  }
};

namespace {

core::Status Cancelled() {
  return core::Status::Error(core::StatusCode::kCancelled, "request cancelled", "cancelled");
}

core::Status Retryable(core::StatusCode code, std::string message, std::string reason) {
  auto s = core::Status::Error(code, std::move(message), std::move(reason));
  s.retryable = true;
  return s;
}

bool IsIpLiteral(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

/// Runs one Beast/Asio operation on whichever stream the connection has.
template <class Op>
auto OnStream(Connection& c, Op&& op) {
  return c.tls ? op(*c.tls) : op(*c.plain);
}

}  // namespace

std::string SerializeHead(const http::request<http::string_body>& request) {
  std::string head;
  head.reserve(256);
  const auto method = request.method_string();
  const auto target = request.target();
  head.append(method.data(), method.size());
  head += ' ';
  head.append(target.data(), target.size());
  head += " HTTP/1.1\r\n";
  for (const auto& f : request) {
    const auto name = f.name_string();
    const auto value = f.value();
    head.append(name.data(), name.size());
    head += ": ";
    head.append(value.data(), value.size());
    head += "\r\n";
  }
  head += "\r\n";
  return head;
}

std::optional<Endpoint> Endpoint::Parse(std::string_view url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return std::nullopt;
  Endpoint e;
  e.tls = parsed->scheme() == "https";
  if (!e.tls && parsed->scheme() != "http") return std::nullopt;
  e.host = std::string(parsed->host_address());
  if (e.host.empty()) return std::nullopt;
  e.port = parsed->has_port() ? std::string(parsed->port()) : (e.tls ? "443" : "80");
  e.base_path = std::string(parsed->encoded_path());
  while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
  e.key = (e.tls ? "https://" : "http://") + e.host + ":" + e.port;
  return e;
}

HttpClient::HttpClient(asio::any_io_executor executor, std::shared_ptr<asio::ssl::context> tls,
                       ClientLimits limits)
    : executor_(std::move(executor)), tls_(std::move(tls)), limits_(limits) {}

HttpClient::~HttpClient() = default;

core::Status HttpClient::MakeTlsContext(const std::string& ca_file,
                                        std::shared_ptr<asio::ssl::context>& out) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  beast::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1,
                   ec);
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(ca_file, ec);
  }
  if (ec) {
    return core::Status::Error(core::StatusCode::kInternal,
                               "cannot load CA certificates" +
                                   (ca_file.empty() ? "" : " from " + ca_file) + ": " +
                                   ec.message(),
                               "upstream_ca_unreadable");
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  out = std::move(ctx);
  return core::Status::Ok();
}

asio::awaitable<core::Status> HttpClient::Connect(const Endpoint& endpoint,
                                                  std::unique_ptr<Connection>& out,
                                                  CancelToken& cancel) {
  auto c = std::make_unique<Connection>();
  c->key = endpoint.Key();
  // Beast reads max(512, free capacity) per call: with room up front a whole response header
  // (and a small body) arrives in one recvmsg instead of several 512-byte reads.
  c->buffer.reserve(Connection::kReadChunk);
  if (endpoint.tls) {
    if (!tls_) co_return core::Status::Error(core::StatusCode::kInternal, "TLS is not configured");
    c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(executor_, *tls_);
  } else {
    c->plain = std::make_unique<beast::tcp_stream>(executor_);
  }
  tcp::resolver resolver(executor_);
  cancel.OnCancel([&resolver] { resolver.cancel(); });
  auto [rec, results] = co_await resolver.async_resolve(endpoint.host, endpoint.port, kTuple);
  cancel.Clear();
  if (cancel.cancelled()) co_return Cancelled();
  if (rec) {
    co_return Retryable(core::StatusCode::kUnavailable,
                        "cannot resolve upstream host " + endpoint.host + ": " + rec.message(),
                        "upstream_connect_failed");
  }
  Connection* raw = c.get();
  cancel.OnCancel([raw] { raw->Close(); });
  c->lowest().expires_after(limits_.connect_timeout);
  auto [cec, ep] = co_await c->lowest().async_connect(results, kTuple);
  (void)ep;
  if (!cec) {
    // Requests go out in one gather write and SSE answers in small pieces: never let Nagle
    // hold a segment back waiting for an ACK.
    beast::error_code opt_ec;
    c->lowest().socket().set_option(tcp::no_delay(true), opt_ec);
  }
  if (!cec && c->tls) {
    SSL* ssl = c->tls->native_handle();
    // SSL_set_tlsext_host_name is a macro with a C cast inside; call what it expands to.
    if (!IsIpLiteral(endpoint.host) &&
        SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(endpoint.host.c_str())) != 1) {
      cancel.Clear();
      co_return Retryable(core::StatusCode::kUnavailable, "cannot set TLS server name",
                          "upstream_tls_failed");
    }
    c->tls->set_verify_callback(asio::ssl::host_name_verification(endpoint.host));
    auto [hec] = co_await c->tls->async_handshake(asio::ssl::stream_base::client, kTuple);
    if (hec) {
      cancel.Clear();
      if (cancel.cancelled()) co_return Cancelled();
      co_return Retryable(
          core::StatusCode::kUnavailable,
          "TLS handshake with upstream " + endpoint.host + " failed: " + hec.message(),
          "upstream_tls_failed");
    }
  }
  cancel.Clear();
  if (cancel.cancelled()) co_return Cancelled();
  if (cec == beast::error::timeout) {
    co_return Retryable(core::StatusCode::kUpstreamTimeout,
                        "connecting to upstream " + endpoint.host + " timed out",
                        "upstream_connect_timeout");
  }
  if (cec) {
    co_return Retryable(
        core::StatusCode::kUnavailable,
        "cannot connect to upstream " + endpoint.host + ":" + endpoint.port + ": " + cec.message(),
        "upstream_connect_failed");
  }
  out = std::move(c);
  co_return core::Status::Ok();
}

asio::awaitable<core::Status> HttpClient::Send(const Endpoint& endpoint,
                                               http::request<http::string_body>& request,
                                               std::unique_ptr<UpstreamResponse>& response,
                                               CancelToken& cancel) {
  request.set(http::field::host, endpoint.host);
  request.keep_alive(true);
  request.prepare_payload();
  // A pooled connection the upstream closed meanwhile fails before any response byte. If the
  // write itself failed, the request never reached the application: one retry on a fresh
  // connection is safe. If it was written in full it may have reached it, so it is sent
  // again only limits_.same_provider_retries times (default 0: the failure falls back to the
  // decision's next candidate instead, and no provider sees the prompt twice).
  // One gather write of our own head + the body: Beast's serializer walks a buffers_cat view
  // per field, a measurable share of a proxied request.
  const std::string head = SerializeHead(request);
  const std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(request.body())};
  int resends_left = limits_.same_provider_retries;
  bool write_retried = false;
  for (;;) {
    if (cancel.cancelled()) co_return Cancelled();
    std::unique_ptr<Connection> c;
    bool reused = false;
    if (auto it = idle_.find(endpoint.Key()); it != idle_.end()) {
      // Skip pooled connections the upstream has closed meanwhile (its FIN is already
      // queued): with same_provider_retries 0 a request sent on one would fail.
      while (!it->second.empty() && !c) {
        c = std::move(it->second.back());
        it->second.pop_back();
        if (PeerClosed(*c)) c.reset();
      }
      reused = c != nullptr;
    }
    if (!c) {
      auto st = co_await Connect(endpoint, c, cancel);
      if (!st.ok()) co_return st;
    }
    Connection* raw = c.get();
    cancel.OnCancel([raw] { raw->Close(); });
    c->lowest().expires_after(limits_.first_byte_timeout);
    auto [wec, written] =
        co_await OnStream(*c, [&](auto& s) { return asio::async_write(s, wire, kTuple); });
    (void)written;
    beast::error_code ec = wec;
    if (!ec) {
      c->parser.emplace();
      c->parser->body_limit(limits_.max_response_bytes);
      c->parser->header_limit(64 * 1024);
      auto [rec, n] = co_await OnStream(
          *c, [&](auto& s) { return http::async_read_header(s, c->buffer, *c->parser, kTuple); });
      (void)n;
      ec = rec;
    }
    cancel.Clear();
    if (cancel.cancelled()) co_return Cancelled();
    if (!ec) {
      response = std::make_unique<UpstreamResponse>(*this, std::move(c));
      co_return core::Status::Ok();
    }
    const bool stale =
        reused && (ec == http::error::end_of_stream || ec == asio::error::eof ||
                   ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
    if (stale && wec && !write_retried) {
      write_retried = true;  // not sent: safe to send once more
      continue;
    }
    if (stale && !wec && resends_left > 0) {
      --resends_left;
      continue;
    }
    if (ec == http::error::body_limit) {  // a Content-Length over max_response_bytes
      co_return Retryable(core::StatusCode::kBadUpstream,
                          "upstream response exceeds max_response_bytes",
                          "upstream_response_too_large");
    }
    if (ec == beast::error::timeout) {
      co_return Retryable(core::StatusCode::kUpstreamTimeout,
                          "upstream " + endpoint.host + " sent no response in time",
                          "upstream_timeout");
    }
    co_return Retryable(core::StatusCode::kUnavailable,
                        "upstream " + endpoint.host + " failed before responding: " + ec.message(),
                        "upstream_connection_failed");
  }
}

void HttpClient::Shutdown() {
  closing_ = true;
  for (auto& [key, pool] : idle_) {
    for (auto& c : pool) c->Close();
  }
  idle_.clear();
}

bool HttpClient::PeerClosed(Connection& c) {
  // A non-blocking peek: 0 bytes = the peer's FIN, an error other than "would block" = reset.
  char byte = 0;
  const int fd = c.lowest().socket().native_handle();
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return false;  // bytes waiting (a TLS session ticket, say): still open
  if (n == 0) return true;
  return errno != EAGAIN && errno != EWOULDBLOCK;
}

void HttpClient::Release(std::unique_ptr<Connection> connection) {
  if (closing_) {
    connection->Close();
    return;
  }
  // A cancellation can close the socket after the last read already completed (the client
  // went away while that completion was queued): the response is done, the socket is not.
  if (!connection->lowest().socket().is_open()) return;
  auto& pool = idle_[connection->key];
  if (pool.size() >= limits_.max_idle_per_upstream) return;  // closes
  connection->lowest().expires_never();
  connection->parser.reset();
  pool.push_back(std::move(connection));
}

UpstreamResponse::UpstreamResponse(HttpClient& client, std::unique_ptr<Connection> connection)
    : client_(client), connection_(std::move(connection)) {}

UpstreamResponse::~UpstreamResponse() {
  if (!connection_) return;
  if (done() && connection_->parser->keep_alive()) {
    client_.Release(std::move(connection_));
  } else {
    connection_->Close();
  }
}

unsigned UpstreamResponse::status() const {
  return connection_->parser->get().result_int();
}

std::string_view UpstreamResponse::header(std::string_view name) const {
  const auto& h = connection_->parser->get();
  auto it = h.find(name);
  if (it == h.end()) return {};
  return {it->value().data(), it->value().size()};
}

bool UpstreamResponse::done() const {
  return connection_->parser->is_done();
}

asio::awaitable<core::Status> UpstreamResponse::ReadSome(
    std::string& out, CancelToken& cancel, std::optional<std::chrono::milliseconds> timeout) {
  if (done()) co_return core::Status::Ok();
  if (cancel.cancelled()) co_return Cancelled();
  Connection& c = *connection_;
  constexpr std::size_t kChunk = Connection::kBodyChunk;
  auto& body = c.parser->get().body();
  body.data = c.read_buffer.get();
  body.size = kChunk;
  c.lowest().expires_after(timeout.value_or(client_.limits().idle_timeout));
  Connection* raw = &c;
  cancel.OnCancel([raw] { raw->Close(); });
  auto [ec, n] = co_await OnStream(
      c, [&](auto& s) { return http::async_read_some(s, c.buffer, *c.parser, kTuple); });
  (void)n;
  cancel.Clear();
  const std::size_t got = kChunk - body.size;
  out.append(c.read_buffer.get(), got);
  body_bytes_ += got;
  if (ec == http::error::need_buffer) ec = {};
  if (cancel.cancelled()) co_return Cancelled();
  if (!ec) co_return core::Status::Ok();
  if (ec == http::error::body_limit) {
    co_return core::Status::Error(core::StatusCode::kBadUpstream,
                                  "upstream response exceeds max_response_bytes",
                                  "upstream_response_too_large");
  }
  if (ec == beast::error::timeout) {
    co_return Retryable(core::StatusCode::kUpstreamTimeout, "upstream stalled mid-response",
                        "upstream_timeout");
  }
  co_return Retryable(core::StatusCode::kBadUpstream,
                      "upstream connection failed mid-response: " + ec.message(),
                      "upstream_connection_failed");
}

asio::awaitable<core::Status> UpstreamResponse::ReadAll(std::string& out, CancelToken& cancel) {
  while (!done()) {
    auto st = co_await ReadSome(out, cancel);
    if (!st.ok()) co_return st;
  }
  co_return core::Status::Ok();
}

}  // namespace meridian::providers
