#include "tests/fakes/fake_openai_server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "tests/fakes/fake_vendor_wire.h"

namespace meridian::fakes {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kAwait = net::as_tuple(net::use_awaitable);

// ---------------------------------------------------------------------------------------------
// Scenarios

using wire::AzureContentFilterBody;
using wire::ChatPlan;
using wire::DefaultErrorText;
using wire::DefaultReasoningField;
using wire::ErrorBody;
using wire::ErrorText;
using wire::Event;
using wire::EventKind;
using wire::HeaderList;
using wire::IsLocal;
using wire::IsVendor;
using wire::NotFoundBody;
using wire::ProfileHeaders;
using wire::Scenario;
using wire::StreamScript;
using wire::UsageChoices;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return s;
}

template <class Int>
std::optional<Int> ParseNumber(std::string_view s) {
  Int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}
std::optional<int> ParseInt(std::string_view s) {
  return ParseNumber<int>(s);
}
std::optional<std::int64_t> ParseInt64(std::string_view s) {
  return ParseNumber<std::int64_t>(s);
}

/// Applies `spec` on top of `s`; returns "" or an error naming the bad switch.
std::string ApplyScenario(std::string_view spec, Scenario& s) {
  while (!spec.empty()) {
    const std::size_t comma = spec.find(',');
    std::string_view item = Trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    const std::string_view name = Trim(item.substr(0, eq));
    const std::optional<std::string_view> value =
        eq == std::string_view::npos ? std::nullopt
                                     : std::optional<std::string_view>(Trim(item.substr(eq + 1)));
    const std::string bad = "bad fake scenario switch '" + std::string(item) + "'";

    auto int_value = [&](int& out, int min) -> bool {
      if (!value) return false;
      const std::optional<int> v = ParseInt(*value);
      if (!v || *v < min) return false;
      out = *v;
      return true;
    };
    auto opt_int = [&](std::optional<int>& out) -> bool {
      int v = 0;
      if (!int_value(v, 0)) return false;
      out = v;
      return true;
    };
    // Flags accept an optional value so a later layer can switch an earlier one off.
    auto flag = [&](bool& out) -> bool {
      if (!value || *value == "1" || *value == "true" || *value == "on") {
        out = true;
        return true;
      }
      if (*value == "0" || *value == "false" || *value == "off") {
        out = false;
        return true;
      }
      return false;
    };
    // `name` alone means "from the start", `name=N` means "after N delta events".
    auto after = [&](int& out) -> bool {
      if (!value) {
        out = 0;
        return true;
      }
      return int_value(out, -1);
    };

    bool ok = false;
    if (name == "reset") {
      s = Scenario{};
      ok = !value;
    } else if (name == "tokens") {
      ok = int_value(s.tokens, 0);
    } else if (name == "delay_ms") {
      ok = int_value(s.delay_ms, 0);
    } else if (name == "ttft_ms") {
      ok = int_value(s.ttft_ms, 0);
    } else if (name == "status") {
      ok = int_value(s.status, 0) && (s.status == 0 || (s.status >= 100 && s.status <= 999));
    } else if (name == "retry_after") {
      ok = opt_int(s.retry_after);
    } else if (name == "retry_after_ms") {
      ok = opt_int(s.retry_after_ms);
    } else if (name == "should_retry") {
      bool b = false;
      ok = value.has_value() && flag(b);
      if (ok) s.should_retry = b;
    } else if (name == "quota") {
      ok = flag(s.quota);
    } else if (name == "content_filter_400") {
      ok = flag(s.content_filter_400);
    } else if (name == "data_inspection") {
      ok = flag(s.data_inspection);
    } else if (name == "sse_errors") {
      ok = flag(s.sse_errors);
    } else if (name == "no_space") {
      ok = flag(s.no_space);
    } else if (name == "crlf") {
      ok = flag(s.crlf);
    } else if (name == "comment") {
      ok = flag(s.comment);
    } else if (name == "split") {
      if (!value) {
        s.split = -1;
        ok = true;
      } else {
        ok = int_value(s.split, 0);
      }
    } else if (name == "close_after") {
      ok = int_value(s.close_after, -1);
    } else if (name == "reset_after") {
      ok = int_value(s.reset_after, -1);
    } else if (name == "error_after" || name == "error_in_stream") {
      ok = int_value(s.error_after, -1);
    } else if (name == "garbage") {
      ok = after(s.garbage_after);
    } else if (name == "azure_empty_first") {
      ok = flag(s.azure_empty_first);
    } else if (name == "tool_calls") {
      if (!value) {
        s.tool_calls = 1;
        ok = true;
      } else {
        ok = int_value(s.tool_calls, 0);
      }
    } else if (name == "reasoning") {
      ok = int_value(s.reasoning, 0);
    } else if (name == "inference_geo") {
      ok = value.has_value() && !value->empty();
      if (ok) s.inference_geo = std::string(*value);
    } else if (name == "reasoning_field") {
      ok = value.has_value();
      if (ok) s.reasoning_field = std::string(*value);
    } else if (name == "think_tags") {
      ok = flag(s.think_tags);
    } else if (name == "obfuscation") {
      ok = flag(s.obfuscation);
    } else if (name == "finish") {
      ok = value.has_value() && !value->empty();
      if (ok) s.finish = std::string(*value);
    } else if (name == "usage_choices") {
      ok = value.has_value();
      if (ok && *value == "empty") {
        s.usage_choices = UsageChoices::kEmpty;
      } else if (ok && *value == "null") {
        s.usage_choices = UsageChoices::kNull;
      } else if (ok && *value == "absent") {
        s.usage_choices = UsageChoices::kAbsent;
      } else {
        ok = false;
      }
    } else if (name == "hang") {
      ok = flag(s.hang);
    } else if (name == "html") {
      ok = flag(s.html);
    } else if (name == "not_completion") {
      ok = flag(s.not_completion);
    } else if (name == "long_line") {
      ok = int_value(s.long_line, 1);
    } else if (name == "content_length") {
      const std::optional<std::int64_t> v = value ? ParseInt64(*value) : std::nullopt;
      ok = v.has_value() && *v >= 0;
      if (ok) s.content_length = *v;
    } else if (name == "endless") {
      ok = flag(s.endless);
    } else if (name == "drip_ms") {
      ok = int_value(s.drip_ms, 1);
    }
    if (!ok) return bad;
  }
  return {};
}

/// Pulls every `<<fake:SPEC>>` out of the messages' string contents (and text parts).
std::string BodyMarkers(const json::value& body) {
  std::string out;
  auto scan = [&out](std::string_view text) {
    static constexpr std::string_view kOpen = "<<fake:";
    std::size_t pos = 0;
    while ((pos = text.find(kOpen, pos)) != std::string_view::npos) {
      const std::size_t start = pos + kOpen.size();
      const std::size_t end = text.find(">>", start);
      if (end == std::string_view::npos) break;
      if (!out.empty()) out += ',';
      out += text.substr(start, end - start);
      pos = end + 2;
    }
  };
  const json::object* obj = body.if_object();
  if (obj == nullptr) return out;
  const json::value* messages = obj->if_contains("messages");
  if (messages == nullptr) {
    // DashScope native: {"input":{"messages":[...]}}.
    const json::value* input = obj->if_contains("input");
    if (input != nullptr && input->is_object())
      messages = input->get_object().if_contains("messages");
  }
  if (messages == nullptr || !messages->is_array()) return out;
  for (const json::value& m : messages->get_array()) {
    const json::value* content = m.is_object() ? m.get_object().if_contains("content") : nullptr;
    if (content == nullptr) continue;
    if (content->is_string()) {
      scan(content->get_string());
    } else if (content->is_array()) {
      for (const json::value& part : content->get_array()) {
        const json::value* text =
            part.is_object() ? part.get_object().if_contains("text") : nullptr;
        if (text != nullptr && text->is_string()) scan(text->get_string());
      }
    }
  }
  return out;
}

std::string ToHex(std::size_t n) {
  char buf[24];
  const int len = std::snprintf(buf, sizeof(buf), "%zx", n);
  return std::string(buf, static_cast<std::size_t>(len));
}

/// `piece` as one HTTP/1.1 chunk.
std::string HttpChunk(std::string_view piece) {
  return ToHex(piece.size()) + "\r\n" + std::string(piece) + "\r\n";
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = kv.find('=');
    if (kv.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string() : std::string(kv.substr(eq + 1));
    }
  }
  return std::nullopt;
}

void ReadPeerCert(SSL* ssl, RecordedRequest& rec) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return;
  X509_NAME* subject = X509_get_subject_name(cert);
  const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
    rec.client_cert_cn.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                              static_cast<std::size_t>(ASN1_STRING_length(data)));
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = gn->d.uniformResourceIdentifier;
      rec.client_cert_uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                                        static_cast<std::size_t>(ASN1_STRING_length(uri)));
    }
    GENERAL_NAMES_free(sans);
  }
  X509_free(cert);
}

// ---------------------------------------------------------------------------------------------
// Connections

/// What the pacing wait observed.
enum class Waited : std::uint8_t { kElapsed, kPeerGone, kStopped };

/// How a request ended, for the connection loop.
enum class Outcome : std::uint8_t { kKeepAlive, kClose, kReset };

struct ConnBase : std::enable_shared_from_this<ConnBase> {
  virtual ~ConnBase() = default;
  /// Cancels the pacing timer and closes the socket, on the connection's strand.
  virtual void CloseSoon() = 0;
};

template <class Stream>
struct Conn final : ConnBase {
  template <class... Args>
  explicit Conn(net::any_io_executor ex, Args&&... args)
      : stream(std::forward<Args>(args)...), timer(ex) {}

  tcp::socket& socket() { return beast::get_lowest_layer(stream); }

  void CloseSoon() override {
    auto self = std::static_pointer_cast<Conn>(shared_from_this());
    net::post(timer.get_executor(), [self] {
      self->timer.cancel();
      beast::error_code ec;
      self->socket().shutdown(tcp::socket::shutdown_both, ec);
      self->socket().close(ec);
    });
  }

  Stream stream;
  net::steady_timer timer;
  beast::flat_buffer buffer;
  /// False once the peer sent bytes mid-response; readiness would then fire forever, so
  /// disconnects are only noticed by failing writes from there on.
  bool watch_peer = true;
};

using PlainConn = Conn<tcp::socket>;
using TlsConn = Conn<net::ssl::stream<tcp::socket>>;

}  // namespace

// ---------------------------------------------------------------------------------------------

struct FakeOpenAiServer::Impl {
  explicit Impl(FakeOpenAiServer& o) : owner(o), opts(o.options_) {}

  FakeOpenAiServer& owner;
  const FakeServerOptions& opts;
  std::optional<net::ssl::context> ssl_ctx;  // declared before ioc: must outlive the streams
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  // The acceptor is not thread-safe: the accept loop and Stop()'s close both run on this strand.
  net::strand<net::io_context::executor_type> accept_strand{net::make_strand(ioc)};
  std::vector<std::thread> threads;

  std::atomic<bool> stopping{false};
  std::mutex conns_mu;
  std::condition_variable conns_cv;
  std::map<std::uint64_t, std::weak_ptr<ConnBase>> conns;
  std::uint64_t next_conn_id = 1;
  int live_sessions = 0;
  bool accept_done = false;

  // ---- lifecycle -----------------------------------------------------------------------------

  void Start() {
    if (opts.tls) {
      ssl_ctx.emplace(net::ssl::context::tls_server);
      ssl_ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                           net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                           net::ssl::context::no_tlsv1_1);
      ssl_ctx->use_certificate_chain_file(opts.tls->cert_file);
      ssl_ctx->use_private_key_file(opts.tls->key_file, net::ssl::context::pem);
      if (!opts.tls->client_ca_file.empty()) {
        ssl_ctx->load_verify_file(opts.tls->client_ca_file);
        ssl_ctx->set_verify_mode(net::ssl::verify_peer |
                                 (opts.tls->require_client_cert
                                      ? net::ssl::verify_fail_if_no_peer_cert
                                      : net::ssl::verify_none));
      }
    }
    const tcp::endpoint ep(net::ip::make_address_v4("127.0.0.1"), 0);
    acceptor.open(ep.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(net::socket_base::max_listen_connections);
    owner.port_ = acceptor.local_endpoint().port();
    accept_done = false;
    net::co_spawn(accept_strand, AcceptLoop(), [this](std::exception_ptr) {
      std::lock_guard lock(conns_mu);
      accept_done = true;
      conns_cv.notify_all();
    });
    const int n = std::max(1, opts.threads);
    for (int i = 0; i < n; ++i) threads.emplace_back([this] { ioc.run(); });
  }

  void Stop() {
    std::vector<std::shared_ptr<ConnBase>> to_close;
    {
      std::lock_guard lock(conns_mu);
      if (stopping.exchange(true)) return;
      for (auto& [id, weak] : conns) {
        if (auto c = weak.lock()) to_close.push_back(std::move(c));
      }
    }
    net::post(accept_strand, [this] {
      beast::error_code ec;
      acceptor.close(ec);
    });
    for (auto& c : to_close) c->CloseSoon();
    {
      // Handlers unwind on their own once their sockets and timers are gone; the deadline only
      // guards against a bug in this file turning into a hung test binary.
      std::unique_lock lock(conns_mu);
      conns_cv.wait_for(lock, std::chrono::seconds(10),
                        [this] { return accept_done && live_sessions == 0; });
    }
    ioc.stop();
    for (auto& t : threads) t.join();
    threads.clear();
  }

  // ---- accept + connection loop ---------------------------------------------------------------

  net::awaitable<void> AcceptLoop() {
    for (;;) {
      tcp::socket sock(net::make_strand(ioc));
      auto [ec] = co_await acceptor.async_accept(sock, kAwait);
      if (ec) {
        if (stopping || ec == net::error::operation_aborted || !acceptor.is_open()) break;
        continue;  // e.g. EMFILE under a 50-connection burst: keep serving the others
      }
      beast::error_code ignored;
      sock.set_option(tcp::no_delay(true), ignored);  // one event = one segment, promptly
      net::any_io_executor ex = sock.get_executor();
      std::shared_ptr<ConnBase> conn;
      if (ssl_ctx) {
        conn = std::make_shared<TlsConn>(ex, std::move(sock), *ssl_ctx);
      } else {
        conn = std::make_shared<PlainConn>(ex, std::move(sock));
      }
      std::uint64_t id = 0;
      {
        std::lock_guard lock(conns_mu);
        if (stopping) break;  // Stop() already collected the registry; don't start new work
        id = next_conn_id++;
        conns[id] = conn;
        ++live_sessions;
      }
      ++owner.connections_accepted_;
      owner.Notify();
      auto done = [this, id](std::exception_ptr) {
        {
          std::lock_guard lock(conns_mu);
          conns.erase(id);
          --live_sessions;
          conns_cv.notify_all();
        }
        owner.Notify();
      };
      if (ssl_ctx) {
        net::co_spawn(ex, Session(std::static_pointer_cast<TlsConn>(conn)), std::move(done));
      } else {
        net::co_spawn(ex, Session(std::static_pointer_cast<PlainConn>(conn)), std::move(done));
      }
    }
  }

  template <class C>
  net::awaitable<void> Session(std::shared_ptr<C> c) {
    bool tls = false;
    std::string cert_cn;
    std::vector<std::string> cert_uris;
    if constexpr (std::is_same_v<C, TlsConn>) {
      tls = true;
      auto [ec] = co_await c->stream.async_handshake(net::ssl::stream_base::server, kAwait);
      if (ec) {
        beast::error_code ignored;
        c->socket().close(ignored);
        co_return;
      }
      RecordedRequest tmp;
      ReadPeerCert(c->stream.native_handle(), tmp);
      cert_cn = std::move(tmp.client_cert_cn);
      cert_uris = std::move(tmp.client_cert_uris);
    }
    Outcome outcome = Outcome::kClose;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64U * 1024U * 1024U);
      parser.header_limit(64U * 1024U);
      auto [ec, n] = co_await http::async_read(c->stream, c->buffer, parser, kAwait);
      (void)n;
      if (ec) break;  // EOF between requests is the normal end of a keep-alive connection
      RecordedRequest rec;
      rec.tls = tls;
      rec.client_cert_cn = cert_cn;
      rec.client_cert_uris = cert_uris;
      outcome = co_await Handle(*c, parser.release(), std::move(rec));
      if (outcome != Outcome::kKeepAlive || stopping) break;
    }
    beast::error_code ignored;
    if (outcome == Outcome::kReset) {
      c->socket().set_option(net::socket_base::linger(true, 0), ignored);
    } else {
      c->socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
    c->socket().close(ignored);
  }

  // ---- pacing -----------------------------------------------------------------------------------

  /// Waits `d`, but returns early when the client disconnects (so a stalled or slow stream
  /// notices a cancelling gateway at once, not at its next write) or the server stops.
  template <class C>
  net::awaitable<Waited> Pace(C& c, milliseconds d) {
    const Clock::time_point deadline = Clock::now() + d;
    for (;;) {
      if (stopping) co_return Waited::kStopped;
      c.timer.expires_at(deadline);
      if (!c.watch_peer) {
        auto [ec] = co_await c.timer.async_wait(kAwait);
        co_return ec ? Waited::kStopped : Waited::kElapsed;
      }
      auto [order, ec_timer, ec_sock] =
          co_await net::experimental::make_parallel_group(
              c.timer.async_wait(net::deferred),
              c.socket().async_wait(tcp::socket::wait_read, net::deferred))
              .async_wait(net::experimental::wait_for_one(), net::use_awaitable);
      if (order[0] == 0) co_return ec_timer ? Waited::kStopped : Waited::kElapsed;
      if (ec_sock) co_return stopping ? Waited::kStopped : Waited::kPeerGone;
      // Readable: EOF or RST means the client left; real bytes (a pipelined request, a TLS
      // alert) are left for the parser and we stop watching.
      char byte = 0;
      const ssize_t got = ::recv(c.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (got == 0) co_return Waited::kPeerGone;
      if (got < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) co_return Waited::kPeerGone;
      } else {
        c.watch_peer = false;
      }
    }
  }

  template <class C>
  net::awaitable<bool> Write(C& c, std::string data) {
    auto [ec, n] = co_await net::async_write(c.stream, net::buffer(data), kAwait);
    (void)n;
    co_return !ec;
  }

  // ---- responses ------------------------------------------------------------------------------

  struct Reply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    HeaderList headers;
  };

  /// Serialises a complete response. MLX speaks HTTP/1.0 and closes after every response, and
  /// its error/health/model bodies have no Content-Length (they are close-delimited).
  std::string Serialize(const Reply& r, unsigned version, bool keep_alive,
                        bool content_length = true) {
    http::response<http::string_body> res;
    res.result(static_cast<unsigned>(r.status));
    if (http::int_to_status(static_cast<unsigned>(r.status)) == http::status::unknown) {
      res.reason("Fake Status");
    }
    const bool mlx = opts.profile == Profile::kMlx;
    res.version(mlx ? 10 : version);
    for (const auto& [k, v] : r.headers) res.insert(k, v);
    if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
    res.body() = r.body;
    if (mlx) {
      res.keep_alive(false);
      if (content_length) res.content_length(r.body.size());
    } else {
      res.keep_alive(keep_alive);
      res.prepare_payload();
    }
    std::ostringstream os;
    os << res;
    return std::move(os).str();
  }

  template <class C>
  net::awaitable<Outcome> Send(C& c, const Reply& r, const http::request<http::string_body>& req,
                               bool content_length = true) {
    const bool keep = req.keep_alive() && opts.profile != Profile::kMlx;
    const bool ok =
        co_await Write(c, Serialize(r, req.version(), req.keep_alive(), content_length));
    if (!ok) co_return Outcome::kClose;
    co_return keep ? Outcome::kKeepAlive : Outcome::kClose;
  }

  Reply ErrorReply(std::uint64_t seq, int status, std::string body) {
    Reply r;
    r.status = status;
    r.body = std::move(body);
    r.headers = ProfileHeaders(opts.profile, seq);
    return r;
  }

  /// DashScope with `sse_errors` on a streaming request: the error goes out as a 200 stream
  /// holding one event:error frame. Any other case: `r` unchanged.
  Reply Shaped(const Scenario& sc, bool stream, Reply r) const {
    if (opts.profile != Profile::kDashScope || !stream || !sc.sse_errors) return r;
    wire::ErrorReply e =
        wire::DashScopeSseError(sc, {r.status, std::move(r.body), std::move(r.headers)});
    Reply out;
    out.status = e.status;
    out.body = std::move(e.body);
    out.headers = std::move(e.headers);
    out.content_type = "text/event-stream;charset=UTF-8";
    return out;
  }

  // ---- request dispatch -------------------------------------------------------------------------

  enum class Route : std::uint8_t { kChat, kEmbed, kModels, kHealth, kNotFound };

  struct Routed {
    Route route = Route::kNotFound;
    bool azure_classic = false;
    bool multimodal = false;  ///< DashScope's multimodal-generation endpoint
    bool responses = false;   ///< OpenAI's Responses API (openai and vllm profiles)
    std::string deployment;
  };

  Routed Classify(const std::string& method, const std::string& path) const {
    Routed r;
    const Profile p = opts.profile;
    const bool post = method == "POST";
    const bool get = method == "GET";
    if (p == Profile::kDashScope) {
      if (post && path == "/api/v1/services/aigc/text-generation/generation")
        r.route = Route::kChat;
      if (post && path == "/api/v1/services/aigc/multimodal-generation/generation") {
        r.route = Route::kChat;
        r.multimodal = true;
      }
      if (post && path == "/api/v1/services/embeddings/text-embedding/text-embedding")
        r.route = Route::kEmbed;
      return r;
    }
    if (p == Profile::kAnthropic) {
      if (post && path == "/v1/messages") r.route = Route::kChat;
      return r;
    }
    if (p == Profile::kAzure) {
      static constexpr std::string_view kDeployments = "/openai/deployments/";
      static constexpr std::string_view kChatSuffix = "/chat/completions";
      static constexpr std::string_view kEmbedSuffix = "/embeddings";
      if (post && path == "/openai/v1/chat/completions") {
        r.route = Route::kChat;
      } else if (post && path == "/openai/v1/embeddings") {
        r.route = Route::kEmbed;
      } else if (get && path == "/openai/v1/models") {
        r.route = Route::kModels;
      } else if (post && path.starts_with(kDeployments)) {
        for (const auto& [suffix, route] :
             {std::pair{kChatSuffix, Route::kChat}, std::pair{kEmbedSuffix, Route::kEmbed}}) {
          if (!path.ends_with(suffix) || path.size() <= kDeployments.size() + suffix.size()) {
            continue;
          }
          r.deployment =
              path.substr(kDeployments.size(), path.size() - kDeployments.size() - suffix.size());
          if (r.deployment.find('/') == std::string::npos) {
            r.route = route;
            r.azure_classic = true;
          }
          break;
        }
      }
      return r;
    }
    if (post &&
        (path == "/v1/chat/completions" || (p == Profile::kMlx && path == "/chat/completions"))) {
      r.route = Route::kChat;
    } else if (post && path == "/v1/responses" && (p == Profile::kOpenAi || p == Profile::kVllm)) {
      r.route = Route::kChat;
      r.responses = true;
    } else if (post && path == "/v1/embeddings" && p != Profile::kMlx) {
      r.route = Route::kEmbed;  // mlx_lm.server has no embeddings endpoint
    } else if (get &&
               (path == "/v1/models" || (p == Profile::kMlx && path.starts_with("/v1/models")))) {
      r.route = Route::kModels;
    } else if (get && IsLocal(p) &&
               (path == "/health" || (p == Profile::kLlamaCpp && path == "/v1/health") ||
                (p == Profile::kSglang && path == "/health_generate"))) {
      r.route = Route::kHealth;
    }
    return r;
  }

  /// Checks the profile's credential header; returns an error reply when it is wrong.
  std::optional<Reply> CheckAuth(const RecordedRequest& rec) const {
    const std::string key = owner.api_key();
    if (key.empty()) return std::nullopt;
    const Profile p = opts.profile;
    if (p == Profile::kAzure) {
      if (rec.has_header("api-key") && rec.header("api-key") == key) return std::nullopt;
      Reply r;
      r.status = 401;
      r.body =
          R"({"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})";
      r.headers = ProfileHeaders(p, rec.seq);
      return r;
    }
    if (p == Profile::kAnthropic) {
      if (rec.has_header("x-api-key") && rec.header("x-api-key") == key) return std::nullopt;
      Reply r;
      r.status = 401;
      // [U] The wording is the live API's; §3.3 documents only the type for 401.
      r.body = wire::AnthropicError("authentication_error", "invalid x-api-key", rec.seq);
      r.headers = ProfileHeaders(p, rec.seq);
      return r;
    }
    const std::string auth = rec.header("authorization");
    if (auth == "Bearer " + key) return std::nullopt;
    Reply r;
    r.status = 401;
    r.headers = ProfileHeaders(p, rec.seq);
    switch (p) {
      case Profile::kOpenAi:
        if (auth.empty()) {
          r.body = ErrorBody(p, 401,
                             {"You didn't provide an API key. You need to provide your API key in "
                              "an Authorization header using Bearer auth (i.e. Authorization: "
                              "Bearer YOUR_KEY).",
                              "invalid_request_error", nullptr, nullptr});
        } else {
          r.body = ErrorBody(p, 401,
                             {"Incorrect API key provided: " +
                                  auth.substr(std::min<std::size_t>(auth.size(), 7), 6) +
                                  "****. You can find your API key at "
                                  "https://platform.openai.com/account/api-keys.",
                              "invalid_request_error", "invalid_api_key", nullptr});
        }
        break;
      case Profile::kLlamaCpp:
        r.body =
            R"({"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}})";
        break;
      case Profile::kVllm:
      case Profile::kSglang:
        r.body = R"({"error":"Unauthorized"})";
        break;
      case Profile::kDashScope:
        r.body = wire::DashScopeInvalidKeyBody(rec.seq);
        break;
      case Profile::kAzure:
      case Profile::kMlx:
      case Profile::kAnthropic:
        break;
    }
    return r;
  }

  std::string ModelsBody() const {
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    json::array data;
    const std::vector<std::string>& ids =
        opts.profile == Profile::kAzure && !opts.azure_deployments.empty() ? opts.azure_deployments
                                                                           : opts.models;
    for (const std::string& id : ids) {
      json::object m{{"id", id}, {"object", "model"}, {"created", now}};
      switch (opts.profile) {
        case Profile::kOpenAi:
        case Profile::kAzure:
          m["owned_by"] = "system";
          break;
        case Profile::kVllm:
        case Profile::kSglang:
          m["owned_by"] = opts.profile == Profile::kVllm ? "vllm" : "sglang";
          m["root"] = id;
          m["parent"] = nullptr;
          m["max_model_len"] = 32768;
          break;
        case Profile::kLlamaCpp:
          m["owned_by"] = "llamacpp";
          break;
        case Profile::kMlx:
        case Profile::kDashScope:
        case Profile::kAnthropic:
          break;
      }
      data.push_back(std::move(m));
    }
    return json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
  }

  Reply HealthReply(std::uint64_t seq) const {
    bool healthy = true;
    {
      std::lock_guard lock(owner.mu_);
      healthy = owner.healthy_;
    }
    Reply r;
    r.headers = ProfileHeaders(opts.profile, seq);
    switch (opts.profile) {
      case Profile::kVllm:
      case Profile::kSglang:
        r.status = healthy ? 200 : 503;
        r.content_type.clear();
        break;
      case Profile::kLlamaCpp:
        r.status = healthy ? 200 : 503;
        r.body =
            healthy
                ? R"({"status":"ok"})"
                : R"({"error":{"code":503,"message":"Loading model","type":"unavailable_error"}})";
        break;
      case Profile::kMlx:
        r.status = healthy ? 200 : 503;
        r.body = healthy ? R"({"status": "ok"})" : R"({"status": "unavailable"})";
        break;
      case Profile::kOpenAi:
      case Profile::kAzure:
      case Profile::kDashScope:
      case Profile::kAnthropic:
        break;
    }
    return r;
  }

  template <class C>
  net::awaitable<Outcome> Handle(C& c, http::request<http::string_body> req, RecordedRequest rec) {
    rec.method = std::string(req.method_string());
    rec.target = std::string(req.target());
    const std::size_t q = rec.target.find('?');
    rec.path = rec.target.substr(0, q);
    rec.query = q == std::string::npos ? std::string() : rec.target.substr(q + 1);
    rec.http_version = req.version();
    for (const auto& field : req) {
      std::string name = Lower(field.name_string());
      auto [it, inserted] = rec.headers.try_emplace(name, std::string(field.value()));
      if (!inserted) it->second += ", " + std::string(field.value());
    }
    rec.body = req.body();

    const Routed routed = Classify(rec.method, rec.path);
    if (routed.route == Route::kEmbed) {
      co_return co_await HandleEmbeddings(c, req, std::move(rec), routed);
    }
    if (routed.route != Route::kChat) {
      const std::uint64_t seq = Store(std::move(rec), false);
      Reply r;
      bool content_length = true;
      if (routed.route == Route::kNotFound) {
        r = ErrorReply(seq, 404,
                       NotFoundBody(opts.profile, std::string(req.method_string()),
                                    std::string(req.target())));
        content_length = false;
      } else if (routed.route == Route::kHealth) {
        r = HealthReply(seq);
        content_length = false;
      } else {
        const RecordedRequest& stored = Lookup(seq);
        if (auto denied = CheckAuth(stored)) {
          r = std::move(*denied);
        } else {
          r.headers = ProfileHeaders(opts.profile, seq);
          r.body = ModelsBody();
        }
        content_length = false;
      }
      co_return co_await Send(c, r, req, content_length);
    }
    co_return co_await HandleChat(c, req, std::move(rec), routed);
  }

  // ---- chat completions -------------------------------------------------------------------------

  /// Stores the request and returns its sequence number. Chat requests also count as started.
  std::uint64_t Store(RecordedRequest rec, bool chat) {
    std::uint64_t seq = 0;
    {
      std::lock_guard lock(owner.mu_);
      seq = owner.next_seq_++;
      rec.seq = seq;
      auto& kept = owner.requests_;
      if (const std::size_t cap = owner.options_.max_recorded; cap != 0 && kept.size() >= cap) {
        kept.erase(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(kept.size() / 2));
      }
      kept.push_back(std::move(rec));
    }
    if (chat) ++owner.requests_started_;
    owner.Notify();
    return seq;
  }

  RecordedRequest Lookup(std::uint64_t seq) const {
    std::lock_guard lock(owner.mu_);
    for (auto it = owner.requests_.rbegin(); it != owner.requests_.rend(); ++it) {
      if (it->seq == seq) return *it;
    }
    return {};
  }

  /// Keeps active_requests() honest on every exit path of a chat request.
  struct ActiveGuard {
    explicit ActiveGuard(FakeOpenAiServer& o) : owner(o) { ++owner.active_requests_; }
    ~ActiveGuard() {
      --owner.active_requests_;
      owner.Notify();
    }
    ActiveGuard(const ActiveGuard&) = delete;
    ActiveGuard& operator=(const ActiveGuard&) = delete;
    FakeOpenAiServer& owner;
  };

  void CountCut(bool stream) {
    ++owner.requests_cut_by_client_;
    if (stream) ++owner.streams_cut_by_client_;
    owner.Notify();
  }

  /// The scenario of one model request: layers from the most general to the most specific
  /// (takes the next one-shot scenario).
  std::string EffectiveScenario(const RecordedRequest& rec, const json::value& body) {
    std::string spec = opts.default_scenario;
    const std::string marker = BodyMarkers(body);
    std::lock_guard lock(owner.mu_);
    auto append = [&spec](const std::string& s) {
      if (s.empty()) return;
      if (!spec.empty()) spec += ',';
      spec += s;
    };
    append(owner.sticky_scenario_);
    if (!owner.oneshot_scenarios_.empty()) {
      append(owner.oneshot_scenarios_.front());
      owner.oneshot_scenarios_.pop_front();
    }
    append(marker);
    append(rec.header(kScenarioHeader));
    return spec;
  }

  /// The error answer of the status= and quota switches.
  Reply StatusReply(const Scenario& sc, std::uint64_t seq) {
    const int status = sc.quota ? 429 : sc.status;
    ErrorText text = DefaultErrorText(status);
    if (sc.quota) {
      text = {"You exceeded your current quota, please check your plan and billing details.",
              "insufficient_quota", "insufficient_quota", nullptr};
    }
    Reply r = ErrorReply(seq, status, ErrorBody(opts.profile, status, std::move(text), seq));
    if (sc.retry_after) r.headers.emplace_back("retry-after", std::to_string(*sc.retry_after));
    if (sc.retry_after_ms) {
      r.headers.emplace_back("retry-after-ms", std::to_string(*sc.retry_after_ms));
    }
    if (sc.should_retry)
      r.headers.emplace_back("x-should-retry", *sc.should_retry ? "true" : "false");
    return r;
  }

  /// An embeddings request: the vendor's checks, then the scenario's stall, hang, status or
  /// garbage switches, else the vectors (FakeOpenAiServer::EmbeddingOf).
  template <class C>
  net::awaitable<Outcome> HandleEmbeddings(C& c, const http::request<http::string_body>& req,
                                           RecordedRequest rec, Routed routed) {
    ActiveGuard active(owner);
    c.watch_peer = true;
    boost::system::error_code jec;
    json::value body = json::parse(rec.body, jec);
    if (jec) body = nullptr;
    const std::string spec = EffectiveScenario(rec, body);
    rec.scenario = spec;
    const std::uint64_t seq = Store(std::move(rec), true);
    const RecordedRequest stored = Lookup(seq);
    Scenario sc;
    if (std::string err = ApplyScenario(spec, sc); !err.empty()) {
      Reply r =
          ErrorReply(seq, 418,
                     ErrorBody(opts.profile, 418,
                               {"fake server: " + err, "fake_scenario_error", nullptr, nullptr}));
      co_return co_await Finish(c, std::move(r), req);
    }
    if (auto denied = CheckAuth(stored)) co_return co_await Finish(c, std::move(*denied), req);
    const Profile p = opts.profile;
    wire::EmbedPlan plan;
    std::optional<wire::ErrorReply> bad =
        p == Profile::kDashScope
            ? wire::DashScopeEmbeddingsCheck(body, opts.embedding_dimensions, seq, plan)
            : wire::OpenAiEmbeddingsCheck(p, body, routed.azure_classic, opts.embedding_dimensions,
                                          seq, plan);
    if (bad) co_return co_await Finish(c, ErrorReply(seq, bad->status, std::move(bad->body)), req);
    if (sc.ttft_ms > 0) {
      const Waited w = co_await Pace(c, milliseconds(sc.ttft_ms));
      if (w != Waited::kElapsed) co_return Gone(w, false);
    }
    if (sc.hang) {
      for (;;) {
        const Waited w = co_await Pace(c, std::chrono::hours(1));
        if (w != Waited::kElapsed) co_return Gone(w, false);
      }
    }
    if (sc.quota || sc.status != 0) co_return co_await Finish(c, StatusReply(sc, seq), req);
    Reply r;
    r.headers = ProfileHeaders(p, seq);
    r.body = p == Profile::kDashScope ? wire::DashScopeEmbeddingsBody(plan, opts.prompt_tokens, seq)
                                      : wire::OpenAiEmbeddingsBody(plan, opts.prompt_tokens);
    if (sc.garbage_after >= 0) r.body.resize(r.body.size() / 2);
    co_return co_await Finish(c, std::move(r), req);
  }

  template <class C>
  net::awaitable<Outcome> HandleChat(C& c, const http::request<http::string_body>& req,
                                     RecordedRequest rec, const Routed& routed) {
    ActiveGuard active(owner);
    c.watch_peer = true;
    boost::system::error_code jec;
    json::value body = json::parse(rec.body, jec);
    if (jec) body = nullptr;
    const json::object* obj = body.if_object();

    const std::string spec = EffectiveScenario(rec, body);
    rec.scenario = spec;
    const Profile p = opts.profile;
    // DashScope streams only on its header, whatever the body says; the others on `stream`.
    const bool wants_stream = p == Profile::kDashScope
                                  ? Lower(rec.header("x-dashscope-sse")) == "enable"
                                  : obj != nullptr && obj->contains("stream") &&
                                        obj->at("stream").is_bool() && obj->at("stream").as_bool();
    const std::uint64_t seq = Store(std::move(rec), true);
    const RecordedRequest stored = Lookup(seq);

    Scenario sc;
    if (std::string err = ApplyScenario(spec, sc); !err.empty()) {
      Reply r = ErrorReply(
          seq, 418,
          json::serialize(json::object{{"error", json::object{{"message", "fake server: " + err},
                                                              {"type", "fake_scenario_error"},
                                                              {"param", nullptr},
                                                              {"code", nullptr}}}}));
      co_return co_await Finish(c, r, req);
    }

    if (auto denied = CheckAuth(stored)) {
      co_return co_await Finish(c, Shaped(sc, wants_stream, std::move(*denied)), req);
    }

    if (IsVendor(p)) {
      std::string model;
      const json::object* params = obj;
      ChatPlan flags;
      std::optional<wire::ErrorReply> bad;
      if (p == Profile::kDashScope) {
        flags.ds_multimodal = routed.multimodal;
        bad = wire::DashScopeCheck(body, wants_stream, seq, model, params, flags);
      } else {
        bad = wire::AnthropicCheck(body, stored.has_header("anthropic-version"), seq, model);
      }
      if (bad) {
        Reply r = ErrorReply(seq, bad->status, std::move(bad->body));
        co_return co_await Finish(c, Shaped(sc, wants_stream, std::move(r)), req);
      }
      // DashScope thinking: enable_thinking without reasoning=N yields three reasoning frames;
      // result_format "text" has nowhere to put reasoning.
      if (p == Profile::kDashScope) {
        if (sc.reasoning == 0 && flags.ds_thinking) sc.reasoning = 3;
        if (!flags.ds_message_format) sc.reasoning = 0;
      }
      static const json::object kNoParams;
      ChatPlan plan =
          MakePlan(sc, params != nullptr ? *params : kNoParams, seq, model, wants_stream);
      plan.ds_message_format = flags.ds_message_format;
      plan.ds_incremental = flags.ds_incremental;
      plan.ds_thinking = flags.ds_thinking;
      plan.ds_multimodal = flags.ds_multimodal;
      if (p == Profile::kAnthropic) {
        plan.id = "msg_fake" + std::to_string(seq);
        if (sc.tool_calls > 0) {
          const std::vector<std::string> declared = wire::AnthropicToolNames(*obj);
          for (std::size_t i = 0; i < plan.tool_names.size() && !declared.empty(); ++i) {
            plan.tool_names[i] = declared[i % declared.size()];
          }
        }
      }
      co_return co_await Respond(c, req, plan);
    }

    if (routed.azure_classic) {
      const std::optional<std::string> version = QueryParam(stored.query, "api-version");
      if (!version || version->empty()) {
        // [U] Azure's exact wording; the reference only requires a 400 for a missing version.
        co_return co_await Finish(
            c,
            ErrorReply(
                seq, 400,
                R"({"error":{"code":"BadRequest","message":"Missing or invalid API version parameter 'api-version'. Supported versions include 2024-10-21."}})"),
            req);
      }
    }
    if (obj == nullptr) {
      co_return co_await Finish(
          c,
          ErrorReply(seq, 400,
                     ErrorBody(p, 400,
                               {"We could not parse the JSON body of your request. (HINT: This "
                                "likely means you aren't using your HTTP library correctly.)",
                                "invalid_request_error", nullptr, nullptr})),
          req);
    }
    std::string model;
    if (const json::value* m = obj->if_contains("model"); m != nullptr && m->is_string()) {
      model = std::string(m->get_string());
    }
    if (p == Profile::kAzure) {
      const std::string& deployment = routed.azure_classic ? routed.deployment : model;
      const auto& deps = opts.azure_deployments;
      if (deployment.empty() ||
          (!deps.empty() && std::find(deps.begin(), deps.end(), deployment) == deps.end())) {
        co_return co_await Finish(
            c,
            ErrorReply(
                seq, 404,
                R"({"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}})"),
            req);
      }
      if (model.empty()) model = deployment;  // the classic path needs no `model`
    } else if (model.empty() && p != Profile::kMlx) {
      co_return co_await Finish(c,
                                ErrorReply(seq, 400,
                                           ErrorBody(p, 400,
                                                     {"you must provide a model parameter",
                                                      "invalid_request_error", nullptr, nullptr})),
                                req);
    }
    if (model.empty()) model = "default_model";  // what mlx_lm.server reports
    if (routed.responses) {
      if (auto bad = wire::ResponsesCheck(*obj, seq)) {
        co_return co_await Finish(c, ErrorReply(seq, bad->status, std::move(bad->body)), req);
      }
      ChatPlan plan = MakePlan(sc, *obj, seq, model, wants_stream);
      plan.responses = true;
      co_return co_await Respond(c, req, std::move(plan));
    }
    const json::value* messages = obj->if_contains("messages");
    if (messages == nullptr || !messages->is_array() || messages->get_array().empty()) {
      co_return co_await Finish(
          c,
          ErrorReply(seq, 400,
                     ErrorBody(p, 400,
                               {"Missing required parameter: 'messages'.", "invalid_request_error",
                                "missing_required_parameter", "messages"})),
          req);
    }

    co_return co_await Respond(c, req, MakePlan(sc, *obj, seq, model, wants_stream));
  }

  /// Stall before the first byte, then the scripted outcome: an error status or the response.
  template <class C>
  net::awaitable<Outcome> Respond(C& c, const http::request<http::string_body>& req,
                                  ChatPlan plan) {
    const Scenario& sc = plan.sc;
    const std::uint64_t seq = plan.seq;
    const Profile p = opts.profile;
    // DashScope: data_inspection together with error_in_stream moderates the output mid-stream
    // (see StreamScript) instead of rejecting the input up front.
    const bool inspection_in_stream =
        p == Profile::kDashScope && plan.stream && sc.error_after >= 0;
    if (sc.ttft_ms > 0) {
      const Waited w = co_await Pace(c, milliseconds(sc.ttft_ms));
      if (w != Waited::kElapsed) co_return Gone(w, plan.stream);
    }
    if (sc.hang) {
      for (;;) {
        const Waited w = co_await Pace(c, std::chrono::hours(1));
        if (w != Waited::kElapsed) co_return Gone(w, plan.stream);
      }
    }
    if (sc.content_filter_400) {
      co_return co_await Finish(c, ErrorReply(seq, 400, AzureContentFilterBody()), req);
    }
    if (sc.data_inspection && !inspection_in_stream) {
      co_return co_await Finish(
          c, Shaped(sc, plan.stream, ErrorReply(seq, 400, wire::DashScopeDataInspectionBody(seq))),
          req);
    }
    if (sc.quota || sc.status != 0) {
      co_return co_await Finish(c, Shaped(sc, plan.stream, StatusReply(sc, seq)), req);
    }
    if (sc.html || sc.not_completion || sc.long_line > 0 || sc.content_length || sc.endless ||
        sc.drip_ms > 0) {
      co_return co_await Malformed(c, req, plan);
    }
    if (plan.stream) co_return co_await StreamChat(c, req, plan);
    co_return co_await NonStreamChat(c, req, plan);
  }

  /// A 200 answer that is not what the request asked for (the malformed-answer switches): the
  /// body is chunked unless a Content-Length is declared.
  template <class C>
  net::awaitable<Outcome> Malformed(C& c, const http::request<http::string_body>& req,
                                    const ChatPlan& plan) {
    const Scenario& sc = plan.sc;
    const bool stream = plan.stream;
    auto head = [&](std::string_view content_type) {
      http::response<http::empty_body> res{http::status::ok, req.version()};
      for (const auto& [k, v] : ProfileHeaders(opts.profile, plan.seq)) res.insert(k, v);
      res.set(http::field::content_type, content_type);
      res.keep_alive(req.keep_alive());
      if (sc.content_length) {
        res.content_length(static_cast<std::uint64_t>(*sc.content_length));
      } else {
        res.chunked(true);
      }
      std::ostringstream os;
      os << res.base();
      return std::move(os).str();
    };
    const std::string content_type = stream ? "text/event-stream" : "application/json";
    if (sc.html) {
      Reply r;
      r.headers = ProfileHeaders(opts.profile, plan.seq);
      r.content_type = "text/html; charset=utf-8";
      r.body =
          "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form "
          "action=\"/login\"></form></body></html>";
      co_return co_await Finish(c, std::move(r), req);
    }
    if (sc.not_completion) {
      // Valid JSON, valid SSE, but not a chat completion (a model list, say).
      const std::string list = R"({"object":"list","data":[{"id":"fake-model","object":"model"}]})";
      if (!stream) {
        Reply r;
        r.headers = ProfileHeaders(opts.profile, plan.seq);
        r.body = list;
        co_return co_await Finish(c, std::move(r), req);
      }
      if (!co_await Write(c, head(content_type) + HttpChunk("data: " + list + "\n\n") +
                                 HttpChunk("data: [DONE]\n\n") + "0\r\n\r\n")) {
        CountCut(true);
        co_return Outcome::kClose;
      }
      ++owner.responses_completed_;
      owner.Notify();
      co_return req.keep_alive() ? Outcome::kKeepAlive : Outcome::kClose;
    }
    if (!co_await Write(c, head(content_type))) {
      CountCut(stream);
      co_return Outcome::kClose;
    }
    if (stream) {
      ++owner.streams_started_;
      owner.Notify();
    }
    if (sc.long_line > 0) {
      // One line of long_line bytes (an SSE data line, or a JSON body's string), then a proper end.
      std::string line = stream ? "data: " : R"({"pad":")";
      line.append(static_cast<std::size_t>(sc.long_line), 'x');
      line += stream ? "\n\n" : "\"}";
      for (std::size_t off = 0; off < line.size(); off += 16384) {
        if (!co_await Write(c, HttpChunk(std::string_view(line).substr(off, 16384)))) {
          CountCut(stream);
          co_return Outcome::kClose;
        }
      }
      co_await Write(c, std::string("0\r\n\r\n"));
      ++owner.responses_completed_;
      owner.Notify();
      co_return Outcome::kClose;
    }
    if (sc.content_length) {
      // Fewer bytes than declared, then silence until the client leaves.
      co_await Write(c, std::string(R"({"id":")"));
    } else if (sc.endless) {
      // A body that never ends: SSE comments (a stream) or JSON whitespace, as fast as it is read.
      const std::string filler =
          HttpChunk(stream ? std::string(": keep-alive\n").append(std::string(4080, ' ')) + "\n"
                           : std::string(16384, ' '));
      for (;;) {
        if (stopping) co_return Outcome::kClose;
        if (!co_await Write(c, filler)) break;
      }
      CountCut(stream);
      co_return Outcome::kClose;
    }
    // drip_ms, or a Content-Length never met: one byte every drip_ms until the client leaves.
    const std::string byte = stream ? ":" : " ";
    for (bool newline = false;; newline = !newline) {
      const Waited w = co_await Pace(c, milliseconds(sc.drip_ms > 0 ? sc.drip_ms : 3'600'000));
      if (w != Waited::kElapsed) co_return Gone(w, stream);
      // Built before the call: a conditional expression's temporary as a coroutine argument is
      // a GCC 12 miscompilation (double free).
      std::string piece = stream && newline ? std::string("\n") : byte;
      if (!sc.content_length) piece = HttpChunk(piece);
      if (!co_await Write(c, std::move(piece))) break;
    }
    CountCut(stream);
    co_return Outcome::kClose;
  }

  Outcome Gone(Waited w, bool stream) {
    if (w == Waited::kPeerGone) CountCut(stream);
    return Outcome::kClose;
  }

  /// Sends a complete (error) response to a chat request and counts it.
  template <class C>
  net::awaitable<Outcome> Finish(C& c, Reply r, const http::request<http::string_body>& req) {
    // By value: temporaries bound to a coroutine's reference parameters are a known GCC hazard.
    const bool keep = req.keep_alive() && opts.profile != Profile::kMlx;
    // MLX error replies are close-delimited: http.server writes them without a length.
    if (!co_await Write(
            c, Serialize(r, req.version(), req.keep_alive(), opts.profile != Profile::kMlx))) {
      CountCut(false);
      co_return Outcome::kClose;
    }
    ++owner.responses_completed_;
    owner.Notify();
    co_return keep ? Outcome::kKeepAlive : Outcome::kClose;
  }

  ChatPlan MakePlan(const Scenario& sc, const json::object& obj, std::uint64_t seq,
                    const std::string& model, bool stream) {
    ChatPlan plan;
    plan.sc = sc;
    plan.seq = seq;
    plan.id = "chatcmpl-fake" + std::to_string(seq);
    plan.created = static_cast<std::int64_t>(std::time(nullptr));
    plan.model = model;
    plan.stream = stream;
    if (const json::value* so = obj.if_contains("stream_options");
        so != nullptr && so->is_object()) {
      const json::object& o = so->get_object();
      if (const json::value* u = o.if_contains("include_usage"); u != nullptr && u->is_bool()) {
        plan.include_usage = u->as_bool();
      }
      plan.obfuscation = sc.obfuscation;
      if (const json::value* ob = o.if_contains("include_obfuscation");
          ob != nullptr && ob->is_bool() && !ob->as_bool()) {
        plan.obfuscation = false;
      }
    } else {
      plan.obfuscation = sc.obfuscation;
    }

    std::string text;
    {
      std::lock_guard lock(owner.mu_);
      text = owner.text_;
    }
    if (!text.empty()) {
      std::size_t start = 0;
      while (start <= text.size()) {
        const std::size_t sp = text.find(' ', start);
        const std::string word =
            text.substr(start, sp == std::string::npos ? std::string::npos : sp - start);
        plan.pieces.push_back(plan.pieces.empty() ? word : " " + word);
        if (sp == std::string::npos) break;
        start = sp + 1;
      }
    } else {
      const int n = sc.tokens >= 0 ? sc.tokens : opts.default_tokens;
      for (int i = 0; i < n; ++i)
        plan.pieces.push_back((i == 0 ? "tok" : " tok") + std::to_string(i));
    }
    // Honour the request's cap the way a real model does: stop early with "length".
    for (const char* key : {"max_completion_tokens", "max_tokens", "max_output_tokens"}) {
      const json::value* v = obj.if_contains(key);
      if (v == nullptr || !v->is_int64()) continue;
      const std::int64_t cap = v->as_int64();
      if (cap >= 0 && static_cast<std::size_t>(cap) < plan.pieces.size()) {
        plan.pieces.resize(static_cast<std::size_t>(cap));
        plan.finish = "length";
      }
      break;
    }
    plan.reasoning_field =
        sc.reasoning_field ? *sc.reasoning_field : DefaultReasoningField(opts.profile);
    if (sc.tool_calls > 0) {
      plan.finish = "tool_calls";
      plan.pieces.clear();
      std::vector<std::string> declared;
      if (const json::value* tools = obj.if_contains("tools");
          tools != nullptr && tools->is_array()) {
        for (const json::value& t : tools->get_array()) {
          const json::value* fn = t.is_object() ? t.get_object().if_contains("function") : nullptr;
          if (fn == nullptr) fn = &t;  // the Responses API's flat {type, name, parameters}
          const json::value* name =
              fn->is_object() ? fn->get_object().if_contains("name") : nullptr;
          if (name != nullptr && name->is_string()) declared.emplace_back(name->get_string());
        }
      }
      for (int i = 0; i < sc.tool_calls; ++i) {
        plan.tool_names.push_back(declared.empty()
                                      ? "get_weather"
                                      : declared[static_cast<std::size_t>(i) % declared.size()]);
      }
    }
    if (sc.finish) plan.finish = *sc.finish;
    plan.prompt_tokens = opts.prompt_tokens;
    plan.completion_tokens = wire::CompletionTokens(plan);
    return plan;
  }

  // ---- non-streaming
  // ------------------------------------------------------------------------------

  std::string NonStreamBody(const ChatPlan& plan) const {
    if (plan.responses) return wire::ResponsesBody(plan);
    switch (opts.profile) {
      case Profile::kDashScope:
        return wire::DashScopeBody(plan);
      case Profile::kAnthropic:
        return wire::AnthropicBody(plan);
      case Profile::kOpenAi:
      case Profile::kAzure:
      case Profile::kVllm:
      case Profile::kLlamaCpp:
      case Profile::kSglang:
      case Profile::kMlx:
        break;
    }
    return wire::OpenAiBody(opts.profile, plan);
  }
  template <class C>
  net::awaitable<Outcome> NonStreamChat(C& c, const http::request<http::string_body>& req,
                                        const ChatPlan& plan) {
    const Scenario& sc = plan.sc;
    if (sc.delay_ms > 0) {
      // Generation time: a non-streaming answer arrives after all tokens were produced.
      const int n = std::max(1, plan.completion_tokens);
      const Waited w = co_await Pace(c, milliseconds(static_cast<long>(sc.delay_ms) * n));
      if (w != Waited::kElapsed) co_return Gone(w, false);
    }
    Reply r;
    r.headers = ProfileHeaders(opts.profile, plan.seq);
    r.body = NonStreamBody(plan);
    const int cut = sc.close_after >= 0 ? sc.close_after : sc.reset_after;
    if (cut >= 0 || sc.garbage_after >= 0) {
      // A body that ends early: either the connection dies mid-body, or (garbage) the bytes
      // are all there but are not JSON.
      const std::string full = Serialize(r, req.version(), req.keep_alive());
      const std::size_t header_end = full.find("\r\n\r\n") + 4;
      const std::size_t cut_at = header_end + r.body.size() / 2;
      if (cut < 0) {
        Reply g = r;
        g.body = r.body.substr(0, r.body.size() / 2);
        co_return co_await Finish(c, g, req);
      }
      co_await Write(c, full.substr(0, cut_at));
      ++owner.streams_cut_by_server_;
      owner.Notify();
      co_return sc.reset_after >= 0 ? Outcome::kReset : Outcome::kClose;
    }
    const bool keep = req.keep_alive() && opts.profile != Profile::kMlx;
    if (!co_await Write(c, Serialize(r, req.version(), req.keep_alive()))) {
      CountCut(false);
      co_return Outcome::kClose;
    }
    ++owner.responses_completed_;
    owner.Notify();
    co_return keep ? Outcome::kKeepAlive : Outcome::kClose;
  }

  // ---- streaming ------------------------------------------------------------------------------

  StreamScript OpenAiScript(const ChatPlan& plan) const {
    return wire::OpenAiStream(opts.profile, plan);
  }

  StreamScript Script(const ChatPlan& plan) const {
    if (plan.responses) return wire::ResponsesStream(plan);
    switch (opts.profile) {
      case Profile::kDashScope:
        return wire::DashScopeStream(plan);
      case Profile::kAnthropic:
        return wire::AnthropicStream(plan);
      case Profile::kOpenAi:
      case Profile::kAzure:
      case Profile::kVllm:
      case Profile::kLlamaCpp:
      case Profile::kSglang:
      case Profile::kMlx:
        break;
    }
    return OpenAiScript(plan);
  }

  /// Writes one SSE event: one write (or, with `split`, several) per event, each completing
  /// before the next so every event leaves as its own segment. Returns false if the peer left.
  template <class C>
  net::awaitable<bool> WriteEvent(C& c, const ChatPlan& plan, const std::string& event) {
    const bool chunked = opts.profile != Profile::kMlx;
    auto wrap = [chunked](std::string_view piece) {
      return chunked ? HttpChunk(piece) : std::string(piece);
    };
    const int split = plan.sc.split;
    if (split == 0 || event.size() < 2) co_return co_await Write(c, wrap(event));
    const std::size_t step = split > 0 ? static_cast<std::size_t>(split) : (event.size() + 1) / 2;
    for (std::size_t off = 0; off < event.size(); off += step) {
      if (!co_await Write(c, wrap(std::string_view(event).substr(off, step)))) co_return false;
      if (split < 0 && off == 0) {
        // Let the first half arrive on its own so the reader really sees a partial event.
        const Waited w = co_await Pace(c, milliseconds(1));
        if (w != Waited::kElapsed) co_return false;
      }
    }
    co_return true;
  }

  /// Scripted failures at a checkpoint: right before the next delta event, or before the finish
  /// chunk, once `deltas` delta events are out. Returns how the stream ends, if it does.
  template <class C>
  net::awaitable<std::optional<Outcome>> MaybeFail(C& c, const ChatPlan& plan,
                                                   const StreamScript& script, int deltas,
                                                   bool& garbage_done) {
    const Scenario& sc = plan.sc;
    const bool mlx = opts.profile == Profile::kMlx;
    if (!garbage_done && sc.garbage_after == deltas) {
      garbage_done = true;
      if (!co_await WriteEvent(c, plan, script.garbage_frame)) {
        CountCut(true);
        co_return Outcome::kClose;
      }
    }
    std::optional<Outcome> end;
    if (sc.error_after == deltas) {
      // The error frame is a complete event and the HTTP body is terminated properly: the
      // failure is in the payload, as with a real 200-then-error stream.
      if (!co_await WriteEvent(c, plan, script.error_frame)) {
        CountCut(true);
        co_return Outcome::kClose;
      }
      if (!mlx) co_await Write(c, std::string("0\r\n\r\n"));
      end = Outcome::kClose;
    } else if (sc.close_after == deltas) {
      end = Outcome::kClose;
    } else if (sc.reset_after == deltas) {
      end = Outcome::kReset;
    }
    if (end) {
      ++owner.streams_cut_by_server_;
      owner.Notify();
    }
    co_return end;
  }

  template <class C>
  net::awaitable<Outcome> StreamChat(C& c, const http::request<http::string_body>& req,
                                     const ChatPlan& plan) {
    const Scenario& sc = plan.sc;
    const bool mlx = opts.profile == Profile::kMlx;
    http::response<http::empty_body> res{http::status::ok, mlx ? 10U : req.version()};
    for (const auto& [k, v] : ProfileHeaders(opts.profile, plan.seq)) res.insert(k, v);
    const StreamScript script = Script(plan);
    res.set(http::field::content_type, script.content_type);
    res.set(http::field::cache_control, "no-cache");
    const bool keep = req.keep_alive() && !mlx;
    res.keep_alive(keep);
    // MLX (HTTP/1.0) has no chunked encoding: the body simply runs until the socket closes.
    if (!mlx) res.chunked(true);
    std::ostringstream os;
    os << res.base();
    if (!co_await Write(c, std::move(os).str())) {
      CountCut(true);
      co_return Outcome::kClose;
    }
    ++owner.streams_started_;
    owner.Notify();

    int deltas = 0;
    bool garbage_done = false;
    for (const Event& e : script.events) {
      if (e.kind == EventKind::kDelta || e.kind == EventKind::kFinish) {
        const std::optional<Outcome> end =
            co_await MaybeFail(c, plan, script, deltas, garbage_done);
        if (end) co_return *end;
      }
      if (e.kind == EventKind::kDelta && sc.delay_ms > 0) {
        const Waited w = co_await Pace(c, milliseconds(sc.delay_ms));
        if (w != Waited::kElapsed) co_return Gone(w, true);
      }
      if (!co_await WriteEvent(c, plan, e.bytes)) {
        CountCut(true);
        co_return Outcome::kClose;
      }
      if (e.kind == EventKind::kDelta) ++deltas;
    }
    bool ok = script.done.empty() || co_await WriteEvent(c, plan, script.done);
    if (ok && !mlx) ok = co_await Write(c, std::string("0\r\n\r\n"));
    if (!ok) {
      CountCut(true);
      co_return Outcome::kClose;
    }
    ++owner.streams_completed_;
    ++owner.responses_completed_;
    owner.Notify();
    co_return keep ? Outcome::kKeepAlive : Outcome::kClose;
  }
};

// ---------------------------------------------------------------------------------------------
// Public API

std::string_view ProfileName(Profile profile) {
  switch (profile) {
    case Profile::kOpenAi:
      return "openai";
    case Profile::kAzure:
      return "azure";
    case Profile::kVllm:
      return "vllm";
    case Profile::kLlamaCpp:
      return "llamacpp";
    case Profile::kSglang:
      return "sglang";
    case Profile::kMlx:
      return "mlx";
    case Profile::kDashScope:
      return "dashscope";
    case Profile::kAnthropic:
      return "anthropic";
  }
  return "unknown";
}

std::string RecordedRequest::header(std::string_view name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? std::string() : it->second;
}

bool RecordedRequest::has_header(std::string_view name) const {
  return headers.contains(Lower(name));
}

FakeOpenAiServer::FakeOpenAiServer(FakeServerOptions options) : options_(std::move(options)) {
  if (std::string err = ValidateScenario(options_.default_scenario); !err.empty()) {
    throw std::invalid_argument(err);
  }
  text_ = options_.text;
  impl_ = std::make_unique<Impl>(*this);
  impl_->Start();
}

FakeOpenAiServer::~FakeOpenAiServer() {
  Stop();
}

void FakeOpenAiServer::Stop() {
  if (impl_) impl_->Stop();
}

std::string FakeOpenAiServer::origin() const {
  return std::string(options_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

std::string FakeOpenAiServer::base_url() const {
  switch (options_.profile) {
    case Profile::kAzure:
      return origin() + "/openai/v1";
    case Profile::kDashScope:
      return origin() + "/api/v1";
    case Profile::kAnthropic:
      return origin();  // the Anthropic SDKs append /v1/messages themselves
    case Profile::kOpenAi:
    case Profile::kVllm:
    case Profile::kLlamaCpp:
    case Profile::kSglang:
    case Profile::kMlx:
      break;
  }
  return origin() + "/v1";
}

std::string FakeOpenAiServer::api_key() const {
  if (options_.profile == Profile::kMlx) return {};
  if (options_.api_key) return *options_.api_key;
  return IsLocal(options_.profile) ? std::string() : std::string(kDefaultApiKey);
}

std::string FakeOpenAiServer::ValidateScenario(std::string_view spec) {
  Scenario s;
  return ApplyScenario(spec, s);
}

void FakeOpenAiServer::SetScenario(std::string spec) {
  if (std::string err = ValidateScenario(spec); !err.empty()) throw std::invalid_argument(err);
  std::lock_guard lock(mu_);
  sticky_scenario_ = std::move(spec);
}

void FakeOpenAiServer::PushScenario(std::string spec, int count) {
  if (std::string err = ValidateScenario(spec); !err.empty()) throw std::invalid_argument(err);
  std::lock_guard lock(mu_);
  for (int i = 0; i < count; ++i) oneshot_scenarios_.push_back(spec);
}

void FakeOpenAiServer::ClearScenarios() {
  std::lock_guard lock(mu_);
  sticky_scenario_.clear();
  oneshot_scenarios_.clear();
}

void FakeOpenAiServer::SetText(std::string text) {
  std::lock_guard lock(mu_);
  text_ = std::move(text);
}

void FakeOpenAiServer::SetHealthy(bool healthy) {
  std::lock_guard lock(mu_);
  healthy_ = healthy;
}

std::vector<RecordedRequest> FakeOpenAiServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::optional<RecordedRequest> FakeOpenAiServer::last_request() const {
  std::lock_guard lock(mu_);
  if (requests_.empty()) return std::nullopt;
  return requests_.back();
}

std::string FakeOpenAiServer::last_request_body() const {
  std::lock_guard lock(mu_);
  return requests_.empty() ? std::string() : requests_.back().body;
}

boost::json::value FakeOpenAiServer::last_request_json() const {
  boost::system::error_code ec;
  json::value v = json::parse(last_request_body(), ec);
  return ec ? json::value(nullptr) : v;
}

int FakeOpenAiServer::request_count() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(requests_.size());
}

bool FakeOpenAiServer::WaitFor(const std::function<bool()>& pred,
                               std::chrono::milliseconds timeout) const {
  std::unique_lock lock(wait_mu_);
  return wait_cv_.wait_for(lock, timeout, pred);
}

void FakeOpenAiServer::Notify() const {
  // Taking wait_mu_ orders the state change before a waiter's predicate check, so a wake-up
  // between "predicate false" and "start waiting" cannot be lost.
  { std::lock_guard lock(wait_mu_); }
  wait_cv_.notify_all();
}

void FakeOpenAiServer::ResetObservations() {
  {
    std::lock_guard lock(mu_);
    requests_.clear();
  }
  for (std::atomic<int>* c : {&connections_accepted_, &requests_started_, &responses_completed_,
                              &streams_started_, &streams_completed_, &streams_cut_by_client_,
                              &requests_cut_by_client_, &streams_cut_by_server_}) {
    c->store(0);
  }
  Notify();
}

std::string FakeOpenAiServer::TokenText(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += (i == 0 ? "tok" : " tok") + std::to_string(i);
  return out;
}

std::string FakeOpenAiServer::ReasoningText(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += (i == 0 ? "think" : " think") + std::to_string(i);
  return out;
}

std::string FakeOpenAiServer::ToolArguments(int index) {
  static constexpr const char* kCities[] = {"Boston, MA", "Paris", "Tokyo"};
  const std::size_t city = static_cast<std::size_t>(index < 0 ? 0 : index) % std::size(kCities);
  return std::string(R"({"location":")") + kCities[city] + R"(","unit":"celsius"})";
}

// ---------------------------------------------------------------------------------------------
// Shared by the vendor encoders (fake_vendor_wire.h)

namespace wire {

std::string SseEvent(const Scenario& sc, const std::vector<std::string>& lines) {
  const std::string_view eol = sc.crlf ? "\r\n" : "\n";
  std::string out;
  if (sc.comment) {
    out += ": fake-comment";
    out += eol;
  }
  for (const std::string& line : lines) {
    out += line;
    out += eol;
  }
  out += eol;
  return out;
}

std::string DataLine(const Scenario& sc, std::string_view payload, bool space) {
  std::string out = space && !sc.no_space ? "data: " : "data:";
  out += payload;
  return out;
}

std::vector<std::string> ToolFragments(const std::string& args) {
  // Fragment boundaries fall inside keys and string values, like the real thing.
  std::vector<std::string> out;
  for (std::size_t i = 0; i < args.size(); i += 7) out.push_back(args.substr(i, 7));
  return out;
}

int CompletionTokens(const ChatPlan& plan) {
  int tool_tokens = 0;
  for (std::size_t i = 0; i < plan.tool_names.size(); ++i) {
    tool_tokens += static_cast<int>(
        ToolFragments(FakeOpenAiServer::ToolArguments(static_cast<int>(i))).size());
  }
  return static_cast<int>(plan.pieces.size()) + plan.sc.reasoning + tool_tokens;
}

}  // namespace wire
}  // namespace meridian::fakes
