#include "gateway/grpc/client_cert.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace meridian::grpcfe {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct CtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};

/// Every certificate in a PEM text, in order.
std::vector<std::unique_ptr<X509, X509Free>> ReadAll(std::string_view pem) {
  std::vector<std::unique_ptr<X509, X509Free>> out;
  if (pem.empty()) return out;
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return out;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the read that ends the loop leaves "no start line" behind
  return out;
}

core::Status Untrusted(std::string why) {
  return core::Status::Error(core::StatusCode::kUnauthenticated,
                             "client certificate rejected: " + why, "untrusted_client_certificate");
}

}  // namespace

struct ClientCertVerifier::Impl {
  std::unique_ptr<X509_STORE, StoreFree> store;
};

ClientCertVerifier::ClientCertVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClientCertVerifier::~ClientCertVerifier() = default;

core::Status ClientCertVerifier::Create(std::string_view ca_pem,
                                        std::unique_ptr<ClientCertVerifier>& out) {
  auto impl = std::make_unique<Impl>();
  impl->store.reset(X509_STORE_new());
  const auto cas = ReadAll(ca_pem);
  if (!impl->store || cas.empty()) {
    return core::Status::Error(core::StatusCode::kInternal,
                               "no CA certificate could be read from client_ca_file",
                               "client_ca_unreadable");
  }
  for (const auto& ca : cas) X509_STORE_add_cert(impl->store.get(), ca.get());
  out.reset(new ClientCertVerifier(std::move(impl)));
  return core::Status::Ok();
}

core::Status ClientCertVerifier::Verify(std::string_view leaf_pem, std::string_view chain_pem,
                                        CertIdentity& identity) const {
  auto leaves = ReadAll(leaf_pem);
  if (leaves.empty()) return Untrusted("it could not be parsed");
  X509* leaf = leaves.front().get();
  std::unique_ptr<STACK_OF(X509), StackFree> chain(sk_X509_new_null());
  for (auto& c : ReadAll(chain_pem)) {
    if (X509_cmp(c.get(), leaf) == 0) continue;
    if (sk_X509_push(chain.get(), c.get()) > 0) (void)c.release();
  }
  std::unique_ptr<X509_STORE_CTX, CtxFree> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), impl_->store.get(), leaf, chain.get()) != 1) {
    return Untrusted("internal verification error");
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Untrusted(X509_verify_cert_error_string(err));
  }
  identity = {};
  std::unique_ptr<GENERAL_NAMES, NamesFree> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
      if (n->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = n->d.uniformResourceIdentifier;
      identity.uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                                 static_cast<std::size_t>(ASN1_STRING_length(uri)));
    }
  }
  X509_NAME* subject = X509_get_subject_name(leaf);
  const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
    identity.common_name.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
                                static_cast<std::size_t>(ASN1_STRING_length(cn)));
  }
  return core::Status::Ok();
}

}  // namespace meridian::grpcfe
