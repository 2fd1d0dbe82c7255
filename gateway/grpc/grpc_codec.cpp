#include "gateway/grpc/grpc_codec.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>

#include "gateway/core/float_vector.h"
#include "gateway/core/json_text.h"

namespace meridian::grpcfe {
namespace {

namespace v1 = meridian::v1;

core::Status Invalid(std::string message, std::string field) {
  return core::Status::Error(core::StatusCode::kInvalidArgument, std::move(message),
                             "invalid_argument", std::move(field));
}

std::string RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_SYSTEM:
      return "system";
    case v1::ROLE_DEVELOPER:
      return "developer";
    case v1::ROLE_USER:
      return "user";
    case v1::ROLE_ASSISTANT:
      return "assistant";
    case v1::ROLE_TOOL:
      return "tool";
    default:
      return {};
  }
}

std::optional<policy::DataClass> FromProto(v1::DataClass c, bool& valid) {
  valid = true;
  switch (c) {
    case v1::DATA_CLASS_UNSPECIFIED:
      return std::nullopt;
    case v1::DATA_CLASS_NONE:
      return policy::DataClass::kNone;
    case v1::DATA_CLASS_PERSONAL:
      return policy::DataClass::kPersonal;
    case v1::DATA_CLASS_SENSITIVE_PERSONAL:
      return policy::DataClass::kSensitivePersonal;
    case v1::DATA_CLASS_IMPORTANT:
      return policy::DataClass::kImportant;
    case v1::DATA_CLASS_CORE:
      return policy::DataClass::kCore;
    default:
      valid = false;
      return std::nullopt;
  }
}

/// What every request message declares about its caller: data class, consent, subject and
/// client request ids (GenerateRequest and EmbedRequest use the same field names).
template <class M>
core::Status DecodeCaller(const M& in, core::CompletionRequest& out, Declared& declared) {
  bool valid = true;
  declared.data_class = FromProto(in.data_class(), valid);
  if (!valid) {
    return Invalid("unknown data_class " + std::to_string(static_cast<int>(in.data_class())),
                   "data_class");
  }
  declared.consent.reset();
  if (in.has_consent()) {
    std::uint32_t mask = 0;
    if (in.consent().cross_border_separate())
      mask |= policy::Bit(policy::Consent::kCrossBorderSeparate);
    if (in.consent().sensitive_separate()) mask |= policy::Bit(policy::Consent::kSensitiveSeparate);
    declared.consent = mask;
  }
  if (in.subject_id().size() > kMaxIdBytes) {
    return Invalid("subject_id must be at most " + std::to_string(kMaxIdBytes) + " bytes",
                   "subject_id");
  }
  if (in.client_request_id().size() > kMaxIdBytes) {
    return Invalid("client_request_id must be at most " + std::to_string(kMaxIdBytes) + " bytes",
                   "client_request_id");
  }
  out.user = in.subject_id();
  return core::Status::Ok();
}

/// `text` parsed as a JSON object (the arguments or a schema), re-serialised compactly.
bool JsonObjectText(const std::string& text, std::string& out) {
  boost::system::error_code ec;
  boost::json::parse_options opt;
  opt.max_depth = 64;
  const boost::json::value v = boost::json::parse(text, ec, {}, opt);
  if (ec || !v.is_object()) return false;
  out = boost::json::serialize(v);
  return true;
}

bool IsToolName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/// An image part as OpenAI's {"type":"image_url","image_url":{"url":...}}.
core::Status ImagePartJson(const v1::ImagePart& image, const std::string& path, std::string& out) {
  std::string url;
  if (image.source_case() == v1::ImagePart::kUrl) {
    url = image.url();
    if (!url.starts_with("https://") && !url.starts_with("http://") && !url.starts_with("data:")) {
      return Invalid("an image url must be http(s) or a data: URL", path + ".image.url");
    }
  } else if (image.source_case() == v1::ImagePart::kData) {
    if (image.data().empty()) return Invalid("image data must not be empty", path + ".image.data");
    const std::string& type = image.media_type();
    if (type != "image/png" && type != "image/jpeg" && type != "image/gif" &&
        type != "image/webp") {
      return Invalid("media_type must be image/png, image/jpeg, image/gif or image/webp",
                     path + ".image.media_type");
    }
    url = "data:" + type + ";base64,";
    core::AppendBase64(url, image.data());
  } else {
    return Invalid("an image needs a url or data", path + ".image");
  }
  out += R"({"type":"image_url","image_url":{"url":)";
  core::AppendJsonString(out, url);
  out += "}}";
  return core::Status::Ok();
}

/// A message's content: the text (parts concatenated), and the parts as OpenAI JSON when one
/// of them is an image (text-only messages, the common case, build no JSON).
core::Status DecodeContent(const v1::Message& m, const std::string& path, core::Message& msg) {
  bool has_image = false;
  for (int j = 0; j < m.content_size(); ++j) {
    const v1::ContentPart& part = m.content(j);
    if (part.part_case() == v1::ContentPart::kText) {
      msg.text += part.text();
      continue;
    }
    const std::string at = path + ".content[" + std::to_string(j) + "]";
    if (part.part_case() != v1::ContentPart::kImage) {
      return Invalid("a content part must be text or an image", at);
    }
    if (msg.role != "user") return Invalid("only user messages may carry images", at);
    has_image = true;
  }
  if (!has_image) return core::Status::Ok();
  std::string parts = "[";
  for (int j = 0; j < m.content_size(); ++j) {
    const v1::ContentPart& part = m.content(j);
    if (j > 0) parts += ",";
    if (part.part_case() == v1::ContentPart::kText) {
      parts += R"({"type":"text","text":)";
      core::AppendJsonString(parts, part.text());
      parts += "}";
    } else if (auto st =
                   ImagePartJson(part.image(), path + ".content[" + std::to_string(j) + "]", parts);
               !st.ok()) {
      return st;
    }
  }
  msg.content_parts_json = parts + "]";
  return core::Status::Ok();
}

/// An assistant turn's tool calls as OpenAI's `tool_calls` array.
core::Status DecodeToolCalls(const v1::Message& m, const std::string& path, core::Message& msg) {
  if (m.tool_calls().empty()) return core::Status::Ok();
  if (msg.role != "assistant") {
    return Invalid("only assistant messages carry tool_calls", path + ".tool_calls");
  }
  std::string json = "[";
  for (int k = 0; k < m.tool_calls_size(); ++k) {
    const v1::ToolCall& call = m.tool_calls(k);
    const std::string at = path + ".tool_calls[" + std::to_string(k) + "]";
    if (call.id().empty()) return Invalid("a tool call needs its id", at + ".id");
    if (!IsToolName(call.name())) return Invalid("invalid tool name", at + ".name");
    std::string args;
    if (!JsonObjectText(call.arguments_json().empty() ? "{}" : call.arguments_json(), args)) {
      return Invalid("arguments_json must be a JSON object", at + ".arguments_json");
    }
    if (k > 0) json += ",";
    json += R"({"id":)";
    core::AppendJsonString(json, call.id());
    json += R"(,"type":"function","function":{"name":)";
    core::AppendJsonString(json, call.name());
    json += R"(,"arguments":)";
    core::AppendJsonString(json, args);
    json += "}}";
  }
  msg.tool_calls_json = json + "]";
  return core::Status::Ok();
}

/// `tools` and `tool_choice` as OpenAI's JSON.
core::Status DecodeTools(const v1::GenerateRequest& in, core::CompletionRequest& out) {
  if (!in.tools().empty()) {
    std::string json = "[";
    for (int i = 0; i < in.tools_size(); ++i) {
      const v1::Tool& tool = in.tools(i);
      const std::string at = "tools[" + std::to_string(i) + "]";
      if (!IsToolName(tool.name())) {
        return Invalid("a tool name is 1 to 64 of [A-Za-z0-9_-]", at + ".name");
      }
      std::string schema;
      if (!JsonObjectText(
              tool.parameters_json().empty() ? R"({"type":"object"})" : tool.parameters_json(),
              schema)) {
        return Invalid("parameters_json must be a JSON object", at + ".parameters_json");
      }
      if (i > 0) json += ",";
      json += R"({"type":"function","function":{"name":)";
      core::AppendJsonString(json, tool.name());
      if (!tool.description().empty()) {
        json += R"(,"description":)";
        core::AppendJsonString(json, tool.description());
      }
      json += R"(,"parameters":)" + schema + "}}";
    }
    out.tools_json = json + "]";
  }
  switch (in.tool_choice()) {
    case v1::TOOL_CHOICE_UNSPECIFIED:
      if (!in.tool_choice_name().empty()) {
        return Invalid("tool_choice_name needs TOOL_CHOICE_FUNCTION", "tool_choice_name");
      }
      return core::Status::Ok();
    case v1::TOOL_CHOICE_NONE:
      out.tool_choice_json = R"("none")";
      break;
    case v1::TOOL_CHOICE_REQUIRED:
      out.tool_choice_json = R"("required")";
      break;
    case v1::TOOL_CHOICE_FUNCTION: {
      bool declared = false;
      for (const v1::Tool& t : in.tools()) declared = declared || t.name() == in.tool_choice_name();
      if (!declared) {
        return Invalid("tool_choice_name must name one of the tools", "tool_choice_name");
      }
      out.tool_choice_json = R"({"type":"function","function":{"name":)";
      core::AppendJsonString(out.tool_choice_json, in.tool_choice_name());
      out.tool_choice_json += "}}";
      break;
    }
    default:
      return Invalid("unknown tool_choice " + std::to_string(static_cast<int>(in.tool_choice())),
                     "tool_choice");
  }
  if (in.tools().empty()) return Invalid("tool_choice needs tools", "tool_choice");
  return core::Status::Ok();
}

}  // namespace

core::Status DecodeEmbedRequest(const v1::EmbedRequest& in, core::CompletionRequest& out,
                                Declared& declared) {
  out = core::CompletionRequest{};
  out.op = core::Operation::kEmbed;
  if (in.model().empty()) return Invalid("model is required", "model");
  out.model = in.model();
  if (!in.texts().empty() && !in.tokens().empty()) {
    return Invalid("send texts or tokens, not both", "tokens");
  }
  if (in.texts().empty() && in.tokens().empty()) {
    return Invalid("texts must not be empty", "texts");
  }
  if (static_cast<std::size_t>(in.texts_size()) > kMaxEmbedTexts) {
    return Invalid("at most " + std::to_string(kMaxEmbedTexts) + " texts are allowed", "texts");
  }
  if (static_cast<std::size_t>(in.tokens_size()) > kMaxEmbedTexts) {
    return Invalid("at most " + std::to_string(kMaxEmbedTexts) + " token inputs are allowed",
                   "tokens");
  }
  for (int i = 0; i < in.tokens_size(); ++i) {
    const std::string path = "tokens[" + std::to_string(i) + "]";
    if (in.tokens(i).ids().empty()) return Invalid("ids must not be empty", path + ".ids");
    std::vector<std::int64_t>& ids = out.embedding.tokens.emplace_back();
    for (int j = 0; j < in.tokens(i).ids_size(); ++j) {
      const std::int64_t id = in.tokens(i).ids(j);
      if (id < 0 || id > 2147483647) {
        return Invalid("a token id is between 0 and 2^31-1",
                       path + ".ids[" + std::to_string(j) + "]");
      }
      ids.push_back(id);
    }
  }
  for (int i = 0; i < in.texts_size(); ++i) {
    if (in.texts(i).empty()) {
      return Invalid("a text must not be empty", "texts[" + std::to_string(i) + "]");
    }
    out.embedding.texts.push_back(in.texts(i));
  }
  if (in.has_dimensions()) {
    if (in.dimensions() <= 0) return Invalid("dimensions must be greater than 0", "dimensions");
    out.embedding.dimensions = in.dimensions();
  }
  return DecodeCaller(in, out, declared);
}

core::Status DecodeGenerateRequest(const v1::GenerateRequest& in, bool stream,
                                   core::CompletionRequest& out, Declared& declared) {
  out = core::CompletionRequest{};
  out.stream = stream;
  out.include_usage = true;  // usage is always reported when the provider gives it
  if (in.model().empty()) return Invalid("model is required", "model");
  out.model = in.model();
  if (in.messages().empty()) return Invalid("messages must not be empty", "messages");
  if (static_cast<std::size_t>(in.messages_size()) > kMaxMessages) {
    return Invalid("at most " + std::to_string(kMaxMessages) + " messages are allowed", "messages");
  }
  out.messages.reserve(static_cast<std::size_t>(in.messages_size()));
  for (int i = 0; i < in.messages_size(); ++i) {
    const v1::Message& m = in.messages(i);
    const std::string path = "messages[" + std::to_string(i) + "]";
    core::Message msg;
    msg.role = RoleName(m.role());
    if (msg.role.empty()) {
      return Invalid(m.role() == v1::ROLE_UNSPECIFIED
                         ? "role is required"
                         : "unknown role " + std::to_string(static_cast<int>(m.role())),
                     path + ".role");
    }
    if (m.content().empty() && m.tool_calls().empty()) {
      return Invalid("content must have at least one part", path + ".content");
    }
    if (auto st = DecodeContent(m, path, msg); !st.ok()) return st;
    if (auto st = DecodeToolCalls(m, path, msg); !st.ok()) return st;
    msg.content_null = m.content().empty();
    if (msg.role == "tool") {
      if (m.tool_call_id().empty())
        return Invalid("a tool message needs tool_call_id", path + ".tool_call_id");
      msg.tool_call_id = m.tool_call_id();
    } else if (!m.tool_call_id().empty()) {
      return Invalid("only tool messages carry tool_call_id", path + ".tool_call_id");
    }
    msg.name = m.name();
    out.messages.push_back(std::move(msg));
  }
  if (in.has_sampling()) {
    const v1::Sampling& s = in.sampling();
    if (s.has_temperature()) {
      if (!std::isfinite(s.temperature()) || s.temperature() < 0 || s.temperature() > 2) {
        return Invalid("temperature must be between 0 and 2", "sampling.temperature");
      }
      out.temperature = s.temperature();
    }
    if (s.has_top_p()) {
      if (!std::isfinite(s.top_p()) || s.top_p() <= 0 || s.top_p() > 1) {
        return Invalid("top_p must be greater than 0 and at most 1", "sampling.top_p");
      }
      out.top_p = s.top_p();
    }
    if (s.has_max_tokens()) {
      if (s.max_tokens() <= 0) {
        return Invalid("max_tokens must be greater than 0", "sampling.max_tokens");
      }
      out.max_completion_tokens = s.max_tokens();
    }
    if (static_cast<std::size_t>(s.stop_size()) > kMaxStop) {
      return Invalid("at most " + std::to_string(kMaxStop) + " stop sequences are allowed",
                     "sampling.stop");
    }
    for (int j = 0; j < s.stop_size(); ++j) {
      if (s.stop(j).empty()) {
        return Invalid("a stop sequence must not be empty",
                       "sampling.stop[" + std::to_string(j) + "]");
      }
      out.stop.push_back(s.stop(j));
    }
    if (s.has_seed()) out.passthrough.push_back({"seed", std::to_string(s.seed())});
  }
  if (auto st = DecodeCaller(in, out, declared); !st.ok()) return st;
  if (auto st = DecodeTools(in, out); !st.ok()) return st;
  if (in.has_enable_thinking()) out.enable_thinking = in.enable_thinking();
  return core::Status::Ok();
}

grpc::StatusCode ToGrpcCode(core::StatusCode code) {
  using C = core::StatusCode;
  switch (code) {
    case C::kOk:
      return grpc::StatusCode::OK;
    case C::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case C::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
    case C::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case C::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case C::kMethodNotAllowed:
      return grpc::StatusCode::UNIMPLEMENTED;
    case C::kPayloadTooLarge:
    case C::kHeadersTooLarge:
    case C::kRateLimited:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case C::kCancelled:
      return grpc::StatusCode::CANCELLED;
    case C::kInternal:
      return grpc::StatusCode::INTERNAL;
    case C::kBadUpstream:
    case C::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case C::kUpstreamTimeout:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case C::kNotImplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case C::kRequestTimeout:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
  }
  return grpc::StatusCode::UNKNOWN;
}

grpc::Status ToGrpcStatus(const core::Status& status, const ErrorContext& context) {
  if (status.ok()) return grpc::Status::OK;
  const grpc::StatusCode code = ToGrpcCode(status.code);
  v1::ErrorInfo info;
  info.set_reason(status.reason.empty() ? "error" : status.reason);
  info.set_domain("meridian");
  auto& md = *info.mutable_metadata();
  if (!status.param.empty()) md["field"] = status.param;
  if (!context.request_id.empty()) md["request_id"] = context.request_id;
  if (!context.rule.empty()) md["rule"] = context.rule;
  if (!context.guards.empty()) md["guards"] = context.guards;
  if (!context.policy_version.empty()) md["policy_version"] = context.policy_version;
  if (status.retry_after_s) md["retry_after_s"] = std::to_string(*status.retry_after_s);
  v1::RpcStatus details;
  details.set_code(static_cast<int>(code));
  details.set_message(status.message);
  auto* any = details.add_details();
  any->set_type_url("type.googleapis.com/google.rpc.ErrorInfo");
  any->set_value(info.SerializeAsString());
  return grpc::Status(code, status.message, details.SerializeAsString());
}

std::optional<v1::ErrorInfo> ErrorInfoOf(const grpc::Status& status) {
  v1::RpcStatus details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    return std::nullopt;
  }
  for (const auto& any : details.details()) {
    v1::ErrorInfo info;
    if (any.type_url() == "type.googleapis.com/google.rpc.ErrorInfo" &&
        info.ParseFromString(any.value())) {
      return info;
    }
  }
  return std::nullopt;
}

v1::FinishReason ToFinishReason(std::string_view r) {
  if (r == "stop") return v1::FINISH_REASON_STOP;
  if (r == "length") return v1::FINISH_REASON_LENGTH;
  if (r == "content_filter") return v1::FINISH_REASON_CONTENT_FILTER;
  if (r == "tool_calls" || r == "function_call") return v1::FINISH_REASON_TOOL_CALLS;
  return v1::FINISH_REASON_UNSPECIFIED;
}

v1::DataClass ToProto(policy::DataClass c) {
  switch (c) {
    case policy::DataClass::kNone:
      return v1::DATA_CLASS_NONE;
    case policy::DataClass::kPersonal:
      return v1::DATA_CLASS_PERSONAL;
    case policy::DataClass::kSensitivePersonal:
      return v1::DATA_CLASS_SENSITIVE_PERSONAL;
    case policy::DataClass::kImportant:
      return v1::DATA_CLASS_IMPORTANT;
    case policy::DataClass::kCore:
      return v1::DATA_CLASS_CORE;
  }
  return v1::DATA_CLASS_UNSPECIFIED;
}

namespace {

void CopyUsage(const core::Usage& u, v1::Usage& out) {
  out.set_prompt_tokens(u.prompt_tokens);
  out.set_completion_tokens(u.completion_tokens);
  out.set_total_tokens(u.total_tokens);
  if (u.reasoning_tokens) out.set_reasoning_tokens(*u.reasoning_tokens);
  if (u.cached_tokens) out.set_cached_tokens(*u.cached_tokens);
}

}  // namespace

bool ToGenerateResponse(const core::Chunk& chunk, const v1::Start& start,
                        v1::GenerateResponse& out) {
  out.Clear();
  switch (chunk.kind) {
    case core::Chunk::Kind::kStart:
      *out.mutable_start() = start;
      return true;
    case core::Chunk::Kind::kDelta: {
      std::vector<core::ToolFragment> fragments;
      if (!chunk.tool_calls_json.empty() &&
          !core::ParseToolFragments(chunk.tool_calls_json, fragments)) {
        fragments.clear();  // malformed: the aggregate reports it; the stream skips it
      }
      if (chunk.content.empty() && chunk.reasoning.empty() && fragments.empty()) return false;
      auto* d = out.mutable_delta();
      d->set_text(chunk.content);
      d->set_reasoning(chunk.reasoning);
      for (const core::ToolFragment& f : fragments) {
        auto* t = d->add_tool_calls();
        t->set_index(f.index);
        t->set_id(f.id);
        t->set_name(f.name);
        t->set_arguments(f.arguments);
      }
      return true;
    }
    case core::Chunk::Kind::kFinish:
      out.set_finish(ToFinishReason(chunk.finish_reason));
      return true;
    case core::Chunk::Kind::kUsage:
      CopyUsage(chunk.usage, *out.mutable_usage());
      return true;
    case core::Chunk::Kind::kError:
    case core::Chunk::Kind::kEmbedding:  // embeddings are never streamed
      return false;
  }
  return false;
}

void ToEmbedResponse(const core::Completion& answer, meridian::v1::EmbedResponse& out) {
  for (const auto& [index, vector] : answer.embeddings) {
    out.add_embeddings()->mutable_values()->Add(vector.begin(), vector.end());
  }
  if (answer.has_usage) CopyUsage(answer.usage, *out.mutable_usage());
}

void ToCompleteResponse(const core::Completion& answer, meridian::v1::CompleteResponse& out) {
  out.set_text(answer.content);
  out.set_reasoning(answer.reasoning);
  out.set_finish_reason(ToFinishReason(answer.FinishReason()));
  if (answer.has_usage) CopyUsage(answer.usage, *out.mutable_usage());
  for (const auto& [index, call] : answer.tool_calls) {
    auto* t = out.add_tool_calls();
    t->set_id(call.id.empty() ? "call_" + std::to_string(index) : call.id);
    t->set_name(call.name);
    t->set_arguments_json(call.arguments);
  }
}

}  // namespace meridian::grpcfe
