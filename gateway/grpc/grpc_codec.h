// The gRPC front end's codec: meridian.v1 messages <-> the core request/chunk types, and
// core::Status -> grpc::Status (the one place that mapping lives). Pure: no sockets, no
// threads; grpc::Status is only a value here.
#pragma once

#include <grpcpp/support/status.h>

#include <optional>
#include <string>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/completion.h"
#include "gateway/core/request.h"
#include "gateway/core/status.h"
#include "meridian/v1/assistant.pb.h"
#include "policy/model.h"

namespace meridian::grpcfe {

/// Limits on request fields (the whole message is bounded by grpc.max_message_bytes).
inline constexpr std::size_t kMaxIdBytes = 128;  ///< subject_id, client_request_id
inline constexpr std::size_t kMaxStop = 4;
inline constexpr std::size_t kMaxMessages = 1024;

/// What a request declares about itself, beyond the completion.
struct Declared {
  std::optional<policy::DataClass> data_class;  ///< nullopt: the tenant's default
  std::optional<std::uint32_t> consent;         ///< Bit(policy::Consent) mask; nullopt: tenant's
};

/// Validates `in` and converts it. On failure returns kInvalidArgument whose `param` names the
/// offending field as a path ("messages[1].role", "sampling.temperature") and leaves `out`
/// unspecified. `stream` is stored in out.stream.
core::Status DecodeGenerateRequest(const meridian::v1::GenerateRequest& in, bool stream,
                                   core::CompletionRequest& out, Declared& declared);

/// Most texts in one EmbedRequest, as the HTTP API (and OpenAI) allow.
inline constexpr std::size_t kMaxEmbedTexts = 2048;

/// Validates an EmbedRequest and converts it (op = kEmbed); errors as DecodeGenerateRequest's
/// ("texts[3]", "dimensions").
core::Status DecodeEmbedRequest(const meridian::v1::EmbedRequest& in, core::CompletionRequest& out,
                                Declared& declared);

/// The answer part of an EmbedResponse: the vectors in input order and the usage.
void ToEmbedResponse(const core::Completion& answer, meridian::v1::EmbedResponse& out);

/// Context reported with errors (and in Decision): what the policy decided, when it did.
struct ErrorContext {
  std::string request_id;
  std::string rule;
  std::string guards;  ///< comma-separated
  std::string policy_version;
};

/// core::Status -> grpc::Status with a google.rpc.Status-compatible details payload holding
/// one ErrorInfo (reason, domain "meridian", metadata: param as "field", rule, guards,
/// policy_version, request_id, retry_after_s — each only when known).
///
///   core                  gRPC
///   kInvalidArgument      INVALID_ARGUMENT
///   kUnauthenticated      UNAUTHENTICATED
///   kPermissionDenied     PERMISSION_DENIED
///   kNotFound             NOT_FOUND
///   kMethodNotAllowed     UNIMPLEMENTED
///   kPayloadTooLarge      RESOURCE_EXHAUSTED
///   kHeadersTooLarge      RESOURCE_EXHAUSTED
///   kRateLimited          RESOURCE_EXHAUSTED
///   kCancelled            CANCELLED
///   kInternal             INTERNAL
///   kBadUpstream          UNAVAILABLE   (as gRPC maps HTTP 502)
///   kUnavailable          UNAVAILABLE
///   kUpstreamTimeout      DEADLINE_EXCEEDED
///   kNotImplemented       UNIMPLEMENTED
///   kRequestTimeout       DEADLINE_EXCEEDED
grpc::Status ToGrpcStatus(const core::Status& status, const ErrorContext& context = {});

/// The code alone (for tests and metrics).
grpc::StatusCode ToGrpcCode(core::StatusCode code);

/// Decodes the details of a status produced by ToGrpcStatus (clients and tests).
std::optional<meridian::v1::ErrorInfo> ErrorInfoOf(const grpc::Status& status);

meridian::v1::FinishReason ToFinishReason(std::string_view openai_finish_reason);
meridian::v1::DataClass ToProto(policy::DataClass c);

/// Converts a provider chunk into a stream message. kStart becomes `start` with `start`'s
/// decision and ids (given by the caller); a delta's tool-call fragments become
/// ToolCallDeltas; kError is not a message (returns false).
bool ToGenerateResponse(const core::Chunk& chunk, const meridian::v1::Start& start,
                        meridian::v1::GenerateResponse& out);

/// The answer part of a CompleteResponse (text, reasoning, finish reason, usage, tool calls in
/// index order; a call the engine sent without an id is named "call_<index>").
void ToCompleteResponse(const core::Completion& answer, meridian::v1::CompleteResponse& out);

}  // namespace meridian::grpcfe
