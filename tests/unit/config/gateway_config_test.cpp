#include "config/gateway_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_yaml.h"
#include "policy/compile.h"

namespace meridian::config {
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;

// SHA-256 of "demo-key" and "other-key" (echo -n KEY | sha256sum).
constexpr std::string_view kDemoHash =
    "c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c";
constexpr std::string_view kOtherHash =
    "580843d03d2216ff1a275d0991bad66e4d1af871171d929e9de604b7959f9bca";

void WriteFile(const fs::path& path, std::string_view text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

/// Each test gets a directory holding a policy file and TLS files, so relative paths in the
/// configs under test resolve to files that exist.
class GatewayConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("meridian-gwcfg-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    WriteFile(dir_ / "policy.yaml", "version: 1\n");
    WriteFile(dir_ / "tls" / "cert.pem", "cert");
    WriteFile(dir_ / "tls" / "key.pem", "key");
    WriteFile(dir_ / "ca.pem", "ca");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string File() const { return (dir_ / "gw.yaml").string(); }

  GatewayConfig Load(std::string_view yaml) {
    errors_.clear();
    return LoadGatewayConfigYaml(yaml, File(), errors_);
  }

  /// Errors of `yaml` as "gw.yaml:LINE:COL: message" (the directory stripped).
  Strings Errors(std::string_view yaml) {
    Load(yaml);
    return Formatted();
  }

  Strings Formatted() const {
    Strings out;
    for (FileDiagnostic d : errors_) {
      d.file = fs::path(d.file).filename().string();
      std::string line = FormatDiagnostic(d);
      // Paths in messages are the test's temporary directory; make them stable.
      for (std::size_t at; (at = line.find(dir_.string())) != std::string::npos;) {
        line.replace(at, dir_.string().size(), "DIR");
      }
      out.push_back(line);
    }
    return out;
  }

  fs::path dir_;
  std::vector<FileDiagnostic> errors_;
};

/// A valid config with `extra` appended to the first tenant.
std::string WithTenant(std::string_view extra) {
  return "policy_file: policy.yaml\n"
         "tenants:\n"
         "  - id: demo\n"
         "    api_key_sha256: " +
         std::string(kDemoHash) + "\n" + std::string(extra);
}

// --- Valid configs ---

TEST_F(GatewayConfigTest, MinimalConfigTakesDefaults) {
  const GatewayConfig c = Load(WithTenant(""));
  ASSERT_EQ(Formatted(), Strings{});
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 8080);
  EXPECT_FALSE(c.listen.ipv6);
  EXPECT_EQ(c.listen.ToString(), "127.0.0.1:8080");
  EXPECT_EQ(c.workers, 1u);
  EXPECT_FALSE(c.tls.has_value());
  EXPECT_EQ(c.policy_file, (dir_ / "policy.yaml").string());
  EXPECT_EQ(c.policy_file_pos, (policy::SourcePos{1, 1}));
  EXPECT_EQ(c.limits.max_body_bytes, 20971520u);
  EXPECT_EQ(c.limits.max_header_bytes, 16384u);
  EXPECT_EQ(c.limits.header_timeout, std::chrono::milliseconds(10000));
  EXPECT_EQ(c.limits.body_timeout, std::chrono::milliseconds(30000));
  EXPECT_EQ(c.limits.idle_timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(c.limits.max_concurrent_streams, 1000u);
  EXPECT_EQ(c.limits.retry_after_s, 1u);
  EXPECT_EQ(c.limits.drain_timeout, std::chrono::milliseconds(30000));
  EXPECT_EQ(c.limits.drain_delay, std::chrono::milliseconds(0));
  EXPECT_EQ(c.upstream.connect_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(c.upstream.first_byte_timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(c.upstream.idle_timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(c.upstream.max_response_bytes, 16777216u);
  EXPECT_EQ(c.upstream.ca_file, "");
  EXPECT_TRUE(c.trusted_proxies.cidrs.empty());
  EXPECT_EQ(c.trusted_proxies.region_header, "x-meridian-user-region");
  ASSERT_EQ(c.tenants.size(), 1u);
  const TenantConfig& t = c.tenants[0];
  EXPECT_EQ(t.id.value, "demo");
  EXPECT_EQ(t.id.pos, (policy::SourcePos{3, 9}));
  EXPECT_EQ(t.pos, (policy::SourcePos{3, 5}));
  ASSERT_EQ(t.api_key_sha256.size(), 1u);
  EXPECT_EQ(t.api_key_sha256[0].value, kDemoHash);
  EXPECT_TRUE(t.regions.empty());
  EXPECT_FALSE(t.default_region.has_value());
  EXPECT_FALSE(t.default_data_class.has_value());
  EXPECT_TRUE(t.tenant_flags.empty());
  EXPECT_EQ(t.mechanisms, 0u);
  EXPECT_EQ(t.consent, 0u);
}

TEST_F(GatewayConfigTest, FullConfigReadsEveryKey) {
  const std::string yaml = R"(listen: "[::1]:0"
workers: 4
tls: {cert_file: tls/cert.pem, key_file: tls/key.pem}
policy_file: policy.yaml
limits:
  max_body_bytes: 2048
  max_header_bytes: 8192
  header_timeout_ms: 1000
  body_timeout_ms: 2000
  idle_timeout_ms: 3000
  max_concurrent_streams: 10
  retry_after_s: 0
upstream:
  connect_timeout_ms: 100
  first_byte_timeout_ms: 200
  idle_timeout_ms: 300
  max_response_bytes: 4096
  ca_file: ca.pem
trusted_proxies:
  cidrs: [10.0.0.0/8, "::1/128"]
  region_header: X-User-Region
tenants:
  - id: demo
    api_key_sha256: [)" + std::string(kDemoHash) +
                           R"(, 580843D03D2216FF1A275D0991BAD66E4D1AF871171D929E9DE604B7959F9BCA]
    regions: [CN, HK, CN]
    default_region: CN
    default_data_class: sensitive_personal
    tenant_flags: [public_facing_cn, beta]
    mechanisms: [cn_scc_filed, gba_sc]
    consent: {cross_border_separate: true, sensitive_separate: false}
  - id: other.tenant-2
    api_key_sha256: 1111111111111111111111111111111111111111111111111111111111111111
)";
  const GatewayConfig c = Load(yaml);
  ASSERT_EQ(Formatted(), Strings{});
  EXPECT_EQ(c.listen.host, "::1");
  EXPECT_EQ(c.listen.port, 0);
  EXPECT_TRUE(c.listen.ipv6);
  EXPECT_EQ(c.listen.ToString(), "[::1]:0");
  EXPECT_EQ(c.workers, 4u);
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_EQ(c.tls->cert_file, (dir_ / "tls" / "cert.pem").string());
  EXPECT_EQ(c.tls->key_file, (dir_ / "tls" / "key.pem").string());
  EXPECT_EQ(c.limits.max_body_bytes, 2048u);
  EXPECT_EQ(c.limits.max_header_bytes, 8192u);
  EXPECT_EQ(c.limits.header_timeout, std::chrono::milliseconds(1000));
  EXPECT_EQ(c.limits.body_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(c.limits.idle_timeout, std::chrono::milliseconds(3000));
  EXPECT_EQ(c.limits.max_concurrent_streams, 10u);
  EXPECT_EQ(c.limits.retry_after_s, 0u);
  EXPECT_EQ(c.upstream.connect_timeout, std::chrono::milliseconds(100));
  EXPECT_EQ(c.upstream.first_byte_timeout, std::chrono::milliseconds(200));
  EXPECT_EQ(c.upstream.idle_timeout, std::chrono::milliseconds(300));
  EXPECT_EQ(c.upstream.max_response_bytes, 4096u);
  EXPECT_EQ(c.upstream.ca_file, (dir_ / "ca.pem").string());
  ASSERT_EQ(c.trusted_proxies.cidrs.size(), 2u);
  EXPECT_EQ(c.trusted_proxies.cidrs[0].value, "10.0.0.0/8");
  EXPECT_EQ(c.trusted_proxies.cidrs[1].value, "::1/128");
  EXPECT_EQ(c.trusted_proxies.cidrs[1].pos, (policy::SourcePos{20, 23}));
  EXPECT_EQ(c.trusted_proxies.region_header, "x-user-region");
  ASSERT_EQ(c.tenants.size(), 2u);
  const TenantConfig& t = c.tenants[0];
  ASSERT_EQ(t.api_key_sha256.size(), 2u);
  EXPECT_EQ(t.api_key_sha256[1].value, kOtherHash);  // lower-cased
  ASSERT_EQ(t.regions.size(), 2u);                   // repeats dropped
  EXPECT_EQ(t.regions[0].ToString(), "CN");
  EXPECT_EQ(t.regions[1].ToString(), "HK");
  ASSERT_TRUE(t.default_region.has_value());
  EXPECT_EQ(t.default_region->ToString(), "CN");
  EXPECT_EQ(t.default_data_class, policy::DataClass::kSensitivePersonal);
  ASSERT_EQ(t.tenant_flags.size(), 2u);
  EXPECT_EQ(t.tenant_flags[1].value, "beta");
  EXPECT_EQ(t.tenant_flags[1].pos, (policy::SourcePos{28, 38}));
  EXPECT_EQ(t.mechanisms,
            policy::Bit(policy::Mechanism::kCnSccFiled) | policy::Bit(policy::Mechanism::kGbaSc));
  EXPECT_EQ(t.consent, policy::Bit(policy::Consent::kCrossBorderSeparate));
  EXPECT_EQ(c.tenants[1].id.value, "other.tenant-2");
}

TEST_F(GatewayConfigTest, EmptySectionsAreEmpty) {
  const GatewayConfig c = Load("limits:\nupstream:\ntrusted_proxies:\n" + WithTenant(""));
  EXPECT_EQ(Formatted(), Strings{});
  EXPECT_EQ(c.limits.max_body_bytes, 20971520u);
}

// --- Structure: keys and types ---

TEST_F(GatewayConfigTest, UnknownKeysNameTheExpectedOnes) {
  EXPECT_EQ(
      Errors("listener: 1.2.3.4:80\nlimits: {max_body: 1}\n" + WithTenant("    region: CN\n")),
      (Strings{
          "gw.yaml:1:1: unknown key 'listener' in the gateway config; did you mean 'listen'? "
          "(expected one of: "
          "listen, workers, tls, grpc, audit, log, admin, metrics, cors, policy_file, limits, "
          "upstream, trusted_proxies, tenants, store, export_meter)",
          "gw.yaml:2:10: unknown key 'max_body' in limits (expected one of: "
          "max_body_bytes, max_header_bytes, header_timeout_ms, body_timeout_ms, "
          "idle_timeout_ms, max_concurrent_streams, retry_after_s, drain_timeout_ms, "
          "drain_delay_ms)",
          "gw.yaml:7:5: unknown key 'region' in tenant; did you mean 'regions'? (expected one "
          "of: id, "
          "api_key_sha256, client_cert_uris, client_cert_cns, trust_region_claim, regions, "
          "default_region, default_data_class, tenant_flags, mechanisms, consent, limits)",
      }));
}

TEST_F(GatewayConfigTest, MissingRequiredKeys) {
  EXPECT_EQ(Errors("workers: 2\n"),
            (Strings{
                "gw.yaml:1:1: the gateway config is missing required key 'policy_file'",
                "gw.yaml:1:1: the gateway config is missing required key 'tenants'",
            }));
  EXPECT_EQ(Errors("policy_file: policy.yaml\ntenants:\n  - id: demo\n  - api_key_sha256: " +
                   std::string(kOtherHash) + "\n"),
            (Strings{
                "gw.yaml:3:5: tenant 'demo' needs 'api_key_sha256' or client certificate "
                "identities ('client_cert_uris', 'client_cert_cns'): otherwise nobody can call "
                "as it",
                "gw.yaml:4:5: tenant is missing required key 'id'",
            }));
  EXPECT_EQ(Errors("policy_file: policy.yaml\ntenants:\n"),
            (Strings{"gw.yaml:2:1: 'tenants' must list at least one tenant (without one, every "
                     "request is refused)"}));
  EXPECT_EQ(Errors("tls: {cert_file: tls/cert.pem}\n" + WithTenant("")),
            (Strings{"gw.yaml:1:6: tls is missing required key 'key_file'"}));
}

TEST_F(GatewayConfigTest, WrongTypes) {
  EXPECT_EQ(Errors("workers: many\nlimits: 5\ntls: [a]\n" + WithTenant("    regions: {CN: 1}\n")),
            (Strings{
                "gw.yaml:1:10: 'workers' must be an integer",
                "gw.yaml:2:9: 'limits' must be a mapping",
                "gw.yaml:3:6: 'tls' must be a mapping",
                "gw.yaml:8:14: 'regions' must be a list of strings",
            }));
  EXPECT_EQ(Errors("policy_file: policy.yaml\ntenants: {id: demo}\n"),
            (Strings{"gw.yaml:2:10: 'tenants' must be a list"}));
  EXPECT_EQ(Errors("policy_file: policy.yaml\ntenants: [demo]\n"),
            (Strings{"gw.yaml:2:11: each item of 'tenants' must be a mapping"}));
  EXPECT_EQ(Errors(WithTenant("    consent: {cross_border_separate: yes}\n")),
            (Strings{"gw.yaml:5:38: 'cross_border_separate' must be true or false"}));
}

TEST_F(GatewayConfigTest, YamlSafetyChecksApply) {
  EXPECT_EQ(Errors(""), (Strings{"gw.yaml: the gateway config is empty"}));
  EXPECT_EQ(Errors("workers: 1\nworkers: 2\n" + WithTenant("")),
            (Strings{"gw.yaml:2:1: duplicate key 'workers' (first written at line 1)"}));
  EXPECT_EQ(Errors("policy_file: \"policy.yaml\ntenants: []\n"),
            (Strings{"gw.yaml:1:14: quoted string is not closed: a closing \" is missing"}));
  EXPECT_EQ(Errors("- a\n"), (Strings{"gw.yaml:1:1: expected a mapping at the top level"}));
}

// --- Values ---

TEST_F(GatewayConfigTest, ListenAddressSyntax) {
  const auto listen_error = [&](std::string_view listen) {
    const Strings errors = Errors("listen: " + std::string(listen) + "\n" + WithTenant(""));
    return errors.size() == 1 ? errors[0] : ::testing::PrintToString(errors);
  };
  EXPECT_EQ(listen_error("localhost:8080"),
            "gw.yaml:1:9: 'listen': 'localhost' is not an IPv4 address (host names are not "
            "resolved): write HOST:PORT with an IP address, e.g. 127.0.0.1:8080, or "
            "\"[::1]:8080\" for IPv6");
  EXPECT_EQ(listen_error("\"::1:8080\""),
            "gw.yaml:1:9: 'listen': an IPv6 address must be written in brackets, e.g. "
            "\"[::1]:8080\"");
  EXPECT_EQ(listen_error("127.0.0.1"),
            "gw.yaml:1:9: 'listen': write HOST:PORT with an IP address, e.g. 127.0.0.1:8080, "
            "or \"[::1]:8080\" for IPv6");
  EXPECT_EQ(listen_error("8080"),
            "gw.yaml:1:9: 'listen': write HOST:PORT with an IP address, e.g. 127.0.0.1:8080, "
            "or \"[::1]:8080\" for IPv6");
  EXPECT_EQ(listen_error("127.0.0.1:65536"),
            "gw.yaml:1:9: 'listen': the port must be a number between 0 and 65535");
  EXPECT_EQ(listen_error("\"127.0.0.1:\""),
            "gw.yaml:1:9: 'listen': the port must be a number between 0 and 65535");
  EXPECT_EQ(listen_error("\"[::1]8080\""),
            "gw.yaml:1:9: 'listen': write HOST:PORT with an IP address, e.g. 127.0.0.1:8080, "
            "or \"[::1]:8080\" for IPv6");
  EXPECT_EQ(listen_error("\"[1.2.3.4]:80\""),
            "gw.yaml:1:9: 'listen': '1.2.3.4' is not an IPv6 address (host names are not "
            "resolved): write HOST:PORT with an IP address, e.g. 127.0.0.1:8080, or "
            "\"[::1]:8080\" for IPv6");
  // Unquoted, a bracketed address is a YAML list.
  EXPECT_EQ(listen_error("[::1]"),
            "gw.yaml:1:9: 'listen' must be a string: write HOST:PORT with an IP address, e.g. "
            "127.0.0.1:8080, or \"[::1]:8080\" for IPv6");

  const GatewayConfig c = Load("listen: 0.0.0.0:443\n" + WithTenant(""));
  EXPECT_EQ(Formatted(), Strings{});
  EXPECT_EQ(c.listen.ToString(), "0.0.0.0:443");
}

TEST(ListenAddressTest, ParsesOverridesLikeTheFile) {
  const auto v4 = ParseListenAddress("0.0.0.0:0");
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->host, "0.0.0.0");
  EXPECT_EQ(v4->port, 0);
  EXPECT_FALSE(v4->ipv6);
  const auto v6 = ParseListenAddress("[::]:8443");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::");
  EXPECT_EQ(v6->port, 8443);
  EXPECT_TRUE(v6->ipv6);
  EXPECT_EQ(v6->ToString(), "[::]:8443");
  std::string why;
  EXPECT_FALSE(ParseListenAddress("localhost:80", &why).has_value());
  EXPECT_EQ(why,
            "'localhost' is not an IPv4 address (host names are not resolved): write HOST:PORT "
            "with an IP address, e.g. 127.0.0.1:8080, or \"[::1]:8080\" for IPv6");
  EXPECT_FALSE(ParseListenAddress("1.2.3.4:-1").has_value());
}

TEST_F(GatewayConfigTest, RangesAreChecked) {
  EXPECT_EQ(Errors("workers: 0\n"
                   "limits:\n"
                   "  max_header_bytes: 100\n"
                   "  header_timeout_ms: 0\n"
                   "  max_concurrent_streams: -1\n"
                   "upstream: {max_response_bytes: 1073741825}\n" +
                   WithTenant("")),
            (Strings{
                "gw.yaml:1:10: 'workers' must be between 1 and 64 (got 0)",
                "gw.yaml:3:21: 'max_header_bytes' must be between 1024 and 1048576 (got 100)",
                "gw.yaml:4:22: 'header_timeout_ms' must be between 1 and 3600000 (got 0)",
                "gw.yaml:5:27: 'max_concurrent_streams' must be between 1 and 1000000 (got -1)",
                "gw.yaml:6:32: 'max_response_bytes' must be between 1 and 1073741824 (got "
                "1073741825)",
            }));
  EXPECT_EQ(Errors("workers: 65\n" + WithTenant("")),
            (Strings{"gw.yaml:1:10: 'workers' must be between 1 and 64 (got 65)"}));
}

TEST_F(GatewayConfigTest, RegionHeaderMustBeAHeaderName) {
  EXPECT_EQ(Errors("trusted_proxies: {region_header: \"x user region\"}\n" + WithTenant("")),
            (Strings{"gw.yaml:1:34: 'region_header': 'x user region' is not an HTTP header "
                     "name"}));
}

// --- Tenants ---

TEST_F(GatewayConfigTest, DuplicateTenantIdsAndInvalidIds) {
  EXPECT_EQ(Errors("policy_file: policy.yaml\n"
                   "tenants:\n"
                   "  - {id: demo, api_key_sha256: " +
                   std::string(kDemoHash) +
                   "}\n"
                   "  - {id: demo, api_key_sha256: " +
                   std::string(kOtherHash) +
                   "}\n"
                   "  - {id: \"bad id\", api_key_sha256: "
                   "2222222222222222222222222222222222222222222222222222222222222222}\n"),
            (Strings{
                "gw.yaml:4:10: duplicate tenant id 'demo' (first at line 3)",
                "gw.yaml:5:10: tenant id 'bad id' must be 1 to 128 letters, digits, '_', '-' or "
                "'.', starting with a letter or digit",
            }));
}

TEST_F(GatewayConfigTest, ApiKeyDigests) {
  // A raw key: the message says what to store and never repeats the value.
  const Strings raw = Errors(
      "policy_file: policy.yaml\ntenants:\n  - id: demo\n    api_key_sha256: sk-live-1234\n");
  EXPECT_EQ(raw, (Strings{"gw.yaml:4:21: 'api_key_sha256' is not a SHA-256 digest: store the "
                          "SHA-256 of the key, not the key: echo -n KEY | sha256sum"}));
  EXPECT_EQ(raw[0].find("sk-live"), std::string::npos);

  EXPECT_EQ(Errors("policy_file: policy.yaml\ntenants:\n  - id: demo\n    api_key_sha256: [" +
                   std::string(kDemoHash.substr(1)) + "]\n"),
            (Strings{"gw.yaml:4:22: 'api_key_sha256' must be exactly 64 hex digits (this one "
                     "has 63)"}));
  EXPECT_EQ(Errors("policy_file: policy.yaml\ntenants:\n  - id: demo\n    api_key_sha256: "
                   "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\n"),
            (Strings{"gw.yaml:4:21: 'api_key_sha256' is the SHA-256 of an empty key"}));
  EXPECT_EQ(Errors("policy_file: policy.yaml\ntenants:\n  - id: demo\n    api_key_sha256: []\n"),
            (Strings{"gw.yaml:4:21: 'api_key_sha256' must list at least one key digest"}));
  // The key itself under a key-like name.
  EXPECT_EQ(Errors(WithTenant("    api_key: sk-live-1234\n")),
            (Strings{"gw.yaml:5:5: API keys must not be written in the gateway config: store the "
                     "SHA-256 of the key, not the key: echo -n KEY | sha256sum, and list it under "
                     "api_key_sha256"}));
}

TEST_F(GatewayConfigTest, DuplicateKeyDigests) {
  EXPECT_EQ(Errors("policy_file: policy.yaml\n"
                   "tenants:\n"
                   "  - id: demo\n"
                   "    api_key_sha256: [" +
                   std::string(kDemoHash) + ", " + std::string(kDemoHash) +
                   "]\n"
                   "  - id: other\n"
                   "    api_key_sha256: " +
                   std::string(kDemoHash) + "\n"),
            (Strings{
                "gw.yaml:4:88: this key digest is already listed at line 4: a key must identify "
                "exactly one tenant",
                "gw.yaml:6:21: this key digest is already listed at line 4 for tenant 'demo': a "
                "key must identify exactly one tenant",
            }));
}

TEST_F(GatewayConfigTest, RegionsAndDefaultRegion) {
  EXPECT_EQ(Errors(WithTenant("    regions: [CN, cn, XX]\n    default_region: HK\n")),
            (Strings{
                "gw.yaml:5:19: regions: unknown region code 'cn'",
                "gw.yaml:5:23: regions: unknown region code 'XX'",
                "gw.yaml:6:21: default_region 'HK' is not one of this tenant's regions (add it "
                "to 'regions')",
            }));
  EXPECT_EQ(Errors(WithTenant("    default_region: China\n")),
            (Strings{"gw.yaml:5:21: default_region: unknown region code 'China'"}));
  // Without regions, a default region is still a binding the tenant must list.
  EXPECT_EQ(Errors(WithTenant("    default_region: CN\n")),
            (Strings{"gw.yaml:5:21: default_region 'CN' is not one of this tenant's regions (add "
                     "it to 'regions')"}));
}

TEST_F(GatewayConfigTest, EnumNames) {
  EXPECT_EQ(Errors(WithTenant("    default_data_class: secret\n"
                              "    mechanisms: [cn_scc_filed, scc]\n"
                              "    consent: {cross_border: true}\n")),
            (Strings{
                "gw.yaml:5:25: unknown data class 'secret' (expected one of: none, personal, "
                "sensitive_personal, important, core)",
                "gw.yaml:6:32: unknown mechanism 'scc' (expected one of: cn_sa, cn_scc_filed, "
                "cn_cert, gba_sc, mo_sc, eu_scc, eu_bcr)",
                "gw.yaml:7:15: unknown key 'cross_border' in consent (expected one of: "
                "cross_border_separate, sensitive_separate)",
            }));
}

TEST_F(GatewayConfigTest, EveryErrorIsReportedInFileOrder) {
  const Strings errors = Errors(
      "tenants:\n"
      "  - id: demo\n"
      "    api_key_sha256: nope\n"
      "    regions: [ZZ]\n"
      "workers: 0\n"
      "listen: nowhere\n");
  ASSERT_EQ(errors.size(), 5u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "gw.yaml:1:1: the gateway config is missing required key 'policy_file'");
  EXPECT_EQ(errors[1].substr(0, 13), "gw.yaml:3:21:");
  EXPECT_EQ(errors[2].substr(0, 13), "gw.yaml:4:15:");
  EXPECT_EQ(errors[3].substr(0, 13), "gw.yaml:5:10:");
  EXPECT_EQ(errors[4].substr(0, 12), "gw.yaml:6:9:");
}

// --- Files ---

TEST_F(GatewayConfigTest, RelativePathsResolveAgainstTheConfigDirectory) {
  WriteFile(dir_ / "etc" / "gw.yaml", "");
  std::vector<FileDiagnostic> errors;
  const GatewayConfig c = LoadGatewayConfigYaml(
      "policy_file: ../policy.yaml\n"
      "tls: {cert_file: ../tls/cert.pem, key_file: " +
          (dir_ / "tls" / "key.pem").string() +
          "}\n"
          "tenants: [{id: demo, api_key_sha256: " +
          std::string(kDemoHash) + "}]\n",
      (dir_ / "etc" / "gw.yaml").string(), errors);
  ASSERT_TRUE(errors.empty()) << FormatDiagnostic(errors[0]);
  EXPECT_EQ(c.policy_file, (dir_ / "etc" / ".." / "policy.yaml").string());
  EXPECT_TRUE(fs::equivalent(c.policy_file, dir_ / "policy.yaml"));
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_TRUE(fs::equivalent(c.tls->cert_file, dir_ / "tls" / "cert.pem"));
  EXPECT_EQ(c.tls->key_file, (dir_ / "tls" / "key.pem").string());  // absolute: unchanged
}

TEST_F(GatewayConfigTest, ConfigInTheWorkingDirectoryKeepsRelativePaths) {
  std::vector<FileDiagnostic> errors;
  const GatewayConfig c = LoadGatewayConfigYaml(
      "policy_file: " + (dir_ / "policy.yaml").string() +
          "\ntenants: [{id: demo, api_key_sha256: " + std::string(kDemoHash) + "}]\n",
      "gw.yaml", errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(c.policy_file, (dir_ / "policy.yaml").string());
}

TEST_F(GatewayConfigTest, FilesMustBeReadableReportedAtTheKey) {
  EXPECT_EQ(Errors("tls:\n"
                   "  cert_file: missing.pem\n"
                   "  key_file: tls\n"
                   "upstream: {ca_file: nope.pem}\n"
                   "policy_file: other.yaml\n"
                   "tenants: [{id: demo, api_key_sha256: " +
                   std::string(kDemoHash) + "}]\n"),
            (Strings{
                "gw.yaml:2:3: 'cert_file': cannot read 'DIR/missing.pem': No such file or "
                "directory",
                "gw.yaml:3:3: 'key_file': cannot read 'DIR/tls': is a directory",
                "gw.yaml:4:12: 'ca_file': cannot read 'DIR/nope.pem': No such file or directory",
                "gw.yaml:5:1: 'policy_file': cannot read 'DIR/other.yaml': No such file or "
                "directory",
            }));
  EXPECT_EQ(Errors("policy_file: \"\"\ntenants: [{id: demo, api_key_sha256: " +
                   std::string(kDemoHash) + "}]\n"),
            (Strings{"gw.yaml:1:14: 'policy_file' must not be empty"}));
}

// The open error is reported with its reason. (A path through a file fails for every user;
// permission bits would not stop root, so they cannot make this test fail-able everywhere.)
TEST_F(GatewayConfigTest, UnreadableTlsKeyIsReported) {
  EXPECT_EQ(
      Errors("tls: {cert_file: tls/cert.pem, key_file: tls/key.pem/inner}\n" + WithTenant("")),
      (Strings{"gw.yaml:1:32: 'key_file': cannot read 'DIR/tls/key.pem/inner': Not a "
               "directory"}));
}

// --- gRPC front end ---

TEST_F(GatewayConfigTest, GrpcWithMtlsAndCertificateTenants) {
  const GatewayConfig c = Load(
      "grpc:\n  listen: 127.0.0.1:0\n  tls: {cert_file: tls/cert.pem, key_file: tls/key.pem, "
      "client_ca_file: ca.pem}\n  max_message_bytes: 65536\n"
      "policy_file: policy.yaml\ntenants:\n  - id: backend\n"
      "    client_cert_uris: [spiffe://example.org/backend]\n"
      "    client_cert_cns: [backend.example.org]\n    trust_region_claim: true\n");
  ASSERT_EQ(Formatted(), Strings{});
  ASSERT_TRUE(c.grpc.has_value());
  EXPECT_EQ(c.grpc->listen.ToString(), "127.0.0.1:0");
  ASSERT_TRUE(c.grpc->tls.has_value());
  EXPECT_EQ(c.grpc->tls->client_ca_file, (dir_ / "ca.pem").string());
  EXPECT_TRUE(c.grpc->tls->require_client_cert);  // the default with a client CA
  EXPECT_FALSE(c.grpc->plaintext);
  EXPECT_EQ(c.grpc->max_message_bytes, 65536u);
  ASSERT_EQ(c.tenants.size(), 1u);
  EXPECT_TRUE(c.tenants[0].api_key_sha256.empty());
  EXPECT_EQ(c.tenants[0].client_cert_uris.at(0).value, "spiffe://example.org/backend");
  EXPECT_EQ(c.tenants[0].client_cert_cns.at(0).value, "backend.example.org");
  EXPECT_TRUE(c.tenants[0].trust_region_claim);
}

TEST_F(GatewayConfigTest, GrpcMistakes) {
  EXPECT_EQ(Errors("grpc:\n  listen: 127.0.0.1:9090\n" + WithTenant("")),
            (Strings{"gw.yaml:1:1: 'grpc' needs 'tls' (cert_file, key_file, and client_ca_file "
                     "for mTLS), or 'plaintext: true' for development"}));
  EXPECT_EQ(Errors("grpc:\n  listen: 127.0.0.1:9090\n  plaintext: true\n  tls: "
                   "{cert_file: tls/cert.pem, key_file: tls/key.pem}\n" +
                   WithTenant("")),
            (Strings{"gw.yaml:3:3: 'plaintext: true' and 'tls' exclude each other"}));
  EXPECT_EQ(Errors("grpc:\n  plaintext: true\n  tls: {cert_file: tls/cert.pem, key_file: "
                   "tls/key.pem, require_client_cert: true}\n" +
                   WithTenant("")),
            (Strings{"gw.yaml:2:3: grpc is missing required key 'listen'",
                     "gw.yaml:2:3: 'plaintext: true' and 'tls' exclude each other",
                     "gw.yaml:3:57: 'require_client_cert' needs 'client_ca_file' (the CA that "
                     "signs client certificates)"}));
}

TEST_F(GatewayConfigTest, CertificateIdentitiesAreValidatedAndUnique) {
  EXPECT_EQ(Errors(WithTenant("    client_cert_uris: [backend, spiffe://x/a]\n"
                              "  - id: other\n    client_cert_uris: [spiffe://x/a]\n"
                              "    client_cert_cns: [\"\"]\n")),
            (Strings{
                "gw.yaml:5:24: client_cert_uris: 'backend' is not a URI (e.g. "
                "spiffe://example.org/ns/prod/sa/backend)",
                "gw.yaml:7:24: certificate identity 'spiffe://x/a' is already listed at line 5 "
                "for tenant 'demo': a certificate must identify exactly one tenant",
                "gw.yaml:8:23: client_cert_cns: a common name must not be empty",
            }));
}

// --- Operations: audit, log, admin, drain ---

TEST_F(GatewayConfigTest, OperationsSections) {
  const GatewayConfig c = Load(
      "audit: {path: logs/audit.jsonl, fsync: true, max_files: 3, on_failure: continue}\n"
      "log: {level: warn, format: json, access: false}\n"
      "admin: {listen: 127.0.0.1:0, token_env: MERIDIAN_ADMIN_TOKEN}\n"
      "limits: {drain_timeout_ms: 1500, drain_delay_ms: 5000}\n" +
      WithTenant(""));
  ASSERT_EQ(Formatted(), Strings{});
  ASSERT_TRUE(c.audit.has_value());
  EXPECT_EQ(c.audit->path, (dir_ / "logs/audit.jsonl").string());
  EXPECT_TRUE(c.audit->fsync);
  EXPECT_EQ(c.audit->max_files, 3u);
  EXPECT_FALSE(c.audit->fail_closed);
  EXPECT_EQ(c.log.level, "warn");
  EXPECT_TRUE(c.log.json);
  EXPECT_FALSE(c.log.access);
  ASSERT_TRUE(c.admin_listen.has_value());
  EXPECT_EQ(c.admin_token.env, "MERIDIAN_ADMIN_TOKEN");
  EXPECT_EQ(c.admin_token.file, "");
  EXPECT_EQ(c.admin_token.pos, (policy::SourcePos{3, 30}));
  EXPECT_FALSE(c.metrics_public);
  EXPECT_EQ(c.limits.drain_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(c.limits.drain_delay, std::chrono::milliseconds(5000));
  EXPECT_EQ(Load("limits: {drain_delay_ms: 0}\n" + WithTenant("")).limits.drain_delay,
            std::chrono::milliseconds(0));
  EXPECT_EQ(Formatted(), Strings{});
  // Defaults: fail closed, text, access lines on.
  const GatewayConfig d = Load("audit: {path: a.jsonl}\n" + WithTenant(""));
  EXPECT_TRUE(d.audit->fail_closed);
  EXPECT_FALSE(d.log.json);
  EXPECT_TRUE(d.log.access);
}

TEST_F(GatewayConfigTest, OperationsMistakes) {
  EXPECT_EQ(Errors("audit: {on_failure: ignore}\nlog: {level: debug, format: xml}\nadmin: {}\n" +
                   WithTenant("")),
            (Strings{
                "gw.yaml:1:8: audit is missing required key 'path'",
                "gw.yaml:1:21: 'on_failure' must be reject or continue",
                "gw.yaml:2:14: 'level' must be info, warn or error",
                "gw.yaml:2:29: 'format' must be text or json",
                "gw.yaml:3:8: admin is missing required key 'listen'",
                "gw.yaml:3:8: admin needs 'token_env' (the environment variable holding its "
                "bearer token) or 'token_file' (a file holding it): every admin route but "
                "/healthz and /readyz requires the token",
            }));
  EXPECT_EQ(Errors("limits:\n  drain_delay_ms: -1\n" + WithTenant("")),
            (Strings{"gw.yaml:2:19: 'drain_delay_ms' must be between 0 and 3600000 (got -1)"}));
  EXPECT_EQ(Errors("limits: {drain_delay_ms: 3600001}\n" + WithTenant("")),
            (Strings{"gw.yaml:1:26: 'drain_delay_ms' must be between 0 and 3600000 (got "
                     "3600001)"}));
  EXPECT_EQ(Errors("limits: {drain_delay_ms: soon}\n" + WithTenant("")),
            (Strings{"gw.yaml:1:26: 'drain_delay_ms' must be an integer"}));
}

TEST_F(GatewayConfigTest, AdminTokenSourceAndPublicMetrics) {
  WriteFile(dir_ / "admin.token", "t");
  const GatewayConfig c = Load(
      "admin:\n  listen: 127.0.0.1:9901\n  token_file: admin.token\nmetrics: {public: true}\n" +
      WithTenant(""));
  ASSERT_EQ(Formatted(), Strings{});
  EXPECT_EQ(c.admin_token.env, "");
  EXPECT_EQ(c.admin_token.file, (dir_ / "admin.token").string());
  EXPECT_EQ(c.admin_token.pos, (policy::SourcePos{3, 3}));
  EXPECT_TRUE(c.metrics_public);
  EXPECT_EQ(
      Errors("admin:\n  listen: 127.0.0.1:0\n  token_env: sk-0123456789abcdef\n" + WithTenant("")),
      (Strings{"gw.yaml:3:14: 'token_env' must be the NAME of an environment variable (upper "
               "case, digits and _; e.g. MERIDIAN_ADMIN_TOKEN), not the token itself"}));
  EXPECT_EQ(Errors("admin:\n  listen: 127.0.0.1:0\n  token_env: A\n  token_file: admin.token\n" +
                   WithTenant("")),
            (Strings{"gw.yaml:4:3: 'token_env' and 'token_file' exclude each other: name one "
                     "source of the admin token"}));
  EXPECT_EQ(
      Errors("admin:\n  listen: 127.0.0.1:0\n  token: hunter2-hunter2-hunter2\n" + WithTenant("")),
      (Strings{"gw.yaml:2:3: admin needs 'token_env' (the environment variable holding "
               "its bearer token) or 'token_file' (a file holding it): every admin route "
               "but /healthz and /readyz requires the token",
               "gw.yaml:3:3: the admin token must not be written in the gateway config: "
               "put it in an environment variable named by 'token_env', or in a file named "
               "by 'token_file'"}));
  EXPECT_EQ(Errors("admin:\n  listen: 127.0.0.1:0\n  token_file: absent.token\n" + WithTenant("")),
            (Strings{"gw.yaml:3:3: 'token_file': cannot read 'DIR/absent.token': No such file or "
                     "directory"}));
  EXPECT_EQ(Errors("metrics: {public: maybe}\n" + WithTenant("")).size(), 1u);
}

TEST_F(GatewayConfigTest, CorsOrigins) {
  const GatewayConfig none = Load(WithTenant(""));
  EXPECT_TRUE(none.cors.allowed_origins.empty());
  EXPECT_FALSE(none.cors.Allows("https://app.example.com"));
  EXPECT_EQ(none.cors.max_age_s, 600u);

  const GatewayConfig c = Load(
      "cors:\n  allowed_origins: [\"https://App.Example.com\", \"http://localhost:5173\", "
      "\"https://app.example.com\", \"http://[::1]:8080\"]\n  max_age_s: 0\n" +
      WithTenant(""));
  ASSERT_EQ(Formatted(), Strings{});
  EXPECT_EQ(c.cors.allowed_origins,
            (std::vector<std::string>{"https://app.example.com", "http://localhost:5173",
                                      "http://[::1]:8080"}));
  EXPECT_EQ(c.cors.max_age_s, 0u);
  EXPECT_TRUE(c.cors.Allows("https://app.example.com"));
  EXPECT_TRUE(c.cors.Allows("HTTPS://APP.EXAMPLE.COM"));
  EXPECT_FALSE(c.cors.Allows("https://app.example.com:443"));  // exact origins only
  EXPECT_FALSE(c.cors.Allows("https://app.example.com.evil.net"));
  EXPECT_FALSE(c.cors.Allows("null"));
  EXPECT_FALSE(c.cors.Allows(""));
  EXPECT_TRUE(Load("cors: {allowed_origins: [\"*\"]}\n" + WithTenant("")).cors.Allows("null"));

  EXPECT_EQ(Errors("cors:\n  allowed_origins: [app.example.com, \"https://a.example/\", "
                   "\"https://a:99999\", \"ftp://a\", \"https://\"]\n  max_age_s: 86401\n" +
                   WithTenant("")),
            (Strings{
                "gw.yaml:2:21: 'allowed_origins': 'app.example.com' is not an origin: write "
                "scheme://host[:port] (https://app.example.com), or \"*\" for any",
                "gw.yaml:2:38: 'allowed_origins': 'https://a.example/' is not an origin: write "
                "scheme://host[:port] (https://app.example.com), or \"*\" for any",
                "gw.yaml:2:60: 'allowed_origins': 'https://a:99999' is not an origin: write "
                "scheme://host[:port] (https://app.example.com), or \"*\" for any",
                "gw.yaml:2:79: 'allowed_origins': 'ftp://a' is not an origin: write "
                "scheme://host[:port] (https://app.example.com), or \"*\" for any",
                "gw.yaml:2:90: 'allowed_origins': 'https://' is not an origin: write "
                "scheme://host[:port] (https://app.example.com), or \"*\" for any",
                "gw.yaml:3:14: 'max_age_s' must be between 0 and 86400 (got 86401)",
            }));
}

TEST_F(GatewayConfigTest, LoadFile) {
  WriteFile(dir_ / "gw.yaml", WithTenant("    regions: [XX]\n"));
  std::vector<FileDiagnostic> errors;
  const GatewayConfig c = LoadGatewayConfigFile(File(), errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(FormatDiagnostic(errors[0]), File() + ":5:15: regions: unknown region code 'XX'");
  EXPECT_EQ(c.tenants.size(), 1u);

  errors.clear();
  LoadGatewayConfigFile((dir_ / "absent.yaml").string(), errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(FormatDiagnostic(errors[0]),
            (dir_ / "absent.yaml").string() + ": cannot read: No such file or directory");

  errors.clear();
  LoadGatewayConfigFile(dir_.string(), errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, "is a directory, not a gateway config");
}

// --- Tenant flags against the policy ---

TEST_F(GatewayConfigTest, CheckTenantFlagsAgainstThePolicy) {
  std::vector<FileDiagnostic> policy_errors;
  const auto doc = ParsePolicyYaml(R"(version: 1
tenant_flags: [beta]
providers:
  - {id: p, kind: sim, models: {m: m}, processing: [CN]}
routes:
  - {id: r, allow: [p]}
)",
                                   "policy.yaml", policy_errors);
  ASSERT_TRUE(policy_errors.empty());
  const auto compiled = policy::Compile(doc.spec);
  ASSERT_TRUE(compiled.errors.empty()) << compiled.errors[0].message;

  const GatewayConfig c = Load(WithTenant("    tenant_flags: [public_facing_cn, beta, gamma]\n"));
  ASSERT_EQ(Formatted(), Strings{});
  const auto errors = CheckTenantFlags(c, *compiled.snapshot, "gw.yaml");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(FormatDiagnostic(errors[0]),
            "gw.yaml:5:44: tenant 'demo': unknown tenant flag 'gamma' (the policy knows: ciio, "
            "public_facing_cn, require_zdr, beta; declare others under tenant_flags: in the "
            "policy file)");
}

TEST_F(GatewayConfigTest, TenantLimitsAndTheStore) {
  const GatewayConfig c = Load(
      "store: {kind: redis, address: redis.internal:6380, username: gw, password_env: REDIS_PW,"
      " db: 2, connect_timeout_ms: 50, command_timeout_ms: 20, lease_ttl_ms: 30000}\n" +
      WithTenant("    limits:\n"
                 "      requests_per_minute: 600\n"
                 "      tokens_per_minute: 100000\n"
                 "      tokens_per_day: 5000000\n"
                 "      tokens_per_month: 90000000\n"
                 "      concurrent_streams: 40\n"
                 "      per_key: {requests_per_minute: 60, concurrent_streams: 4}\n"
                 "      per_subject: {requests_per_minute: 10, tokens_per_minute: 5000}\n"
                 "      default_max_tokens: 256\n"
                 "      on_store_failure: fail_open\n"));
  ASSERT_EQ(Formatted(), Strings{});
  EXPECT_EQ(c.store.kind, StoreConfig::Kind::kRedis);
  EXPECT_EQ(c.store.host, "redis.internal");
  EXPECT_EQ(c.store.port, "6380");
  EXPECT_EQ(c.store.username, "gw");
  EXPECT_EQ(c.store.password_env, "REDIS_PW");
  EXPECT_EQ(c.store.db, 2u);
  EXPECT_EQ(c.store.connect_timeout, std::chrono::milliseconds(50));
  EXPECT_EQ(c.store.command_timeout, std::chrono::milliseconds(20));
  EXPECT_EQ(c.store.lease_ttl, std::chrono::milliseconds(30000));
  ASSERT_TRUE(c.tenants[0].limits.has_value());
  const TenantLimitsConfig& l = *c.tenants[0].limits;
  EXPECT_EQ(l.tenant.requests_per_minute, 600u);
  EXPECT_EQ(l.tenant.tokens_per_minute, 100000u);
  EXPECT_EQ(l.tokens_per_day, 5000000u);
  EXPECT_EQ(l.tokens_per_month, 90000000u);
  EXPECT_EQ(l.per_key.requests_per_minute, 60u);
  EXPECT_EQ(l.per_key.tokens_per_minute, 0u);
  EXPECT_EQ(l.tenant.concurrent_streams, 40u);
  EXPECT_EQ(l.per_key.concurrent_streams, 4u);
  EXPECT_EQ(l.per_subject.tokens_per_minute, 5000u);
  EXPECT_EQ(l.default_max_tokens, 256u);
  EXPECT_TRUE(l.fail_open);
  EXPECT_TRUE(c.HasLimits());

  // Defaults: an in-process store, fail closed, 1024 tokens reserved.
  const GatewayConfig d = Load(WithTenant("    limits: {requests_per_minute: 1}\n"));
  ASSERT_EQ(Formatted(), Strings{});
  EXPECT_EQ(d.store.kind, StoreConfig::Kind::kMemory);
  EXPECT_EQ(d.store.lease_ttl, std::chrono::milliseconds(60000));
  EXPECT_FALSE(d.tenants[0].limits->fail_open);
  EXPECT_EQ(d.tenants[0].limits->default_max_tokens, 1024u);
  EXPECT_FALSE(Load(WithTenant("")).HasLimits());
}

TEST_F(GatewayConfigTest, LimitAndStoreMistakesArePositioned) {
  EXPECT_EQ(
      Errors("store: {kind: etcd, address: redis, password: hunter2, db: 16}\n" +
             WithTenant("    limits: {requests_per_minute: -1, per_key: {rpm: 5},"
                        " on_store_failure: open}\n")),
      (Strings{
          "gw.yaml:1:15: 'kind' must be memory or redis",
          "gw.yaml:1:30: 'address': write HOST:PORT, e.g. 127.0.0.1:6379 or redis.internal:6379",
          "gw.yaml:1:37: the Redis password must not be written in the gateway config: put it in "
          "an environment variable and name it with 'password_env'",
          "gw.yaml:1:60: 'db' must be between 0 and 15 (got 16)",
          "gw.yaml:6:35: 'requests_per_minute' must be between 0 and 1000000000000 (got -1)",
          "gw.yaml:6:49: unknown key 'rpm' in per_key (expected one of: requests_per_minute, "
          "tokens_per_minute, concurrent_streams)",
          "gw.yaml:6:76: 'on_store_failure' must be fail_closed or fail_open",
      }));
}

}  // namespace
}  // namespace meridian::config

namespace meridian::config {
namespace {

// ---- what a reload may change --------------------------------------------------------------

std::vector<std::string> RestartOnly(std::string_view running, std::string_view next) {
  std::vector<std::string> out;
  for (const auto& e : RestartOnlyChanges(running, next, "gw.yaml")) {
    out.push_back(FormatDiagnostic(e));
  }
  return out;
}

constexpr std::string_view kRunning =
    "listen: 127.0.0.1:8080\n"
    "workers: 2\n"
    "policy_file: policy.yaml\n"
    "trusted_proxies: {cidrs: [10.0.0.0/8]}\n"
    "limits: {max_body_bytes: 1048576}\n"
    "tenants:\n"
    "  - id: a\n"
    "    api_key_sha256: [aaaa]\n";

TEST(RestartOnlyChanges, TenantsAndTrustedProxiesMayChangeWhileLayoutAndOrderDoNotCount) {
  EXPECT_TRUE(RestartOnly(kRunning, kRunning).empty());
  // Tenants added, keys rotated, trusted proxies changed and removed: all reloadable.
  EXPECT_TRUE(RestartOnly(kRunning,
                          "listen: 127.0.0.1:8080\nworkers: 2\npolicy_file: policy.yaml\n"
                          "limits: {max_body_bytes: 1048576}\n"
                          "tenants:\n  - id: a\n    api_key_sha256: [aaaa, bbbb]\n"
                          "  - id: b\n    api_key_sha256: [cccc]\n")
                  .empty());
  // The same data written differently (block style, other key order, a comment).
  EXPECT_TRUE(RestartOnly(kRunning,
                          "# edited\nworkers: 2\nlisten: 127.0.0.1:8080\n"
                          "limits:\n  max_body_bytes: 1048576\n"
                          "policy_file: policy.yaml\n"
                          "tenants: [{id: a, api_key_sha256: [aaaa]}]\n"
                          "trusted_proxies:\n  cidrs:\n    - 10.0.0.0/8\n")
                  .empty());
}

TEST(RestartOnlyChanges, EveryOtherChangedAddedOrRemovedKeyIsNamedAtItsPosition) {
  const auto errors = RestartOnly(kRunning,
                                  "listen: 127.0.0.1:9090\n"
                                  "policy_file: policy.yaml\n"
                                  "limits: {max_body_bytes: 2048}\n"
                                  "grpc: {listen: 127.0.0.1:9091, plaintext: true}\n"
                                  "tenants:\n  - id: a\n    api_key_sha256: [aaaa]\n");
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  const std::string tail =
      "a reload applies only 'tenants' and 'trusted_proxies'; restart the gateway to apply it";
  EXPECT_EQ(errors[0], "gw.yaml:1:1: 'listen' changed: " + tail);
  EXPECT_EQ(errors[1], "gw.yaml:3:1: 'limits' changed: " + tail);
  EXPECT_EQ(errors[2], "gw.yaml:4:1: 'grpc' changed: " + tail);
  EXPECT_EQ(errors[3], "gw.yaml: 'workers' was removed: " + tail);
}

TEST(RestartOnlyChanges, AnInvalidNewTextIsReportedNotCompared) {
  const auto errors = RestartOnly(kRunning, "listen: [unclosed\n");
  ASSERT_FALSE(errors.empty());
  EXPECT_THAT(errors[0], ::testing::HasSubstr("invalid YAML"));
}

}  // namespace
}  // namespace meridian::config
