#include "gateway/cli/audit_cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "gateway/audit_chain.h"
#include "gateway/audit_verify.h"
#include "gateway/file_text.h"
#include "gateway/serve.h"

namespace meridian::cli {
namespace {

// audit.jsonl.3 -> audit.jsonl: the file the writer rotates from.
std::string RotationBase(const std::string& path) {
  const auto dot = path.rfind('.');
  if (dot == std::string::npos || dot + 1 == path.size()) return path;
  for (std::size_t i = dot + 1; i < path.size(); ++i) {
    if (path[i] < '0' || path[i] > '9') return path;
  }
  return path.substr(0, dot);
}

struct VerifyOptions {
  std::vector<std::string> files;
  std::vector<std::string> checkpoints;
  std::string pubkey;
  bool json = false;
};

int Verify(const VerifyOptions& o) {
  std::vector<audit::NamedText> logs;
  for (const std::string& f : o.files) {
    audit::NamedText t{f, {}};
    if (!gateway::ReadWholeFile(f, t.text)) {
      std::cerr << "meridian audit verify: cannot read '" << f << "'\n";
      return 2;
    }
    logs.push_back(std::move(t));
  }
  std::vector<std::string> cp_paths = o.checkpoints;
  if (cp_paths.empty()) {
    // The checkpoint file next to the logs, as the writer names it.
    std::set<std::string> bases;
    for (const std::string& f : o.files) bases.insert(RotationBase(f) + ".checkpoints");
    for (const std::string& b : bases) {
      if (std::filesystem::exists(b)) cp_paths.push_back(b);
    }
  }
  std::vector<audit::NamedText> checkpoints;
  for (const std::string& f : cp_paths) {
    audit::NamedText t{f, {}};
    if (!gateway::ReadWholeFile(f, t.text)) {
      std::cerr << "meridian audit verify: cannot read '" << f << "'\n";
      return 2;
    }
    checkpoints.push_back(std::move(t));
  }
  std::unique_ptr<audit::Ed25519Key> key;
  if (!o.pubkey.empty()) {
    std::string pem;
    if (!gateway::ReadWholeFile(o.pubkey, pem)) {
      std::cerr << "meridian audit verify: cannot read '" << o.pubkey << "'\n";
      return 2;
    }
    if (auto st = audit::Ed25519Key::FromPublicPem(pem, key); !st.ok()) {
      std::cerr << "meridian audit verify: " << o.pubkey << ": " << st.message << "\n";
      return 2;
    }
  }
  const audit::VerifyReport report = audit::Verify(logs, checkpoints, key.get());
  if (o.json) {
    std::cout << audit::ReportJson(report) << "\n";
  } else {
    std::cout << audit::FormatReport(report);
  }
  return report.tampered() ? 1 : 0;
}

struct PubkeyOptions {
  std::string config;
  std::string key_file;
};

int Pubkey(const PubkeyOptions& o) {
  std::string pem;
  if (!o.key_file.empty()) {
    if (!gateway::ReadWholeFile(o.key_file, pem)) {
      std::cerr << "meridian audit pubkey: cannot read '" << o.key_file << "'\n";
      return 1;
    }
  } else {
    std::vector<config::FileDiagnostic> errors;
    const config::GatewayConfig cfg = config::LoadGatewayConfigFile(o.config, errors);
    if (errors.empty()) pem = gateway::ReadAuditSigningKey(cfg, o.config, errors);
    if (!errors.empty()) {
      for (const auto& e : errors) std::cerr << config::FormatDiagnostic(e) << "\n";
      return 1;
    }
    if (pem.empty()) {
      std::cerr << o.config
                << ": no audit signing key (audit.signing_key_file or audit.signing_key_env): "
                   "this gateway writes no checkpoints\n";
      return 1;
    }
  }
  std::unique_ptr<audit::Ed25519Key> key;
  if (auto st = audit::Ed25519Key::FromPrivatePem(pem, key); !st.ok()) {
    std::cerr << "meridian audit pubkey: " << st.message << "\n";
    return 1;
  }
  // The PEM alone on stdout (`> audit.pub` is the file verify takes); the id beside it.
  std::cerr << "key_id " << key->key_id() << "\n";
  std::cout << key->PublicPem();
  return 0;
}

int Keygen(const std::string& path) {
  const std::string pem = audit::Ed25519Key::GeneratePrivatePem();
  std::unique_ptr<audit::Ed25519Key> key;
  if (pem.empty() || !audit::Ed25519Key::FromPrivatePem(pem, key).ok()) {
    std::cerr << "meridian audit keygen: OpenSSL could not make an Ed25519 key\n";
    return 1;
  }
  // O_EXCL: an existing key (which signed checkpoints already) is never replaced.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::cerr << "meridian audit keygen: " << path << ": "
              << (errno == EEXIST ? "exists; not overwritten (a new key would not verify the "
                                    "checkpoints the old one signed)"
                                  : std::strerror(errno))
              << "\n";
    return 1;
  }
  const bool ok =
      ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    std::cerr << "meridian audit keygen: " << path << ": cannot write\n";
    ::unlink(path.c_str());
    return 1;
  }
  std::cerr << "wrote " << path << " (0600), key_id " << key->key_id() << "\n";
  return 0;
}

}  // namespace

void AddAuditCommands(CLI::App& app, std::function<int()>& run) {
  auto* audit = app.add_subcommand(
      "audit", "The audit log's tamper evidence: verify files, publish the signing key");
  audit->require_subcommand(1);

  auto vo = std::make_shared<VerifyOptions>();
  auto* verify = audit->add_subcommand(
      "verify",
      "Check audit files (any order, rotated ones too) against their hash chain and the signed "
      "checkpoints; exit 0 when nothing was tampered with, 1 when something was, 2 when a file "
      "cannot be read");
  verify->add_option("files", vo->files, "Audit files (audit.jsonl, audit.jsonl.1, ...)")
      ->required();
  verify->add_option("--pubkey", vo->pubkey,
                     "The signing key's public half (PEM, from `meridian audit pubkey`); "
                     "without it signatures are not checked");
  verify->add_option("--checkpoints", vo->checkpoints,
                     "Checkpoint files; default: FILE.checkpoints beside the audit files");
  verify->add_flag("--json", vo->json, "Print the report as JSON");
  verify->callback([vo, &run] { run = [vo] { return Verify(*vo); }; });

  auto keyfile = std::make_shared<std::string>();
  auto* keygen = audit->add_subcommand(
      "keygen",
      "Make an Ed25519 key for audit.signing_key_file: FILE is created 0600, never overwritten");
  keygen->add_option("file", *keyfile, "Where to write the private key (PEM)")->required();
  keygen->callback([keyfile, &run] { run = [keyfile] { return Keygen(*keyfile); }; });

  auto po = std::make_shared<PubkeyOptions>();
  auto* pubkey = audit->add_subcommand(
      "pubkey",
      "Print the public key (PEM) of the key that signs the audit checkpoints, and its id on "
      "stderr");
  auto* cfg = pubkey->add_option("-c,--config", po->config,
                                 "Gateway config naming audit.signing_key_file or _env");
  auto* key = pubkey->add_option("--key", po->key_file, "The private key file itself");
  cfg->excludes(key);
  pubkey->callback([po, &run] {
    if (po->config.empty() && po->key_file.empty()) {
      throw CLI::RequiredError("--config or --key");
    }
    run = [po] { return Pubkey(*po); };
  });
}

}  // namespace meridian::cli
