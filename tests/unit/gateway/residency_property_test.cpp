// The residency property (tests/fuzz/residency_property.h) over every string field of many
// requests: the fuzz seed corpus of the request decoder and randomly generated requests that
// use every field the decoder knows. The identifier is planted into each string field in turn,
// appended and as the whole value; it must be classified, or reach no upstream body.
#include "tests/fuzz/residency_property.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace meridian::residency_property {
namespace {

std::size_t StringCount(std::string_view body) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec) return 0;
  std::vector<json::string*> strings;
  CollectStrings(v, strings);
  return strings.size();
}

struct Counts {
  int classified = 0, not_sent = 0, skipped = 0;
};

void CheckEveryField(const std::string& body, Counts& counts) {
  const std::size_t n = StringCount(body);
  for (std::size_t pick = 0; pick < n; ++pick) {
    for (const bool replace : {false, true}) {
      switch (Check(body, pick, replace)) {
        case Outcome::kViolation:
          ADD_FAILURE() << "string field #" << pick << (replace ? " (replaced)" : " (appended)")
                        << " reaches an upstream unclassified in: " << body;
          break;
        case Outcome::kClassified:
          ++counts.classified;
          break;
        case Outcome::kNotSent:
          ++counts.not_sent;
          break;
        case Outcome::kSkipped:
          ++counts.skipped;
          break;
      }
    }
  }
}

TEST(ResidencyProperty, EveryStringFieldOfTheSeedCorpus) {
  Counts counts;
  for (const auto& entry : std::filesystem::directory_iterator(
           std::filesystem::path(MERIDIAN_SOURCE_DIR) / "tests/fuzz/corpus/openai_request")) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    CheckEveryField(ss.str(), counts);
  }
  EXPECT_GT(counts.classified, 50);
}

// A random request over every field the decoder passes on.
std::string RandomRequest(std::mt19937& rng) {
  auto word = [&] {
    static const std::vector<std::string> words = {"hello", "order", "lookup", "a b",
                                                   "",      "数据",  "x-1",    "42"};
    return words[rng() % words.size()];
  };
  json::object o{{"model", "qwen-plus"}};
  json::array messages;
  const int n = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < n; ++i) {
    switch (rng() % 5) {
      case 0:
        messages.push_back({{"role", "system"}, {"content", word()}});
        break;
      case 1:
        messages.push_back(
            {{"role", "user"},
             {"name", word()},
             {"content",
              json::array{{{"type", "text"}, {"text", word()}},
                          {{"type", "image_url"},
                           {"image_url", {{"url", "https://x/" + word()}, {"detail", "low"}}}},
                          {{"type", "text"}, {"text", word()}}}}});
        break;
      case 2:
        messages.push_back(
            {{"role", "assistant"},
             {"content", nullptr},
             {"tool_calls", json::array{{{"id", "call_" + word()},
                                         {"type", "function"},
                                         {"function",
                                          {{"name", "f"},
                                           {"arguments", "{\"q\":\"" + word() + "\",\"n\":[\"" +
                                                             word() + "\"]}"}}}}}}});
        break;
      case 3:
        messages.push_back(
            {{"role", "tool"}, {"tool_call_id", "call_" + word()}, {"content", word()}});
        break;
      default:
        messages.push_back(
            {{"role", "user"},
             {"content",
              json::array{
                  {{"type", "input_audio"}, {"input_audio", {{"data", word()}, {"format", "wav"}}}},
                  {{"type", "file"}, {"file", {{"filename", word()}, {"file_data", word()}}}}}}});
        break;
    }
  }
  o["messages"] = std::move(messages);
  if (rng() % 2) {
    o["tools"] = json::array{{{"type", "function"},
                              {"function",
                               {{"name", "f"},
                                {"description", word()},
                                {"parameters",
                                 {{"type", "object"},
                                  {"properties",
                                   {{"q",
                                     {{"type", "string"},
                                      {"description", word()},
                                      {"enum", json::array{word()}}}}}}}}}}}};
    o["tool_choice"] = rng() % 2
                           ? json::value("auto")
                           : json::value({{"type", "function"}, {"function", {{"name", "f"}}}});
  }
  if (rng() % 2) o["user"] = word();
  if (rng() % 2) o["stop"] = json::array{word().empty() ? "s" : word()};
  if (rng() % 2) {
    o["response_format"] = {
        {"type", "json_schema"},
        {"json_schema",
         {{"name", "s"}, {"schema", {{"type", "object"}, {"description", word()}}}}}};
  }
  if (rng() % 2) o["metadata"] = {{"k", word()}};
  if (rng() % 2) o["x_vendor_extension"] = {{"note", word()}, {"list", json::array{word()}}};
  if (rng() % 2) o["stream"] = true;
  if (rng() % 3 == 0) o["prediction"] = {{"type", "content"}, {"content", word()}};
  return json::serialize(o);
}

TEST(ResidencyProperty, EveryStringFieldOfRandomRequests) {
  std::mt19937 rng(12);
  Counts counts;
  for (int i = 0; i < 300; ++i) CheckEveryField(RandomRequest(rng), counts);
  EXPECT_GT(counts.classified, 1000);
  std::printf(
      "residency property: %d planted and classified, %d not sent upstream, %d skipped "
      "(the planted request was invalid)\n",
      counts.classified, counts.not_sent, counts.skipped);
}

}  // namespace
}  // namespace meridian::residency_property
