#include "config/yaml_json.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace meridian::config {
namespace {

namespace json = boost::json;

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

std::size_t CountDigits(std::string_view s, std::size_t from) {
  std::size_t n = 0;
  while (from + n < s.size() && IsDigit(s[from + n])) {
    ++n;
  }
  return n;
}

template <class T>
std::optional<T> FromChars(std::string_view s, int base) {
  T value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return value;
}

std::optional<double> ParseDouble(std::string_view s) {
  // from_chars takes no leading '+', which YAML allows.
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  // Out of range (1e999) has no JSON form: the caller keeps the text.
  if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return value;
}

// [-+]?[0-9]+ as int64; a value beyond int64 still is a number, so it becomes a double.
std::optional<json::value> ParseDecimalInteger(std::string_view s) {
  const std::size_t sign = (!s.empty() && (s.front() == '+' || s.front() == '-')) ? 1 : 0;
  if (s.size() == sign || CountDigits(s, sign) != s.size() - sign) {
    return std::nullopt;
  }
  const std::string_view digits = s.front() == '+' ? s.substr(1) : s;
  if (auto v = FromChars<std::int64_t>(digits, 10)) {
    return json::value(*v);
  }
  if (auto d = ParseDouble(s)) {
    return json::value(*d);
  }
  return std::nullopt;
}

// 0x[0-9a-fA-F]+ and 0o[0-7]+ (unsigned in the core schema).
std::optional<json::value> ParsePrefixedInteger(std::string_view s) {
  int base = 0;
  if (s.starts_with("0x")) {
    base = 16;
  } else if (s.starts_with("0o")) {
    base = 8;
  } else {
    return std::nullopt;
  }
  s.remove_prefix(2);
  // from_chars would accept a '-' here; the core schema does not.
  if (s.empty() || s.front() == '-') {
    return std::nullopt;
  }
  if (auto v = FromChars<std::int64_t>(s, base)) {
    return json::value(*v);
  }
  return std::nullopt;
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? with a '.' or an exponent.
std::optional<json::value> ParseDecimal(std::string_view s) {
  std::size_t i = (!s.empty() && (s.front() == '+' || s.front() == '-')) ? 1 : 0;
  const std::size_t int_digits = CountDigits(s, i);
  i += int_digits;
  bool has_fraction = false;
  std::size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    has_fraction = true;
    frac_digits = CountDigits(s, i + 1);
    i += 1 + frac_digits;
  }
  if (int_digits + frac_digits == 0) {
    return std::nullopt;
  }
  bool has_exponent = false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      ++i;
    }
    const std::size_t exp_digits = CountDigits(s, i);
    if (exp_digits == 0) {
      return std::nullopt;
    }
    i += exp_digits;
    has_exponent = true;
  }
  if (i != s.size() || (!has_fraction && !has_exponent)) {
    return std::nullopt;
  }
  if (auto d = ParseDouble(s)) {
    return json::value(*d);
  }
  return std::nullopt;
}

json::value PlainScalarToJson(const std::string& text) {
  if (text == "true" || text == "True" || text == "TRUE") {
    return json::value(true);
  }
  if (text == "false" || text == "False" || text == "FALSE") {
    return json::value(false);
  }
  // yaml-cpp already turns these into null nodes; kept so the rule reads in one place.
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return json::value(nullptr);
  }
  if (auto v = ParseDecimalInteger(text)) {
    return *v;
  }
  if (auto v = ParsePrefixedInteger(text)) {
    return *v;
  }
  if (auto v = ParseDecimal(text)) {
    return *v;
  }
  return json::value(json::string(text));
}

std::string KeyText(const YAML::Node& key) {
  if (key.IsScalar()) {
    return key.Scalar();
  }
  if (key.IsNull()) {
    return "null";
  }
  // JSON keys are text; a composite key (rare, reported by the policy loader) keeps its YAML.
  return YAML::Dump(key);
}

class Converter {
 public:
  json::value Convert(const YAML::Node& node, int depth) {
    if (depth > kMaxYamlDepth || nodes_ >= kMaxYamlNodes) {
      return nullptr;
    }
    ++nodes_;
    switch (node.Type()) {
      case YAML::NodeType::Scalar:
        // "?" is yaml-cpp's tag for a plain scalar; quoted ("!") and tagged scalars are text.
        if (node.Tag() == "?") {
          return PlainScalarToJson(node.Scalar());
        }
        return json::value(json::string(node.Scalar()));
      case YAML::NodeType::Sequence: {
        json::array array;
        array.reserve(node.size());
        for (const YAML::Node& item : node) {
          array.push_back(Convert(item, depth + 1));
        }
        return array;
      }
      case YAML::NodeType::Map: {
        json::object object;
        for (auto it = node.begin(); it != node.end(); ++it) {
          // The first occurrence of a duplicated key wins, as in the policy loader.
          const std::string key = KeyText(it->first);
          if (!object.contains(key)) {
            object.emplace(key, Convert(it->second, depth + 1));
          }
        }
        return object;
      }
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        break;
    }
    return nullptr;
  }

 private:
  std::size_t nodes_ = 0;
};

}  // namespace

boost::json::value YamlToJson(const YAML::Node& node) {
  return Converter().Convert(node, 0);
}

}  // namespace meridian::config
