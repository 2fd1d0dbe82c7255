// A ServeFixture with a gRPC listener and real gRPC clients (generated stubs) over TLS/mTLS
// with per-test certificates.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/grpc/grpc_codec.h"
#include "meridian/v1/assistant.grpc.pb.h"
#include "tests/fakes/test_certs.h"
#include "tests/integration/serve_fixture.h"

namespace meridian::testing {

namespace v1 = meridian::v1;

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Who the test client is on the wire.
struct ClientCreds {
  bool tls = true;
  std::string cert;  ///< client certificate file ("" = none)
  std::string key;
};

class GrpcFixture : public ServeFixture {
 protected:
  /// gRPC section with TLS; `client_ca` adds mTLS.
  std::vector<std::string> TlsSection(bool client_ca, bool require = true) const {
    std::vector<std::string> lines = {"listen: 127.0.0.1:0",
                                      "tls:", "  cert_file: " + certs_.server_cert(),
                                      "  key_file: " + certs_.server_key()};
    if (client_ca) {
      lines.push_back("  client_ca_file: " + certs_.ca_cert());
      lines.push_back(std::string("  require_client_cert: ") + (require ? "true" : "false"));
    }
    return lines;
  }

  /// The default tenant, bound to the default client certificate's SPIFFE id.
  static TenantYaml CertTenant(bool trust_region_claim = false) {
    TenantYaml t;
    t.regions = "[CN, HK]";
    t.extra = {std::string("client_cert_uris: [") + fakes::TestCerts::kClientSpiffeId + "]",
               std::string("trust_region_claim: ") + (trust_region_claim ? "true" : "false")};
    return t;
  }

  void StartMtls(const std::string& policy, GatewayYaml g = {}) {
    g.grpc = TlsSection(true);
    if (g.tenants.size() == 1 && g.tenants[0].extra.empty()) g.tenants = {CertTenant()};
    ASSERT_NO_FATAL_FAILURE(StartGateway(policy, g));
    ASSERT_NE(gateway_->grpc_port(), 0);
  }

  ClientCreds DefaultClient() const { return {true, certs_.client_cert(), certs_.client_key()}; }

  std::unique_ptr<v1::Assistant::Stub> Stub(const ClientCreds& c) const {
    return v1::Assistant::NewStub(Channel(c));
  }
  std::shared_ptr<grpc::Channel> Channel(const ClientCreds& c) const {
    const std::string target = "127.0.0.1:" + std::to_string(gateway_->grpc_port());
    if (!c.tls) return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = Slurp(certs_.ca_cert());
    if (!c.cert.empty()) {
      o.pem_cert_chain = Slurp(c.cert);
      o.pem_private_key = Slurp(c.key);
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    return grpc::CreateCustomChannel(target, grpc::SslCredentials(o), args);
  }

  static v1::GenerateRequest Request(const std::string& text = "hello") {
    v1::GenerateRequest r;
    r.set_model("chat");
    auto* m = r.add_messages();
    m->set_role(v1::ROLE_USER);
    m->add_content()->set_text(text);
    return r;
  }

  /// Everything a Generate call returned.
  struct StreamResult {
    std::vector<v1::GenerateResponse> messages;
    grpc::Status status;
    std::map<std::string, std::string> initial;  ///< server initial metadata
    std::string text;                            ///< the deltas' text, joined
  };

  static std::map<std::string, std::string> Copy(
      const std::multimap<grpc::string_ref, grpc::string_ref>& md) {
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : md)
      out.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
    return out;
  }

  static StreamResult Generate(v1::Assistant::Stub& stub, const v1::GenerateRequest& req,
                               const std::map<std::string, std::string>& metadata = {},
                               std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    grpc::ClientContext ctx;
    for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    auto reader = stub.Generate(&ctx, req);
    StreamResult r;
    v1::GenerateResponse msg;
    while (reader->Read(&msg)) {
      if (msg.has_delta()) r.text += msg.delta().text();
      r.messages.push_back(msg);
    }
    r.status = reader->Finish();
    r.initial = Copy(ctx.GetServerInitialMetadata());
    return r;
  }

  static void ExpectError(const grpc::Status& st, grpc::StatusCode code, const std::string& reason,
                          const std::string& field = "") {
    EXPECT_EQ(st.error_code(), code) << st.error_message();
    const auto info = grpcfe::ErrorInfoOf(st);
    ASSERT_TRUE(info.has_value()) << "no ErrorInfo details: " << st.error_message();
    EXPECT_EQ(info->reason(), reason) << st.error_message();
    EXPECT_EQ(info->domain(), "meridian");
    if (!field.empty()) {
      ASSERT_TRUE(info->metadata().contains("field"));
      EXPECT_EQ(info->metadata().at("field"), field);
    }
  }

  fakes::TestCerts certs_;
};

}  // namespace meridian::testing
