#include "tests/fakes/test_certs.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace meridian::fakes {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Deleter {
  void operator()(X509* p) const { X509_free(p); }
};
struct X509ExtDeleter {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

[[noreturn]] void Fail(const std::string& what) {
  // The OpenSSL error queue says which call failed and why; without it failures are opaque.
  std::string detail;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    detail += detail.empty() ? ": " : "; ";
    detail += buf;
  }
  throw std::runtime_error("test_certs: " + what + detail);
}

void Check(int rc, const char* what) {
  if (rc <= 0) Fail(what);
}

PkeyPtr NewKey() {
  // P-256 keeps generation in the sub-millisecond range; RSA 2048 would cost ~100 ms per key.
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) Fail("EVP_EC_gen");
  return key;
}

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, X509ExtDeleter> ext(
      X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) Fail("X509V3_EXT_conf_nid(" + std::string(OBJ_nid2sn(nid)) + "=" + value + ")");
  Check(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

void SetRandomSerial(X509* cert) {
  std::unique_ptr<BIGNUM, BnDeleter> bn(BN_new());
  if (!bn) Fail("BN_new");
  // 127 bits keeps the DER integer positive without a leading zero byte.
  Check(BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), "BN_rand");
  Check(BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) != nullptr ? 1 : 0,
        "BN_to_ASN1_INTEGER");
}

void SetName(X509_NAME* name, const std::string& cn) {
  Check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("Meridian Tests"), -1, -1,
                                   0),
        "X509_NAME_add_entry_by_txt(O)");
  Check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0),
        "X509_NAME_add_entry_by_txt(CN)");
}

/// Builds and signs a certificate. `issuer`/`issuer_key` null = self-signed.
X509Ptr MakeCert(EVP_PKEY* subject_key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                 bool is_ca, const LeafSpec* leaf) {
  X509Ptr cert(X509_new());
  if (!cert) Fail("X509_new");
  Check(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");
  SetRandomSerial(cert.get());
  constexpr long kDay = 24L * 60 * 60;
  if (leaf != nullptr && leaf->expired) {
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -30 * kDay);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), -1 * kDay);
  } else {
    // Backdated an hour so clock skew between test processes cannot make it "not yet valid".
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60 * 60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30 * kDay);
  }
  Check(X509_set_pubkey(cert.get(), subject_key), "X509_set_pubkey");
  SetName(X509_get_subject_name(cert.get()), cn);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  Check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)), "X509_set_issuer_name");

  AddExt(cert.get(), signer, NID_subject_key_identifier, "hash");
  AddExt(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (is_ca) {
    AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  } else {
    AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    // EC keys only sign; keyEncipherment would be meaningless on them.
    AddExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    std::string eku;
    if (leaf->server_auth) eku = "serverAuth";
    if (leaf->client_auth) eku += eku.empty() ? "clientAuth" : ",clientAuth";
    if (!eku.empty()) AddExt(cert.get(), signer, NID_ext_key_usage, eku);
    std::string san;
    auto add = [&san](const char* kind, const std::string& v) {
      if (!san.empty()) san += ",";
      san += kind;
      san += v;
    };
    for (const auto& d : leaf->dns_sans) add("DNS:", d);
    for (const auto& ip : leaf->ip_sans) add("IP:", ip);
    for (const auto& u : leaf->uri_sans) add("URI:", u);
    if (!san.empty()) AddExt(cert.get(), signer, NID_subject_alt_name, san);
  }
  EVP_PKEY* sign_key = issuer_key != nullptr ? issuer_key : subject_key;
  if (X509_sign(cert.get(), sign_key, EVP_sha256()) <= 0) Fail("X509_sign");
  return cert;
}

void WriteCert(const std::string& path, X509* cert) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_file(path.c_str(), "w"));
  if (!bio) Fail("BIO_new_file(" + path + ")");
  Check(PEM_write_bio_X509(bio.get(), cert), "PEM_write_bio_X509");
}

void WriteKey(const std::string& path, EVP_PKEY* key) {
  {
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new_file(path.c_str(), "w"));
    if (!bio) Fail("BIO_new_file(" + path + ")");
    Check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
          "PEM_write_bio_PrivateKey");
  }
  // Some TLS stacks refuse group/world-readable keys; match what an operator would deploy.
  ::chmod(path.c_str(), S_IRUSR | S_IWUSR);
}

struct Ca {
  PkeyPtr key;
  X509Ptr cert;
};

Ca MakeCa(const std::string& cn) {
  Ca ca;
  ca.key = NewKey();
  ca.cert = MakeCert(ca.key.get(), cn, nullptr, nullptr, /*is_ca=*/true, nullptr);
  return ca;
}

LeafSpec ServerSpec(std::string stem, bool other) {
  LeafSpec s;
  s.file_stem = std::move(stem);
  s.common_name = "localhost";
  s.dns_sans = {"localhost"};
  s.ip_sans = {"127.0.0.1", "::1"};
  s.server_auth = true;
  s.signed_by_other_ca = other;
  return s;
}

LeafSpec ClientSpec(std::string stem, bool other) {
  LeafSpec s;
  s.file_stem = std::move(stem);
  s.common_name = TestCerts::kClientCommonName;
  s.uri_sans = {TestCerts::kClientSpiffeId};
  s.server_auth = false;
  s.client_auth = true;
  s.signed_by_other_ca = other;
  return s;
}

}  // namespace

struct TestCerts::Impl {
  Ca ca;
  Ca other;
};

TestCerts::TestCerts() : impl_(std::make_unique<Impl>()) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/meridian-test-certs-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "test_certs: mkdtemp " + templ);
  }
  dir_ = buf.data();
  try {
    impl_->ca = MakeCa("Meridian Test CA");
    impl_->other = MakeCa("Meridian Other CA");
    paths_.ca_cert = dir_ + "/ca.crt";
    ca_key_ = dir_ + "/ca.key";
    WriteCert(paths_.ca_cert, impl_->ca.cert.get());
    WriteKey(ca_key_, impl_->ca.key.get());
    other_ca_cert_ = dir_ + "/other-ca.crt";
    other_ca_key_ = dir_ + "/other-ca.key";
    WriteCert(other_ca_cert_, impl_->other.cert.get());
    WriteKey(other_ca_key_, impl_->other.key.get());

    CertKeyFiles server = IssueLeaf(ServerSpec("server", false));
    paths_.server_cert = server.cert;
    paths_.server_key = server.key;
    CertKeyFiles client = IssueLeaf(ClientSpec("client", false));
    paths_.client_cert = client.cert;
    paths_.client_key = client.key;
    other_server_ = IssueLeaf(ServerSpec("other-server", true));
    other_client_ = IssueLeaf(ClientSpec("other-client", true));
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    throw;
  }
}

TestCerts::~TestCerts() {
  std::error_code ec;  // best effort: a failing cleanup must not turn into a test crash
  std::filesystem::remove_all(dir_, ec);
}

CertKeyFiles TestCerts::IssueLeaf(const LeafSpec& spec) {
  if (spec.file_stem.empty()) throw std::invalid_argument("test_certs: empty file_stem");
  const Ca& ca = spec.signed_by_other_ca ? impl_->other : impl_->ca;
  PkeyPtr key = NewKey();
  X509Ptr cert =
      MakeCert(key.get(), spec.common_name, ca.cert.get(), ca.key.get(), /*is_ca=*/false, &spec);
  CertKeyFiles files{dir_ + "/" + spec.file_stem + ".crt", dir_ + "/" + spec.file_stem + ".key"};
  WriteCert(files.cert, cert.get());
  WriteKey(files.key, key.get());
  return files;
}

}  // namespace meridian::fakes
