// Runs the built `meridian` binary the way an operator does and checks what they see: stdout,
// stderr and the exit status. The unit tests cover the engine; these pin the command-line
// contract (exit codes 0/1/2, FILE:LINE:COL errors, the test summary line, explain output).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern char** environ;

#include <boost/json.hpp>

#include "gateway/audit.h"
#include "tests/fakes/test_certs.h"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::string_view kHongKongRequest =
    R"({"tenant":"acme","region":"HK","data_class":"personal","model":"qwen-plus"})";
// T18 of the example tests: sensitive data with no consent at all.
constexpr std::string_view kSensitiveNoConsentRequest =
    R"({"tenant":"acme","region":"CN","data_class":"sensitive_personal","model":"qwen-plus"})";
// An unsigned client header claiming the US next to the tenant's binding to the mainland.
constexpr std::string_view kSpoofedRegionRequest =
    R"({"tenant":"acme","data_class":"personal","model":"qwen-plus","region_signals":[)"
    R"({"source":"tenant_binding","region":"CN"},{"source":"client_header","region":"US"}]})";

// Vectors in config/examples/policy.tests.yaml; an operator sees this number in the summary.
constexpr int kExampleTests = 26;

std::string SourceDir() {
  return MERIDIAN_SOURCE_DIR;
}
std::string ExamplePolicy() {
  return SourceDir() + "/config/examples/policy.yaml";
}
std::string Fixture(std::string_view name) {
  return SourceDir() + "/tests/testdata/policies/" + std::string(name);
}

struct RunResult {
  int exit_code = -1;  // the exit status, or 128 + signal number when the child was killed
  std::string out;
  std::string err;
};

// Attached to assertions so a failure shows everything the operator would have seen.
std::string Describe(const RunResult& r) {
  return "exit status " + std::to_string(r.exit_code) + "\n--- stdout\n" + r.out + "--- stderr\n" +
         r.err + "---";
}

class Pipe {
 public:
  Pipe() {
    std::array<int, 2> fds{-1, -1};
    // CLOEXEC keeps every pipe end out of the child except the ones dup2'ed onto 0, 1 and 2.
    if (pipe2(fds.data(), O_CLOEXEC) != 0) ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    read_ = fds[0];
    write_ = fds[1];
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    CloseRead();
    CloseWrite();
  }
  int read_end() const { return read_; }
  int write_end() const { return write_; }
  void CloseRead() { Close(read_); }
  void CloseWrite() { Close(write_); }

 private:
  static void Close(int& fd) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  int read_ = -1;
  int write_ = -1;
};

// Runs `meridian args...` without a shell, feeding `stdin_text` on its standard input and
// collecting stdout and stderr separately. All three pipes are serviced in one poll loop so a
// child that writes a lot before reading (or the reverse) cannot deadlock the test.
RunResult RunMeridian(const std::vector<std::string>& args, std::string_view stdin_text = {}) {
  RunResult result;
  Pipe in;
  Pipe out;
  Pipe err;
  if (in.read_end() < 0 || out.read_end() < 0 || err.read_end() < 0) return result;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read_end(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write_end(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write_end(), STDERR_FILENO);
  // The test process ignores SIGPIPE (below); the child must get the default back, as it
  // would from a shell.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> argv_storage;
  argv_storage.reserve(args.size() + 1);
  argv_storage.emplace_back(MERIDIAN_BINARY);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_storage.size() + 1);
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = -1;
  const int spawn_error = posix_spawn(&pid, MERIDIAN_BINARY, &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (spawn_error != 0) {
    ADD_FAILURE() << "posix_spawn " << MERIDIAN_BINARY << ": " << std::strerror(spawn_error);
    return result;
  }
  in.CloseRead();
  out.CloseWrite();
  err.CloseWrite();

  // A child that exits without reading its input must not kill the test with SIGPIPE; the
  // write then fails with EPIPE, which only ends the feeding.
  static const bool sigpipe_ignored = [] { return signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)sigpipe_ignored;
  if (stdin_text.empty()) {
    in.CloseWrite();
  } else {
    fcntl(in.write_end(), F_SETFL, fcntl(in.write_end(), F_GETFL) | O_NONBLOCK);
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::size_t written = 0;
  bool out_open = true;
  bool err_open = true;
  bool timed_out = false;
  while (out_open || err_open) {
    std::array<pollfd, 3> fds{};
    nfds_t n = 0;
    if (out_open) fds[n++] = {out.read_end(), POLLIN, 0};
    if (err_open) fds[n++] = {err.read_end(), POLLIN, 0};
    if (in.write_end() >= 0) fds[n++] = {in.write_end(), POLLOUT, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    const int ready = poll(fds.data(), n, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      ADD_FAILURE() << "poll: " << std::strerror(errno);
      break;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in.write_end()) {
        const ssize_t w =
            write(in.write_end(), stdin_text.data() + written, stdin_text.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_text.size()) {
          in.CloseWrite();
        }
        continue;
      }
      const bool is_out = fds[i].fd == out.read_end();
      std::array<char, 4096> buf;
      const ssize_t r = read(fds[i].fd, buf.data(), buf.size());
      if (r > 0) {
        (is_out ? result.out : result.err).append(buf.data(), static_cast<std::size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        (is_out ? out_open : err_open) = false;
      }
    }
  }
  if (timed_out) {
    kill(pid, SIGKILL);
    ADD_FAILURE() << "meridian did not finish within 60 s";
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
    if (!timed_out) ADD_FAILURE() << "meridian killed by signal " << WTERMSIG(status);
  }
  return result;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string LastLine(const std::string& text) {
  const auto lines = Lines(text);
  return lines.empty() ? std::string() : lines.back();
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// 1-based number of the first line of `path` containing `needle`: the explain output names
// the rule's line, which moves whenever the example policy is edited above it.
int LineOf(const fs::path& path, std::string_view needle) {
  const auto lines = Lines(ReadFile(path));
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(needle) != std::string::npos) return static_cast<int>(i) + 1;
  }
  return 0;
}

// The policy version is a content hash that changes with every edit of the policy; the
// output is compared with it masked, which still requires exactly "sha256:" + 16 hex digits.
const std::regex& VersionPattern() {
  static const std::regex pattern("sha256:[0-9a-f]{16}");
  return pattern;
}
std::string MaskVersion(const std::string& text) {
  return std::regex_replace(text, VersionPattern(), "sha256:<version>");
}
std::string VersionIn(const std::string& text) {
  std::smatch m;
  return std::regex_search(text, m, VersionPattern()) ? m.str() : std::string();
}

json::object ParseObject(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "not a JSON object (" << ec.message() << "): " << text;
    return {};
  }
  return v.as_object();
}

std::vector<std::string> StringArray(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) {
    ADD_FAILURE() << key << " is not an array in " << json::serialize(o);
    return out;
  }
  for (const json::value& item : v->as_array()) {
    if (item.is_string()) out.emplace_back(item.as_string());
  }
  return out;
}

// The value of a string member, "null" for JSON null, or a marker that fails any comparison.
std::string StringOrNull(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return "<missing>";
  if (v->is_null()) return "null";
  if (v->is_string()) return std::string(v->as_string());
  return "<not a string: " + json::serialize(*v) + ">";
}

class CliTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  // A fresh directory per test, so the sibling <stem>.tests.yaml lookup only sees what the
  // test wrote.
  const fs::path& Dir() {
    if (dir_.empty()) {
      std::string pattern = ::testing::TempDir() + "meridian-cli-XXXXXX";
      if (mkdtemp(pattern.data()) == nullptr) {
        ADD_FAILURE() << "mkdtemp " << pattern << ": " << std::strerror(errno);
      }
      dir_ = pattern;
    }
    return dir_;
  }

  std::string Write(std::string_view name, std::string_view content) {
    const fs::path path = Dir() / name;
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  std::string CopyExample() {
    const fs::path path = Dir() / "policy.yaml";
    fs::copy_file(ExamplePolicy(), path, fs::copy_options::overwrite_existing);
    return path.string();
  }

 private:
  fs::path dir_;
};

// ---- policy check ------------------------------------------------------------------------

TEST_F(CliTest, CheckExamplePolicyIsOk) {
  const RunResult r = RunMeridian({"policy", "check", ExamplePolicy()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(MaskVersion(r.out), ExamplePolicy() + ": OK (9 providers, 10 guards, 5 routes, " +
                                    std::to_string(kExampleTests) +
                                    " tests; version sha256:<version>)\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, CheckReportsEveryProblemWithItsPosition) {
  const std::string file = Fixture("cli_many_errors.yaml");
  const RunResult r = RunMeridian({"policy", "check", file});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "");

  struct Expected {
    std::string position;
    std::string message;
  };
  const std::vector<Expected> expected = {
      {"5:18", "region group 'apac': unknown region code 'ZZ'"},
      {"11:5", "secrets must not be written in the policy file"},
      {"17:21", "provider 'leaky': credential_env must be the NAME of an environment variable"},
      {"21:15", "provider 'broken-url': endpoint 'not a url' is not a valid absolute URL"},
      {"24:9", "duplicate provider id 'ds-cn'"},
      {"32:20", "route 'mainland' allow: unknown provider 'ghost-provider'"},
      {"33:5", "route 'nowhere': allow must list at least one provider"},
      {"35:1", "unknown key 'fallback_everywhere' in the policy file"},
  };
  const auto lines = Lines(r.err);
  ASSERT_EQ(lines.size(), expected.size() + 1) << Describe(r);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_THAT(lines[i], StartsWith(file + ":" + expected[i].position + ": "));
    EXPECT_THAT(lines[i], HasSubstr(expected[i].message));
  }
  EXPECT_EQ(lines.back(), "8 errors");

  // Whatever was pasted where a secret does not belong must never reach a terminal or a CI log.
  for (const char* secret : {"sk-live-abc123", "sk-inline-987654"}) {
    EXPECT_THAT(r.err, Not(HasSubstr(secret)));
    EXPECT_THAT(r.out, Not(HasSubstr(secret)));
  }
}

TEST_F(CliTest, CheckMalformedYamlGivesOnePositionedError) {
  // An operator's mis-indented key: not a policy problem but a YAML one.
  const std::string file = Write("policy.yaml",
                                 "version: 1\n"
                                 "providers:\n"
                                 "  - id: ds-cn\n"
                                 "    kind: dashscope\n"
                                 "     endpoint: https://dashscope.aliyuncs.com/api/v1\n");
  const RunResult r = RunMeridian({"policy", "check", file});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "");
  const auto lines = Lines(r.err);
  ASSERT_EQ(lines.size(), 2u) << Describe(r);
  EXPECT_THAT(lines[0], StartsWith(file + ":5:14: invalid YAML: "));
  EXPECT_EQ(lines[1], "1 error");
}

TEST_F(CliTest, CheckMissingFileNamesTheFile) {
  const std::string file = (Dir() / "no-such-policy.yaml").string();
  const RunResult r = RunMeridian({"policy", "check", file});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "");
  const auto lines = Lines(r.err);
  ASSERT_EQ(lines.size(), 2u) << Describe(r);
  EXPECT_THAT(lines[0], StartsWith(file + ": cannot read"));
  EXPECT_EQ(lines[1], "1 error");
}

TEST_F(CliTest, CheckDirectoryIsRejected) {
  const RunResult r = RunMeridian({"policy", "check", Dir().string()});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(Dir().string() + ": is a directory"));
}

TEST_F(CliTest, CheckAlsoValidatesTheSiblingTestsFile) {
  const std::string policy = CopyExample();
  const std::string tests = Write("policy.tests.yaml",
                                  "tests:\n"
                                  "  - name: typo in expect\n"
                                  "    request: {tenant: acme, region: CN}\n"
                                  "    expect: {decison: allow}\n");
  const RunResult r = RunMeridian({"policy", "check", policy});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "");
  const auto lines = Lines(r.err);
  ASSERT_EQ(lines.size(), 2u) << Describe(r);
  EXPECT_THAT(lines[0], StartsWith(tests + ":4:14: unknown key 'decison' in expect"));
  EXPECT_EQ(lines[1], "1 error");
}

// ---- policy test -------------------------------------------------------------------------

TEST_F(CliTest, TestExamplePolicyPassesEveryVector) {
  const RunResult r = RunMeridian({"policy", "test", ExamplePolicy()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, std::to_string(kExampleTests) + " passed, 0 failed\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, TestVerboseListsPassingVectors) {
  const RunResult r = RunMeridian({"policy", "test", "-v", ExamplePolicy()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kExampleTests) + 1) << Describe(r);
  EXPECT_EQ(lines.front(), "ok   T1 important data from a mainland user stays on the on-prem Qwen");
  EXPECT_EQ(lines.back(), std::to_string(kExampleTests) + " passed, 0 failed");
}

TEST_F(CliTest, TestReportsFailuresWithExpectedAndActual) {
  const std::string policy = CopyExample();
  const std::string tests =
      Write("policy.tests.yaml",
            "tests:\n"
            "  - name: hong kong goes to singapore\n"
            "    request: {tenant: acme, region: HK, data_class: personal,\n"
            "              model: qwen-plus}\n"
            "    expect: {decision: allow, provider: ds-intl, rule: acme-hk,\n"
            "             guards: [G7]}\n"
            "  - name: wrong provider\n"
            "    request: {tenant: acme, region: HK, data_class: personal,\n"
            "              model: qwen-plus}\n"
            "    expect: {decision: allow, provider: ds-hk}\n"
            "  - name: wrong guards\n"
            "    request: {tenant: acme, region: CN, data_class: important,\n"
            "              model: qwen-plus}\n"
            "    expect:\n"
            "      provider: onprem-qwen\n"
            "      guards: [G1]\n");
  const RunResult r = RunMeridian({"policy", "test", policy});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "FAIL wrong provider (" + tests +
                       ":7:5)\n"
                       "  provider: expected ds-hk, got ds-intl\n"
                       "FAIL wrong guards (" +
                       tests +
                       ":11:5)\n"
                       "  guards: expected [G1], got [G1, G2]\n"
                       "1 passed, 2 failed\n");
  EXPECT_EQ(r.err, "");
}

// A typo in a test vector is a policy-file error at `check` time, with its position.
TEST_F(CliTest, CheckValidatesTestVectors) {
  const std::string policy = CopyExample();
  const std::string tests =
      Write("policy.tests.yaml",
            "tests:\n"
            "  - name: typo in a flag\n"
            "    request: {tenant: acme, region: CN, tenant_flags: [public_facing]}\n"
            "    expect: {decision: allow}\n"
            "  - name: typos in expectations\n"
            "    request: {tenant: acme, region: CN}\n"
            "    expect: {provider: ds-beijing, guards: [G9], reason: denied}\n"
            "  - name: nothing to check\n"
            "    request: {tenant: acme}\n"
            "    expect: {}\n");
  const RunResult r = RunMeridian({"policy", "check", policy});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, tests +
                       ":3:14: test 'typo in a flag': request.tenant_flags: unknown tenant flag "
                       "'public_facing'\n" +
                       tests +
                       ":7:24: test 'typos in expectations': expect.provider: unknown provider "
                       "'ds-beijing'\n" +
                       tests +
                       ":7:45: test 'typos in expectations': expect.guards: unknown guard 'G9'\n" +
                       tests +
                       ":7:58: test 'typos in expectations': expect.reason: 'denied' is not a "
                       "reason this policy can give\n" +
                       tests + ":10:13: test 'nothing to check': expect states nothing to check\n" +
                       "5 errors\n");
}

// yaml-cpp alone would read an unclosed quote to the end of the file and drop the rules after
// it; `check` must refuse the file instead of reporting a shorter policy as OK.
TEST_F(CliTest, CheckRejectsAnUnclosedQuote) {
  const std::string policy = Write("unclosed.yaml",
                                   "version: 1\n"
                                   "providers:\n"
                                   "  - {id: p, kind: sim, models: {m: m}, processing: [CN]}\n"
                                   "routes:\n"
                                   "  - {id: r, allow: [p]}\n"
                                   "guards:\n"
                                   "  - id: G7\n"
                                   "    narrow: {processing_excludes: [US]}\n"
                                   "    description: \"Hong Kong users\n"
                                   "  - id: G8\n"
                                   "    when: {data_class: sensitive_personal}\n"
                                   "    deny: no consent\n");
  const RunResult r = RunMeridian({"policy", "check", policy});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.err,
            policy + ":9:18: quoted string is not closed: a closing \" is missing\n1 error\n");
}

TEST_F(CliTest, TestRunsInFileVectorsBeforeSiblingOnes) {
  const std::string policy = CopyExample();
  // The example has no tests: section, so one can be appended as a last top-level key.
  std::ofstream(policy, std::ios::app) << "\n"
                                          "tests:\n"
                                          "  - name: in-file vector\n"
                                          "    request: {tenant: newco, region: US}\n"
                                          "    expect: {decision: allow}\n";
  Write("policy.tests.yaml",
        "tests:\n"
        "  - name: sibling vector\n"
        "    request: {tenant: newco, region: US}\n"
        "    expect: {reason: no_rule_matched, rule: acme-hk}\n");
  const RunResult r = RunMeridian({"policy", "test", policy});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  const auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << Describe(r);
  EXPECT_THAT(lines[0], StartsWith("FAIL in-file vector (" + policy + ":"));
  EXPECT_EQ(lines[1], "  decision: expected allow, got deny");
  EXPECT_THAT(lines[2],
              StartsWith("FAIL sibling vector (" + (Dir() / "policy.tests.yaml").string()));
  EXPECT_EQ(lines[3], "  rule: expected acme-hk, got (none)");
  EXPECT_EQ(lines[4], "0 passed, 2 failed");
}

TEST_F(CliTest, TestWithoutAnyVectorsFails) {
  // Valid, but with nothing to run: a green result would be a false assurance.
  const std::string policy = Write("bare.yaml",
                                   "version: 1\n"
                                   "providers:\n"
                                   "  - id: local\n"
                                   "    kind: sim\n"
                                   "    models: {qwen-plus: qwen}\n"
                                   "    processing: [CN]\n"
                                   "routes:\n"
                                   "  - id: everyone\n"
                                   "    allow: [local]\n");
  ASSERT_EQ(RunMeridian({"policy", "check", policy}).exit_code, 0);
  const RunResult r = RunMeridian({"policy", "test", policy});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "0 passed, 0 failed\n");
  EXPECT_EQ(r.err, "meridian: no tests in " + policy + " or " +
                       (Dir() / "bare.tests.yaml").string() + "\n");
}

// ---- policy explain ----------------------------------------------------------------------

TEST_F(CliTest, ExplainTextShowsRuleGuardsAndDroppedProviders) {
  const RunResult r = RunMeridian(
      {"policy", "explain", ExamplePolicy(), "--request", std::string(kHongKongRequest)});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const int rule_line = LineOf(ExamplePolicy(), "- id: acme-hk");
  ASSERT_GT(rule_line, 0);
  EXPECT_EQ(MaskVersion(r.out),
            "decision    ALLOW -> ds-intl\n"
            "policy      sha256:<version>\n"
            "region      HK (tenant_binding)\n"
            "data class  personal\n"
            "rule        acme-hk (line " +
                std::to_string(rule_line) +
                ")\n"
                "guards      G7: processing excludes {CN}\n"
                "before      ds-hk, ds-intl, ds-cn\n"
                "            - ds-hk dropped by guard G7 (processing excludes {CN})\n"
                "            - ds-cn dropped by guard G7 (processing excludes {CN})\n"
                "after       ds-intl\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, ExplainJsonAllow) {
  const RunResult r = RunMeridian(
      {"policy", "explain", ExamplePolicy(), "--request", std::string(kHongKongRequest), "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.err, "");
  const json::object o = ParseObject(r.out);
  EXPECT_EQ(StringOrNull(o, "decision"), "allow");
  EXPECT_EQ(StringOrNull(o, "reason"), "null");
  EXPECT_EQ(StringOrNull(o, "chosen"), "ds-intl");
  EXPECT_EQ(StringOrNull(o, "matched_rule"), "acme-hk");
  EXPECT_THAT(StringArray(o, "guards_applied"), ElementsAre("G7"));
  EXPECT_THAT(StringArray(o, "candidates_before"), ElementsAre("ds-hk", "ds-intl", "ds-cn"));
  EXPECT_THAT(StringArray(o, "candidates_after"), ElementsAre("ds-intl"));
  EXPECT_FALSE(o.contains("deny_message"));
  EXPECT_TRUE(std::regex_match(StringOrNull(o, "policy_version"), VersionPattern()))
      << StringOrNull(o, "policy_version");
}

TEST_F(CliTest, ExplainJsonDenyByGuard) {
  const RunResult r = RunMeridian({"policy", "explain", ExamplePolicy(), "--json", "--request",
                                   std::string(kSensitiveNoConsentRequest)});
  // A deny is a decision, not an error: the command itself succeeded.
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const json::object o = ParseObject(r.out);
  EXPECT_EQ(StringOrNull(o, "decision"), "deny");
  EXPECT_EQ(StringOrNull(o, "reason"), "denied_by_guard:G8");
  EXPECT_EQ(StringOrNull(o, "chosen"), "null");
  EXPECT_EQ(StringOrNull(o, "matched_rule"), "acme-mainland");
  EXPECT_THAT(StringArray(o, "guards_applied"), ElementsAre("G2", "G8"));
  // The route's candidates are still shown, so the operator sees what the guard refused.
  EXPECT_THAT(StringArray(o, "candidates_before"), ElementsAre("ds-cn", "onprem-qwen", "oai-us"));
  EXPECT_THAT(StringArray(o, "candidates_after"), IsEmpty());
  EXPECT_EQ(StringOrNull(o, "deny_message"),
            "Sensitive personal information requires the individual's separate consent (PIPL "
            "Art. 29).");
}

TEST_F(CliTest, ExplainTextDenyShowsTheGuardsReason) {
  const RunResult r = RunMeridian(
      {"policy", "explain", ExamplePolicy(), "--request", std::string(kSensitiveNoConsentRequest)});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const auto lines = Lines(r.out);
  ASSERT_GE(lines.size(), 8u) << Describe(r);
  EXPECT_EQ(lines[0], "decision    DENY denied_by_guard:G8");
  EXPECT_THAT(lines, testing::Contains("guards      G2: processing within {CN}"));
  EXPECT_THAT(lines, testing::Contains("            G8: deny"));
  EXPECT_THAT(lines, testing::Contains("denied      Sensitive personal information requires the "
                                       "individual's separate consent (PIPL Art. 29)."));
}

TEST_F(CliTest, EveryCommandReportsTheSamePolicyVersion) {
  // Operators correlate a decision with the policy that made it through this hash.
  const std::string checked = VersionIn(RunMeridian({"policy", "check", ExamplePolicy()}).out);
  const std::string explained = VersionIn(RunMeridian({"policy", "explain", ExamplePolicy(),
                                                       "--request", std::string(kHongKongRequest)})
                                              .out);
  const json::object o = ParseObject(RunMeridian({"policy", "explain", ExamplePolicy(), "--json",
                                                  "--request", std::string(kHongKongRequest)})
                                         .out);
  ASSERT_FALSE(checked.empty());
  EXPECT_EQ(explained, checked);
  EXPECT_EQ(StringOrNull(o, "policy_version"), checked);
}

TEST_F(CliTest, ExplainReadsTheRequestFromStdinAndFromAFile) {
  const RunResult inline_request = RunMeridian(
      {"policy", "explain", ExamplePolicy(), "--request", std::string(kHongKongRequest)});
  ASSERT_EQ(inline_request.exit_code, 0) << Describe(inline_request);

  const RunResult from_stdin =
      RunMeridian({"policy", "explain", ExamplePolicy(), "--request", "-"}, kHongKongRequest);
  EXPECT_EQ(from_stdin.exit_code, 0) << Describe(from_stdin);
  EXPECT_EQ(from_stdin.out, inline_request.out);
  EXPECT_EQ(from_stdin.err, "");

  const std::string request_file = Write("request.json", kHongKongRequest);
  const RunResult from_file =
      RunMeridian({"policy", "explain", ExamplePolicy(), "--request", "@" + request_file});
  EXPECT_EQ(from_file.exit_code, 0) << Describe(from_file);
  EXPECT_EQ(from_file.out, inline_request.out);
  EXPECT_EQ(from_file.err, "");
}

TEST_F(CliTest, ExplainMissingRequestFileIsAnError) {
  const std::string missing = (Dir() / "missing.json").string();
  const RunResult r =
      RunMeridian({"policy", "explain", ExamplePolicy(), "--request", "@" + missing});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "meridian: cannot read request file " + missing + "\n");
}

TEST_F(CliTest, ExplainRejectsInvalidJson) {
  const RunResult r =
      RunMeridian({"policy", "explain", ExamplePolicy(), "--request", R"({"tenant":"acme",)"});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("meridian: --request is not valid JSON"));
}

TEST_F(CliTest, ExplainEmptyStdinIsInvalidJson) {
  const RunResult r = RunMeridian({"policy", "explain", ExamplePolicy(), "--request", "-"});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, StartsWith("meridian: --request is not valid JSON"));
}

TEST_F(CliTest, ExplainNamesTheBadRequestField) {
  // A misspelt field must not be dropped silently: the request would be decided without it.
  const RunResult typo = RunMeridian(
      {"policy", "explain", ExamplePolicy(), "--request", R"({"tenant":"acme","regoin":"CN"})"});
  EXPECT_EQ(typo.exit_code, 1) << Describe(typo);
  EXPECT_EQ(typo.out, "");
  EXPECT_EQ(
      typo.err,
      "meridian: request.regoin: unknown field (did you mean 'region'?); the fields are tenant, "
      "region, region_signals, city, data_class, consent, tenant_flags, mechanisms, meter, "
      "model, requires, unhealthy\n");

  const RunResult region = RunMeridian(
      {"policy", "explain", ExamplePolicy(), "--request", R"({"tenant":"acme","region":"XX"})"});
  EXPECT_EQ(region.exit_code, 1) << Describe(region);
  EXPECT_EQ(region.out, "");
  EXPECT_THAT(region.err, StartsWith("meridian: request.region: "));
  EXPECT_THAT(region.err, HasSubstr("'XX'"));

  const RunResult not_object =
      RunMeridian({"policy", "explain", ExamplePolicy(), "--request", "[]"});
  EXPECT_EQ(not_object.exit_code, 1) << Describe(not_object);
  EXPECT_THAT(not_object.err, StartsWith("meridian: request: "));
}

TEST_F(CliTest, ExplainOnABrokenPolicyReportsThePolicyErrors) {
  const std::string file = Fixture("cli_many_errors.yaml");
  const RunResult r =
      RunMeridian({"policy", "explain", file, "--request", std::string(kHongKongRequest)});
  ASSERT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(LastLine(r.err), "8 errors");
}

TEST_F(CliTest, ExplainIgnoresAnUnsignedClientRegionHeader) {
  const RunResult r = RunMeridian(
      {"policy", "explain", ExamplePolicy(), "--request", std::string(kSpoofedRegionRequest)});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const auto lines = Lines(r.out);
  ASSERT_GE(lines.size(), 5u) << Describe(r);
  EXPECT_EQ(lines[0], "decision    ALLOW -> ds-cn");
  EXPECT_EQ(lines[2], "region      CN (tenant_binding)");
  EXPECT_EQ(lines[4], "note        client_header US (untrusted)");

  const RunResult j = RunMeridian({"policy", "explain", ExamplePolicy(), "--json", "--request",
                                   std::string(kSpoofedRegionRequest)});
  ASSERT_EQ(j.exit_code, 0) << Describe(j);
  const json::object o = ParseObject(j.out);
  EXPECT_EQ(StringOrNull(o, "chosen"), "ds-cn");
  EXPECT_THAT(StringArray(o, "notes"), ElementsAre("client_header US (untrusted)"));
  const json::value* region = o.if_contains("region");
  ASSERT_TRUE(region != nullptr && region->is_object()) << j.out;
  EXPECT_EQ(StringOrNull(region->as_object(), "effective"), "CN");
  EXPECT_EQ(StringOrNull(region->as_object(), "source"), "tenant_binding");
}

// ---- usage -------------------------------------------------------------------------------

TEST_F(CliTest, WrongInvocationPrintsUsageAndExits2) {
  struct Case {
    std::vector<std::string> args;
    std::string usage;  // the usage line of the deepest command reached
  };
  const std::vector<Case> cases = {
      {{}, "Usage: meridian [OPTIONS] SUBCOMMAND"},
      {{"policy"}, "Usage: meridian policy [OPTIONS] SUBCOMMAND"},
      {{"policy", "frobnicate"}, "Usage: meridian policy [OPTIONS] SUBCOMMAND"},
      {{"policy", "check"}, "Usage: meridian policy check [OPTIONS] FILE"},
      {{"policy", "check", ExamplePolicy(), ExamplePolicy()},
       "Usage: meridian policy check [OPTIONS] FILE"},
      {{"policy", "explain", ExamplePolicy()}, "Usage: meridian policy explain [OPTIONS] FILE"},
      {{"policy", "test", "--bogus", ExamplePolicy()},
       "Usage: meridian policy test [OPTIONS] FILE"},
  };
  for (const Case& c : cases) {
    std::string command = "meridian";
    for (const auto& a : c.args) command += " " + a;
    SCOPED_TRACE(command);
    const RunResult r = RunMeridian(c.args);
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, StartsWith("meridian: "));
    EXPECT_THAT(r.err, HasSubstr(c.usage));
  }
}

TEST_F(CliTest, UsageErrorsSayWhatIsMissing) {
  EXPECT_THAT(RunMeridian({"policy", "check"}).err, HasSubstr("FILE is required"));
  EXPECT_THAT(RunMeridian({"policy", "explain", ExamplePolicy()}).err,
              HasSubstr("--request is required"));
  EXPECT_THAT(RunMeridian({"policy", "test", "--bogus", ExamplePolicy()}).err,
              HasSubstr("--bogus"));
  EXPECT_THAT(RunMeridian({"policy", "frobnicate"}).err,
              HasSubstr("meridian: unknown command 'frobnicate'"));
  EXPECT_THAT(RunMeridian({"srve"}).err, HasSubstr("meridian: unknown command 'srve'"));
}

TEST_F(CliTest, HelpPrintsUsageOnStdoutAndExits0) {
  struct Case {
    std::vector<std::string> args;
    std::string usage;
  };
  const std::vector<Case> cases = {
      {{"--help"}, "Usage: meridian [OPTIONS] SUBCOMMAND"},
      {{"-h"}, "Usage: meridian [OPTIONS] SUBCOMMAND"},
      {{"policy", "--help"}, "Usage: meridian policy [OPTIONS] SUBCOMMAND"},
      {{"policy", "check", "--help"}, "Usage: meridian policy check [OPTIONS] FILE"},
      {{"policy", "explain", "--help"}, "Usage: meridian policy explain [OPTIONS] FILE"},
      {{"policy", "test", "--help"}, "Usage: meridian policy test [OPTIONS] FILE"},
  };
  for (const Case& c : cases) {
    std::string command = "meridian";
    for (const auto& a : c.args) command += " " + a;
    SCOPED_TRACE(command);
    const RunResult r = RunMeridian(c.args);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr(c.usage));
    EXPECT_EQ(r.err, "");
  }
  EXPECT_THAT(RunMeridian({"policy", "explain", "--help"}).out, HasSubstr("--request"));
  EXPECT_THAT(RunMeridian({"policy", "explain", "--help"}).out, HasSubstr("--json"));
}

// ---- check (the gateway config) --------------------------------------------------------

TEST_F(CliTest, GatewayCheckPassesTheEmbeddedAndExampleConfigsAndNamesMissingCredentials) {
  RunResult r = RunMeridian({"check"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "<embedded>/gateway.yaml: ok\n");
  const std::string example = SourceDir() + "/config/examples/gateway.yaml";
  r = RunMeridian({"check", "--config", example, "--simulate"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, example + ": ok\n");
  // Without --simulate the providers need their keys: a warning each (serve would disable
  // them), still a config serve starts with.
  r = RunMeridian({"check", "--config", example});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(example + ": warning: provider 'oai-us': environment variable "
                                         "OPENAI_US_API_KEY is not set"));
  EXPECT_THAT(r.out, ::testing::EndsWith(example + ": ok (with warnings)\n"));
}

TEST_F(CliTest, GatewayCheckReportsWhatServeWouldRefuseWithoutStartingAnything) {
  Write("policy.yaml",
        "version: 1\nproviders:\n  - id: p\n    kind: sim\n    models: {m: m}\n"
        "    processing: [CN]\nroutes:\n  - id: r\n    allow: [p]\n");
  const std::string bad_flag =
      Write("flag.yaml",
            "listen: 127.0.0.1:0\npolicy_file: policy.yaml\ntenants:\n  - id: t\n"
            "    api_key_sha256: [" +
                std::string(64, 'a') +
                "]\n"
                "    tenant_flags: [no_such_flag]\n");
  RunResult r = RunMeridian({"check", "-c", bad_flag});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("no_such_flag"));
  EXPECT_THAT(r.err, ::testing::EndsWith("1 error: serve would not start\n"));

  const std::string missing_tls =
      Write("tls.yaml",
            "listen: 127.0.0.1:0\npolicy_file: policy.yaml\ntls: {cert_file: nope.crt, "
            "key_file: nope.key}\ntenants:\n  - id: t\n    api_key_sha256: [" +
                std::string(64, 'a') + "]\n");
  r = RunMeridian({"check", "-c", missing_tls});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("tls.yaml:3:7: 'cert_file': cannot read"));
  EXPECT_THAT(r.err, HasSubstr("tls.yaml:3:28: 'key_file': cannot read"));

  const std::string unset = Write(
      "env.yaml",
      "listen: 127.0.0.1:0\npolicy_file: policy.yaml\nstore: {kind: redis, address: "
      "127.0.0.1:6379, password_env: MERIDIAN_CHECK_TEST_UNSET_PW}\nexport_meter: "
      "{hmac_key_env: MERIDIAN_CHECK_TEST_UNSET_KEY}\ntenants:\n  - id: t\n    api_key_sha256: [" +
          std::string(64, 'a') + "]\n");
  r = RunMeridian({"check", "-c", unset});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("MERIDIAN_CHECK_TEST_UNSET_PW is not set"));
  EXPECT_THAT(r.err, HasSubstr("MERIDIAN_CHECK_TEST_UNSET_KEY must hold the key"));
  EXPECT_EQ(r.out, "");

  // It listens on nothing: a port another process holds checks fine (serve would not start).
  const int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);  // NOLINT
  ASSERT_EQ(::listen(holder, 1), 0);
  ASSERT_EQ(::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len), 0);  // NOLINT
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  r = RunMeridian({"check", "--listen", taken});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  ::close(holder);
}

TEST_F(CliTest, ConfigCheckNamesTheFileLineAndColumnOfEachError) {
  Write("policy.yaml",
        "version: 1\nproviders:\n  - id: p\n    kind: sim\n    models: {m: m}\n"
        "    processing: [CN]\nroutes:\n  - id: r\n    allow: [p]\n");
  const std::string good = Write("good.yaml",
                                 "listen: 127.0.0.1:0\npolicy_file: policy.yaml\ntenants:\n"
                                 "  - id: t\n    api_key_sha256: [" +
                                     std::string(64, 'a') + "]\n");
  RunResult r = RunMeridian({"config", "check", good});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, good + ": ok\n");
  const std::string bad = Write("bad.yaml",
                                "listen: 127.0.0.1:0\npolicy_file: policy.yaml\ntenants:\n"
                                "  - id: t\n    api_key_sha256: [abc]\n    regoins: [CN]\n");
  r = RunMeridian({"config", "check", bad});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(bad + ":5:22: "));
  EXPECT_THAT(r.err, HasSubstr(bad + ":6:5: "));
  EXPECT_THAT(r.err, HasSubstr("regoins"));
  EXPECT_THAT(r.err, ::testing::EndsWith("2 errors: serve would not start\n"));
  EXPECT_EQ(r.out, "");
  // The file is required.
  r = RunMeridian({"config", "check"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("FILE is required"));
}

TEST_F(CliTest, ConfigCheckLoadsTheTlsMaterialAsTheListenersWould) {
  const meridian::fakes::TestCerts certs;
  Write("policy.yaml",
        "version: 1\nproviders:\n  - id: p\n    kind: sim\n    models: {m: m}\n"
        "    processing: [CN]\nroutes:\n  - id: r\n    allow: [p]\n");
  auto config = [&](const std::string& cert, const std::string& key, const std::string& ca) {
    return "listen: 127.0.0.1:0\npolicy_file: policy.yaml\ntls: {cert_file: " + cert +
           ", key_file: " + key + "}\ngrpc:\n  listen: 127.0.0.1:0\n  tls: {cert_file: " + cert +
           ", key_file: " + key + ", client_ca_file: " + ca +
           "}\ntenants:\n  - id: t\n    api_key_sha256: [" + std::string(64, 'a') + "]\n";
  };
  const std::string good =
      Write("good.yaml", config(certs.server_cert(), certs.server_key(), certs.ca_cert()));
  RunResult r = RunMeridian({"config", "check", good});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  // The client's key with the server's certificate: serve could not start either listener.
  const std::string mismatch =
      Write("mismatch.yaml", config(certs.server_cert(), certs.client_key(), certs.ca_cert()));
  r = RunMeridian({"config", "check", mismatch});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(mismatch + ": tls.key_file " + certs.client_key()));
  EXPECT_THAT(r.err, HasSubstr(mismatch + ": grpc.tls.key_file " + certs.client_key()));
  // A private key where the client CA should be.
  const std::string bad_ca =
      Write("bad_ca.yaml", config(certs.server_cert(), certs.server_key(), certs.server_key()));
  r = RunMeridian({"config", "check", bad_ca});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("grpc.tls.client_ca_file " + certs.server_key() +
                               ": no PEM CA certificate"));
}

// The auditor's commands: the operator publishes the public key from the gateway's config,
// the auditor verifies the files with it alone. Exit 0 untouched, 1 tampered (naming the
// file and line), 2 when a file cannot be read; a key that is not Ed25519 is a config error.
TEST_F(CliTest, AuditPubkeyAndVerifyTellUntouchedFromTamperedLogs) {
  // The operator makes the key with the gateway itself (no openssl CLI needed in an image).
  const std::string key_file = (Dir() / "audit-signing.pem").string();
  RunResult made = RunMeridian({"audit", "keygen", key_file});
  ASSERT_EQ(made.exit_code, 0) << Describe(made);
  EXPECT_THAT(made.err, HasSubstr("key_id "));
  EXPECT_EQ(made.out, "");  // the secret goes only to the file
  EXPECT_EQ(fs::status(key_file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_THAT(ReadFile(key_file), StartsWith("-----BEGIN PRIVATE KEY-----\n"));
  made = RunMeridian({"audit", "keygen", key_file});
  EXPECT_EQ(made.exit_code, 1) << "an existing key is never overwritten\n" << Describe(made);
  EXPECT_THAT(made.err, HasSubstr("exists"));
  Write("policy.yaml",
        "version: 1\nproviders:\n  - id: p\n    kind: sim\n    models: {m: m}\n"
        "    processing: [CN]\nroutes:\n  - id: r\n    allow: [p]\n");
  const std::string config =
      Write("gateway.yaml",
            "listen: 127.0.0.1:0\npolicy_file: policy.yaml\naudit:\n  path: audit.jsonl\n"
            "  signing_key_file: audit-signing.pem\ntenants:\n  - id: t\n    api_key_sha256: [" +
                std::string(64, 'a') + "]\n");
  RunResult r = RunMeridian({"config", "check", config});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  r = RunMeridian({"audit", "pubkey", "-c", config});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, StartsWith("-----BEGIN PUBLIC KEY-----\n"));
  EXPECT_THAT(r.err, StartsWith("key_id "));
  EXPECT_THAT(r.out, Not(HasSubstr("PRIVATE")));
  const std::string pub = Write("audit.pub", r.out);
  EXPECT_EQ(RunMeridian({"audit", "pubkey", "--key", key_file}).out, r.out);

  // Lines written by the gateway's writer, rotated into several files.
  const std::string log = (Dir() / "audit.jsonl").string();
  {
    meridian::audit::Options o;
    o.path = log;
    o.max_file_bytes = 1500;
    o.max_files = 100;
    o.signing_key_pem = ReadFile(key_file);
    std::unique_ptr<meridian::audit::AuditLog> sink;
    ASSERT_TRUE(meridian::audit::AuditLog::Open(o, sink).ok());
    for (int i = 0; i < 12; ++i) {
      meridian::audit::Record rec;
      rec.request_id = "req-" + std::to_string(i);
      rec.tenant = "t";
      rec.model = "m";
      rec.status = 200;
      ASSERT_TRUE(sink->Reserve());
      sink->Submit(rec);
    }
    sink->Close();
  }
  std::vector<std::string> files = {log};  // newest first, as ls shows them: any order will do
  for (int k = 1; fs::exists(log + "." + std::to_string(k)); ++k) {
    files.push_back(log + "." + std::to_string(k));
  }
  ASSERT_GE(files.size(), 3u);
  std::vector<std::string> args = {"audit", "verify", "--pubkey", pub};
  args.insert(args.end(), files.begin(), files.end());
  r = RunMeridian(args);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(std::to_string(files.size()) +
                               " file(s), 12 line(s), seq 1..12; 1 checkpoint(s), 1 with a "
                               "valid signature, signed through seq 12\n"
                               "verified: no tampering found\n"));

  // A status changed in the middle file: named with its line, exit 1; as JSON too.
  std::string middle = ReadFile(log + ".1");
  const auto at = middle.find("\"status\":200");
  ASSERT_NE(at, std::string::npos);
  middle.replace(at, 12, "\"status\":403");
  Write("audit.jsonl.1", middle);
  r = RunMeridian(args);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(log + ".1:1: modified: "));
  EXPECT_THAT(r.out, HasSubstr("TAMPERED: 1 modified\n"));
  args.push_back("--json");
  r = RunMeridian(args);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  const json::value report = json::parse(r.out);
  EXPECT_EQ(report.at("verified"), false);
  EXPECT_EQ(report.at("findings").at(0).at("kind"), "modified");
  EXPECT_EQ(report.at("findings").at(0).at("line"), 1);

  r = RunMeridian({"audit", "verify", (Dir() / "missing.jsonl").string()});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("cannot read"));

  // Not an Ed25519 key: config check says where and how to make one; nothing of the file shown.
  Write("audit-signing.pem",
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");
  r = RunMeridian({"config", "check", config});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(config + ":5:3: audit: signing key from " + key_file));
  EXPECT_THAT(r.err, Not(HasSubstr("bm90IGEga2V5")));
}

// Lint: what compiles but cannot mean what it says is a warning (exit 0), an error with
// --strict (exit 1); typos and tabs are errors that say what was meant.
TEST_F(CliTest, PolicyCheckWarnsAboutUnreachableRoutesAndStrictFailsOnThem) {
  const std::string policy = Write(
      "policy.yaml",
      "version: 1\nproviders:\n  - {id: cn, kind: sim, models: {m: m}, processing: [CN]}\n"
      "  - {id: us, kind: sim, models: {m: m}, processing: [US]}\nroutes:\n"
      "  - {id: everyone, allow: [cn]}\n  - {id: us-users, when: {region: [US]}, allow: [us]}\n");
  RunResult r = RunMeridian({"policy", "check", policy});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(policy + ":7:5: warning: route 'us-users' can never match: route "
                                        "'everyone' (line 6) comes first"));
  EXPECT_THAT(r.err, HasSubstr(policy + ":4:5: warning: provider 'us' is allowed by no route"));
  EXPECT_THAT(r.out, HasSubstr("; 2 warnings)\n"));
  r = RunMeridian({"policy", "check", "--strict", policy});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(policy + ":7:5: route 'us-users' can never match"));
  EXPECT_THAT(r.err, HasSubstr("2 errors (--strict)\n"));
  EXPECT_EQ(r.out, "");
  // The example policy is clean.
  r = RunMeridian({"policy", "check", "--strict", ExamplePolicy()});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.err, "");

  const std::string tabbed =
      Write("tabbed.yaml", "version: 1\nproviders:\n\t- {id: cn, kind: sim, models: {m: m}}\n");
  r = RunMeridian({"policy", "check", tabbed});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(tabbed + ":3:1: invalid YAML: a tab in the indentation (YAML "
                                        "indents with spaces only)"));
  const std::string typo =
      Write("typo.yaml",
            "version: 1\nproviders:\n  - {id: cn, kind: sim, models: {m: m}, procesing: "
            "[CN]}\nroutes:\n  - {id: r, allow: [cn]}\n");
  r = RunMeridian({"policy", "check", typo});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("unknown key 'procesing' in provider; did you mean 'processing'?"));
  const std::string unknown_id =
      Write("unknown_id.yaml",
            "version: 1\nproviders:\n  - {id: cn, kind: sim, models: {m: m}}\nroutes:\n"
            "  - {id: r, allow: [cm]}\n");
  r = RunMeridian({"policy", "check", unknown_id});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(unknown_id + ":5:21: route 'r' allow: unknown provider 'cm' (did "
                                            "you mean 'cn'?)"));
}

// The CI gate for a policy change: diff exits 0 when nothing changes, 1 when something does
// (grouped, counted, with requests to explain), 2 on an invalid policy; replay re-decides
// recorded requests.
TEST_F(CliTest, PolicyDiffAndReplayGateAPolicyChange) {
  const std::string before =
      Write("before.yaml",
            "version: 1\nproviders:\n  - {id: cn, kind: sim, models: {m: m}, "
            "processing: [CN]}\n  - {id: hk, kind: sim, models: {m: m}, processing: "
            "[HK]}\nroutes:\n  - {id: mainland, when: {region: [CN]}, allow: [cn]}\n"
            "  - {id: hk, when: {region: [HK]}, allow: [hk]}\n");
  const std::string after =
      Write("after.yaml",
            "version: 1\nproviders:\n  - {id: cn, kind: sim, models: {m: m}, "
            "processing: [CN]}\n  - {id: hk, kind: sim, models: {m: m}, processing: "
            "[HK]}\nroutes:\n  - {id: mainland, when: {region: [CN, HK]}, allow: [cn]}\n"
            "  - {id: hk, when: {region: [HK]}, allow: [hk]}\n");
  RunResult r = RunMeridian({"policy", "diff", before, before});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("no decision changes\n"));
  r = RunMeridian({"policy", "diff", before, after});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("24 of 96 points change, in 2 group(s):"));
  EXPECT_THAT(r.out,
              HasSubstr("6 point(s): rule, provider set\n"
                        "  before: allow via hk -> [hk]\n"
                        "  after:  allow via mainland -> [cn]\n"
                        "  e.g. {\"tenant\":\"*other*\",\"region\":\"HK\",\"model\":\"m\"}\n"));
  r = RunMeridian({"policy", "diff", "--json", before, after});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  const json::value report = json::parse(r.out);
  EXPECT_EQ(report.at("changed"), 24);
  EXPECT_EQ(report.at("groups").as_array().size(), 2u);
  r = RunMeridian({"policy", "diff", before, (Dir() / "missing.yaml").string()});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);

  const std::string audit =
      Write("audit.jsonl",
            R"({"v":1,"request_id":"req-1","tenant":"acme","model":"m","region":"CN",)"
            R"("effective_class":"personal","allowed":true,"rule":"mainland","candidates":["cn"]})"
            "\n"
            R"({"v":1,"request_id":"req-2","tenant":"acme","model":"m","region":"HK",)"
            R"("effective_class":"personal","allowed":true,"rule":"hk","candidates":["hk"]})"
            "\n");
  r = RunMeridian({"policy", "replay", after, "--audit", audit});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("2 recorded decision(s) replayed under " + after));
  EXPECT_THAT(r.out, HasSubstr(": 1 would change\n  1 rule\n  e.g. req-2: rule: was allow via hk "
                               "-> [hk], now allow via mainland -> [cn]\n"));
  r = RunMeridian({"policy", "replay", before, "--audit", audit});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(": 0 would change\n"));
}

}  // namespace
