// Test harness for `meridian serve` integration tests: writes a gateway config and a policy into
// a fresh temporary directory, starts the real gateway in-process on 127.0.0.1:0, and offers
// small helpers to build requests and read what a client sees (OpenAI JSON, SSE events,
// Prometheus counters). Upstreams are the real fake servers of tests/fakes.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/identity.h"
#include "gateway/serve.h"
#include "tests/integration/http_test_client.h"

namespace meridian::testing {

namespace json = boost::json;
namespace fs = std::filesystem;

/// The admin listener's bearer token in tests, and the variable `admin.token_env` names.
inline constexpr const char* kAdminToken = "test-admin-token-0123456789abcdef";
inline constexpr const char* kAdminTokenEnv = "MERIDIAN_TEST_ADMIN_TOKEN";

/// The API key of the default tenant ("acme") and of a second tenant no route mentions.
inline constexpr const char* kTenantKey = "sk-test-acme-0123456789";
inline constexpr const char* kOtherTenantKey = "sk-test-other-0123456789";

/// Lower-case hex SHA-256 of an API key, as `api_key_sha256` wants it.
inline std::string KeyHash(std::string_view key) {
  const identity::Sha256Digest digest = identity::Sha256(key);
  return identity::ToHex(digest);
}

/// One item of the gateway config's `tenants:`.
struct TenantYaml {
  std::string id = "acme";
  std::string key = kTenantKey;
  std::string regions = "[CN, HK, US]";
  std::string default_region = "CN";
  std::vector<std::string> extra{};  ///< further `key: value` lines of the tenant
};

/// The knobs of the gateway config a test may turn; everything else is the default.
struct GatewayYaml {
  std::vector<std::string> limits{};          ///< `key: value` lines under `limits:`
  std::vector<std::string> upstream{};        ///< `key: value` lines under `upstream:`
  std::vector<std::string> grpc{};            ///< lines under `grpc:` (nested ones indented by 2)
  std::vector<std::string> admin{};           ///< lines under `admin:`
  std::vector<std::string> audit{};           ///< lines under `audit:`
  std::vector<std::string> metrics{};         ///< lines under `metrics:`
  std::vector<std::string> cors{};            ///< lines under `cors:`
  std::vector<std::string> store{};           ///< lines under `store:`
  std::vector<std::string> extra_sections{};  ///< whole top-level sections, as written
  std::string trusted_cidrs = "[127.0.0.1/32]";
  std::vector<TenantYaml> tenants = {TenantYaml{}};

  std::string Render() const {
    std::string out = "listen: 127.0.0.1:0\nworkers: 1\npolicy_file: policy.yaml\n";
    auto section = [&out](const char* name, const std::vector<std::string>& lines) {
      if (lines.empty()) return;
      out += name;
      out += ":\n";
      for (const auto& l : lines) out += "  " + l + "\n";
    };
    section("limits", limits);
    section("upstream", upstream);
    section("grpc", grpc);
    section("admin", admin);
    section("audit", audit);
    section("metrics", metrics);
    section("cors", cors);
    section("store", store);
    for (const auto& s : extra_sections) out += s;
    out += "trusted_proxies:\n  cidrs: " + trusted_cidrs + "\n";
    out += "tenants:\n";
    for (const auto& t : tenants) {
      out += "  - id: " + t.id + "\n";
      if (!t.key.empty()) out += "    api_key_sha256: [" + KeyHash(t.key) + "]\n";
      if (!t.regions.empty()) out += "    regions: " + t.regions + "\n";
      if (!t.default_region.empty()) out += "    default_region: " + t.default_region + "\n";
      for (const auto& l : t.extra) out += "    " + l + "\n";
    }
    return out;
  }
};

/// One provider of a test policy.
struct ProviderYaml {
  std::string id;
  std::string kind;  ///< openai, azure_openai, openai_compatible or sim
  std::string endpoint{};
  std::string credential_env{};
  std::string models{};  ///< a flow mapping, e.g. "{chat: upstream-model}"
  std::string processing = "[CN]";
  std::string capabilities = "[tools, thinking, streaming]";
  std::vector<std::string> extra{};  ///< e.g. "api_version: \"2024-10-21\"", "sim_tokens: 6"

  std::string Render() const {
    std::string out = "  - id: " + id + "\n    kind: " + kind + "\n";
    if (!endpoint.empty()) out += "    endpoint: " + endpoint + "\n";
    if (!credential_env.empty()) out += "    credential_env: " + credential_env + "\n";
    out += "    models: " + models + "\n";
    out += "    capabilities: " + capabilities + "\n";
    out += "    processing: " + processing + "\n";
    out += "    storage: " + processing + "\n";
    for (const auto& l : extra) out += "    " + l + "\n";
    return out;
  }
};

inline constexpr const char* kUpstreamKeyEnv = "MERIDIAN_SERVE_TEST_UPSTREAM_KEY";
inline constexpr const char* kUnsetKeyEnv = "MERIDIAN_SERVE_TEST_NEVER_SET_KEY";
inline constexpr const char* kRegionHeader = "x-meridian-user-region";

/// An upstream provider of `kind` at `endpoint`, keyed by kUpstreamKeyEnv.
inline ProviderYaml Upstream(std::string id, std::string kind, std::string endpoint,
                             std::string processing, std::string models,
                             std::string credential_env = kUpstreamKeyEnv) {
  ProviderYaml p;
  p.id = std::move(id);
  p.kind = std::move(kind);
  p.endpoint = std::move(endpoint);
  p.credential_env = std::move(credential_env);
  p.models = std::move(models);
  p.processing = std::move(processing);
  return p;
}

inline ProviderYaml Sim(std::string id, std::string processing, std::string models, int tokens) {
  ProviderYaml p;
  p.id = std::move(id);
  p.kind = "sim";
  p.models = std::move(models);
  p.processing = std::move(processing);
  p.extra = {"sim_tokens: " + std::to_string(tokens)};
  return p;
}

/// A policy from its parts; `guards` and `routes` are the YAML list items (indented by 2).
inline std::string PolicyYaml(const std::vector<ProviderYaml>& providers, const std::string& routes,
                              const std::string& guards = "") {
  std::string out =
      "version: 1\nsettings:\n  unknown_region_as: CN\n  default_data_class: personal\n"
      "providers:\n";
  for (const auto& p : providers) out += p.Render();
  if (!guards.empty()) out += "guards:\n" + guards;
  out += "routes:\n" + routes;
  return out;
}

/// A Chat Completions request body.
struct ChatRequest {
  std::string model = "chat";
  std::string text = "hello there";
  bool stream = false;
  bool include_usage = false;
  json::object extra{};  ///< more top-level members (tools, max_tokens, ...)

  std::string Json() const {
    json::object o;
    o["model"] = model;
    o["messages"] = json::array{json::object{{"role", "user"}, {"content", text}}};
    if (stream) o["stream"] = true;
    if (include_usage) o["stream_options"] = json::object{{"include_usage", true}};
    for (const auto& [k, v] : extra) o[k] = v;
    return json::serialize(o);
  }
};

/// What a client makes of an SSE answer.
struct ParsedStream {
  std::vector<std::string> payloads;  ///< every `data:` payload, in order
  std::vector<json::object> chunks;   ///< the chat.completion.chunk objects, in order
  bool done = false;                  ///< `data: [DONE]` arrived (and was the last event)
  std::optional<json::object> error;  ///< a terminal `data: {"error":...}` event
  std::string content;
  std::string reasoning;
  int content_deltas = 0;
  int reasoning_deltas = 0;
  std::optional<std::string> finish_reason;
  std::optional<json::object> usage_chunk;  ///< the `choices: []` chunk with usage
  std::map<std::int64_t, std::string> tool_arguments;
  std::map<std::int64_t, std::string> tool_names;
  int tool_fragments = 0;
};

inline ParsedStream ParseStream(const std::string& body) {
  ParsedStream s;
  s.payloads = SseData(body);
  for (std::size_t i = 0; i < s.payloads.size(); ++i) {
    const std::string& p = s.payloads[i];
    if (p == "[DONE]") {
      s.done = i + 1 == s.payloads.size();
      EXPECT_TRUE(s.done) << "[DONE] is not the last event";
      continue;
    }
    boost::system::error_code ec;
    json::value v = json::parse(p, ec);
    if (ec || !v.is_object()) {
      ADD_FAILURE() << "SSE payload is not a JSON object: " << p;
      continue;
    }
    json::object& o = v.as_object();
    if (o.contains("error")) {
      s.error = o;
      continue;
    }
    s.chunks.push_back(o);
    const json::array& choices = o.at("choices").as_array();
    if (choices.empty()) {
      if (o.contains("usage") && o.at("usage").is_object()) s.usage_chunk = o;
      continue;
    }
    const json::object& choice = choices[0].as_object();
    const json::object& delta = choice.at("delta").as_object();
    if (const auto* c = delta.if_contains("content"); c != nullptr && c->is_string()) {
      if (!c->as_string().empty()) ++s.content_deltas;
      s.content += c->as_string();
    }
    if (const auto* r = delta.if_contains("reasoning_content"); r != nullptr && r->is_string()) {
      ++s.reasoning_deltas;
      s.reasoning += r->as_string();
    }
    if (const auto* calls = delta.if_contains("tool_calls"); calls != nullptr) {
      for (const auto& call : calls->as_array()) {
        const std::int64_t index = call.at("index").as_int64();
        const json::object& fn = call.at("function").as_object();
        if (const auto* n = fn.if_contains("name")) s.tool_names[index] = n->as_string();
        if (const auto* a = fn.if_contains("arguments")) {
          s.tool_arguments[index] += a->as_string();
          ++s.tool_fragments;
        }
      }
    }
    if (const auto& f = choice.at("finish_reason"); f.is_string()) {
      s.finish_reason = std::string(f.as_string());
    }
  }
  return s;
}

/// The value of a Prometheus counter or gauge in a /metrics body.
inline std::optional<long long> MetricValue(const std::string& text, std::string_view name) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = text.find('\n', pos);
    const std::string_view line(text.data() + pos,
                                (end == std::string::npos ? text.size() : end) - pos);
    if (line.size() > name.size() + 1 && line.substr(0, name.size()) == name &&
        line[name.size()] == ' ') {
      return std::stoll(std::string(line.substr(name.size() + 1)));
    }
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return std::nullopt;
}

/// A bare TCP connection, for clients that misbehave at the byte level (slowloris, hanging up
/// before any answer byte). Every wait is bounded by poll().
class RawConnection {
 public:
  enum class ReadResult { kData, kClosed, kTimeout };

  explicit RawConnection(unsigned short port, const char* bind_address = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, bind_address, &local.sin_addr);
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||       // NOLINT
        ::connect(fd_, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {  // NOLINT
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error("cannot connect to the gateway");
    }
  }
  ~RawConnection() { Close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  /// False when the peer has closed or reset the connection.
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// Waits at most `timeout` for bytes (appended to `out`) or for the peer to close or reset.
  ReadResult Read(std::chrono::milliseconds timeout, std::string& out) {
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (ready == 0) return ReadResult::kTimeout;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return ReadResult::kClosed;
    out.append(buf, static_cast<std::size_t>(n));
    return ReadResult::kData;
  }

  /// Half-closes: no more bytes from this side (shutdown(SHUT_WR)); reading goes on.
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

/// Runs one gateway per test from a policy and a gateway config written to a temp directory.
class ServeFixture : public ::testing::Test {
 protected:
  void TearDown() override {
    if (gateway_) gateway_->Stop();
    gateway_.reset();
    for (const auto& name : env_) ::unsetenv(name.c_str());
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  /// Sets an environment variable (a provider credential) for this test only.
  void SetEnv(const std::string& name, const std::string& value) {
    ::setenv(name.c_str(), value.c_str(), 1);
    env_.push_back(name);
  }

  /// The per-test directory the configs are written to.
  const fs::path& Dir() {
    if (dir_.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      std::string pattern =
          std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/meridian-serve-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
      dir_ = pattern;
    }
    return dir_;
  }

  static void WriteFile(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
  }

  /// Writes the configs and starts the gateway; use with ASSERT_NO_FATAL_FAILURE.
  void StartGateway(const std::string& policy_yaml, const GatewayYaml& gateway = {}) {
    WriteFile(Dir() / "policy.yaml", policy_yaml);
    WriteFile(Dir() / "gateway.yaml", gateway.Render());
    gateway::ServeInputs in;
    in.config_name = (Dir() / "gateway.yaml").string();
    StartWith(in);
  }

  void StartWith(const gateway::ServeInputs& in) {
    const core::Status st = gateway::Gateway::Create(in, gateway_);
    ASSERT_TRUE(st.ok()) << st.message;
    ASSERT_NE(gateway_, nullptr);
    gateway_->RunInBackground();
  }

  TestClient Client(std::string bind_address = "127.0.0.1") const {
    return TestClient(gateway_->port(), std::move(bind_address));
  }

  static std::map<std::string, std::string> Auth(const std::string& key = kTenantKey) {
    return {{"authorization", "Bearer " + key}};
  }

  /// POST /v1/chat/completions as the default tenant, with extra headers.
  HttpResult Chat(const ChatRequest& request, std::map<std::string, std::string> headers = {},
                  const std::string& bind_address = "127.0.0.1") const {
    headers.emplace("authorization", std::string("Bearer ") + kTenantKey);
    return Client(bind_address).Post("/v1/chat/completions", request.Json(), headers);
  }

  /// A raw HTTP/1.1 POST /v1/chat/completions request as the default tenant.
  static std::string RawChatRequest(const ChatRequest& request) {
    const std::string body = request.Json();
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Content-Type: application/json\r\nAuthorization: Bearer " +
           std::string(kTenantKey) + "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  }

  /// The metrics as a scrape would read them (rendered in process: by default /metrics is
  /// not on the public listener, and not every test runs the admin listener).
  std::string Metrics() const { return gateway::RenderMetrics(gateway_->state()); }

  std::unique_ptr<gateway::Gateway> gateway_;

 private:
  fs::path dir_;
  std::vector<std::string> env_;
};

/// Parses a response body as a JSON object (a failure when it is not one).
inline json::object BodyJson(const HttpResult& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "body is not a JSON object: " << r.body;
    return {};
  }
  return v.as_object();
}

/// Checks an OpenAI error response: the status, the four keys of `error`, and their values
/// (`param` / `code` nullopt means JSON null).
inline void ExpectOpenAiError(const HttpResult& r, unsigned status, std::string_view type,
                              std::optional<std::string_view> code,
                              std::optional<std::string_view> param = std::nullopt) {
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_FALSE(r.header("x-request-id").empty());
  const json::object body = BodyJson(r);
  ASSERT_TRUE(body.contains("error")) << r.body;
  const json::object& e = body.at("error").as_object();
  ASSERT_TRUE(e.contains("message") && e.contains("type") && e.contains("param") &&
              e.contains("code"))
      << r.body;
  EXPECT_TRUE(e.at("message").is_string() && !e.at("message").as_string().empty()) << r.body;
  EXPECT_EQ(e.at("type"), json::value(type)) << r.body;
  if (code) {
    EXPECT_EQ(e.at("code"), json::value(*code)) << r.body;
  } else {
    EXPECT_TRUE(e.at("code").is_null()) << r.body;
  }
  if (param) {
    EXPECT_EQ(e.at("param"), json::value(*param)) << r.body;
  } else {
    EXPECT_TRUE(e.at("param").is_null()) << r.body;
  }
}

inline std::string ErrorMessage(const HttpResult& r) {
  const json::object body = BodyJson(r);
  if (!body.contains("error")) return "";
  return std::string(body.at("error").at("message").as_string());
}

/// Another gateway beside the test's own (a second replica), in its own directory, stopped
/// when it goes out of scope.
struct ServeReplica : ServeFixture {
  ~ServeReplica() override { TearDown(); }
  void TestBody() override {}
  using ServeFixture::gateway_;
  using ServeFixture::StartGateway;
};

}  // namespace meridian::testing
