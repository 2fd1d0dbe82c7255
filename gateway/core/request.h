// The transport-independent completion request every front end produces and every provider
// adapter consumes. Plain data, std only. Fields that are passed through to upstreams
// untouched (tools, content arrays, response_format, ...) are kept as raw JSON text, so no
// re-serialisation happens unless an adapter must translate them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meridian::core {

/// Kinds of content part a message can carry (OpenAI's part `type`s; engine extensions such
/// as vLLM's video_url included), and kTokens: an embeddings input given as token ids, which
/// no classifier can read (like media, it implies the policy's image_data_class).
enum class PartKind : std::uint8_t { kText, kImage, kAudio, kFile, kVideo, kRefusal, kTokens };
inline constexpr std::size_t kPartKindCount = 7;

/// The kind of an OpenAI content part `type` ("image_url" -> kImage, "input_audio" -> kAudio,
/// "file", "video_url", "refusal", "text"); nullopt for a type no adapter knows, which the
/// front ends refuse rather than pass on unexamined.
inline std::optional<PartKind> PartKindOf(std::string_view type) {
  if (type == "text") return PartKind::kText;
  if (type == "image_url") return PartKind::kImage;
  if (type == "input_audio") return PartKind::kAudio;
  if (type == "file") return PartKind::kFile;
  if (type == "video_url") return PartKind::kVideo;
  if (type == "refusal") return PartKind::kRefusal;
  return std::nullopt;
}

/// "text", "image", "audio", "file", "video", "refusal", "tokens".
inline std::string_view Name(PartKind kind) {
  static constexpr std::array<std::string_view, kPartKindCount> kNames = {
      "text", "image", "audio", "file", "video", "refusal", "tokens"};
  return kNames[static_cast<std::size_t>(kind)];
}

struct Message {
  std::string role;  ///< system, developer, user, assistant, tool (function: deprecated)
  /// Concatenated text of all text parts (what classifiers and non-OpenAI adapters read).
  std::string text;
  /// The `content` exactly as received when it was an array of parts (raw JSON), else empty.
  std::string content_parts_json;
  bool content_null = false;    ///< `content: null` (assistant tool-call turns)
  std::string name;             ///< optional participant name
  std::string tool_call_id;     ///< role tool
  std::string tool_calls_json;  ///< assistant tool_calls array (raw JSON), if any
};

/// A request member no gateway field interprets, kept for the upstream: its key and its value
/// as raw JSON text ("7", "{\"k\":1}"). Front ends produce valid JSON values; adapters
/// choose by key which members a vendor receives.
struct PassthroughMember {
  std::string key;
  std::string json;
  bool operator==(const PassthroughMember&) const = default;
};

/// What a request asks a provider to do.
enum class Operation : std::uint8_t {
  kChat,   ///< generate an answer to `messages` (every completion API)
  kEmbed,  ///< embed `embedding.texts` / `embedding.tokens` (POST /v1/embeddings)
};

/// The inputs of an embeddings request, in the client's order: either texts or token-id
/// arrays (OpenAI's `input` as string(s) or as integer array(s)), never both.
struct EmbeddingInput {
  std::vector<std::string> texts;
  std::vector<std::vector<std::int64_t>> tokens;
  std::optional<std::int64_t> dimensions;  ///< `dimensions`: the vectors' length
  /// The client asked for base64 vectors (`encoding_format: "base64"`, the OpenAI SDKs'
  /// default). Upstreams are always asked for floats; the front end encodes.
  bool base64 = false;

  std::size_t size() const { return tokens.empty() ? texts.size() : tokens.size(); }
};

/// The client's own request body, kept when its API is a vendor's native one, so an adapter
/// for that same vendor can send it as it came (only `model` replaced) instead of a
/// translation: Anthropic Messages to an Anthropic upstream keeps cache_control, thinking
/// blocks and their signatures. The front end has validated every member of it, and the
/// classifier scans all of it.
struct NativeBody {
  enum class Format : std::uint8_t {
    kNone,
    kAnthropicMessages,  ///< POST /v1/messages
    kOpenAiResponses,    ///< POST /v1/responses
  };
  Format format = Format::kNone;
  std::string json;  ///< the body as received (a JSON object)
};

struct CompletionRequest {
  Operation op = Operation::kChat;
  std::string model;  ///< the client-facing alias
  std::vector<Message> messages;
  bool stream = false;
  bool include_usage = false;                         ///< stream_options.include_usage
  std::optional<std::int64_t> max_tokens;             ///< max_tokens (deprecated form)
  std::optional<std::int64_t> max_completion_tokens;  ///< preferred form
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string> stop;
  std::string tools_json;        ///< raw JSON array, if given
  std::string tool_choice_json;  ///< raw JSON (string or object), if given
  std::string user;
  /// Qwen3 hard thinking switch: from `chat_template_kwargs.enable_thinking` or a top-level
  /// `enable_thinking`; nullopt = the engine's default.
  std::optional<bool> enable_thinking;
  /// Other OpenAI fields passed through as-is, in body order, e.g. {"seed","7"}, {"n","1"}.
  std::vector<PassthroughMember> passthrough;
  /// W3C `traceparent` to send upstream (the caller's trace, with the gateway's span as
  /// parent), or empty. Never part of any request body.
  std::string traceparent;
  /// op == kEmbed: what to embed (empty otherwise).
  EmbeddingInput embedding;
  /// The client's body in its vendor's own format (see NativeBody), else format kNone.
  NativeBody native;

  /// The cap to send upstream: max_completion_tokens, else max_tokens.
  std::optional<std::int64_t> TokenLimit() const {
    return max_completion_tokens ? max_completion_tokens : max_tokens;
  }
};

}  // namespace meridian::core
