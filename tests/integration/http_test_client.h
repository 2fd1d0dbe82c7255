// A small synchronous HTTP/1.1 client for integration tests (Beast over loopback). Real
// sockets and real parsing: the gateway is exercised exactly as a client would.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace meridian::testing {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = boost::asio::ip::tcp;

struct HttpResult {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  ///< lower-case names
  std::string body;
  std::string error;  ///< transport error, if any
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

/// The `data:` payloads of an SSE body, in order.
inline std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const std::size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end == std::string::npos ? body.size() : end + 2;
  }
  return out;
}

class TestClient {
 public:
  explicit TestClient(unsigned short port, std::string bind_address = "127.0.0.1")
      : port_(port), bind_address_(std::move(bind_address)) {}

  HttpResult Request(bhttp::verb method, const std::string& target, const std::string& body,
                     const std::map<std::string, std::string>& headers = {}) {
    HttpResult r;
    try {
      boost::asio::io_context io;
      beast::tcp_stream stream(io);
      Connect(stream);
      stream.expires_after(std::chrono::seconds(30));
      bhttp::request<bhttp::string_body> req{method, target, 11};
      req.set(bhttp::field::host, "127.0.0.1");
      for (const auto& [k, v] : headers) req.set(k, v);
      req.body() = body;
      req.prepare_payload();
      bhttp::write(stream, req);
      beast::flat_buffer buffer;
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(64 << 20);
      bhttp::read(stream, buffer, parser);
      Fill(parser.get(), r);
      r.body = parser.get().body();
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    return r;
  }

  HttpResult Post(const std::string& target, const std::string& body,
                  std::map<std::string, std::string> headers = {}) {
    headers.emplace("content-type", "application/json");
    return Request(bhttp::verb::post, target, body, headers);
  }
  HttpResult Get(const std::string& target,
                 const std::map<std::string, std::string>& headers = {}) {
    return Request(bhttp::verb::get, target, "", headers);
  }

  /// Streams a request and closes the connection after `events` SSE events have arrived
  /// (a client that goes away mid-stream). Returns what was received.
  HttpResult PostAndHangUpAfter(const std::string& target, const std::string& body,
                                const std::map<std::string, std::string>& headers,
                                std::size_t events) {
    HttpResult r;
    try {
      boost::asio::io_context io;
      beast::tcp_stream stream(io);
      Connect(stream);
      stream.expires_after(std::chrono::seconds(30));
      bhttp::request<bhttp::string_body> req{bhttp::verb::post, target, 11};
      req.set(bhttp::field::host, "127.0.0.1");
      req.set(bhttp::field::content_type, "application/json");
      for (const auto& [k, v] : headers) req.set(k, v);
      req.body() = body;
      req.prepare_payload();
      bhttp::write(stream, req);
      beast::flat_buffer buffer;
      bhttp::response_parser<bhttp::buffer_body> parser;
      bhttp::read_header(stream, buffer, parser);
      Fill(parser.get(), r);
      char buf[4096];
      while (!parser.is_done() && SseData(r.body).size() < events) {
        parser.get().body().data = buf;
        parser.get().body().size = sizeof buf;
        beast::error_code ec;
        bhttp::read_some(stream, buffer, parser, ec);
        if (ec && ec != bhttp::error::need_buffer) break;
        r.body.append(buf, sizeof buf - parser.get().body().size);
      }
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream.socket().close(ec);
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    return r;
  }

 private:
  void Connect(beast::tcp_stream& stream) {
    stream.socket().open(tcp::v4());
    stream.socket().bind(tcp::endpoint(boost::asio::ip::make_address(bind_address_), 0));
    stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
  }
  template <class Message>
  static void Fill(const Message& m, HttpResult& r) {
    r.status = m.result_int();
    for (const auto& f : m) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(f.value());
    }
  }

  unsigned short port_;
  std::string bind_address_;
};

}  // namespace meridian::testing
