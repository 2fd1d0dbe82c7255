#include "gateway/http/server.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <type_traits>

#include "gateway/admin_auth.h"
#include "gateway/classifier.h"
#include "gateway/console.h"
#include "gateway/core/json_text.h"
#include "gateway/exchange.h"
#include "gateway/gateway_metrics.h"
#include "gateway/http/chat_request.h"
#include "gateway/http/chat_response.h"
#include "gateway/http/completions_request.h"
#include "gateway/http/completions_response.h"
#include "gateway/http/embeddings_request.h"
#include "gateway/http/embeddings_response.h"
#include "gateway/http/error_mapping.h"
#include "gateway/http/messages_request.h"
#include "gateway/http/messages_response.h"
#include "gateway/http/responses_request.h"
#include "gateway/http/responses_response.h"
#include "gateway/log.h"
#include "gateway/meter.h"
#include "gateway/pipeline.h"
#include "gateway/router.h"
#include "gateway/runtime.h"
#include "policy/explain.h"

namespace meridian::http {

// The front end is built on the gateway's shared layer (exchange, runtime, pipeline, state).
using namespace meridian::gateway;  // NOLINT(google-build-using-namespace)
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace codec = meridian::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using Headers = std::vector<std::pair<std::string, std::string>>;

namespace {

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Appends one HTTP/1.1 chunk holding `data`.
/// RFC 9112 framing rules Beast leaves to us: exactly one Host in HTTP/1.1 (at most one in
/// 1.0, §3.2), and chunked as the only transfer coding (§6.1: anything else is 501; a
/// request smuggled with codings the gateway does not decode is never guessed at).
core::Status CheckFraming(const bhttp::request_header<>& head) {
  const std::size_t hosts = head.count(bhttp::field::host);
  if (hosts > 1 || (hosts == 0 && head.version() >= 11)) {
    return core::Status::Error(
        core::StatusCode::kInvalidArgument,
        hosts > 1 ? "a request must carry one Host header, not " + std::to_string(hosts)
                  : "an HTTP/1.1 request must carry a Host header",
        "bad_request");
  }
  const std::size_t codings = head.count(bhttp::field::transfer_encoding);
  if (codings > 0) {
    const auto v = head[bhttp::field::transfer_encoding];
    std::string_view value(v.data(), v.size());
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (codings > 1 || !beast::iequals(value, "chunked")) {
      return core::Status::Error(core::StatusCode::kNotImplemented,
                                 "Transfer-Encoding '" + std::string(value.substr(0, 64)) +
                                     "' is not supported; send the body as is or chunked",
                                 "unsupported_transfer_encoding");
    }
  }
  return core::Status::Ok();
}

/// The path of a request target: origin-form as it is; absolute-form
/// ("http://gateway:8080/v1/models?x", RFC 9112 §3.2.2, which a server must accept) without
/// its scheme and authority; the query is dropped.
std::string_view TargetPath(std::string_view target) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() && beast::iequals(target.substr(0, scheme.size()), scheme)) {
      const std::size_t slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      break;
    }
  }
  return target.substr(0, target.find('?'));
}

/// Every copy of header `name`, in arrival order (duplicates are resolved, never first-wins).
std::vector<std::string_view> Copies(const bhttp::fields& fields, std::string_view name) {
  std::vector<std::string_view> out;
  for (auto [it, end] = fields.equal_range(name); it != end; ++it) {
    out.emplace_back(it->value().data(), it->value().size());
  }
  return out;
}

/// `s` with its %XX escapes decoded (RFC 3986 §2.1); nullopt for a malformed escape.
std::optional<std::string> PercentDecoded(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;  // needs two hex digits
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

/// The API's paths (CORS applies to these, never to the probes or /metrics).
bool IsApiPath(std::string_view path) {
  return path.starts_with("/v1/") || path == "/chat/completions" || path == "/completions" ||
         path == "/responses" || path == "/embeddings" || path == "/models" ||
         path.starts_with("/models/");
}

/// The response headers a page on an allowed origin may read.
constexpr const char* kExposedHeaders =
    "x-request-id, x-meridian-policy-version, x-meridian-policy-rule, "
    "x-meridian-policy-guards, x-meridian-provider, x-meridian-data-class-raised, retry-after";

/// A comma-separated list of header names (Access-Control-Request-Headers), each a token.
bool IsHeaderNameList(std::string_view list) {
  bool any = false;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (name.empty()) continue;
    for (char c : name) {
      const bool token = std::isalnum(static_cast<unsigned char>(c)) != 0 ||
                         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
      if (!token) return false;
    }
    any = true;
  }
  return any || list.empty();
}

/// Runs `f` on the `control` executor and resumes the caller on `home` with its result: the
/// caller's coroutine is never resumed on the control thread.
template <class F, class R = std::invoke_result_t<F&>>
asio::awaitable<R> OnControlThread(asio::any_io_executor control, asio::any_io_executor home, F f) {
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
      [control, home, f = std::move(f)](auto handler) mutable {
        asio::post(control, [home, f = std::move(f), handler = std::move(handler)]() mutable {
          R r = f();
          asio::post(home, [handler = std::move(handler), r = std::move(r)]() mutable {
            std::move(handler)(std::move(r));
          });
        });
      },
      asio::use_awaitable);
}

void AppendChunk(std::string& out, std::string_view data) {
  if (data.empty()) return;
  char size[24];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  out.append(size, static_cast<std::size_t>(n));
  out.append(data);
  out.append("\r\n");
}

}  // namespace

/// One worker's share of the HTTP front end: its listeners, on the worker's io_context. Its
/// connections run there too, with the worker's adapters.
class HttpWorker {
 public:
  HttpWorker(GatewayState& state, WorkerContext& worker, std::shared_ptr<ssl::context> server_tls)
      : state_(state),
        worker_(worker),
        acceptor_(std::make_unique<tcp::acceptor>(worker.executor())),
        server_tls_(std::move(server_tls)) {}

  core::Status Listen(const tcp::endpoint& endpoint) { return Open(*acceptor_, endpoint); }
  /// The admin listener (one worker only; plain HTTP, operations routes only).
  core::Status ListenAdmin(const tcp::endpoint& endpoint) {
    admin_acceptor_ = std::make_unique<tcp::acceptor>(worker_.executor());
    return Open(*admin_acceptor_, endpoint);
  }
  unsigned short port() const { return acceptor_->local_endpoint().port(); }
  unsigned short admin_port() const {
    return admin_acceptor_ ? admin_acceptor_->local_endpoint().port() : 0;
  }

  static core::Status Open(tcp::acceptor& acceptor, const tcp::endpoint& endpoint) {
    beast::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) {
      const int one = 1;
      if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        ec = beast::error_code(errno, boost::system::system_category());
      }
    }
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return core::Status::Error(core::StatusCode::kInternal,
                                 "cannot listen on " + endpoint.address().to_string() + ":" +
                                     std::to_string(endpoint.port()) + ": " + ec.message());
    }
    return core::Status::Ok();
  }

  void Start() {
    asio::co_spawn(worker_.executor(), Accept(*acceptor_, false), asio::detached);
    if (admin_acceptor_) {
      asio::co_spawn(worker_.executor(), Accept(*admin_acceptor_, true), asio::detached);
    }
  }
  /// Closes the listeners on the worker's thread: the public one (a drain starts; the admin
  /// listener stays up for probes), or both (the gateway stops).
  void Close(bool admin_too) {
    asio::post(worker_.executor(), [this, admin_too] {
      beast::error_code ec;
      acceptor_->close(ec);
      if (admin_too && admin_acceptor_) admin_acceptor_->close(ec);
    });
  }

 private:
  asio::awaitable<void> Accept(tcp::acceptor& acceptor, bool admin);

  GatewayState& state_;
  WorkerContext& worker_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<tcp::acceptor> admin_acceptor_;
  std::shared_ptr<ssl::context> server_tls_;
};

namespace {

/// Shared between a request and the coroutine watching its client for a disconnect.
struct DisconnectWatch {
  Cancellation cancel;  ///< the exchange's: the client's disconnect cancels it (kClient)
  asio::cancellation_signal stop;
  bool http11 = false;  ///< the request is HTTP/1.1: a 1xx may be sent before the answer
  char peek = 0;        ///< the watch's receive buffer (MSG_PEEK: never consumed)
};

/// Sent to a client that half-closed before its answer started, to tell a half-close (the
/// client still reads: it skips the interim response, RFC 9110 §15.2) from a client that is
/// gone (its kernel answers the bytes with a reset).
constexpr std::string_view kHalfCloseProbe = "HTTP/1.1 100 Continue\r\n\r\n";

/// Appends `name: value` CRLF lines: the response heads are formatted by hand (see Send).
void AppendFields(std::string& out, const Headers& headers) {
  for (const auto& [k, v] : headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
}

/// After the drain deadline, how often a request still running is checked for a write blocked
/// on a client that stopped reading (Session::CutWhenBlocked).
constexpr std::chrono::milliseconds kDrainCutCheck{100};

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(GatewayState& state, WorkerContext& worker, Stream stream, tcp::endpoint peer,
          bool admin = false)
      : admin_(admin),
        worker_(worker),
        state_(state),
        limits_(state_.config.limits),
        stream_(std::move(stream)),
        peer_(std::move(peer)) {}

  asio::awaitable<void> Run();

 private:
  tcp::socket& Socket() { return beast::get_lowest_layer(stream_).socket(); }
  void Expire(std::chrono::milliseconds after) {
    beast::get_lowest_layer(stream_).expires_after(after);
  }

  asio::awaitable<bool> Handshake();
  asio::awaitable<bool> Handle(Request& req, const std::string& request_id);
  /// POST /v1/chat/completions (Api = ChatApi) or /v1/responses (ResponsesApi): identify,
  /// decode, then the exchange, answered in the API's shape.
  template <class Api>
  asio::awaitable<bool> HandleCompletion(Request& req, Headers& headers);
  /// The caller of an API request: tenant (one known credential), region from trusted
  /// sources, declared data class and consent, traceparent.
  core::Status Identify(const Request& req, const RoutingTable& table, CallerContext& caller);
  /// GET /v1/models (`rest` empty) or /v1/models/{id} (`rest` = "/{id}", percent-encoded).
  asio::awaitable<bool> HandleModels(Request& req, std::string_view rest, Headers& headers);
  /// A CORS preflight for `path` from an origin that `allowed` says may call the API.
  asio::awaitable<bool> Preflight(const Request& req, std::string_view path, bool allowed,
                                  Headers& headers);
  /// GET /admin/console[/FILE] and /admin/api/*: the operator console (gateway/console.h).
  asio::awaitable<bool> HandleConsole(std::string_view target, std::string_view path,
                                      Headers& headers, bool keep_alive);
  /// GET /admin/meter[?year=YYYY]: the export meter of every tenant (MeterReportJson).
  asio::awaitable<bool> HandleMeter(std::string_view target, Headers& headers, bool keep_alive);
  /// The caller's tenant from its API key (one credential, known); sets access_.tenant.
  core::Status Authenticate(const Request& req, const identity::Tenant*& tenant,
                            std::string* key_id = nullptr);
  asio::awaitable<bool> SendError(const core::Status& status, Headers headers, bool keep_alive);
  /// `status` as `e` renders it (an API's own error shape).
  asio::awaitable<bool> SendError(const core::Status& status, codec::HttpError e, Headers headers,
                                  bool keep_alive);
  asio::awaitable<bool> Send(unsigned status, std::string body, std::string_view content_type,
                             const Headers& headers, bool keep_alive);
  asio::awaitable<bool> WriteRaw(const std::string& bytes);
  void WatchDisconnect(std::shared_ptr<DisconnectWatch> watch);
  /// After the client's FIN: the connection may only be half-closed, so the request goes on
  /// and is cancelled only once the socket reports an error (the reset a gone client's kernel
  /// sends back for the next bytes written).
  void WatchReset(std::shared_ptr<DisconnectWatch> watch);
  /// Awaits `read` (a header or body read of the request) under `budget`. Unlike the stream's
  /// own timeout, which closes the socket, the deadline only cancels the read, so a client
  /// that was too slow can still be told so (408). Returns the read's error code;
  /// read_timed_out_ says whether the deadline ended it.
  template <class Read>
  asio::awaitable<beast::error_code> ReadWithin(std::chrono::milliseconds budget, Read read);
  void CutWhenBlocked(std::weak_ptr<DisconnectWatch> watch);
  void Count(unsigned status) {
    if (admin_) {
      // Operations traffic (probes, scrapes, reloads) is not tenant traffic: its own counter,
      // so a load balancer's probes during a drain are not public 5xx.
      if (state_.metrics) state_.metrics->RecordAdmin(admin_route_, status);
      return;
    }
    auto& c = state_.counters;
    (status < 300   ? c.responses_2xx
     : status < 500 ? c.responses_4xx
                    : c.responses_5xx)
        .fetch_add(1, std::memory_order_relaxed);
  }

  // The completion writer writes the answer on this session's stream and records what the
  // access line says; nothing else reaches the members below.
  template <class S, class A>
  friend class CompletionWriter;

  bool admin_;  ///< the admin listener: operations routes only
  /// The admin route being answered, as meridian_admin_requests_total's path label.
  std::string_view admin_route_ = "other";
  WorkerContext& worker_;
  GatewayState& state_;
  const config::LimitsConfig& limits_;
  Stream stream_;
  tcp::endpoint peer_;
  beast::flat_buffer buffer_;
  bool idle_ = false;                  ///< waiting for the next request on a keep-alive connection
  bool answer_started_ = false;        ///< bytes of the current request's answer were written
  std::uint64_t read_generation_ = 0;  ///< which ReadWithin a deadline belongs to
  bool read_timed_out_ = false;        ///< the current ReadWithin's deadline passed
  core::RequestId request_id_;         ///< of the request being read or answered
  /// What the access log line of the current request says.
  struct Access {
    std::chrono::steady_clock::time_point start;
    unsigned status = 0;
    std::string tenant, reason, provider;
    std::optional<double> ttft_ms;
  } access_;
  /// The tenants the current request was authenticated against (Authenticate): owns the
  /// tenant it found, and is handed to the exchange with the caller.
  IdentitiesPtr identities_;
  double SinceStartMs() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                     access_.start)
        .count();
  }
  std::shared_ptr<DisconnectWatch> active_;  ///< the completion in progress, if any
};

/// What an ingress API adds to the HTTP completion writer: its SSE events (an encoder with
/// Encode / Done / Error, and Start when the stream opens with events of its own), its JSON
/// body (Render), its error shape (ToError: OpenAI's unless it says otherwise) and its decoder
/// (Decode, which also sets the API up for the request).
template <class Encoder>
struct StreamingApi {
  std::optional<Encoder> stream;  ///< streams only

  static codec::HttpError ToError(const core::Status& s) { return codec::ToHttpError(s); }
  void Open(std::string& out) {
    if constexpr (requires(Encoder & e, std::string & o) { e.Start(o); }) stream->Start(out);
  }
  void Encode(const core::Chunk& c, std::string& out) { stream->Encode(c, out); }
  void Done(std::string& out) { stream->Done(out); }
  void Error(const core::Status& s, std::string& out) { stream->Error(s, out); }
};

/// Chat Completions (`data:` chunks, then [DONE]):
struct ChatApi : StreamingApi<codec::ChatStreamEncoder> {
  std::string id;  ///< "chatcmpl-<request id>"
  std::string model;

  static core::Status Decode(std::string_view body, const core::RequestId& id,
                             core::CompletionRequest& request, ChatApi& api) {
    if (auto st = codec::DecodeChatRequest(body, request); !st.ok()) return st;
    api.id = "chatcmpl-" + id.text;
    api.model = request.model;
    if (request.stream) api.stream.emplace(api.id, UnixNow(), request.model, request.include_usage);
    return core::Status::Ok();
  }
  std::string Render(const core::Completion& answer) const {
    return codec::RenderChatCompletion(answer, id, UnixNow(), model);
  }
};

/// The Responses API (`event:` + `data:` events, response.created ... response.completed):
struct ResponsesApi : StreamingApi<codec::ResponsesStreamEncoder> {
  codec::ResponseHead head;

  static core::Status Decode(std::string_view body, const core::RequestId& id,
                             core::CompletionRequest& request, ResponsesApi& api) {
    codec::ResponsesRequest decoded;
    if (auto st = codec::DecodeResponsesRequest(body, decoded); !st.ok()) return st;
    // "resp_<hex>", items "msg_<hex>_<n>": the request id's family.
    api.head.id = "resp_" + std::string(id.Hex());
    api.head.item_base = std::string(id.Hex());
    api.head.created_at = UnixNow();
    api.head.model = decoded.completion.model;
    api.head.echo = std::move(decoded.echo);
    if (decoded.completion.stream) api.stream.emplace(api.head);
    request = std::move(decoded.completion);
    return core::Status::Ok();
  }
  /// response.created waits for the first chunk: OpenAI's own events bring theirs.
  void Open(std::string&) {}
  std::string Render(const core::Completion& answer) const {
    return codec::RenderResponse(head, answer);
  }
};

/// The legacy Completions API (`text_completion` events, then [DONE]):
struct CompletionsApi : StreamingApi<codec::CompletionsStreamEncoder> {
  std::string id;  ///< "cmpl-<request id>"
  std::string model;

  static core::Status Decode(std::string_view body, const core::RequestId& id,
                             core::CompletionRequest& request, CompletionsApi& api) {
    if (auto st = codec::DecodeCompletionsRequest(body, request); !st.ok()) return st;
    api.id = "cmpl-" + std::string(id.Hex());
    api.model = request.model;
    if (request.stream) api.stream.emplace(api.id, UnixNow(), request.model, request.include_usage);
    return core::Status::Ok();
  }
  std::string Render(const core::Completion& answer) const {
    return codec::RenderTextCompletion(answer, id, UnixNow(), model);
  }
};

/// The Anthropic Messages API (message_start ... message_stop; Anthropic's error shape):
struct MessagesApi : StreamingApi<codec::MessagesStreamEncoder> {
  codec::MessageHead head;

  static core::Status Decode(std::string_view body, const core::RequestId& id,
                             core::CompletionRequest& request, MessagesApi& api) {
    if (auto st = codec::DecodeMessagesRequest(body, request); !st.ok()) return st;
    api.head.id = "msg_" + std::string(id.Hex());
    api.head.model = request.model;
    if (request.stream) api.stream.emplace(api.head);
    return core::Status::Ok();
  }
  static codec::HttpError ToError(const core::Status& s) { return codec::ToAnthropicError(s); }
  /// message_start waits for the first chunk: an Anthropic upstream's own events bring theirs.
  void Open(std::string&) {}
  std::string Render(const core::Completion& answer) const {
    return codec::RenderMessage(head, answer);
  }
};

/// The Embeddings API: one JSON body, never a stream (its decoder never sets `stream`, so the
/// writer's stream methods are never called).
struct EmbeddingsApi {
  std::string model;
  bool base64 = false;

  static core::Status Decode(std::string_view body, const core::RequestId& id,
                             core::CompletionRequest& request, EmbeddingsApi& api) {
    (void)id;
    if (auto st = codec::DecodeEmbeddingsRequest(body, request); !st.ok()) return st;
    api.model = request.model;
    api.base64 = request.embedding.base64;
    return core::Status::Ok();
  }
  static codec::HttpError ToError(const core::Status& s) { return codec::ToHttpError(s); }
  std::string Render(const core::Completion& answer) const {
    return codec::RenderEmbeddings(answer, model, base64);
  }
  void Open(std::string&) {}
  void Encode(const core::Chunk&, std::string&) {}
  void Done(std::string&) {}
  void Error(const core::Status&, std::string&) {}
};

/// Writes one completion's answer on its session, in the shape `Api` gives it: SSE over
/// chunked transfer encoding (an HTTP/1.0 client gets the events as they are, and the end of
/// the answer is the end of the connection, RFC 9112 §6.3), or one JSON body. The status line
/// and headers of a stream go out with its first chunk. Refusals are OpenAI error JSON.
template <class Stream, class Api>
class CompletionWriter final : public ResponseWriter {
 public:
  CompletionWriter(Session<Stream>& session, Headers headers, DisconnectWatch& watch,
                   bool keep_alive, bool chunked, Api api)
      : session_(session),
        headers_(std::move(headers)),
        watch_(watch),
        keep_alive_(keep_alive),
        chunked_(chunked),
        api_(std::move(api)) {}

  asio::awaitable<void> Refuse(const core::Status& status, const Admission* admission,
                               std::string_view provider) override {
    if (ClientGone()) co_return;
    AddDecision(admission, provider);
    // A request the drain ended: the client gets a proper answer, then the connection closes.
    usable_ = co_await session_.SendError(status, Api::ToError(status), headers_,
                                          keep_alive_ && !Draining());
  }

  asio::awaitable<bool> Commit(const Admission& admission, std::string_view provider,
                               const core::Chunk* start) override {
    AddDecision(&admission, provider);
    session_.access_.status = 200;
    out_ =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-cache\r\n";
    out_ += chunked_ ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n";
    AppendFields(out_, headers_);
    out_ += "\r\n";
    events_.clear();
    api_.Open(events_);
    if (start != nullptr) api_.Encode(*start, events_);
    Frame();
    co_return true;  // written with the chunk that committed
  }

  asio::awaitable<bool> Write(const core::Chunk& chunk) override {
    if (failed_) co_return false;
    events_.clear();
    api_.Encode(chunk, events_);
    Frame();
    if (out_.empty()) co_return true;
    co_return co_await Flush();
  }

  /// The API's end of stream on success, its error event otherwise.
  asio::awaitable<void> Finish(const core::Status& status) override {
    if (failed_ || ClientGone()) co_return;
    events_.clear();
    if (!Draining()) session_.Count(200);  // the status line said 200
    if (status.ok()) {
      api_.Done(events_);
    } else {
      session_.access_.reason = status.reason;
      api_.Error(status, events_);
    }
    Frame();
    if (!chunked_) {
      (void)co_await Flush();
      co_return;  // the close ends the answer
    }
    out_ += "0\r\n\r\n";
    usable_ = co_await Flush() && keep_alive_ && !Draining();
  }

  asio::awaitable<void> Complete(const Admission& admission, std::string_view provider,
                                 const core::Completion& answer) override {
    if (ClientGone()) co_return;
    AddDecision(&admission, provider);
    usable_ =
        co_await session_.Send(200, api_.Render(answer), "application/json", headers_, keep_alive_);
  }

  int WireStatus(const core::Status& final) const override {
    (void) final;
    return static_cast<int>(session_.access_.status);
  }
  /// The connection may take the next request.
  bool usable() const { return usable_; }

 private:
  bool ClientGone() const { return watch_.cancel.cause() == CancelCause::kClient; }
  bool Draining() const {
    return watch_.cancel.cause() == CancelCause::kDrain ||
           watch_.cancel.cause() == CancelCause::kDrainCut;
  }
  void AddDecision(const Admission* a, std::string_view provider) {
    if (a != nullptr) {
      headers_.insert(headers_.end(), a->limit_headers.begin(), a->limit_headers.end());
    }
    if (a != nullptr && a->table) {
      if (!a->raised_by.empty()) {
        headers_.emplace_back("x-meridian-data-class-raised", a->RaisedByHeader());
      }
      headers_.emplace_back("x-meridian-policy-version", a->table->policy->version);
      if (const policy::Route* route = a->route()) {
        headers_.emplace_back("x-meridian-policy-rule", route->id);
      }
      if (!a->guards.empty()) headers_.emplace_back("x-meridian-policy-guards", a->guards);
    }
    if (!provider.empty()) headers_.emplace_back("x-meridian-provider", std::string(provider));
  }
  void Frame() {
    if (chunked_) {
      AppendChunk(out_, events_);
    } else {
      out_ += events_;
    }
  }
  asio::awaitable<bool> Flush() {
    // A client that stops reading blocks this write; the idle timeout then ends the request
    // and cancels the upstream, so a slow reader cannot pin memory.
    session_.Expire(session_.limits_.idle_timeout);
    session_.answer_started_ = true;
    auto [ec, n] = co_await asio::async_write(session_.stream_, asio::buffer(out_), kTuple);
    (void)n;
    out_.clear();
    if (ec) {
      failed_ = true;
      co_return false;
    }
    co_return true;
  }

  Session<Stream>& session_;
  Headers headers_;
  DisconnectWatch& watch_;
  bool keep_alive_;
  bool chunked_;
  Api api_;
  std::string out_;
  std::string events_;
  bool failed_ = false;
  bool usable_ = false;
};

template <class Stream>
asio::awaitable<bool> Session<Stream>::Handshake() {
  if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
    Expire(limits_.header_timeout);
    auto [ec] = co_await stream_.async_handshake(ssl::stream_base::server, kTuple);
    co_return !ec;
  } else {
    co_return true;
  }
}

template <class Stream>
asio::awaitable<void> Session<Stream>::Run() {
  auto self = this->shared_from_this();
  // A graceful drain closes this connection while it is idle, and ends its request with an
  // error if one is still running at the drain deadline. Admin connections stay: the probes
  // of a drain must be answered (503), not cut before their request is read.
  std::weak_ptr<Session> weak = self;
  ScopedDrainHook drain_hook(worker_.drain_hooks(), [weak](DrainPhase phase) {
    auto s = weak.lock();
    if (!s) return;
    if (phase == DrainPhase::kStart && s->idle_ && !s->admin_) {
      beast::get_lowest_layer(s->stream_).cancel();
    } else if (phase == DrainPhase::kDeadline && s->active_) {
      // The exchange ends the request (its own drain hook); a write blocked on a client that
      // stopped reading is cut here.
      s->CutWhenBlocked(s->active_);
    }
  });
  if (!co_await Handshake()) co_return;
  bool first = true;
  for (;;) {
    if (!admin_ && state_.draining.load(std::memory_order_relaxed) && buffer_.size() == 0) break;
    // Wait for the first byte of the next request under the idle timeout, then give the
    // whole header a fixed budget: a client trickling bytes (slowloris) is cut off.
    if (buffer_.size() == 0) {
      Expire(first ? limits_.header_timeout : limits_.idle_timeout);
      idle_ = true;
      auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), kTuple);
      idle_ = false;
      if (ec) break;
      buffer_.commit(n);
    }
    first = false;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
    parser.body_limit(limits_.max_body_bytes);
    const beast::error_code hec = co_await ReadWithin(limits_.header_timeout, [&] {
      return bhttp::async_read_header(stream_, buffer_, parser, kTuple);
    });
    request_id_ = worker_.NewRequestId();
    const std::string& request_id = request_id_.text;
    Headers headers{{"x-request-id", request_id}};
    answer_started_ = false;
    // A request begun but not received in time (slowloris): counted, told so, then closed.
    auto too_slow = [&](std::string_view what, std::chrono::milliseconds budget) {
      state_.counters.slow_clients.fetch_add(1, std::memory_order_relaxed);
      return core::Status::Error(core::StatusCode::kRequestTimeout,
                                 "the request's " + std::string(what) + " did not arrive within " +
                                     std::to_string(budget.count()) + " ms",
                                 "request_timeout");
    };
    auto body_too_large = [&] {
      return core::Status::Error(
          core::StatusCode::kPayloadTooLarge,
          "request body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes",
          "body_too_large");
    };
    // Beast checks Content-Length against the body limit while parsing the header.
    if (hec == bhttp::error::body_limit) {
      co_await SendError(body_too_large(), headers, false);
      break;
    }
    if (hec == bhttp::error::header_limit) {
      co_await SendError(
          core::Status::Error(
              core::StatusCode::kHeadersTooLarge,
              "request headers exceed " + std::to_string(limits_.max_header_bytes) + " bytes",
              "headers_too_large"),
          headers, false);
      break;
    }
    if (read_timed_out_) {
      co_await SendError(too_slow("headers", limits_.header_timeout), headers, false);
      break;
    }
    if (hec) {
      if (hec != bhttp::error::end_of_stream) {
        co_await SendError(
            core::Status::Error(core::StatusCode::kInvalidArgument,
                                "malformed HTTP request: " + hec.message(), "bad_request"),
            headers, false);
      }
      break;
    }
    auto& head = parser.get();
    if (auto st = CheckFraming(head); !st.ok()) {
      co_await SendError(st, headers, false);
      break;
    }
    if (const auto len = parser.content_length(); len && *len > limits_.max_body_bytes) {
      co_await SendError(body_too_large(), headers, false);
      break;
    }
    if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      if (!co_await WriteRaw(kContinue)) break;
    }
    const beast::error_code bec = co_await ReadWithin(
        limits_.body_timeout, [&] { return bhttp::async_read(stream_, buffer_, parser, kTuple); });
    if (read_timed_out_) {
      co_await SendError(too_slow("body", limits_.body_timeout), headers, false);
      break;
    }
    if (bec == bhttp::error::body_limit) {
      co_await SendError(body_too_large(), headers, false);
      break;
    }
    if (bec) {
      // An invalid or overflowing chunk size, a body cut short: answer before closing unless
      // the client is gone.
      if (bec != bhttp::error::end_of_stream && bec != bhttp::error::partial_message &&
          bec != asio::error::eof && bec != asio::error::connection_reset) {
        co_await SendError(
            core::Status::Error(core::StatusCode::kInvalidArgument,
                                "malformed HTTP request body: " + bec.message(), "bad_request"),
            headers, false);
      }
      break;
    }
    Request req = parser.release();
    // While draining, answer this request and close the connection.
    if (!admin_ && state_.draining.load(std::memory_order_relaxed)) req.keep_alive(false);
    if (!admin_) state_.counters.requests.fetch_add(1, std::memory_order_relaxed);
    access_ = {};
    access_.start = std::chrono::steady_clock::now();
    const bool keep = co_await Handle(req, request_id);
    {
      const std::string_view target(req.target().data(), req.target().size());
      LogAccess({.request_id = request_id,
                 .front_end = admin_ ? "admin" : "http",
                 .method = std::string_view(req.method_string().data(), req.method_string().size()),
                 .path = TargetPath(target),
                 .tenant = access_.tenant,
                 .status = static_cast<int>(access_.status),
                 .reason = access_.reason,
                 .provider = access_.provider,
                 .duration_ms = SinceStartMs(),
                 .ttft_ms = access_.ttft_ms});
    }
    if (!keep) break;
  }
  // Lingering close: stop sending, then drain what the client still sends for a moment. Closing
  // with unread bytes queued (a 413's rejected body, say) makes the kernel send a reset, and
  // the client could lose the error response it has not read yet.
  beast::error_code ec;
  Socket().shutdown(tcp::socket::shutdown_send, ec);
  beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(500));
  // On the heap only now: in the frame it would cost every connection 4 KiB for its lifetime.
  constexpr std::size_t kScratch = 4096;
  const auto scratch = std::make_unique_for_overwrite<char[]>(kScratch);
  for (std::size_t drained = 0; drained < 256 * 1024;) {
    auto [rec, n] = co_await beast::get_lowest_layer(stream_).async_read_some(
        asio::buffer(scratch.get(), kScratch), kTuple);
    if (rec) break;
    drained += n;
  }
  Socket().close(ec);
}

template <class Stream>
void Session<Stream>::CutWhenBlocked(std::weak_ptr<DisconnectWatch> watch) {
  // The drain deadline cancelled the request: it ends within moments with an error event,
  // unless its handler is blocked writing to a client that stopped reading. That write would
  // wait for limits.idle_timeout, past the drain, and the request would never report. So while
  // the request runs its socket is looked at every kDrainCutCheck, and once the send buffer
  // is full (the client takes nothing) the connection's operations are cancelled: the write
  // fails, the handler ends and reports its audit line (status_reason "drain_deadline").
  auto timer = std::make_shared<asio::steady_timer>(worker_.executor(), kDrainCutCheck);
  timer->async_wait([timer, weak = this->weak_from_this(),
                     watch = std::move(watch)](const beast::error_code& ec) {
    auto s = weak.lock();
    auto w = watch.lock();
    if (ec || !s || !w || s->active_ != w) return;  // the request has ended
    pollfd p{s->Socket().native_handle(), POLLOUT, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0) {
      s->CutWhenBlocked(w);  // room to write: not blocked on the client; look again later
      return;
    }
    w->cancel.Cancel(CancelCause::kDrainCut);
    beast::get_lowest_layer(s->stream_).cancel();
  });
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::WriteRaw(const std::string& bytes) {
  Expire(limits_.idle_timeout);
  auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(bytes), kTuple);
  (void)n;
  co_return !ec;
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::Send(unsigned status, std::string body,
                                            std::string_view content_type, const Headers& headers,
                                            bool keep_alive) {
  // The head is formatted here and written with the body in one gather write: Beast's
  // serializer walks a buffers_cat view per field, a measurable share of a proxied request.
  std::string head;
  head.reserve(256);
  head += "HTTP/1.1 ";
  head += std::to_string(status);
  head += ' ';
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  head.append(reason.data(), reason.size());
  head += "\r\n";
  // A 204 carries neither a body nor the fields describing one (RFC 9110 §8.6, §15.3.5).
  if (status != 204) {
    head += "Content-Type: ";
    head += content_type;
    head += "\r\n";
  }
  AppendFields(head, headers);
  if (status != 204) {
    head += "Content-Length: ";
    head += std::to_string(body.size());
    head += "\r\n";
  }
  head += keep_alive ? "\r\n" : "Connection: close\r\n\r\n";
  Count(status);
  access_.status = status;
  answer_started_ = true;
  Expire(limits_.idle_timeout);
  const std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(body)};
  auto [ec, n] = co_await asio::async_write(stream_, wire, kTuple);
  (void)n;
  co_return !ec && keep_alive;
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::SendError(const core::Status& status, Headers headers,
                                                 bool keep_alive) {
  co_return co_await SendError(status, codec::ToHttpError(status), std::move(headers), keep_alive);
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::SendError(const core::Status& status, codec::HttpError e,
                                                 Headers headers, bool keep_alive) {
  access_.reason = status.reason;
  headers.insert(headers.end(), e.headers.begin(), e.headers.end());
  co_return co_await Send(e.status, std::move(e.body), "application/json", headers, keep_alive);
}

template <class Stream>
void Session<Stream>::WatchDisconnect(std::shared_ptr<DisconnectWatch> watch) {
  // A one-byte MSG_PEEK receive: EOF means the client is gone; a byte means it sent more (a
  // pipelined request, left in the socket for the next read): stop watching. Unlike
  // async_wait, a receive is tried at once and then parked on the socket's existing epoll
  // registration: no epoll_ctl per request.
  DisconnectWatch* w = watch.get();
  Socket().async_receive(
      asio::buffer(&w->peek, 1), tcp::socket::message_peek,
      asio::bind_cancellation_slot(w->stop.slot(), [self = this->shared_from_this(),
                                                    watch = std::move(watch)](
                                                       const beast::error_code& ec, std::size_t n) {
        if (ec == asio::error::operation_aborted) return;  // the request finished first
        if (!ec && n > 0) return;
        if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
          // A FIN: gone, or only half-closed (the request is complete; the client still
          // reads). Bytes written from now on tell which: a gone client's kernel resets.
          if (!ec || ec == asio::error::eof) {
            if (self->answer_started_) return self->WatchReset(std::move(watch));
            if (watch->http11) {
              const ssize_t sent = ::send(self->Socket().native_handle(), kHalfCloseProbe.data(),
                                          kHalfCloseProbe.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
              if (sent == static_cast<ssize_t>(kHalfCloseProbe.size())) {
                return self->WatchReset(std::move(watch));
              }
            }
          }
        }
        self->state_.counters.client_disconnects.fetch_add(1, std::memory_order_relaxed);
        watch->cancel.Cancel(CancelCause::kClient);
      }));
}

template <class Stream>
void Session<Stream>::WatchReset(std::shared_ptr<DisconnectWatch> watch) {
  DisconnectWatch* w = watch.get();
  Socket().async_wait(
      tcp::socket::wait_error,
      asio::bind_cancellation_slot(
          w->stop.slot(),
          [self = this->shared_from_this(), watch = std::move(watch)](const beast::error_code& ec) {
            if (ec == asio::error::operation_aborted) return;  // the request finished first
            self->state_.counters.client_disconnects.fetch_add(1, std::memory_order_relaxed);
            watch->cancel.Cancel(CancelCause::kClient);
          }));
}

template <class Stream>
template <class Read>
asio::awaitable<beast::error_code> Session<Stream>::ReadWithin(std::chrono::milliseconds budget,
                                                               Read read) {
  auto& lowest = beast::get_lowest_layer(stream_);
  lowest.expires_never();
  const std::uint64_t generation = ++read_generation_;
  // The handler may run after this read completed (its expiry already queued): the
  // generation check keeps it from cancelling a later operation.
  asio::steady_timer deadline(lowest.get_executor(), budget);
  deadline.async_wait([weak = this->weak_from_this(), generation](const beast::error_code& ec) {
    auto s = weak.lock();
    if (ec || !s || s->read_generation_ != generation) return;
    s->read_timed_out_ = true;
    beast::get_lowest_layer(s->stream_).cancel();
  });
  read_timed_out_ = false;
  auto [ec, n] = co_await read();
  (void)n;
  ++read_generation_;
  deadline.cancel();
  co_return ec;
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::HandleMeter(std::string_view target, Headers& headers,
                                                   bool keep_alive) {
  store::ExportMeterStore* const meter = worker_.meter();
  if (meter == nullptr) {
    co_return co_await SendError(
        core::Status::Error(core::StatusCode::kNotFound,
                            "the export meter is not configured (export_meter: in the gateway "
                            "config)",
                            "meter_not_configured"),
        headers, keep_alive);
  }
  int year = CstYear(UnixMillisNow());
  const auto query = target.find('?');
  if (query != std::string_view::npos) {
    const std::string_view q = target.substr(query + 1);
    const bool ok = q.starts_with("year=") && q.size() == 9 &&
                    std::from_chars(q.data() + 5, q.data() + q.size(), year).ec == std::errc() &&
                    year >= 2000;
    if (!ok) {
      co_return co_await SendError(
          core::Status::Error(core::StatusCode::kInvalidArgument,
                              "the only parameter is year=YYYY (a calendar year in China "
                              "Standard Time)",
                              "invalid_query", "year"),
          headers, keep_alive);
    }
  }
  std::vector<std::string> tenants;
  for (const auto& t : state_.Callers()->tenants.tenants()) tenants.push_back(t.id);
  const std::vector<MeterRow> rows = co_await ReadMeter(*meter, std::move(tenants), year);
  const bool all_read =
      std::all_of(rows.begin(), rows.end(), [](const MeterRow& r) { return r.counts.status.ok(); });
  co_return co_await Send(all_read ? 200 : 503,
                          MeterReportJson(year, rows, state_.Table()->policy.get()),
                          "application/json", headers, keep_alive);
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::HandleConsole(std::string_view target, std::string_view path,
                                                     Headers& headers, bool keep_alive) {
  headers.emplace_back("cache-control", "no-store");
  headers.emplace_back("x-content-type-options", "nosniff");
  headers.emplace_back("content-security-policy", std::string(console::kContentSecurityPolicy));
  headers.emplace_back("x-frame-options", "DENY");
  headers.emplace_back("referrer-policy", "no-referrer");
  if (!path.starts_with("/admin/api/")) {
    const std::optional<console::Asset> asset =
        console::FindAsset(path.substr(std::string_view("/admin/console").size()));
    if (!asset) {
      co_return co_await SendError(core::Status::Error(core::StatusCode::kNotFound,
                                                       "no console file " + std::string(path) +
                                                           " (the console is "
                                                           "GET /admin/console)",
                                                       "not_found"),
                                   headers, keep_alive);
    }
    co_return co_await Send(200, std::string(asset->body), asset->content_type, headers,
                            keep_alive);
  }
  const auto q = target.find('?');
  const std::string query(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
  const std::string_view api = path.substr(std::string_view("/admin/api/").size());
  console::Reply reply;
  if (api == "overview") {
    reply.body = console::Overview(state_);
  } else if (api == "matrix") {
    reply = console::Matrix(state_, query);
  } else if (api == "explain") {
    reply = console::Explain(state_, query);
  } else if (api == "providers") {
    reply.body = console::Providers(state_);
  } else if (api == "reloads") {
    reply.body = console::Reloads(state_);
  } else if (api == "reloads/diff") {
    // Deciding two policies' whole request space takes seconds on a large one: off the
    // request threads, like a reload.
    reply = co_await OnControlThread(
        worker_.control_executor(), worker_.executor(),
        [&state = state_, &query] { return console::ReloadDiff(state, query); });
  } else if (api == "audit") {
    reply.body =
        co_await OnControlThread(worker_.control_executor(), worker_.executor(),
                                 [&state = state_] { return console::AuditStatus(state); });
  } else {
    reply.status = core::Status::Error(
        core::StatusCode::kNotFound,
        "no console API " + std::string(path) +
            " (overview, matrix, explain, providers, reloads, reloads/diff, audit)",
        "not_found");
  }
  if (!reply.status.ok()) co_return co_await SendError(reply.status, headers, keep_alive);
  co_return co_await Send(200, std::move(reply.body), "application/json", headers, keep_alive);
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::Handle(Request& req, const std::string& request_id) {
  Headers headers{{"x-request-id", request_id}};
  const bool keep_alive = req.keep_alive();
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = TargetPath(target);
  auto method_not_allowed = [&](std::string_view allow) -> asio::awaitable<bool> {
    headers.emplace_back("allow", std::string(allow));
    co_return co_await SendError(
        core::Status::Error(core::StatusCode::kMethodNotAllowed,
                            std::string(req.method_string()) + " is not allowed on " +
                                std::string(path) + "; use " + std::string(allow),
                            "method_not_allowed"),
        headers, keep_alive);
  };
  if (admin_) {
    admin_route_ = "other";
    for (std::string_view route :
         {"/healthz", "/readyz", "/metrics", "/admin/reload", "/admin/meter", "/admin/quarantine",
          "/admin/quarantine/release"}) {
      if (path == route) admin_route_ = route;
    }
    const bool console_path = path == "/admin/console" || path.starts_with("/admin/console/");
    if (console_path) admin_route_ = "/admin/console";
    if (path.starts_with("/admin/api/")) admin_route_ = "/admin/api";
    // The probes stay open (a kubelet or load balancer sends no credentials); every other
    // admin route, unknown ones included, needs the admin token (docs/security.md). A GET may
    // present it as a Basic password (the console in a browser); nothing else may.
    if (path != "/healthz" && path != "/readyz") {
      const bool read_only = req.method() == bhttp::verb::get;
      const AdminToken::Check check =
          state_.admin_token
              ? state_.admin_token->Verify(req[bhttp::field::authorization],
                                           req.count(bhttp::field::authorization), read_only)
              : AdminToken::Check::kInvalid;
      if (check != AdminToken::Check::kOk) {
        const bool missing = check == AdminToken::Check::kMissing;
        headers.emplace_back("www-authenticate",
                             console_path && read_only
                                 ? "Basic realm=\"meridian-admin\", charset=\"UTF-8\""
                                 : "Bearer realm=\"meridian-admin\"");
        co_return co_await SendError(
            core::Status::Error(core::StatusCode::kUnauthenticated,
                                missing ? "missing admin token: send Authorization: Bearer "
                                          "<token>, the token admin.token_env or "
                                          "admin.token_file names"
                                        : "invalid admin token",
                                missing ? "missing_admin_token" : "invalid_admin_token"),
            headers, keep_alive);
      }
    }
    if (path == "/admin/reload") {
      if (req.method() != bhttp::verb::post) co_return co_await method_not_allowed("POST");
      // A compile can take tens of ms (1,000 routes): on the control thread, so the requests
      // this worker serves meanwhile are not held up.
      ReloadResult result;
      if (state_.reload) {
        result = co_await OnControlThread(worker_.control_executor(), worker_.executor(),
                                          [&state = state_] { return state.reload(); });
      }
      co_return co_await Send(result.ok ? 200 : 422, result.Json(), "application/json", headers,
                              keep_alive);
    }
    if (console_path || path.starts_with("/admin/api/")) {
      if (req.method() != bhttp::verb::get) co_return co_await method_not_allowed("GET");
      co_return co_await HandleConsole(target, path, headers, keep_alive);
    }
    if (path == "/admin/meter") {
      if (req.method() != bhttp::verb::get) co_return co_await method_not_allowed("GET");
      co_return co_await HandleMeter(target, headers, keep_alive);
    }
    if (path == "/admin/quarantine") {
      if (req.method() != bhttp::verb::get) co_return co_await method_not_allowed("GET");
      co_return co_await Send(200, state_.quarantine.Json(), "application/json", headers,
                              keep_alive);
    }
    if (path == "/admin/quarantine/release") {
      if (req.method() != bhttp::verb::post) co_return co_await method_not_allowed("POST");
      const auto query = target.find('?');
      const std::string_view q =
          query == std::string_view::npos ? std::string_view() : target.substr(query + 1);
      if (!q.starts_with("provider=") || q.size() == 9 || q.find('&') != std::string_view::npos) {
        co_return co_await SendError(core::Status::Error(core::StatusCode::kInvalidArgument,
                                                         "name the provider to release: POST "
                                                         "/admin/quarantine/release?provider=ID",
                                                         "invalid_query", "provider"),
                                     headers, keep_alive);
      }
      const std::string provider(q.substr(9));
      if (!state_.quarantine.Release(provider)) {
        co_return co_await SendError(
            core::Status::Error(core::StatusCode::kNotFound,
                                "provider '" + provider + "' is not quarantined", "not_quarantined",
                                "provider"),
            headers, keep_alive);
      }
      if (state_.metrics) state_.metrics->SetQuarantined(provider, false);
      Log(LogLevel::kInfo,
          "provider '" + provider + "' released from quarantine by an operator (admin API)");
      std::string body = "{\"released\":";
      core::AppendJsonString(body, provider);
      body += '}';
      co_return co_await Send(200, body, "application/json", headers, keep_alive);
    }
    if (path != "/healthz" && path != "/readyz" && path != "/metrics") {
      co_return co_await SendError(
          core::Status::Error(core::StatusCode::kNotFound,
                              "no route for " + std::string(path) +
                                  " on the admin listener (GET /admin/console, POST /admin/reload, "
                                  "GET /admin/meter, "
                                  "GET /admin/quarantine, POST /admin/quarantine/release, "
                                  "GET /metrics, /healthz, /readyz)",
                              "not_found"),
          headers, keep_alive);
    }
  }
  if (!admin_ && IsApiPath(path)) {
    // CORS (docs/api-http.md): a page on an allowed origin may read the API's answers. An
    // origin sent twice names no one origin and is allowed nothing.
    const std::vector<std::string_view> origins = Copies(req, "origin");
    const bool allowed = origins.size() == 1 && state_.config.cors.Allows(origins.front());
    if (allowed) {
      headers.emplace_back("access-control-allow-origin", std::string(origins.front()));
      headers.emplace_back("vary", "Origin");
    }
    if (req.method() == bhttp::verb::options && !origins.empty() &&
        req.count("access-control-request-method") != 0) {
      co_return co_await Preflight(req, path, allowed, headers);
    }
    if (allowed) headers.emplace_back("access-control-expose-headers", kExposedHeaders);
  }
  if (path == "/v1/chat/completions" || path == "/chat/completions") {
    if (req.method() != bhttp::verb::post) co_return co_await method_not_allowed("POST");
    co_return co_await HandleCompletion<ChatApi>(req, headers);
  }
  if (path == "/v1/responses" || path == "/responses") {
    if (req.method() != bhttp::verb::post) co_return co_await method_not_allowed("POST");
    co_return co_await HandleCompletion<ResponsesApi>(req, headers);
  }
  if (path == "/v1/completions" || path == "/completions") {
    if (req.method() != bhttp::verb::post) co_return co_await method_not_allowed("POST");
    co_return co_await HandleCompletion<CompletionsApi>(req, headers);
  }
  if (path == "/v1/embeddings" || path == "/embeddings") {
    if (req.method() != bhttp::verb::post) co_return co_await method_not_allowed("POST");
    co_return co_await HandleCompletion<EmbeddingsApi>(req, headers);
  }
  if (path == "/v1/messages") {
    if (req.method() != bhttp::verb::post) co_return co_await method_not_allowed("POST");
    co_return co_await HandleCompletion<MessagesApi>(req, headers);
  }
  if (path.starts_with("/v1/responses/") || path.starts_with("/responses/")) {
    co_return co_await SendError(
        core::Status::Error(core::StatusCode::kNotFound,
                            "responses are not stored: this gateway keeps no conversation state, "
                            "so there is nothing to retrieve, cancel or delete",
                            "not_found"),
        headers, keep_alive);
  }
  if (path == "/v1/models" || path == "/models" || path.starts_with("/v1/models/") ||
      path.starts_with("/models/")) {
    if (req.method() != bhttp::verb::get) co_return co_await method_not_allowed("GET");
    const std::size_t models_end = path.find("/models") + 7;
    co_return co_await HandleModels(req, path.substr(models_end), headers);
  }
  if (path == "/healthz") {
    if (req.method() != bhttp::verb::get) co_return co_await method_not_allowed("GET");
    co_return co_await Send(200, "{\"status\":\"ok\"}", "application/json", headers, keep_alive);
  }
  if (path == "/readyz") {
    if (req.method() != bhttp::verb::get) co_return co_await method_not_allowed("GET");
    auto table = state_.Table();
    if (!state_.ready.load() || !table) {
      co_return co_await Send(503, "{\"status\":\"not ready\"}", "application/json", headers,
                              keep_alive);
    }
    co_return co_await Send(
        200, "{\"status\":\"ready\",\"policy_version\":\"" + table->policy->version + "\"}",
        "application/json", headers, keep_alive);
  }
  // On the public listener only when configured (metrics.public): by default the counters are
  // for the operator, on the admin listener behind its token.
  if (path == "/metrics" && (admin_ || state_.config.metrics_public)) {
    if (req.method() != bhttp::verb::get) co_return co_await method_not_allowed("GET");
    co_return co_await Send(200, RenderMetrics(state_), "text/plain; version=0.0.4", headers,
                            keep_alive);
  }
  co_return co_await SendError(
      core::Status::Error(core::StatusCode::kNotFound,
                          "no route for " + std::string(path) +
                              (path == "/metrics" ? " (metrics are served on the admin listener; "
                                                    "metrics.public: true serves them here)"
                                                  : ""),
                          "not_found"),
      headers, keep_alive);
}

}  // namespace

namespace {

identity::IpAddress PeerIp(const tcp::endpoint& peer) {
  const auto address = peer.address();
  if (address.is_v4()) {
    const auto bytes = address.to_v4().to_bytes();
    return *identity::IpAddress::FromBytes(bytes);
  }
  const auto bytes = address.to_v6().to_bytes();
  return *identity::IpAddress::FromBytes(bytes);
}

}  // namespace

// The number of credentials a request carries: Authorization lines and API-key headers.
std::size_t CredentialCount(const bhttp::fields& fields) {
  return fields.count(bhttp::field::authorization) + fields.count("api-key") +
         fields.count("x-api-key");
}

template <class Stream>
core::Status Session<Stream>::Authenticate(const Request& req, const identity::Tenant*& tenant,
                                           std::string* key_id) {
  // A request with two credentials names two identities: refused, never first-wins.
  if (auto st = identity::CheckSingleCredential(CredentialCount(req)); !st.ok()) {
    state_.counters.multiple_credentials.fetch_add(1, std::memory_order_relaxed);
    return st;
  }
  // At most one of the three is present: `Authorization: Bearer <key>` (OpenAI clients),
  // `api-key: <key>` (Azure OpenAI clients), `x-api-key: <key>` (Anthropic clients).
  const auto authorization = req[bhttp::field::authorization];
  const auto api_key = req["api-key"];
  const auto x_api_key = req["x-api-key"];
  identities_ = state_.Callers();
  if (!authorization.empty()) {
    tenant = identities_->tenants.Authenticate(authorization, key_id);
  } else {
    tenant = identities_->tenants.AuthenticateKey(!api_key.empty() ? api_key : x_api_key, key_id);
  }
  if (tenant != nullptr) {
    access_.tenant = tenant->id;
    return core::Status::Ok();
  }
  if (authorization.empty() && api_key.empty() && x_api_key.empty()) {
    return core::Status::Error(
        core::StatusCode::kUnauthenticated,
        "missing API key: send Authorization: Bearer <key> (or api-key / x-api-key: <key>)",
        "missing_api_key");
  }
  return identity::UnknownApiKey();
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::Preflight(const Request& req, std::string_view path,
                                                 bool allowed, Headers& headers) {
  const bool keep_alive = req.keep_alive();
  const std::string_view origin = req[bhttp::field::origin];
  if (!allowed) {
    state_.counters.cors_preflights_refused.fetch_add(1, std::memory_order_relaxed);
    co_return co_await SendError(
        core::Status::Error(core::StatusCode::kPermissionDenied,
                            "origin '" + std::string(origin) +
                                "' may not call this API from a browser: list it under "
                                "cors.allowed_origins in the gateway config",
                            "cors_origin_not_allowed"),
        headers, keep_alive);
  }
  const std::string_view method = req["access-control-request-method"];
  const std::string_view wanted = req["access-control-request-headers"];
  const bool get_route = path.starts_with("/v1/models") || path.starts_with("/models");
  const std::string_view allow = get_route ? "GET" : "POST";
  if (method != allow || !IsHeaderNameList(wanted)) {
    state_.counters.cors_preflights_refused.fetch_add(1, std::memory_order_relaxed);
    // Built before the co_await: GCC 12 mishandles temporaries of a conditional expression
    // in a coroutine's arguments.
    std::string message = "access-control-request-headers is not a list of header names";
    if (method != allow) {
      message = "a preflight for " + std::string(method) + " on " + std::string(path) +
                ": this path takes " + std::string(allow);
    }
    core::Status refused = core::Status::Error(core::StatusCode::kInvalidArgument,
                                               std::move(message), "invalid_preflight");
    co_return co_await SendError(refused, headers, keep_alive);
  }
  state_.counters.cors_preflights_allowed.fetch_add(1, std::memory_order_relaxed);
  for (auto& [name, value] : headers) {
    if (name == "vary")
      value = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
  }
  headers.emplace_back("access-control-allow-methods", std::string(allow));
  if (!wanted.empty()) headers.emplace_back("access-control-allow-headers", std::string(wanted));
  headers.emplace_back("access-control-max-age", std::to_string(state_.config.cors.max_age_s));
  co_return co_await Send(204, {}, {}, headers, keep_alive);
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::HandleModels(Request& req, std::string_view rest,
                                                    Headers& headers) {
  const bool keep_alive = req.keep_alive();
  auto table = state_.Table();
  if (!table) {
    co_return co_await SendError(NotReady(), headers, keep_alive);
  }
  const identity::Tenant* tenant = nullptr;
  if (auto st = Authenticate(req, tenant); !st.ok()) {
    co_return co_await SendError(st, headers, keep_alive);
  }
  // The aliases this caller could be routed to with its tenant defaults.
  const auto region = identity::EstablishRegion(*tenant, PeerIp(peer_), std::nullopt, {});
  const std::vector<std::string> aliases = AllowedModels(*table, *tenant, region);
  headers.emplace_back("x-meridian-policy-version", table->policy->version);
  if (rest.empty()) {
    co_return co_await Send(200, codec::ModelsListJson(aliases, UnixNow()), "application/json",
                            headers, keep_alive);
  }
  // One model: found only when this caller could be routed to it (as the list says), so a
  // lookup never reveals an alias the caller's policy keeps from it.
  const std::optional<std::string> id = PercentDecoded(rest.substr(1));
  if (id && !id->empty() && std::find(aliases.begin(), aliases.end(), *id) != aliases.end()) {
    co_return co_await Send(200, codec::ModelJson(*id, UnixNow()), "application/json", headers,
                            keep_alive);
  }
  std::string shown(rest.substr(1));
  if (id) shown = *id;
  co_return co_await SendError(
      core::Status::Error(
          core::StatusCode::kNotFound,
          "The model '" + shown + "' does not exist or you do not have access to it.",
          "model_not_found", "model"),
      headers, keep_alive);
}

template <class Stream>
core::Status Session<Stream>::Identify(const Request& req, const RoutingTable& table,
                                       CallerContext& caller) {
  const identity::Tenant* tenant = nullptr;
  if (auto st = Authenticate(req, tenant, &caller.key_id); !st.ok()) return st;
  // Duplicated or conflicting signals resolve to the most restrictive value (reference §3.1).
  const std::vector<std::string_view> region_copies = Copies(req, identities_->region_header);
  const identity::RegionDecision region = identity::EstablishRegion(
      *tenant, PeerIp(peer_), region_copies, identities_->trusted_proxies, table.policy->settings);
  CountRegionSignals(state_, region);
  caller.front_end = RequestReport::FrontEnd::kHttp;
  caller.id = request_id_;
  caller.tenant = tenant->id;
  caller.limits = tenant->limits ? &*tenant->limits : nullptr;
  caller.identities = identities_;
  caller.start = access_.start;
  caller.attrs = AttributesOf(*tenant, region);
  bool class_conflict = false;
  bool consent_conflict = false;
  if (auto st = identity::ParseDataClassHeaders(Copies(req, identity::kDataClassHeader),
                                                caller.attrs.data_class, class_conflict);
      !st.ok()) {
    return st;
  }
  if (auto st = identity::ParseConsentHeaders(Copies(req, identity::kConsentHeader),
                                              caller.attrs.consent, consent_conflict);
      !st.ok()) {
    return st;
  }
  if (class_conflict || consent_conflict) {
    state_.counters.conflicting_signals.fetch_add(1, std::memory_order_relaxed);
  }
  if (auto it = req.find("traceparent"); it != req.end()) {
    caller.traceparent.assign(it->value().data(), it->value().size());
  }
  return core::Status::Ok();
}

template <class Stream>
template <class Api>
asio::awaitable<bool> Session<Stream>::HandleCompletion(Request& req, Headers& headers) {
  const bool keep_alive = req.keep_alive();
  auto table = state_.Table();
  if (!table)
    co_return co_await SendError(NotReady(), Api::ToError(NotReady()), headers, keep_alive);
  CallerContext caller;
  if (auto st = Identify(req, *table, caller); !st.ok()) {
    co_return co_await SendError(st, Api::ToError(st), headers, keep_alive);
  }
  core::CompletionRequest request;
  Api api;
  if (auto st = Api::Decode(req.body(), request_id_, request, api); !st.ok()) {
    co_return co_await SendError(st, Api::ToError(st), headers, keep_alive);
  }

  auto watch = std::make_shared<DisconnectWatch>();
  watch->http11 = req.version() == 11;
  active_ = watch;
  WatchDisconnect(watch);
  struct StopWatch {
    Session& s;
    DisconnectWatch& w;
    ~StopWatch() {
      w.stop.emit(asio::cancellation_type::terminal);
      s.active_.reset();
    }
  } stop_watch{*this, *watch};

  // A stream can last minutes: give back the request's read buffer meanwhile (the next
  // request on this connection allocates it again).
  if (request.stream && buffer_.size() == 0) buffer_.shrink_to_fit();
  CompletionWriter<Stream, Api> writer(*this, headers, *watch, keep_alive,
                                       /*chunked=*/req.version() >= 11, std::move(api));
  const ExchangeResult result = co_await Exchange(state_, worker_, std::move(table), caller,
                                                  std::move(request), writer, watch->cancel);
  access_.provider = result.provider;
  access_.ttft_ms = result.ttft_ms;
  if (!result.status.ok() && access_.reason.empty()) access_.reason = result.status.reason;
  co_return writer.usable();
}

asio::awaitable<void> HttpWorker::Accept(tcp::acceptor& acceptor, bool admin) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors or similar: back off briefly instead of spinning.
      asio::steady_timer t(worker_.executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(kTuple);
      continue;
    }
    beast::error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);
    const tcp::endpoint peer = socket.remote_endpoint(opt_ec);
    if (opt_ec) continue;
    if (admin) {
      auto s = std::make_shared<Session<beast::tcp_stream>>(
          state_, worker_, beast::tcp_stream(std::move(socket)), peer, true);
      asio::co_spawn(worker_.executor(), s->Run(), asio::detached);
    } else if (server_tls_) {
      using TlsStream = beast::ssl_stream<beast::tcp_stream>;
      auto s = std::make_shared<Session<TlsStream>>(
          state_, worker_, TlsStream(beast::tcp_stream(std::move(socket)), *server_tls_), peer);
      asio::co_spawn(worker_.executor(), s->Run(), asio::detached);
    } else {
      auto s = std::make_shared<Session<beast::tcp_stream>>(
          state_, worker_, beast::tcp_stream(std::move(socket)), peer);
      asio::co_spawn(worker_.executor(), s->Run(), asio::detached);
    }
  }
}

HttpServer::HttpServer(GatewayState& state, Runtime& runtime) : state_(state), runtime_(runtime) {}

HttpServer::~HttpServer() = default;

core::Status HttpServer::Start() {
  const auto& cfg = state_.config;
  std::shared_ptr<ssl::context> server_tls;
  if (cfg.tls) {
    server_tls = std::make_shared<ssl::context>(ssl::context::tls_server);
    beast::error_code ec;
    server_tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                ssl::context::no_tlsv1_1,
                            ec);
    server_tls->use_certificate_chain_file(cfg.tls->cert_file, ec);
    if (!ec) server_tls->use_private_key_file(cfg.tls->key_file, ssl::context::pem, ec);
    if (ec) {
      return core::Status::Error(core::StatusCode::kInternal,
                                 "cannot load TLS certificate/key: " + ec.message());
    }
  }

  beast::error_code ec;
  const auto address = asio::ip::make_address(cfg.listen.host, ec);
  if (ec) {
    return core::Status::Error(core::StatusCode::kInternal,
                               "invalid listen address '" + cfg.listen.host + "'");
  }
  tcp::endpoint endpoint(address, cfg.listen.port);
  // The workers' listeners share the port through SO_REUSEPORT, which would also let a second
  // gateway started by the same user join the group and silently take half the connections.
  // A plain bind first: it fails while anyone listens there.
  if (endpoint.port() != 0) {
    asio::io_context probe_io;
    tcp::acceptor probe(probe_io);
    probe.open(endpoint.protocol(), ec);
    if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) probe.bind(endpoint, ec);
    if (ec) {
      return core::Status::Error(
          core::StatusCode::kInternal,
          "cannot listen on " + cfg.listen.host + ":" + std::to_string(cfg.listen.port) + ": " +
              ec.message() +
              (ec == asio::error::address_in_use ? " (is another gateway running there?)" : ""));
    }
  }
  for (std::size_t i = 0; i < runtime_.size(); ++i) {
    auto w = std::make_unique<HttpWorker>(state_, runtime_.worker(i), server_tls);
    auto st = w->Listen(endpoint);
    if (!st.ok()) return st;
    // Port 0: the first listener picks the port, the others share it.
    endpoint.port(w->port());
    workers_.push_back(std::move(w));
  }
  port_ = endpoint.port();
  if (cfg.admin_listen) {
    const auto admin_address = asio::ip::make_address(cfg.admin_listen->host, ec);
    if (ec) {
      return core::Status::Error(core::StatusCode::kInternal,
                                 "invalid admin listen address '" + cfg.admin_listen->host + "'");
    }
    auto st = workers_.front()->ListenAdmin(tcp::endpoint(admin_address, cfg.admin_listen->port));
    if (!st.ok()) return st;
    admin_port_ = workers_.front()->admin_port();
  }
  for (auto& w : workers_) w->Start();
  return core::Status::Ok();
}

void HttpServer::StopAccepting() {
  for (auto& w : workers_) w->Close(/*admin_too=*/false);
}

void HttpServer::Close() {
  for (auto& w : workers_) w->Close(/*admin_too=*/true);
}

}  // namespace meridian::http
