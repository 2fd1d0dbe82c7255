// OpenAI-family wire formats for the fake upstream (wire-protocols.md §1): the chat.completion
// body, the chat.completion.chunk stream, error bodies and response headers of OpenAI, Azure
// OpenAI, vLLM, SGLang, llama.cpp and MLX-LM, each with its documented quirks. Pure: a plan in,
// bytes out.
#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tests/fakes/fake_openai_server.h"
#include "tests/fakes/fake_vendor_wire.h"

namespace meridian::fakes::wire {
namespace {

namespace json = boost::json;

std::string VllmType(int status) {
  switch (status) {
    case 400:
      return "BadRequestError";
    case 401:
      return "UnauthorizedError";
    case 404:
      return "NotFoundError";
    case 429:
      return "TooManyRequestsError";
    case 503:
      return "ServiceUnavailableError";
    default:
      break;
  }
  return status >= 500 ? "InternalServerError" : "BadRequestError";
}

std::string LlamaType(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 501:
      return "not_supported_error";
    case 503:
      return "unavailable_error";
    default:
      break;
  }
  return status >= 500 ? "server_error" : "invalid_request_error";
}

json::object AzureFilterResults() {
  json::object safe{{"filtered", false}, {"severity", "safe"}};
  return json::object{{"hate", safe}, {"self_harm", safe}, {"sexual", safe}, {"violence", safe}};
}

json::array AzurePromptFilterResults() {
  return json::array{
      json::object{{"prompt_index", 0}, {"content_filter_results", AzureFilterResults()}}};
}

}  // namespace

bool IsLocal(Profile p) {
  switch (p) {
    case Profile::kVllm:
    case Profile::kLlamaCpp:
    case Profile::kSglang:
    case Profile::kMlx:
      return true;
    case Profile::kOpenAi:
    case Profile::kAzure:
    case Profile::kDashScope:
    case Profile::kAnthropic:
      break;
  }
  return false;
}

bool IsVendor(Profile p) {
  return p == Profile::kDashScope || p == Profile::kAnthropic;
}

std::string DefaultReasoningField(Profile p) {
  switch (p) {
    case Profile::kVllm:
    case Profile::kMlx:
      return "reasoning";
    case Profile::kLlamaCpp:
    case Profile::kSglang:
      return "reasoning_content";
    case Profile::kOpenAi:
    case Profile::kAzure:
    case Profile::kDashScope:
    case Profile::kAnthropic:
      break;
  }
  return {};  // OpenAI-hosted models hide their reasoning; only usage counts it
}

UsageChoices DefaultUsageChoices(Profile p) {
  return p == Profile::kVllm ? UsageChoices::kNull : UsageChoices::kEmpty;
}

const char* StreamContentType(Profile p) {
  switch (p) {
    case Profile::kLlamaCpp:
    case Profile::kMlx:
      return "text/event-stream";
    case Profile::kOpenAi:
    case Profile::kAzure:
    case Profile::kVllm:
    case Profile::kSglang:
    case Profile::kDashScope:
    case Profile::kAnthropic:
      break;
  }
  return "text/event-stream; charset=utf-8";
}

// Realistic rate-limit and request-id headers, for the header-forwarding code.
HeaderList ProfileHeaders(Profile p, std::uint64_t seq) {
  const std::string id = std::to_string(seq);
  switch (p) {
    case Profile::kOpenAi:
      return {
          {"x-request-id", "req_fake" + id},          {"openai-version", "2020-10-01"},
          {"openai-organization", "fake-org"},        {"openai-processing-ms", "1"},
          {"x-ratelimit-limit-requests", "5000"},     {"x-ratelimit-remaining-requests", "4999"},
          {"x-ratelimit-reset-requests", "12ms"},     {"x-ratelimit-limit-tokens", "160000"},
          {"x-ratelimit-remaining-tokens", "159000"}, {"x-ratelimit-reset-tokens", "9ms"}};
    case Profile::kAzure:
      return {{"apim-request-id", "fake-apim-" + id},
              {"x-request-id", "fake-" + id},
              {"x-ms-region", "Sweden Central"},
              {"x-ratelimit-remaining-requests", "99"},
              {"x-ratelimit-remaining-tokens", "9999"}};
    case Profile::kVllm:
    case Profile::kSglang:
      return {{"server", "uvicorn"}};
    case Profile::kLlamaCpp:
      return {{"server", "llama.cpp"}, {"access-control-allow-origin", "*"}};
    case Profile::kMlx:
      return {{"server", "BaseHTTP/0.6 Python/3.12.0"},
              {"access-control-allow-origin", "*"},
              {"access-control-allow-methods", "*"},
              {"access-control-allow-headers", "*"}};
    case Profile::kDashScope:
      return DashScopeHeaders(seq);
    case Profile::kAnthropic:
      return AnthropicHeaders(seq);
  }
  return {};
}

ErrorText DefaultErrorText(int status) {
  switch (status) {
    case 400:
      return {"Invalid request (fake status=400).", "invalid_request_error", nullptr, nullptr};
    case 401:
      return {"Incorrect API key provided.", "invalid_request_error", "invalid_api_key", nullptr};
    case 403:
      return {"Country, region, or territory not supported", "request_forbidden",
              "unsupported_country_region_territory", nullptr};
    case 404:
      return {"The model does not exist or you do not have access to it.", "invalid_request_error",
              "model_not_found", nullptr};
    case 408:
      return {"Request timed out.", "timeout", nullptr, nullptr};
    case 409:
      return {"Conflict: the request conflicts with another in flight.", "conflict", nullptr,
              nullptr};
    case 429:
      return {"Rate limit reached for requests", "requests", "rate_limit_exceeded", nullptr};
    case 500:
      return {"The server had an error while processing your request. Sorry about that!",
              "server_error", nullptr, nullptr};
    case 503:
      return {"The engine is currently overloaded, please try again later.", "server_error",
              nullptr, nullptr};
    default:
      break;
  }
  return {"Fake upstream error (status " + std::to_string(status) + ").",
          status >= 500 ? "server_error" : "invalid_request_error", nullptr, nullptr};
}

std::string ErrorBody(Profile p, int status, ErrorText t, std::uint64_t seq) {
  switch (p) {
    case Profile::kOpenAi:
      return json::serialize(json::object{
          {"error",
           json::object{
               {"message", t.message}, {"type", t.type}, {"param", t.param}, {"code", t.code}}}});
    case Profile::kAzure:
      // Azure puts the HTTP status, as a string, where OpenAI has a symbolic code.
      return json::serialize(json::object{
          {"error", json::object{{"code", std::to_string(status)}, {"message", t.message}}}});
    case Profile::kVllm:
    case Profile::kSglang:
      return json::serialize(json::object{{"object", "error"},
                                          {"message", t.message},
                                          {"type", VllmType(status)},
                                          {"param", t.param},
                                          {"code", status}});
    case Profile::kLlamaCpp:
      if (status == 503) t.message = "Loading model";
      return json::serialize(json::object{
          {"error",
           json::object{{"code", status}, {"message", t.message}, {"type", LlamaType(status)}}}});
    case Profile::kMlx:
      return json::serialize(json::object{{"error", t.message}});
    case Profile::kDashScope:
      return DashScopeStatusBody(status, t.type == "insufficient_quota", seq);
    case Profile::kAnthropic:
      return AnthropicStatusBody(status, seq);
  }
  return {};
}

std::string AzureContentFilterBody() {
  json::object sev_ok{{"filtered", false}, {"severity", "safe"}};
  json::object sev_hit{{"filtered", true}, {"severity", "high"}};
  return json::serialize(json::object{
      {"error",
       json::object{
           {"message",
            "The response was filtered due to the prompt triggering Azure OpenAI's content "
            "management policy. Please modify your prompt and retry."},
           {"type", nullptr},
           {"param", "prompt"},
           {"code", "content_filter"},
           {"status", 400},
           {"innererror",
            json::object{
                {"code", "ResponsibleAIPolicyViolation"},
                {"content_filter_result",
                 json::object{{"hate", sev_ok},
                              {"jailbreak", json::object{{"filtered", false}, {"detected", false}}},
                              {"self_harm", sev_ok},
                              {"sexual", sev_ok},
                              {"violence", sev_hit}}}}}}}});
}

std::string NotFoundBody(Profile p, const std::string& method, const std::string& path) {
  switch (p) {
    case Profile::kOpenAi:
      return ErrorBody(
          p, 404,
          {"Invalid URL (" + method + " " + path + ")", "invalid_request_error", nullptr, nullptr});
    case Profile::kAzure:
      return R"({"error":{"code":"404","message":"Resource not found"}})";
    case Profile::kVllm:
    case Profile::kSglang:
      return R"({"detail":"Not Found"})";
    case Profile::kLlamaCpp:
      return R"({"error":{"code":404,"message":"File Not Found","type":"not_found_error"}})";
    case Profile::kMlx:
      return "Not Found";
    case Profile::kDashScope:
      // [U] DashScope's body for an unknown path is undocumented; its flat shape is assumed.
      return DashScopeError("NotFound", "Not Found", 0);
    case Profile::kAnthropic:
      return AnthropicError("not_found_error", "The requested resource could not be found.", 0);
  }
  return {};
}

namespace {

json::object Usage(Profile profile, const ChatPlan& plan, bool detailed) {
  json::object u{{"prompt_tokens", plan.prompt_tokens},
                 {"completion_tokens", plan.completion_tokens},
                 {"total_tokens", plan.prompt_tokens + plan.completion_tokens}};
  const bool hosted = !IsLocal(profile);
  if (detailed && hosted) {
    u["prompt_tokens_details"] = json::object{{"cached_tokens", 0}, {"audio_tokens", 0}};
    u["completion_tokens_details"] = json::object{{"reasoning_tokens", plan.sc.reasoning},
                                                  {"audio_tokens", 0},
                                                  {"accepted_prediction_tokens", 0},
                                                  {"rejected_prediction_tokens", 0}};
  } else if (hosted && plan.sc.reasoning > 0) {
    u["completion_tokens_details"] = json::object{{"reasoning_tokens", plan.sc.reasoning}};
  }
  return u;
}

json::array ToolCallsJson(const ChatPlan& plan, bool with_index) {
  json::array calls;
  for (std::size_t i = 0; i < plan.tool_names.size(); ++i) {
    json::object call;
    if (with_index) call["index"] = i;
    call["id"] = "call_fake" + std::to_string(i);
    call["type"] = "function";
    call["function"] =
        json::object{{"name", plan.tool_names[i]},
                     {"arguments", FakeOpenAiServer::ToolArguments(static_cast<int>(i))}};
    calls.push_back(std::move(call));
  }
  return calls;
}

json::object ChunkJson(Profile p, const ChatPlan& plan, json::value choices, std::size_t n) {
  json::object o{{"id", plan.id}};
  if (p == Profile::kMlx) o["system_fingerprint"] = "fake-mlx";
  o["object"] = "chat.completion.chunk";
  o["created"] = plan.created;
  o["model"] = plan.model;
  o["choices"] = std::move(choices);
  if (plan.include_usage) o["usage"] = nullptr;
  if (plan.obfuscation) o["obfuscation"] = std::string(1 + n % 7, "xyzuvw0"[n % 7]);
  return o;
}

json::array Choice(json::object delta, json::value finish) {
  json::object c{{"index", 0},
                 {"delta", std::move(delta)},
                 {"logprobs", nullptr},
                 {"finish_reason", std::move(finish)}};
  return json::array{std::move(c)};
}

/// MLX repeats the whole delta shape in every chunk.
json::object MlxDelta(std::string content, std::string reasoning, json::array tools) {
  return json::object{{"role", "assistant"},
                      {"content", std::move(content)},
                      {"reasoning", std::move(reasoning)},
                      {"tool_calls", std::move(tools)}};
}

std::vector<Event> PlanEvents(Profile p, const ChatPlan& plan) {
  const bool mlx = p == Profile::kMlx;
  std::vector<Event> ev;
  // Payloads only; OpenAiScript frames them.
  auto add = [&ev](const json::object& o, EventKind kind) {
    ev.push_back({json::serialize(o), kind});
  };
  std::size_t n = 0;
  if (plan.sc.azure_empty_first) {
    add(json::object{{"choices", json::array()},
                     {"created", 0},
                     {"id", ""},
                     {"model", ""},
                     {"object", ""},
                     {"prompt_filter_results", AzurePromptFilterResults()}},
        EventKind::kOther);
  }
  const bool tools = !plan.tool_names.empty();
  if (!mlx) {
    json::object role{{"role", "assistant"}};
    role["content"] = tools ? json::value(nullptr) : json::value("");
    add(ChunkJson(p, plan, Choice(std::move(role), nullptr), n++), EventKind::kOther);
  }
  // Reasoning first, as a thinking model produces it.
  const int r = plan.sc.reasoning;
  if (r > 0 && plan.sc.think_tags) {
    std::vector<std::string> parts{"<think>"};
    for (int i = 0; i < r; ++i) parts.push_back((i == 0 ? "think" : " think") + std::to_string(i));
    parts.emplace_back("</think>");
    for (auto& part : parts) {
      json::object d = mlx ? MlxDelta(part, "", {}) : json::object{{"content", part}};
      add(ChunkJson(p, plan, Choice(std::move(d), nullptr), n++), EventKind::kDelta);
    }
  } else if (r > 0 && !plan.reasoning_field.empty()) {
    for (int i = 0; i < r; ++i) {
      std::string part = (i == 0 ? "think" : " think") + std::to_string(i);
      json::object d = mlx ? MlxDelta("", part, {}) : json::object{{plan.reasoning_field, part}};
      add(ChunkJson(p, plan, Choice(std::move(d), nullptr), n++), EventKind::kDelta);
    }
  }
  if (tools) {
    for (std::size_t i = 0; i < plan.tool_names.size(); ++i) {
      const std::string args = FakeOpenAiServer::ToolArguments(static_cast<int>(i));
      if (mlx) {
        // mlx_lm.server emits each parsed call whole.
        json::array calls{json::object{
            {"function", json::object{{"name", plan.tool_names[i]}, {"arguments", args}}},
            {"type", "function"},
            {"id", "call_fake" + std::to_string(i)},
            {"index", i}}};
        add(ChunkJson(p, plan, Choice(MlxDelta("", "", std::move(calls)), nullptr), n++),
            EventKind::kDelta);
        continue;
      }
      json::array head{json::object{
          {"index", i},
          {"id", "call_fake" + std::to_string(i)},
          {"type", "function"},
          {"function", json::object{{"name", plan.tool_names[i]}, {"arguments", ""}}}}};
      add(ChunkJson(p, plan, Choice(json::object{{"tool_calls", std::move(head)}}, nullptr), n++),
          EventKind::kOther);
      for (const std::string& frag : ToolFragments(args)) {
        json::array part{
            json::object{{"index", i}, {"function", json::object{{"arguments", frag}}}}};
        add(ChunkJson(p, plan, Choice(json::object{{"tool_calls", std::move(part)}}, nullptr), n++),
            EventKind::kDelta);
      }
    }
  } else {
    for (const std::string& piece : plan.pieces) {
      json::object d = mlx ? MlxDelta(piece, "", {}) : json::object{{"content", piece}};
      add(ChunkJson(p, plan, Choice(std::move(d), nullptr), n++), EventKind::kDelta);
    }
  }
  // Finish chunk.
  {
    json::object d;
    if (mlx) {
      d = MlxDelta("", "", {});
    } else if (p == Profile::kVllm) {
      d = json::object{{"content", ""}};
    }
    json::array choices = Choice(std::move(d), json::value(plan.finish));
    if (p == Profile::kVllm || p == Profile::kSglang) {
      choices[0].as_object()["stop_reason"] = nullptr;
    }
    json::object chunk = ChunkJson(p, plan, std::move(choices), n++);
    if (p == Profile::kLlamaCpp) {
      chunk["timings"] = json::object{{"prompt_n", plan.prompt_tokens},
                                      {"prompt_ms", 1.5},
                                      {"predicted_n", plan.completion_tokens},
                                      {"predicted_ms", 10.0}};
    }
    add(chunk, EventKind::kFinish);
  }
  if (plan.include_usage) {
    json::object u{{"id", plan.id}};
    if (mlx) u["system_fingerprint"] = "fake-mlx";
    u["object"] = mlx ? "chat.completion" : "chat.completion.chunk";
    u["created"] = plan.created;
    u["model"] = plan.model;
    switch (plan.sc.usage_choices.value_or(DefaultUsageChoices(p))) {
      case UsageChoices::kEmpty:
        u["choices"] = json::array();
        break;
      case UsageChoices::kNull:
        u["choices"] = nullptr;
        break;
      case UsageChoices::kAbsent:
        break;
    }
    u["usage"] = Usage(p, plan, false);
    if (plan.obfuscation) u["obfuscation"] = "";
    add(u, EventKind::kOther);
  }
  return ev;
}

std::string Frame(const Scenario& sc, std::string_view payload) {
  return wire::SseEvent(sc, {wire::DataLine(sc, payload)});
}

std::string MidStreamError(Profile p) {
  const std::string msg =
      "The server had an error while processing your request. Sorry about that!";
  switch (p) {
    case Profile::kOpenAi:
    case Profile::kAzure:
    case Profile::kDashScope:  // vendor profiles frame their own errors (StreamScript)
    case Profile::kAnthropic:
      break;
    case Profile::kVllm:
    case Profile::kSglang:
      // [U] vLLM wraps its ErrorResponse model (int code) in an "error" key mid-stream.
      return json::serialize(json::object{{"error", json::object{{"object", "error"},
                                                                 {"message", msg},
                                                                 {"type", "InternalServerError"},
                                                                 {"param", nullptr},
                                                                 {"code", 500}}}});
    case Profile::kLlamaCpp:
      return json::serialize(json::object{
          {"error", json::object{{"code", 500}, {"message", msg}, {"type", "server_error"}}}});
    case Profile::kMlx:
      return json::serialize(json::object{{"error", msg}});
  }
  return json::serialize(json::object{
      {"error",
       json::object{
           {"message", msg}, {"type", "server_error"}, {"param", nullptr}, {"code", nullptr}}}});
}

}  // namespace

std::string OpenAiBody(Profile p, const ChatPlan& plan) {
  std::string content;
  for (const auto& piece : plan.pieces) content += piece;
  const std::string reasoning = FakeOpenAiServer::ReasoningText(plan.sc.reasoning);
  if (plan.sc.think_tags && plan.sc.reasoning > 0)
    content = "<think>" + reasoning + "</think>" + content;
  const bool tools = !plan.tool_names.empty();

  json::object message{{"role", "assistant"}};
  if (tools && p != Profile::kMlx) {
    message["content"] = nullptr;
  } else {
    message["content"] = content;
  }
  if (!plan.sc.think_tags && !plan.reasoning_field.empty() &&
      (plan.sc.reasoning > 0 || p == Profile::kMlx)) {
    message[plan.reasoning_field] = reasoning;
  }
  if (!IsLocal(p)) {
    message["refusal"] = nullptr;
    message["annotations"] = json::array();
  }
  if (tools) {
    message["tool_calls"] = ToolCallsJson(plan, false);
  } else if (p == Profile::kVllm || p == Profile::kSglang || p == Profile::kMlx) {
    message["tool_calls"] = json::array();
  }

  json::object choice{{"index", 0},
                      {"message", std::move(message)},
                      {"logprobs", nullptr},
                      {"finish_reason", plan.finish}};
  if (p == Profile::kVllm || p == Profile::kSglang) choice["stop_reason"] = nullptr;
  if (p == Profile::kAzure) choice["content_filter_results"] = AzureFilterResults();

  json::object res{{"id", plan.id}};
  if (p == Profile::kMlx) res["system_fingerprint"] = "fake-mlx";
  res["object"] = "chat.completion";
  res["created"] = plan.created;
  res["model"] = plan.model;
  res["choices"] = json::array{std::move(choice)};
  res["usage"] = Usage(p, plan, true);
  if (p == Profile::kOpenAi) res["service_tier"] = "default";
  if (p == Profile::kAzure) res["prompt_filter_results"] = AzurePromptFilterResults();
  return json::serialize(res);
}

/// The OpenAI-family stream: `data: {chunk}` events, then `data: [DONE]`.
StreamScript OpenAiStream(Profile p, const ChatPlan& plan) {
  StreamScript s;
  s.content_type = StreamContentType(p);
  for (Event& e : PlanEvents(p, plan)) s.events.push_back({Frame(plan.sc, e.bytes), e.kind});
  s.done = Frame(plan.sc, "[DONE]");
  s.error_frame = Frame(plan.sc, MidStreamError(p));
  s.garbage_frame = Frame(
      plan.sc,
      R"({"id":")" + plan.id +
          R"(","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tok)");
  return s;
}

}  // namespace meridian::fakes::wire
