#include "providers/sim/sim_provider.h"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <string_view>

namespace meridian::providers {
namespace {

constexpr std::array<std::string_view, 16> kWords = {
    "meridian", "routes", "this",  "request", "within", "the", "allowed", "region",
    "policy",   "guards", "never", "widen",   "the",    "set", "of",      "providers"};

std::int64_t CountWords(const core::CompletionRequest& request) {
  std::int64_t words = 0;
  for (const auto& m : request.messages) {
    bool in_word = false;
    for (char c : m.text) {
      const bool space = c == ' ' || c == '\n' || c == '\t';
      if (!space && !in_word) ++words;
      in_word = !space;
    }
  }
  return words;
}

/// FNV-1a of the last message, so the same prompt always gets the same answer.
std::uint64_t Seed(const core::CompletionRequest& request) {
  std::uint64_t h = 1469598103934665603ull;
  if (!request.messages.empty()) {
    for (char c : request.messages.back().text) {
      h = (h ^ static_cast<std::uint8_t>(c)) * 1099511628211ull;
    }
  }
  return h;
}

}  // namespace

asio::awaitable<AttemptResult> SimProvider::Complete(const core::CompletionRequest& request,
                                                     const Target& target, ChunkSink& sink,
                                                     CancelToken& cancel) {
  AttemptResult result;
  const UpstreamProfile& p = *target.provider;
  std::int64_t tokens = p.sim_tokens;
  bool capped = false;
  if (auto limit = request.TokenLimit(); limit && *limit < tokens) {
    tokens = *limit;
    capped = true;
  }
  asio::steady_timer timer(executor_);
  const auto delay = std::chrono::milliseconds(p.sim_delay_ms);

  auto emit = [&](const core::Chunk& chunk) -> asio::awaitable<bool> {
    if (cancel.cancelled()) co_return false;
    const bool ok = co_await sink.Emit(chunk);
    result.emitted = true;
    co_return ok && !cancel.cancelled();
  };
  auto pause = [&]() -> asio::awaitable<bool> {
    if (delay.count() == 0) co_return !cancel.cancelled();
    timer.expires_after(delay);
    cancel.OnCancel([&timer] { timer.cancel(); });
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    cancel.Clear();
    co_return !cancel.cancelled();
  };
  // One paced chunk. Written with locals, never `co_await` in an operand of `||`: GCC 12
  // mishandles a suspension there (docs/development.md, "Coroutines and GCC 12").
  auto paced = [&](const core::Chunk& chunk) -> asio::awaitable<bool> {
    const bool on_time = co_await pause();
    if (!on_time) co_return false;
    const bool sent = co_await emit(chunk);
    co_return sent;
  };
  auto cancelled = [] {
    return core::Status::Error(core::StatusCode::kCancelled, "request cancelled", "cancelled");
  };

  core::Chunk start;
  start.kind = core::Chunk::Kind::kStart;
  start.model = "sim/" + target.upstream_model;
  if (const bool ok = co_await paced(start); !ok) {
    result.status = cancelled();
    co_return result;
  }
  std::uint64_t seed = Seed(request);
  std::int64_t reasoning_tokens = 0;
  if (request.enable_thinking.value_or(false)) {
    for (std::string_view step : {"Simulated ", "reasoning ", "about ", "the ", "request."}) {
      core::Chunk r;
      r.reasoning = std::string(step);
      ++reasoning_tokens;
      if (const bool ok = co_await paced(r); !ok) {
        result.status = cancelled();
        co_return result;
      }
    }
  }
  for (std::int64_t i = 0; i < tokens; ++i) {
    core::Chunk delta;
    if (i == 0) {
      delta.content = "[simulated " + p.id + "] ";
    }
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    delta.content += kWords[(seed >> 33) % kWords.size()];
    if (i + 1 < tokens) delta.content += ' ';
    if (const bool ok = co_await paced(delta); !ok) {
      result.status = cancelled();
      co_return result;
    }
  }
  core::Chunk finish;
  finish.kind = core::Chunk::Kind::kFinish;
  finish.finish_reason = capped ? "length" : "stop";
  core::Chunk usage;
  usage.kind = core::Chunk::Kind::kUsage;
  usage.usage.prompt_tokens = CountWords(request);
  usage.usage.completion_tokens = tokens + reasoning_tokens;
  usage.usage.total_tokens = usage.usage.prompt_tokens + usage.usage.completion_tokens;
  if (reasoning_tokens > 0) usage.usage.reasoning_tokens = reasoning_tokens;
  bool sent = co_await emit(finish);
  if (sent) sent = co_await emit(usage);
  if (!sent) {
    result.status = cancelled();
    co_return result;
  }
  co_return result;
}

}  // namespace meridian::providers
