#include "providers/sim/sim_provider.h"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <string_view>

namespace meridian::providers {
namespace {

constexpr std::array<std::string_view, 16> kWords = {
    "meridian", "routes", "this",  "request", "within", "the", "allowed", "region",
    "policy",   "guards", "never", "widen",   "the",    "set", "of",      "providers"};

std::int64_t CountWords(std::string_view text) {
  std::int64_t words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = c == ' ' || c == '\n' || c == '\t';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

std::int64_t CountWords(const core::CompletionRequest& request) {
  std::int64_t words = 0;
  for (const auto& m : request.messages) words += CountWords(m.text);
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

constexpr std::uint64_t kFnvBasis = 1469598103934665603ull;
constexpr std::uint64_t kFnvPrime = 1099511628211ull;

/// Adds the pseudo-random direction of the word hashed as `h` to `v`.
void AddWord(std::uint64_t h, std::vector<float>& v) {
  for (float& x : v) {
    h = h * 6364136223846793005ull + 1442695040888963407ull;
    x += static_cast<float>(static_cast<double>(h >> 11) / 9007199254740992.0 * 2.0 - 1.0);
  }
}

void Normalise(std::vector<float>& v) {
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  norm = std::sqrt(norm);
  if (norm == 0) return;
  for (float& x : v) x = static_cast<float>(x / norm);
}

/// Waits `delay` on `timer` (none for 0); false when cancelled meanwhile.
asio::awaitable<bool> Pause(asio::steady_timer& timer, std::chrono::milliseconds delay,
                            CancelToken& cancel) {
  if (delay.count() == 0) co_return !cancel.cancelled();
  timer.expires_after(delay);
  cancel.OnCancel([&timer] { timer.cancel(); });
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  cancel.Clear();
  co_return !cancel.cancelled();
}

core::Status Cancelled() {
  return core::Status::Error(core::StatusCode::kCancelled, "request cancelled", "cancelled");
}

}  // namespace

std::vector<float> SimEmbedding(std::string_view text, std::size_t dimensions) {
  std::vector<float> v(dimensions, 0.0f);
  std::uint64_t h = kFnvBasis;
  bool in_word = false;
  bool any = false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool word = std::isalnum(u) != 0 || u >= 0x80;
    if (word) {
      h = (h ^ static_cast<std::uint8_t>(std::tolower(u))) * kFnvPrime;
      in_word = true;
    } else if (in_word) {
      AddWord(h, v);
      any = true;
      h = kFnvBasis;
      in_word = false;
    }
  }
  if (in_word) {
    AddWord(h, v);
    any = true;
  }
  if (!any) {  // no word at all: the whole text is the word
    for (char c : text) h = (h ^ static_cast<std::uint8_t>(c)) * kFnvPrime;
    AddWord(h, v);
  }
  Normalise(v);
  return v;
}

std::vector<float> SimEmbedding(const std::vector<std::int64_t>& tokens, std::size_t dimensions) {
  std::vector<float> v(dimensions, 0.0f);
  for (std::int64_t t : tokens) AddWord(kFnvBasis ^ static_cast<std::uint64_t>(t), v);
  if (tokens.empty()) AddWord(kFnvBasis, v);
  Normalise(v);
  return v;
}

asio::awaitable<AttemptResult> SimProvider::Embed(const core::CompletionRequest& request,
                                                  const Target& target, ChunkSink& sink,
                                                  CancelToken& cancel) {
  AttemptResult result;
  const core::EmbeddingInput& in = request.embedding;
  const std::int64_t dims = in.dimensions.value_or(kSimDimensions);
  if (dims < 1 || dims > kSimMaxDimensions) {
    result.status = core::Status::Error(core::StatusCode::kInvalidArgument,
                                        "the simulated engine makes vectors of 1 to " +
                                            std::to_string(kSimMaxDimensions) +
                                            " dimensions, not " + std::to_string(dims),
                                        "invalid_value", "dimensions");
    co_return result;
  }
  asio::steady_timer timer(executor_);
  const bool on_time =
      co_await Pause(timer, std::chrono::milliseconds(target.provider->sim_delay_ms), cancel);
  if (!on_time) {
    result.status = Cancelled();
    co_return result;
  }
  std::vector<core::Chunk> chunks;
  core::Chunk& start = chunks.emplace_back();
  start.kind = core::Chunk::Kind::kStart;
  start.model = "sim/" + target.upstream_model;
  std::int64_t tokens = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    core::Chunk& c = chunks.emplace_back();
    c.kind = core::Chunk::Kind::kEmbedding;
    c.index = static_cast<std::int64_t>(i);
    if (in.tokens.empty()) {
      c.embedding = SimEmbedding(in.texts[i], static_cast<std::size_t>(dims));
      tokens += std::max<std::int64_t>(1, CountWords(in.texts[i]));
    } else {
      c.embedding = SimEmbedding(in.tokens[i], static_cast<std::size_t>(dims));
      tokens += static_cast<std::int64_t>(in.tokens[i].size());
    }
  }
  core::Chunk& usage = chunks.emplace_back();
  usage.kind = core::Chunk::Kind::kUsage;
  usage.usage.prompt_tokens = tokens;
  usage.usage.total_tokens = tokens;
  for (const core::Chunk& c : chunks) {
    if (cancel.cancelled()) {
      result.status = Cancelled();
      co_return result;
    }
    const bool sent = co_await sink.Emit(c);
    result.emitted = true;
    if (!sent) {
      result.status = Cancelled();
      co_return result;
    }
  }
  co_return result;
}

asio::awaitable<AttemptResult> SimProvider::Complete(const core::CompletionRequest& request,
                                                     const Target& target, ChunkSink& sink,
                                                     CancelToken& cancel) {
  if (request.op == core::Operation::kEmbed)
    co_return co_await Embed(request, target, sink, cancel);
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
  // One paced chunk. Written with locals, never `co_await` in an operand of `||`: GCC 12
  // mishandles a suspension there (docs/development.md, "Coroutines and GCC 12").
  auto paced = [&](const core::Chunk& chunk) -> asio::awaitable<bool> {
    const bool on_time = co_await Pause(timer, delay, cancel);
    if (!on_time) co_return false;
    const bool sent = co_await emit(chunk);
    co_return sent;
  };

  core::Chunk start;
  start.kind = core::Chunk::Kind::kStart;
  start.model = "sim/" + target.upstream_model;
  if (const bool ok = co_await paced(start); !ok) {
    result.status = Cancelled();
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
        result.status = Cancelled();
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
      result.status = Cancelled();
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
    result.status = Cancelled();
    co_return result;
  }
  co_return result;
}

}  // namespace meridian::providers
