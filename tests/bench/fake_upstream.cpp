// The test suite's fake OpenAI upstream as a standalone server, for load tests on loopback
// (tests/bench/load.sh): answers /v1/chat/completions (JSON, or SSE with "stream": true) with
// `--tokens` deltas, `--delay-ms` apart when streaming; no API key is checked. Prints its base
// URL on the first line of stdout and serves until SIGINT or SIGTERM.
//   fake_upstream [--threads N] [--tokens N] [--delay-ms N]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "tests/fakes/fake_openai_server.h"

int main(int argc, char** argv) {
  meridian::fakes::FakeServerOptions options;
  options.api_key = "";
  options.default_tokens = 50;
  options.max_recorded = 1024;
  int delay_ms = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "fake_upstream: " << arg << " needs a value\n";
      return 2;
    }
    const int value = std::atoi(argv[++i]);
    if (arg == "--threads" && value > 0) {
      options.threads = value;
    } else if (arg == "--tokens" && value > 0) {
      options.default_tokens = value;
    } else if (arg == "--delay-ms" && value >= 0) {
      delay_ms = value;
    } else {
      std::cerr << "usage: fake_upstream [--threads N] [--tokens N] [--delay-ms N]\n";
      return 2;
    }
  }
  if (delay_ms > 0) options.default_scenario = "delay_ms=" + std::to_string(delay_ms);
  // Block the stop signals before the server's threads start, so only sigwait sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  meridian::fakes::FakeOpenAiServer server(options);
  std::cout << server.base_url() << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  server.Stop();
  return 0;
}
