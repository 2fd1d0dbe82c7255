// The gRPC codec as pure functions: request validation naming the field, the status mapping
// with its ErrorInfo details, stream messages from chunks, the unary aggregate.
#include "gateway/grpc/grpc_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace meridian::grpcfe {
namespace {

namespace v1 = meridian::v1;

v1::GenerateRequest Valid() {
  v1::GenerateRequest r;
  r.set_model("chat");
  auto* m = r.add_messages();
  m->set_role(v1::ROLE_USER);
  m->add_content()->set_text("hello ");
  m->add_content()->set_text("there");
  return r;
}

core::Status Decode(const v1::GenerateRequest& r, core::CompletionRequest& out,
                    Declared& declared) {
  return DecodeGenerateRequest(r, true, out, declared);
}

TEST(GrpcCodec, DecodesAValidRequestIntoTheCoreShape) {
  v1::GenerateRequest r = Valid();
  r.mutable_sampling()->set_temperature(0.5);
  r.mutable_sampling()->set_max_tokens(7);
  r.mutable_sampling()->add_stop("END");
  r.set_data_class(v1::DATA_CLASS_SENSITIVE_PERSONAL);
  r.mutable_consent()->set_cross_border_separate(true);
  r.set_subject_id("user-42");
  core::CompletionRequest out;
  Declared declared;
  ASSERT_TRUE(Decode(r, out, declared).ok());
  EXPECT_TRUE(out.stream);
  EXPECT_TRUE(out.include_usage);
  EXPECT_EQ(out.model, "chat");
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].role, "user");
  EXPECT_EQ(out.messages[0].text, "hello there");  // parts joined
  EXPECT_EQ(out.temperature, 0.5);
  EXPECT_EQ(out.max_completion_tokens, 7);
  EXPECT_EQ(out.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(out.user, "user-42");
  EXPECT_EQ(declared.data_class, policy::DataClass::kSensitivePersonal);
  EXPECT_EQ(declared.consent, policy::Bit(policy::Consent::kCrossBorderSeparate));
}

TEST(GrpcCodec, EachInvalidFieldIsNamedByItsPath) {
  struct Case {
    const char* param;
    void (*mutate)(v1::GenerateRequest&);
  };
  const Case cases[] = {
      {"model", [](v1::GenerateRequest& r) { r.clear_model(); }},
      {"messages", [](v1::GenerateRequest& r) { r.clear_messages(); }},
      {"messages[0].role",
       [](v1::GenerateRequest& r) { r.mutable_messages(0)->set_role(v1::ROLE_UNSPECIFIED); }},
      {"messages[0].content",
       [](v1::GenerateRequest& r) { r.mutable_messages(0)->clear_content(); }},
      {"sampling.temperature",
       [](v1::GenerateRequest& r) { r.mutable_sampling()->set_temperature(2.5); }},
      {"sampling.top_p", [](v1::GenerateRequest& r) { r.mutable_sampling()->set_top_p(0); }},
      {"sampling.max_tokens",
       [](v1::GenerateRequest& r) { r.mutable_sampling()->set_max_tokens(0); }},
      {"sampling.stop[0]", [](v1::GenerateRequest& r) { r.mutable_sampling()->add_stop(""); }},
      {"data_class",
       [](v1::GenerateRequest& r) { r.set_data_class(static_cast<v1::DataClass>(99)); }},
      {"subject_id",
       [](v1::GenerateRequest& r) { r.set_subject_id(std::string(kMaxIdBytes + 1, 'x')); }},
      {"client_request_id",
       [](v1::GenerateRequest& r) { r.set_client_request_id(std::string(kMaxIdBytes + 1, 'x')); }},
  };
  for (const Case& c : cases) {
    v1::GenerateRequest r = Valid();
    c.mutate(r);
    core::CompletionRequest out;
    Declared declared;
    const core::Status st = Decode(r, out, declared);
    EXPECT_EQ(st.code, core::StatusCode::kInvalidArgument) << c.param;
    EXPECT_EQ(st.param, c.param);
  }
}

TEST(GrpcCodec, ToolsToolCallsAndImagesDecodeOntoOpenAisShapes) {
  v1::GenerateRequest in;
  in.set_model("chat");
  auto* user = in.add_messages();
  user->set_role(v1::ROLE_USER);
  user->add_content()->set_text("what is this?");
  user->add_content()->mutable_image()->set_url("https://img.example/a.png");
  auto* inline_image = user->add_content()->mutable_image();
  inline_image->set_data(std::string("\x89PNG", 4));
  inline_image->set_media_type("image/png");
  auto* assistant = in.add_messages();
  assistant->set_role(v1::ROLE_ASSISTANT);
  auto* call = assistant->add_tool_calls();
  call->set_id("call_1");
  call->set_name("get_weather");
  call->set_arguments_json(R"({ "city": "Paris" })");
  auto* tool = in.add_messages();
  tool->set_role(v1::ROLE_TOOL);
  tool->set_tool_call_id("call_1");
  tool->add_content()->set_text("18C");
  auto* t = in.add_tools();
  t->set_name("get_weather");
  t->set_description("Weather now");
  t->set_parameters_json(R"({"type":"object","properties":{"city":{"type":"string"}}})");
  in.set_tool_choice(v1::TOOL_CHOICE_FUNCTION);
  in.set_tool_choice_name("get_weather");

  core::CompletionRequest out;
  Declared declared;
  const core::Status st = DecodeGenerateRequest(in, false, out, declared);
  ASSERT_TRUE(st.ok()) << st.message;
  ASSERT_EQ(out.messages.size(), 3u);
  EXPECT_EQ(out.messages[0].text, "what is this?");
  EXPECT_EQ(out.messages[0].content_parts_json,
            R"([{"type":"text","text":"what is this?"},)"
            R"({"type":"image_url","image_url":{"url":"https://img.example/a.png"}},)"
            R"({"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw=="}}])");
  EXPECT_TRUE(out.messages[1].content_null);
  EXPECT_EQ(out.messages[1].tool_calls_json,
            R"([{"id":"call_1","type":"function","function":{"name":"get_weather",)"
            R"("arguments":"{\"city\":\"Paris\"}"}}])");
  EXPECT_EQ(out.messages[2].role, "tool");
  EXPECT_EQ(out.messages[2].tool_call_id, "call_1");
  EXPECT_EQ(out.tools_json,
            R"([{"type":"function","function":{"name":"get_weather","description":"Weather now",)"
            R"("parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])");
  EXPECT_EQ(out.tool_choice_json, R"({"type":"function","function":{"name":"get_weather"}})");

  auto field_of = [](const v1::GenerateRequest& r) {
    core::CompletionRequest o;
    Declared d;
    const core::Status s = DecodeGenerateRequest(r, false, o, d);
    EXPECT_EQ(s.code, core::StatusCode::kInvalidArgument);
    return s.param;
  };
  v1::GenerateRequest bad = in;
  bad.mutable_tools(0)->set_name("bad name");
  EXPECT_EQ(field_of(bad), "tools[0].name");
  bad = in;
  bad.mutable_tools(0)->set_parameters_json("[1]");
  EXPECT_EQ(field_of(bad), "tools[0].parameters_json");
  bad = in;
  bad.set_tool_choice_name("other");
  EXPECT_EQ(field_of(bad), "tool_choice_name");
  bad = in;
  bad.mutable_messages(1)->mutable_tool_calls(0)->set_arguments_json("not json");
  EXPECT_EQ(field_of(bad), "messages[1].tool_calls[0].arguments_json");
  bad = in;
  bad.mutable_messages(2)->clear_tool_call_id();
  EXPECT_EQ(field_of(bad), "messages[2].tool_call_id");
  bad = in;
  bad.mutable_messages(0)->mutable_content(2)->mutable_image()->set_media_type("image/bmp");
  EXPECT_EQ(field_of(bad), "messages[0].content[2].image.media_type");
  bad = in;
  bad.mutable_messages(0)->mutable_content(1)->mutable_image()->set_url("ftp://x");
  EXPECT_EQ(field_of(bad), "messages[0].content[1].image.url");
  bad = in;
  bad.mutable_messages(2)->add_content()->mutable_image()->set_url("https://x.example/a.png");
  EXPECT_EQ(field_of(bad), "messages[2].content[1]");  // only user messages carry images
  bad = in;
  bad.clear_tools();
  bad.set_tool_choice(v1::TOOL_CHOICE_REQUIRED);
  bad.clear_tool_choice_name();
  EXPECT_EQ(field_of(bad), "tool_choice");
}

TEST(GrpcCodec, ToolCallFragmentsAndMergedCallsReachTheResponses) {
  core::Chunk delta;
  delta.tool_calls_json =
      R"([{"index":0,"id":"call_9","type":"function","function":{"name":"f","arguments":"{\"a\""}}])";
  v1::GenerateResponse out;
  ASSERT_TRUE(ToGenerateResponse(delta, v1::Start{}, out));
  ASSERT_EQ(out.delta().tool_calls_size(), 1);
  EXPECT_EQ(out.delta().tool_calls(0).id(), "call_9");
  EXPECT_EQ(out.delta().tool_calls(0).name(), "f");
  EXPECT_EQ(out.delta().tool_calls(0).arguments(), R"({"a")");

  core::CompletionAggregator agg;
  agg.Add(delta);
  core::Chunk rest;
  rest.tool_calls_json = R"([{"index":0,"function":{"arguments":":1}"}}])";
  agg.Add(rest);
  v1::CompleteResponse resp;
  ToCompleteResponse(agg.completion(), resp);
  ASSERT_EQ(resp.tool_calls_size(), 1);
  EXPECT_EQ(resp.tool_calls(0).id(), "call_9");
  EXPECT_EQ(resp.tool_calls(0).arguments_json(), R"({"a":1})");
  EXPECT_EQ(resp.finish_reason(), v1::FINISH_REASON_TOOL_CALLS);
}

TEST(GrpcCodec, EmbedRequestsDecodeOntoTheEmbeddingsOperation) {
  v1::EmbedRequest in;
  in.set_model("embed");
  in.add_texts("a");
  in.add_texts("b");
  in.set_dimensions(8);
  in.set_subject_id("u-1");
  in.set_data_class(v1::DATA_CLASS_SENSITIVE_PERSONAL);
  core::CompletionRequest out;
  Declared declared;
  ASSERT_TRUE(DecodeEmbedRequest(in, out, declared).ok());
  EXPECT_EQ(out.op, core::Operation::kEmbed);
  EXPECT_EQ(out.embedding.texts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(out.embedding.dimensions, 8);
  EXPECT_EQ(out.user, "u-1");
  EXPECT_EQ(declared.data_class, policy::DataClass::kSensitivePersonal);

  auto field_of = [](const v1::EmbedRequest& r) {
    core::CompletionRequest o;
    Declared d;
    const core::Status s = DecodeEmbedRequest(r, o, d);
    EXPECT_EQ(s.code, core::StatusCode::kInvalidArgument);
    return s.param;
  };
  v1::EmbedRequest bad = in;
  bad.clear_model();
  EXPECT_EQ(field_of(bad), "model");
  bad = in;
  bad.clear_texts();
  EXPECT_EQ(field_of(bad), "texts");
  bad = in;
  bad.add_texts("");
  EXPECT_EQ(field_of(bad), "texts[2]");
  bad = in;
  bad.set_dimensions(0);
  EXPECT_EQ(field_of(bad), "dimensions");
  bad = in;
  for (std::size_t i = 0; i < kMaxEmbedTexts; ++i) bad.add_texts("x");
  EXPECT_EQ(field_of(bad), "texts");
  bad = in;
  bad.set_client_request_id(std::string(kMaxIdBytes + 1, 'x'));
  EXPECT_EQ(field_of(bad), "client_request_id");
  bad = in;
  bad.add_tokens()->add_ids(5);
  EXPECT_EQ(field_of(bad), "tokens");  // not both
  v1::EmbedRequest tokens;
  tokens.set_model("embed");
  tokens.add_tokens()->add_ids(7);
  tokens.add_tokens();
  EXPECT_EQ(field_of(tokens), "tokens[1].ids");
  tokens.mutable_tokens(1)->add_ids(-1);
  EXPECT_EQ(field_of(tokens), "tokens[1].ids[0]");
  tokens.mutable_tokens(1)->set_ids(0, 8);
  ASSERT_TRUE(DecodeEmbedRequest(tokens, out, declared).ok());
  EXPECT_EQ(out.embedding.tokens, (std::vector<std::vector<std::int64_t>>{{7}, {8}}));
  EXPECT_TRUE(out.embedding.texts.empty());

  core::Completion answer;
  answer.embeddings[1] = {3.0f};
  answer.embeddings[0] = {1.0f, 2.0f};
  answer.usage.prompt_tokens = answer.usage.total_tokens = 4;
  answer.has_usage = true;
  v1::EmbedResponse resp;
  ToEmbedResponse(answer, resp);
  ASSERT_EQ(resp.embeddings_size(), 2);
  EXPECT_EQ(resp.embeddings(0).values_size(), 2);
  EXPECT_EQ(resp.embeddings(1).values(0), 3.0f);
  EXPECT_EQ(resp.usage().total_tokens(), 4);
}

TEST(GrpcCodec, StatusesCarryTheirReasonAndContextInErrorInfo) {
  core::Status st =
      core::Status::Error(core::StatusCode::kPermissionDenied, "no", "denied_by_guard:G8");
  const grpc::Status g = ToGrpcStatus(st, {"req_1", "cn-users", "G8,G9", "sha256:abc"});
  EXPECT_EQ(g.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(g.error_message(), "no");
  const auto info = ErrorInfoOf(g);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "denied_by_guard:G8");
  EXPECT_EQ(info->domain(), "meridian");
  EXPECT_EQ(info->metadata().at("request_id"), "req_1");
  EXPECT_EQ(info->metadata().at("rule"), "cn-users");
  EXPECT_EQ(info->metadata().at("guards"), "G8,G9");
  EXPECT_EQ(info->metadata().at("policy_version"), "sha256:abc");
  EXPECT_FALSE(info->metadata().contains("retry_after_s"));

  st = core::Status::Error(core::StatusCode::kUnavailable, "later", "no_healthy_candidate");
  st.retry_after_s = 3;
  const auto later = ErrorInfoOf(ToGrpcStatus(st));
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(later->metadata().at("retry_after_s"), "3");
  EXPECT_TRUE(ToGrpcStatus(core::Status::Ok()).ok());
  EXPECT_FALSE(ErrorInfoOf(grpc::Status(grpc::StatusCode::INTERNAL, "plain")).has_value());
}

TEST(GrpcCodec, EveryCoreCodeHasAGrpcCode) {
  using C = core::StatusCode;
  EXPECT_EQ(ToGrpcCode(C::kInvalidArgument), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcCode(C::kPayloadTooLarge), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcCode(C::kBadUpstream), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcCode(C::kUpstreamTimeout), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(ToGrpcCode(C::kRequestTimeout), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(ToGrpcCode(C::kCancelled), grpc::StatusCode::CANCELLED);
  for (int c = 1; c <= static_cast<int>(C::kRequestTimeout); ++c) {
    EXPECT_NE(ToGrpcCode(static_cast<C>(c)), grpc::StatusCode::OK) << c;
    EXPECT_NE(ToGrpcCode(static_cast<C>(c)), grpc::StatusCode::UNKNOWN) << c;
  }
}

TEST(GrpcCodec, ChunksBecomeStreamMessagesAndTheUnaryAggregate) {
  v1::Start start;
  start.set_id("chatcmpl-x");
  v1::GenerateResponse msg;
  core::Chunk c;
  c.kind = core::Chunk::Kind::kStart;
  ASSERT_TRUE(ToGenerateResponse(c, start, msg));
  EXPECT_EQ(msg.start().id(), "chatcmpl-x");
  c = {};
  c.kind = core::Chunk::Kind::kDelta;
  c.content = "hi";
  c.reasoning = "hmm";
  ASSERT_TRUE(ToGenerateResponse(c, start, msg));
  EXPECT_EQ(msg.delta().text(), "hi");
  EXPECT_EQ(msg.delta().reasoning(), "hmm");
  core::Chunk tool;
  tool.kind = core::Chunk::Kind::kDelta;
  tool.tool_calls_json = "[]";
  EXPECT_FALSE(ToGenerateResponse(tool, start, msg));  // tool calls: not in v1
  core::Chunk fin;
  fin.kind = core::Chunk::Kind::kFinish;
  fin.finish_reason = "length";
  ASSERT_TRUE(ToGenerateResponse(fin, start, msg));
  EXPECT_EQ(msg.finish(), v1::FINISH_REASON_LENGTH);
  core::Chunk usage;
  usage.kind = core::Chunk::Kind::kUsage;
  usage.usage.prompt_tokens = 3;
  usage.usage.completion_tokens = 4;
  usage.usage.total_tokens = 7;
  ASSERT_TRUE(ToGenerateResponse(usage, start, msg));
  EXPECT_EQ(msg.usage().total_tokens(), 7);
  core::Chunk err;
  err.kind = core::Chunk::Kind::kError;
  EXPECT_FALSE(ToGenerateResponse(err, start, msg));

  core::CompletionAggregator agg;
  for (const core::Chunk& ch : {c, c, fin, usage}) agg.Add(ch);
  v1::CompleteResponse resp;
  ToCompleteResponse(agg.completion(), resp);
  EXPECT_EQ(resp.text(), "hihi");
  EXPECT_EQ(resp.reasoning(), "hmmhmm");
  EXPECT_EQ(resp.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(resp.usage().completion_tokens(), 4);
  agg = core::CompletionAggregator{};  // a failed attempt's part is dropped before the fallback
  v1::CompleteResponse fresh;
  ToCompleteResponse(agg.completion(), fresh);
  EXPECT_EQ(fresh.text(), "");
  EXPECT_FALSE(fresh.has_usage());
  EXPECT_EQ(fresh.finish_reason(), v1::FINISH_REASON_STOP);  // as chat.completion says "stop"
  EXPECT_EQ(ToFinishReason("tool_calls"), v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(ToFinishReason("stop"), v1::FINISH_REASON_STOP);
  EXPECT_EQ(ToFinishReason("something-new"), v1::FINISH_REASON_UNSPECIFIED);
}

}  // namespace
}  // namespace meridian::grpcfe
