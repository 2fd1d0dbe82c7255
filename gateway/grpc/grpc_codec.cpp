#include "gateway/grpc/grpc_codec.h"

#include <cmath>

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

}  // namespace

core::Status DecodeEmbedRequest(const v1::EmbedRequest& in, core::CompletionRequest& out,
                                Declared& declared) {
  out = core::CompletionRequest{};
  out.op = core::Operation::kEmbed;
  if (in.model().empty()) return Invalid("model is required", "model");
  out.model = in.model();
  if (in.texts().empty()) return Invalid("texts must not be empty", "texts");
  if (static_cast<std::size_t>(in.texts_size()) > kMaxEmbedTexts) {
    return Invalid("at most " + std::to_string(kMaxEmbedTexts) + " texts are allowed", "texts");
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
    if (m.content().empty())
      return Invalid("content must have at least one part", path + ".content");
    for (int j = 0; j < m.content_size(); ++j) {
      const v1::ContentPart& part = m.content(j);
      if (part.part_case() != v1::ContentPart::kText) {
        return Invalid("a content part must be text", path + ".content[" + std::to_string(j) + "]");
      }
      msg.text += part.text();
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
      if (chunk.content.empty() && chunk.reasoning.empty()) return false;  // tool calls: not in v1
      auto* d = out.mutable_delta();
      d->set_text(chunk.content);
      d->set_reasoning(chunk.reasoning);
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
}

}  // namespace meridian::grpcfe
