// The audit log's tamper evidence: lines written by the real writer (rotation, restarts,
// signed checkpoints) verify untouched, and every kind of tampering is found where it is.
#include "gateway/audit_verify.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "gateway/audit.h"
#include "gateway/audit_chain.h"

namespace meridian::audit {
namespace {

namespace fs = std::filesystem;

std::string NewPrivatePem() {
  return Ed25519Key::GeneratePrivatePem();
}

std::unique_ptr<Ed25519Key> PublicOf(const std::string& private_pem) {
  std::unique_ptr<Ed25519Key> priv;
  EXPECT_TRUE(Ed25519Key::FromPrivatePem(private_pem, priv).ok());
  std::unique_ptr<Ed25519Key> pub;
  EXPECT_TRUE(Ed25519Key::FromPublicPem(priv->PublicPem(), pub).ok());
  return pub;
}

Record MakeRecord(int i) {
  Record r;
  r.time_unix_ms = 1700000000000 + i;
  r.request_id = "req-" + std::to_string(i);
  r.front_end = "http";
  r.tenant = "acme";
  r.model = "qwen-plus";
  r.upstream_model = "qwen-plus-latest";
  r.region = "CN";
  r.allowed = true;
  r.status = 200;
  return r;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto nl = text.find('\n', at);
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// A log written by the real writer: 3 processes one after the other (restarts), each writing
// `per_run` records, rotating every few lines, signing checkpoints at every flush interval
// with a key and at every shutdown.
class WrittenLog : public ::testing::Test {
 public:
  void SetUp() override {
    char tmpl[] = "/tmp/audit_verify_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    key_pem_ = NewPrivatePem();
    path_ = (dir_ / "audit.jsonl").string();
    int n = 0;
    for (int run = 0; run < 3; ++run) {
      Options o;
      o.path = path_;
      o.max_file_bytes = 2500;  // four lines per file
      o.max_files = 100;
      o.signing_key_pem = key_pem_;
      o.flush_interval = std::chrono::milliseconds(5);
      o.checkpoint_interval = std::chrono::milliseconds(1);
      std::unique_ptr<AuditLog> log;
      const core::Status st = AuditLog::Open(o, log);
      ASSERT_TRUE(st.ok()) << st.message;
      for (int i = 0; i < kPerRun; ++i) {
        ASSERT_TRUE(log->Reserve());
        log->Submit(MakeRecord(n++));
        if (i % 4 == 3) {
          ASSERT_TRUE(log->Flush());
        }
      }
      log->Close();
      ASSERT_EQ(log->stats().last_seq, static_cast<std::uint64_t>(n));
      ASSERT_GE(log->stats().checkpoints, 1u);
    }
    total_ = n;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> LogPaths() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string p = e.path().string();
      if (p.find(".checkpoints") == std::string::npos) out.push_back(p);
    }
    return out;
  }
  // Oldest file first.
  std::vector<std::string> Ordered() const {
    std::vector<std::string> paths = LogPaths();
    auto rank = [&](const std::string& p) {
      return p == path_ ? 0 : std::stoi(p.substr(path_.size() + 1));
    };
    std::sort(paths.begin(), paths.end(),
              [&](const auto& a, const auto& b) { return rank(a) > rank(b); });
    return paths;
  }
  std::string Checkpoints() const { return path_ + ".checkpoints"; }
  // The file in the middle of the history, and the newest.
  std::string Middle() const {
    const auto files = Ordered();
    return files[files.size() / 2];
  }
  std::string Newest() const { return Ordered().back(); }

  VerifyReport Run(const Ed25519Key* key) const {
    std::vector<NamedText> logs;
    for (const auto& p : LogPaths()) logs.push_back({p, ReadAll(p)});
    std::vector<NamedText> cps;
    if (fs::exists(Checkpoints())) cps.push_back({Checkpoints(), ReadAll(Checkpoints())});
    return Verify(logs, cps, key);
  }

  static constexpr int kPerRun = 12;
  fs::path dir_;
  std::string path_;
  std::string key_pem_;
  int total_ = 0;
};

TEST_F(WrittenLog, UntouchedLogsVerifyAcrossRotationAndRestarts) {
  ASSERT_GE(Ordered().size(), 5u) << "the setup rotates";
  const auto key = PublicOf(key_pem_);
  const VerifyReport r = Run(key.get());
  EXPECT_FALSE(r.tampered()) << FormatReport(r);
  EXPECT_EQ(r.records, static_cast<std::size_t>(total_));
  EXPECT_EQ(r.first_seq, 1u);
  EXPECT_EQ(r.last_seq, static_cast<std::uint64_t>(total_));
  EXPECT_EQ(r.checkpoints, r.checkpoints_valid);
  EXPECT_GE(r.checkpoints, 3u) << "one at each shutdown at least";
  EXPECT_EQ(r.signed_through, r.last_seq) << "the last shutdown signed everything";
  EXPECT_NE(FormatReport(r).find("verified: no tampering found"), std::string::npos);
  // Seqs run on across the restarts: the lines, oldest file first, are 1..total.
  std::uint64_t expect = 1;
  for (const auto& p : Ordered()) {
    for (const auto& l : Lines(ReadAll(p))) {
      const auto f = ParseChainFields(l);
      ASSERT_TRUE(f) << l;
      EXPECT_EQ(f->seq, expect++);
    }
  }
  // Every checkpoint says which key signed it, and the process's last said it was a shutdown.
  const auto cps = Lines(ReadAll(Checkpoints()));
  const auto last = ParseCheckpoint(cps.back());
  ASSERT_TRUE(last);
  EXPECT_EQ(last->reason, "shutdown");
  EXPECT_EQ(last->key_id, key->key_id());
}

TEST_F(WrittenLog, WithoutAKeyOnlyTheChainIsCheckedAndTheReportSaysSo) {
  const VerifyReport r = Run(nullptr);
  EXPECT_FALSE(r.tampered()) << FormatReport(r);
  EXPECT_NE(FormatReport(r).find("signatures were not checked"), std::string::npos)
      << FormatReport(r);
}

struct Tamper {
  const char* name;
  // Changes the files; returns the file the finding must name ("" for none in particular).
  std::function<std::string(WrittenLog&)> apply;
  const char* kind;
  bool tampering;
  std::vector<std::string> also = {};  // further kinds the change shows as
};

// The lines of a file, changed by `edit`.
void EditLines(const std::string& path,
               const std::function<void(std::vector<std::string>&)>& edit) {
  auto lines = Lines(ReadAll(path));
  edit(lines);
  WriteAll(path, Join(lines));
}

class Tampering : public WrittenLog, public ::testing::WithParamInterface<Tamper> {};

TEST_P(Tampering, IsFoundWhereItIs) {
  const Tamper& t = GetParam();
  const std::string file = t.apply(*this);
  const auto key = PublicOf(key_pem_);
  const VerifyReport r = Run(key.get());
  const std::string text = FormatReport(r);
  EXPECT_EQ(r.tampered(), t.tampering) << text;
  EXPECT_GE(r.Count(t.kind), 1u) << text;
  if (!file.empty()) {
    const bool named = std::any_of(r.findings.begin(), r.findings.end(), [&](const Finding& f) {
      return f.kind == t.kind && f.file == file;
    });
    EXPECT_TRUE(named) << "a " << t.kind << " finding names " << file << "\n" << text;
  }
  // Nothing but the tampering itself (and notes) is reported: no false alarms elsewhere.
  for (const Finding& f : r.findings) {
    if (!f.tampering) continue;
    EXPECT_TRUE(f.kind == t.kind || std::find(t.also.begin(), t.also.end(), f.kind) != t.also.end())
        << f.file << ":" << f.line << ": " << f.kind << ": " << f.message;
  }
}

std::string ChangeAField(WrittenLog& w, const std::string& path) {
  (void)w;
  EditLines(path, [](auto& lines) {
    auto& l = lines[1];
    const auto at = l.find("\"status\":200");
    l.replace(at, 12, "\"status\":403");
  });
  return path;
}

INSTANTIATE_TEST_SUITE_P(
    Table, Tampering,
    ::testing::Values(
        Tamper{"modified", [](WrittenLog& w) { return ChangeAField(w, w.Middle()); }, "modified",
               true},
        Tamper{"deleted",
               [](WrittenLog& w) {
                 const std::string p = w.Middle();
                 EditLines(p, [](auto& lines) { lines.erase(lines.begin() + 1); });
                 return p;
               },
               "deleted", true},
        Tamper{"duplicated",
               [](WrittenLog& w) {
                 const std::string p = w.Middle();
                 EditLines(p, [](auto& lines) { lines.insert(lines.begin() + 2, lines[0]); });
                 return p;
               },
               "inserted", true},
        Tamper{"inserted_by_hand",
               [](WrittenLog& w) {
                 const std::string p = w.Middle();
                 EditLines(p, [](auto& lines) {
                   lines.insert(lines.begin() + 1, ToJsonLine(MakeRecord(999)));
                 });
                 return p;
               },
               "inserted", true},
        Tamper{"reordered",
               [](WrittenLog& w) {
                 const std::string p = w.Middle();
                 EditLines(p, [](auto& lines) { std::swap(lines[0], lines[1]); });
                 return p;
               },
               "reordered", true},
        Tamper{"tail_lines_removed",
               [](WrittenLog& w) {
                 const std::string p = w.Newest();
                 EditLines(p, [](auto& lines) { lines.pop_back(); });
                 return w.Checkpoints();
               },
               "truncated", true},
        Tamper{"cut_mid_line",
               [](WrittenLog& w) {
                 const std::string p = w.Newest();
                 const std::string text = ReadAll(p);
                 WriteAll(p, text.substr(0, text.size() - 20));
                 return p;
               },
               "truncated", true},
        Tamper{"rotated_file_cut_mid_line",
               [](WrittenLog& w) {
                 const std::string p = w.Middle();
                 const std::string text = ReadAll(p);
                 WriteAll(p, text.substr(0, text.size() - 20));
                 return p;
               },
               "truncated",
               true,
               {"gap"}},
        Tamper{"torn_tail_after_the_last_checkpoint",
               [](WrittenLog& w) {
                 const std::string p = w.Newest();
                 std::ofstream(p, std::ios::app) << R"({"v":1,"time_unix_ms":17000)";
                 return p;
               },
               "torn_tail", false},
        Tamper{"rotated_file_removed",
               [](WrittenLog& w) {
                 const std::string p = w.Middle();
                 fs::remove(p);
                 return std::string();
               },
               "gap", true},
        Tamper{"chain_rewritten_without_the_key",
               [](WrittenLog& w) {
                 // Change a line and recompute every chain after it, as anyone who can write
                 // the files can: only the signed checkpoints tell.
                 auto files = w.Ordered();
                 ChainState state;
                 bool changed = false;
                 for (const auto& p : files) {
                   auto lines = Lines(ReadAll(p));
                   for (auto& l : lines) {
                     const auto f = ParseChainFields(l);
                     std::string body = l.substr(0, l.rfind(",\"seq\":")) + "}";
                     if (!changed && f->seq == 7) {
                       body.replace(body.find("\"status\":200"), 12, "\"status\":500");
                       changed = true;
                     }
                     ChainLine(body, state);
                     l = body;
                   }
                   WriteAll(p, Join(lines));
                 }
                 return std::string();
               },
               "rewritten", true},
        Tamper{"checkpoint_removed",
               [](WrittenLog& w) {
                 EditLines(w.Checkpoints(), [](auto& lines) { lines.erase(lines.begin() + 1); });
                 return w.Checkpoints();
               },
               "checkpoint_missing", true},
        Tamper{"checkpoint_altered",
               [](WrittenLog& w) {
                 EditLines(w.Checkpoints(), [](auto& lines) {
                   auto& l = lines[0];
                   const auto at = l.find("\"time_unix_ms\":1");
                   l.replace(at, 16, "\"time_unix_ms\":2");
                 });
                 return w.Checkpoints();
               },
               "checkpoint_forged", true},
        Tamper{"checkpoints_re_signed_with_another_key",
               [](WrittenLog& w) {
                 std::unique_ptr<Ed25519Key> other;
                 EXPECT_TRUE(Ed25519Key::FromPrivatePem(NewPrivatePem(), other).ok());
                 EditLines(w.Checkpoints(), [&](auto& lines) {
                   Digest prev{};
                   for (auto& l : lines) {
                     auto c = ParseCheckpoint(l);
                     c->prev = prev;
                     l = FormatCheckpoint(*c, *other);
                     prev = Sha256(l);
                   }
                 });
                 return w.Checkpoints();
               },
               "checkpoint_forged", true},
        Tamper{"checkpoint_file_deleted",
               [](WrittenLog& w) {
                 fs::remove(w.Checkpoints());
                 return std::string();
               },
               "checkpoint_missing", true}),
    [](const ::testing::TestParamInfo<Tamper>& p) { return std::string(p.param.name); });

TEST(AuditChain, ChainLineAndParseChainFieldsRoundTrip) {
  ChainState s;
  std::string a = R"({"v":1,"x":"a"})";
  ChainLine(a, s);
  std::string b = R"({"v":1,"x":"b"})";
  ChainLine(b, s);
  EXPECT_EQ(s.seq, 2u);
  const auto fa = ParseChainFields(a);
  const auto fb = ParseChainFields(b);
  ASSERT_TRUE(fa && fb);
  EXPECT_EQ(fa->seq, 1u);
  EXPECT_EQ(fb->chain, s.hash);
  EXPECT_EQ(ExpectedChain(Digest{}, a, *fa), fa->chain);
  EXPECT_EQ(ExpectedChain(fa->chain, b, *fb), fb->chain);
  EXPECT_NE(ExpectedChain(Digest{}, b, *fb), fb->chain);
  EXPECT_EQ(a.substr(0, 25), R"({"v":1,"x":"a","seq":1,"c)");
  for (const std::string& bad :
       {std::string("{}"), a.substr(0, a.size() - 1),
        std::string(R"({"a":1,"seq":01,"chain":")") + std::string(64, 'a') + "\"}",
        std::string(R"({"a":1,"seq":1,"chain":")") + std::string(64, 'A') + "\"}"}) {
    EXPECT_FALSE(ParseChainFields(bad)) << bad;
  }
}

TEST(AuditChain, KeysThatAreNotEd25519AreRefusedWithoutEchoingThem) {
  std::unique_ptr<Ed25519Key> key;
  const core::Status st = Ed25519Key::FromPrivatePem("-----BEGIN PRIVATE KEY-----\nsecret", key);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message.find("secret"), std::string::npos);
  EVP_PKEY* ec_key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, ec_key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  const std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  EVP_PKEY_free(ec_key);
  const core::Status ec = Ed25519Key::FromPrivatePem(pem, key);
  EXPECT_FALSE(ec.ok());
  EXPECT_NE(ec.message.find("not an Ed25519"), std::string::npos) << ec.message;
  EXPECT_NE(ec.message.find("openssl genpkey -algorithm ed25519"), std::string::npos);
}

TEST(AuditChain, AnUnsignableKeyStopsTheLogFromOpening) {
  Options o;
  o.path = "/tmp/audit_chain_unused.jsonl";
  o.signing_key_pem = "not a key";
  std::unique_ptr<AuditLog> log;
  const core::Status st = AuditLog::Open(o, log);
  EXPECT_EQ(st.code, core::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message.find("signing key"), std::string::npos) << st.message;
  EXPECT_EQ(log, nullptr);
  std::error_code ec;
  fs::remove(o.path, ec);
}

}  // namespace
}  // namespace meridian::audit
