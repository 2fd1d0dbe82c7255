#include "config/policy_yaml.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/yaml_json.h"

namespace meridian::config {
namespace {

using policy::ConditionSpec;
using policy::DeclaredFlagSpec;
using policy::GroupSpec;
using policy::GuardSpec;
using policy::Located;
using policy::LocatedString;
using policy::LocationSpec;
using policy::ModelSpec;
using policy::NamedConditionSpec;
using policy::NarrowSpec;
using policy::PolicySpec;
using policy::ProviderSpec;
using policy::RouteSpec;
using policy::SourcePos;
using policy::StringList;
using policy::TestCaseSpec;
using policy::TestExpectSpec;

constexpr bool kRequired = true;

// Names under which operators habitually paste credentials. Compared after lower-casing and
// dropping '_' and '-', so API_KEY, apiKey and api-key are all caught.
constexpr std::array<std::string_view, 7> kSecretKeys = {
    "apikey", "key", "secret", "token", "password", "authorization", "bearer"};

constexpr std::string_view kSecretMessage =
    "secrets must not be written in the policy file: put the secret in an environment variable "
    "and name it with credential_env";

SourcePos ToPos(const YAML::Mark& mark) {
  // yaml-cpp marks are 0-based; a null mark (-1) has no position.
  if (mark.line < 0 || mark.column < 0) {
    return {};
  }
  return {static_cast<std::uint32_t>(mark.line) + 1, static_cast<std::uint32_t>(mark.column) + 1};
}

bool IsSecretKey(std::string_view key) {
  std::string normalized;
  for (const char c : key) {
    if (c == '_' || c == '-') {
      continue;
    }
    normalized += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return std::find(kSecretKeys.begin(), kSecretKeys.end(), normalized) != kSecretKeys.end();
}

std::string Quoted(std::string_view name) {
  return "'" + std::string(name) + "'";
}

/// One `key: value` of a mapping, with the positions errors about it point at.
struct Entry {
  YAML::Node key;
  YAML::Node value;
  std::string name;
  SourcePos key_pos;
  /// The value's position; an empty value (`id:`) has no text of its own, and yaml-cpp marks
  /// it at the next token, possibly lines further down, so it points at the key instead.
  SourcePos pos;
};

Entry MakeEntry(const YAML::Node& key, const YAML::Node& value) {
  Entry e{key, value, key.IsScalar() ? key.Scalar() : std::string(), ToPos(key.Mark()), {}};
  e.pos = value.IsNull() ? e.key_pos : ToPos(value.Mark());
  return e;
}

/// Reads one file's YAML tree into specs, collecting every error instead of stopping at the
/// first. Each mapping is read through a table of Fields, which is the single list of keys
/// that mapping accepts: it drives unknown-key errors, required-key checks and the reading.
class Parser {
 public:
  Parser(const std::string& file, std::vector<FileDiagnostic>& errors)
      : file_(file), errors_(errors) {}

  /// The document's root, or nothing (with errors reported) when it cannot be read.
  std::optional<YAML::Node> Load(std::string_view text, std::string_view file_kind);

  PolicyDocument ReadPolicy(const YAML::Node& root);
  std::vector<TestCaseSpec> ReadTestsFile(const YAML::Node& root);

  void Error(SourcePos pos, std::string message) {
    errors_.push_back({file_, pos, std::move(message)});
  }

 private:
  using Handler = std::function<void(const Entry&)>;

  struct Field {
    std::string_view key;
    Handler read;
    bool required = false;
  };
  using Fields = std::vector<Field>;

  static std::string KeyList(const Fields& fields) {
    std::string keys;
    for (const Field& f : fields) {
      keys += (keys.empty() ? "" : ", ") + std::string(f.key);
    }
    return keys;
  }

  /// Returns true when it reported the key itself (instead of the generic unknown-key error).
  using UnknownKeyHook = std::function<bool(const Entry&)>;

  // --- Generic machinery ---

  bool CheckTree(const YAML::Node& node, int depth, std::size_t& count);
  void ForEachEntry(const YAML::Node& map, const std::function<void(const Entry&)>& fn);
  void ReadFields(const YAML::Node& map, SourcePos pos, std::string_view what, const Fields& fields,
                  const UnknownKeyHook& unknown = {});
  bool ExpectMapping(const Entry& e);
  void ReadSubFields(const Entry& e, std::string_view what, const Fields& fields);
  void ForEachItem(const Entry& e, const std::function<void(const YAML::Node&, SourcePos)>& fn);
  bool ExpectMappingItem(const Entry& list, const YAML::Node& item, SourcePos pos);

  bool Read(const Entry& e, LocatedString& out);
  bool Read(const Entry& e, std::optional<LocatedString>& out);
  bool Read(const Entry& e, std::optional<Located<bool>>& out);
  bool Read(const Entry& e, std::optional<Located<std::int64_t>>& out);
  bool Read(const Entry& e, StringList& out);
  bool Read(const Entry& e, std::optional<StringList>& out);

  template <class T>
  Handler Into(T& out) {
    return [this, &out](const Entry& e) { Read(e, out); };
  }

  /// A top-level section left empty (all its items commented out) is an empty section.
  static Handler Section(Handler read) {
    return [read = std::move(read)](const Entry& e) {
      if (!e.value.IsNull()) {
        read(e);
      }
    };
  }

  // --- The policy schema ---

  void ReadSettings(const Entry& e, policy::SettingsSpec& settings);
  void ReadGroups(const Entry& e, std::vector<GroupSpec>& out);
  void ReadTenantFlags(const Entry& e, std::vector<DeclaredFlagSpec>& out);
  void ReadNamedConditions(const Entry& e, std::vector<NamedConditionSpec>& out);
  ConditionSpec ReadCondition(const YAML::Node& node, SourcePos pos);
  void ReadConditions(const Entry& e, std::vector<ConditionSpec>& out);
  Handler FlagValues(std::vector<std::pair<LocatedString, bool>>& out);
  void ReadProvider(const YAML::Node& node, SourcePos pos, std::vector<ProviderSpec>& out);
  void ReadModels(const Entry& e, std::vector<ModelSpec>& out);
  std::optional<LocationSpec> ReadLocation(const Entry& e);
  void ReadGuard(const YAML::Node& node, SourcePos pos, std::vector<GuardSpec>& out);
  std::optional<NarrowSpec> ReadNarrow(const Entry& e);
  void ReadRoute(const YAML::Node& node, SourcePos pos, std::vector<RouteSpec>& out);
  void ReadTests(const Entry& e, std::vector<TestCaseSpec>& out);
  TestExpectSpec ReadExpect(const Entry& e);
  void CheckRequestKeys(const YAML::Node& node);

  bool CheckScalar(const YAML::Node& node);

  const std::string& file_;
  std::vector<FileDiagnostic>& errors_;
  std::string_view text_;  ///< the document being loaded (for checks yaml-cpp skips)
};

std::optional<YAML::Node> Parser::Load(std::string_view text, std::string_view file_kind) {
  text_ = text;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file", which tells the operator nothing.
    Error(ToPos(e.mark), "invalid YAML: values are nested too deeply");
    return std::nullopt;
  } catch (const YAML::ParserException& e) {
    Error(ToPos(e.mark), "invalid YAML: " + e.msg);
    return std::nullopt;
  }
  const std::string kind(file_kind);
  if (docs.empty() || docs.front().IsNull()) {
    Error({}, "the " + kind + " is empty");
    return std::nullopt;
  }
  for (std::size_t i = 1; i < docs.size(); ++i) {
    // A trailing `---` yields an empty document, which is harmless.
    if (!docs[i].IsNull()) {
      Error(ToPos(docs[i].Mark()), "the " + kind +
                                       " must hold a single YAML document, but a second one "
                                       "starts here (after '---')");
      return std::nullopt;
    }
  }
  const YAML::Node& root = docs.front();
  if (!root.IsMap()) {
    Error(ToPos(root.Mark()), "expected a mapping at the top level");
    return std::nullopt;
  }
  std::size_t count = 0;
  if (!CheckTree(root, 0, count)) {
    return std::nullopt;
  }
  return root;
}

// Bounds every later walk (see kMaxYamlDepth): with this checked, reading conditions and
// converting requests cannot loop on a self-referencing alias or expand without limit.
bool Parser::CheckTree(const YAML::Node& node, int depth, std::size_t& count) {
  if (depth > kMaxYamlDepth) {
    Error(ToPos(node.Mark()), "values are nested more than " + std::to_string(kMaxYamlDepth) +
                                  " levels deep (does an alias refer to a node containing it?)");
    return false;
  }
  if (++count > kMaxYamlNodes) {
    Error(ToPos(node.Mark()), "the file expands to more than " + std::to_string(kMaxYamlNodes) +
                                  " values (check aliases that repeat large nodes)");
    return false;
  }
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!CheckTree(it->first, depth + 1, count) || !CheckTree(it->second, depth + 1, count)) {
        return false;
      }
    }
  } else if (node.IsSequence()) {
    for (const YAML::Node& item : node) {
      if (!CheckTree(item, depth + 1, count)) {
        return false;
      }
    }
  } else if (node.IsScalar()) {
    return CheckScalar(node);
  }
  return true;
}

// yaml-cpp 0.7 accepts two things the YAML spec rejects, and both silently change a policy:
// an unclosed quote swallows the rest of the file into one string (dropping every rule after
// it), and `!= none` unquoted is read as a tag `!=` on the value `none`.
bool Parser::CheckScalar(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  if (tag != "?" && tag != "!" && tag.rfind("tag:yaml.org,2002:", 0) != 0) {
    Error(ToPos(node.Mark()),
          "unexpected YAML tag '" + tag + "': quote values that start with '!' (e.g. \"!= none\")");
    return false;
  }
  const YAML::Mark mark = node.Mark();
  if (tag != "!" || mark.pos < 0 || static_cast<std::size_t>(mark.pos) >= text_.size()) {
    return true;
  }
  const auto start = static_cast<std::size_t>(mark.pos);
  const char quote = text_[start];
  if (quote != '"' && quote != '\'') return true;
  const std::size_t line_start = text_.rfind('\n', start) + 1;  // npos + 1 == 0
  const std::size_t indent = text_.find_first_not_of(' ', line_start) - line_start;
  for (std::size_t i = start + 1; i < text_.size(); ++i) {
    const char c = text_[i];
    if (quote == '"' && c == '\\') {
      ++i;  // escaped character
    } else if (c == quote) {
      if (quote == '\'' && i + 1 < text_.size() && text_[i + 1] == '\'') {
        ++i;  // '' inside single quotes
        continue;
      }
      return true;
    } else if (c == '\n') {
      // A continuation line of a quoted string must be indented deeper than the line the
      // string started on; one that is not is the next YAML entry after a missing quote.
      const std::size_t next = text_.find_first_not_of(" \r", i + 1);
      if (next != std::string_view::npos && text_[next] != '\n' && next - (i + 1) <= indent) {
        break;
      }
    }
  }
  Error(ToPos(mark),
        std::string("quoted string is not closed: a closing ") + quote + " is missing");
  return false;
}

// yaml-cpp keeps every occurrence of a repeated key; the first one counts, later ones are
// reported.
void Parser::ForEachEntry(const YAML::Node& map, const std::function<void(const Entry&)>& fn) {
  std::map<std::string, std::uint32_t, std::less<>> first_line;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const Entry e = MakeEntry(it->first, it->second);
    if (!e.key.IsScalar()) {
      Error(e.key_pos, "a key must be a name, not a list, mapping or empty value");
      continue;
    }
    if (e.name == "<<" && e.key.Tag() == "?") {
      Error(e.key_pos, "YAML merge keys ('<<') are not supported: write the keys out");
      continue;
    }
    if (const auto seen = first_line.find(e.name); seen != first_line.end()) {
      Error(e.key_pos, "duplicate key " + Quoted(e.name) + " (first written at line " +
                           std::to_string(seen->second) + ")");
      continue;
    }
    first_line.emplace(e.name, e.key_pos.line);
    fn(e);
  }
}

void Parser::ReadFields(const YAML::Node& map, SourcePos pos, std::string_view what,
                        const Fields& fields, const UnknownKeyHook& unknown) {
  std::vector<bool> present(fields.size(), false);
  ForEachEntry(map, [&](const Entry& e) {
    const auto field =
        std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == e.name; });
    if (field == fields.end()) {
      if (unknown && unknown(e)) {
        return;
      }
      Error(e.key_pos, "unknown key " + Quoted(e.name) + " in " + std::string(what) +
                           " (expected one of: " + KeyList(fields) + ")");
      return;
    }
    present[static_cast<std::size_t>(field - fields.begin())] = true;
    field->read(e);
  });
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].required && !present[i]) {
      Error(pos, std::string(what) + " is missing required key " + Quoted(fields[i].key));
    }
  }
}

bool Parser::ExpectMapping(const Entry& e) {
  if (!e.value.IsMap()) {
    Error(e.pos, Quoted(e.name) + " must be a mapping");
    return false;
  }
  return true;
}

void Parser::ReadSubFields(const Entry& e, std::string_view what, const Fields& fields) {
  if (ExpectMapping(e)) {
    ReadFields(e.value, e.pos, what, fields);
  }
}

void Parser::ForEachItem(const Entry& e,
                         const std::function<void(const YAML::Node&, SourcePos)>& fn) {
  if (!e.value.IsSequence()) {
    Error(e.pos, Quoted(e.name) + " must be a list");
    return;
  }
  for (const YAML::Node& item : e.value) {
    fn(item, ToPos(item.Mark()));
  }
}

bool Parser::ExpectMappingItem(const Entry& list, const YAML::Node& item, SourcePos pos) {
  if (!item.IsMap()) {
    Error(pos, "each item of " + Quoted(list.name) + " must be a mapping");
    return false;
  }
  return true;
}

// String fields take any scalar as written, so `api_version: 2024-10-21` and
// `meter: {sensitive: 10000}` read as text without quoting.
bool Parser::Read(const Entry& e, LocatedString& out) {
  if (!e.value.IsScalar()) {
    Error(e.pos, Quoted(e.name) + " must be a string");
    return false;
  }
  out = {e.value.Scalar(), e.pos};
  return true;
}

bool Parser::Read(const Entry& e, std::optional<LocatedString>& out) {
  LocatedString value;
  if (!Read(e, value)) {
    return false;
  }
  out = std::move(value);
  return true;
}

// Booleans and integers follow YamlToJson's typing, so a policy value and a test request
// value written the same way mean the same thing (`"true"` is text in both).
bool Parser::Read(const Entry& e, std::optional<Located<bool>>& out) {
  const boost::json::value v = e.value.IsScalar() ? YamlToJson(e.value) : nullptr;
  if (!v.is_bool()) {
    Error(e.pos, Quoted(e.name) + " must be true or false");
    return false;
  }
  out = Located<bool>{v.get_bool(), e.pos};
  return true;
}

bool Parser::Read(const Entry& e, std::optional<Located<std::int64_t>>& out) {
  const boost::json::value v = e.value.IsScalar() ? YamlToJson(e.value) : nullptr;
  if (!v.is_int64()) {
    Error(e.pos, Quoted(e.name) + " must be an integer");
    return false;
  }
  out = Located<std::int64_t>{v.get_int64(), e.pos};
  return true;
}

// A list of names, or a single name standing for a one-item list.
bool Parser::Read(const Entry& e, StringList& out) {
  const std::string message = Quoted(e.name) + " must be a list of strings";
  if (e.value.IsScalar()) {
    out.push_back({e.value.Scalar(), e.pos});
    return true;
  }
  if (!e.value.IsSequence()) {
    Error(e.pos, message);
    return false;
  }
  bool ok = true;
  for (const YAML::Node& item : e.value) {
    if (!item.IsScalar()) {
      Error(ToPos(item.Mark()), message);
      ok = false;
      continue;
    }
    out.push_back({item.Scalar(), ToPos(item.Mark())});
  }
  return ok;
}

bool Parser::Read(const Entry& e, std::optional<StringList>& out) {
  StringList list;
  if (!Read(e, list)) {
    return false;
  }
  out = std::move(list);
  return true;
}

PolicyDocument Parser::ReadPolicy(const YAML::Node& root) {
  PolicyDocument doc;
  PolicySpec& spec = doc.spec;
  spec.pos = ToPos(root.Mark());
  const auto list_of = [this](auto read_item, auto& out) {
    return Section([this, read_item, &out](const Entry& e) {
      ForEachItem(e, [this, &e, read_item, &out](const YAML::Node& item, SourcePos pos) {
        if (ExpectMappingItem(e, item, pos)) {
          (this->*read_item)(item, pos, out);
        }
      });
    });
  };
  ReadFields(
      root, spec.pos, "the policy file",
      {
          {"version", Into(spec.version)},
          {"settings", Section([&](const Entry& e) { ReadSettings(e, spec.settings); })},
          {"region_groups", Section([&](const Entry& e) { ReadGroups(e, spec.region_groups); })},
          {"city_groups", Section([&](const Entry& e) { ReadGroups(e, spec.city_groups); })},
          {"tenant_flags", Section([&](const Entry& e) { ReadTenantFlags(e, spec.tenant_flags); })},
          {"conditions", Section([&](const Entry& e) { ReadNamedConditions(e, spec.conditions); })},
          {"providers", list_of(&Parser::ReadProvider, spec.providers)},
          {"guards", list_of(&Parser::ReadGuard, spec.guards)},
          {"routes", list_of(&Parser::ReadRoute, spec.routes)},
          {"tests", Section([&](const Entry& e) { ReadTests(e, doc.tests); })},
      });
  return doc;
}

std::vector<TestCaseSpec> Parser::ReadTestsFile(const YAML::Node& root) {
  std::vector<TestCaseSpec> tests;
  ReadFields(root, ToPos(root.Mark()), "the tests file",
             {{"tests", Section([&](const Entry& e) { ReadTests(e, tests); }), kRequired}});
  return tests;
}

void Parser::ReadSettings(const Entry& e, policy::SettingsSpec& settings) {
  ReadSubFields(e, "settings",
                {
                    {"unknown_region_as", Into(settings.unknown_region_as)},
                    {"default_data_class", Into(settings.default_data_class)},
                    {"region_restrictiveness", Into(settings.region_restrictiveness)},
                });
}

void Parser::ReadGroups(const Entry& e, std::vector<GroupSpec>& out) {
  if (!ExpectMapping(e)) {
    return;
  }
  ForEachEntry(e.value, [&](const Entry& group) {
    GroupSpec spec{{group.name, group.key_pos}, {}};
    if (Read(group, spec.members)) {
      out.push_back(std::move(spec));
    }
  });
}

void Parser::ReadTenantFlags(const Entry& e, std::vector<DeclaredFlagSpec>& out) {
  ForEachItem(e, [&](const YAML::Node& item, SourcePos pos) {
    DeclaredFlagSpec flag;
    if (item.IsScalar()) {
      flag.name = {item.Scalar(), pos};
    } else if (item.IsMap()) {
      ReadFields(item, pos, "tenant flag",
                 {{"name", Into(flag.name), kRequired}, {"description", Into(flag.description)}});
    } else {
      Error(pos,
            "each item of 'tenant_flags' must be a flag name or a mapping with name and "
            "description");
      return;
    }
    out.push_back(std::move(flag));
  });
}

void Parser::ReadNamedConditions(const Entry& e, std::vector<NamedConditionSpec>& out) {
  if (!ExpectMapping(e)) {
    return;
  }
  ForEachEntry(e.value, [&](const Entry& named) {
    out.push_back({{named.name, named.key_pos}, ReadCondition(named.value, named.pos)});
  });
}

ConditionSpec Parser::ReadCondition(const YAML::Node& node, SourcePos pos) {
  ConditionSpec c;
  c.pos = pos;
  if (!node.IsMap()) {
    Error(pos, "a condition must be a mapping, such as {region: CN} or {ref: NAME}");
    return c;
  }
  ReadFields(node, pos, "condition",
             {
                 {"region", Into(c.region)},
                 {"city", Into(c.city)},
                 {"data_class", Into(c.data_class)},
                 {"consent", FlagValues(c.consent)},
                 {"tenant_flags", FlagValues(c.tenant_flags)},
                 {"mechanisms",
                  [&](const Entry& e) {
                    ReadSubFields(e, "mechanisms",
                                  {
                                      {"any_of", Into(c.mechanisms_any_of)},
                                      {"all_of", Into(c.mechanisms_all_of)},
                                      {"none_of", Into(c.mechanisms_none_of)},
                                  });
                  }},
                 {"model", Into(c.model)},
                 {"tenant", Into(c.tenant)},
                 {"meter",
                  [&](const Entry& e) {
                    ReadSubFields(e, "meter",
                                  {
                                      {"non_sensitive", Into(c.meter_non_sensitive)},
                                      {"sensitive", Into(c.meter_sensitive)},
                                  });
                  }},
                 {"requires", Into(c.requires_capability)},
                 {"all", [&](const Entry& e) { ReadConditions(e, c.all); }},
                 {"any",
                  [&](const Entry& e) {
                    c.has_any = true;
                    ReadConditions(e, c.any);
                  }},
                 {"not", [&](const Entry& e) { c.not_.push_back(ReadCondition(e.value, e.pos)); }},
                 {"ref", Into(c.ref)},
             });
  return c;
}

void Parser::ReadConditions(const Entry& e, std::vector<ConditionSpec>& out) {
  ForEachItem(
      e, [&](const YAML::Node& item, SourcePos pos) { out.push_back(ReadCondition(item, pos)); });
}

// `consent:` and `tenant_flags:` of a condition: name → required value.
Parser::Handler Parser::FlagValues(std::vector<std::pair<LocatedString, bool>>& out) {
  return [this, &out](const Entry& e) {
    if (!ExpectMapping(e)) {
      return;
    }
    ForEachEntry(e.value, [&](const Entry& flag) {
      std::optional<Located<bool>> value;
      if (Read(flag, value)) {
        out.emplace_back(LocatedString{flag.name, flag.key_pos}, value->value);
      }
    });
  };
}

void Parser::ReadProvider(const YAML::Node& node, SourcePos pos, std::vector<ProviderSpec>& out) {
  ProviderSpec p;
  p.pos = pos;
  const auto location = [this](std::optional<LocationSpec>& loc) {
    return [this, &loc](const Entry& e) { loc = ReadLocation(e); };
  };
  ReadFields(node, pos, "provider",
             {
                 {"id", Into(p.id), kRequired},
                 {"kind", Into(p.kind), kRequired},
                 {"endpoint", Into(p.endpoint)},
                 {"credential_env", Into(p.credential_env)},
                 {"description", Into(p.description)},
                 {"models", [&](const Entry& e) { ReadModels(e, p.models); }},
                 {"capabilities", Into(p.capabilities)},
                 {"processing", location(p.processing)},
                 {"storage", location(p.storage)},
                 {"on_prem", Into(p.on_prem)},
                 {"cn_filing", Into(p.cn_filing)},
                 {"cn_filing_number", Into(p.cn_filing_number)},
                 {"retention_days", Into(p.retention_days)},
                 {"zdr", Into(p.zdr)},
                 {"trains_on_data", Into(p.trains_on_data)},
                 {"eu_transfer_basis", Into(p.eu_transfer_basis)},
                 {"operator_jurisdiction", Into(p.operator_jurisdiction)},
                 {"api_version", Into(p.api_version)},
                 {"dashscope_region", Into(p.dashscope_region)},
                 {"anthropic_version", Into(p.anthropic_version)},
                 {"sim_tokens", Into(p.sim_tokens)},
                 {"sim_delay_ms", Into(p.sim_delay_ms)},
             },
             [this](const Entry& e) {
               if (!IsSecretKey(e.name)) {
                 return false;
               }
               Error(e.key_pos, std::string(kSecretMessage));
               return true;
             });
  out.push_back(std::move(p));
}

void Parser::ReadModels(const Entry& e, std::vector<ModelSpec>& out) {
  if (!ExpectMapping(e)) {
    return;
  }
  ForEachEntry(e.value, [&](const Entry& model) {
    ModelSpec spec{{model.name, model.key_pos}, {}};
    if (Read(model, spec.upstream)) {
      out.push_back(std::move(spec));
    }
  });
}

std::optional<LocationSpec> Parser::ReadLocation(const Entry& e) {
  LocationSpec loc;
  loc.pos = e.pos;
  const YAML::Node& v = e.value;
  if (v.IsScalar() && v.Scalar() == "anywhere") {
    loc.anywhere = true;
    return loc;
  }
  if (v.IsSequence()) {
    return Read(e, loc.items) ? std::optional(std::move(loc)) : std::nullopt;
  }
  if (v.IsMap() && v.size() == 1) {
    const auto it = v.begin();
    if (it->first.IsScalar() && it->first.Scalar() == "anywhere_except") {
      loc.anywhere = true;
      return Read(MakeEntry(it->first, it->second), loc.items) ? std::optional(std::move(loc))
                                                               : std::nullopt;
    }
  }
  Error(e.pos, Quoted(e.name) +
                   " must be a list of region codes, 'anywhere', or {anywhere_except: [...]}");
  return std::nullopt;
}

void Parser::ReadGuard(const YAML::Node& node, SourcePos pos, std::vector<GuardSpec>& out) {
  GuardSpec g;
  g.pos = pos;
  int effects = 0;
  ReadFields(node, pos, "guard",
             {
                 {"id", Into(g.id), kRequired},
                 {"description", Into(g.description)},
                 {"when", [&](const Entry& e) { g.when = ReadCondition(e.value, e.pos); }},
                 {"narrow",
                  [&](const Entry& e) {
                    ++effects;
                    g.narrow = ReadNarrow(e);
                  }},
                 {"deny",
                  [&](const Entry& e) {
                    ++effects;
                    Read(e, g.deny);
                  }},
             });
  if (effects != 1) {
    const std::string name = g.id.value.empty() ? "guard" : "guard " + Quoted(g.id.value);
    Error(pos, name + " needs exactly one effect: narrow or deny");
  }
  out.push_back(std::move(g));
}

std::optional<NarrowSpec> Parser::ReadNarrow(const Entry& e) {
  NarrowSpec n;
  n.pos = e.pos;
  const Fields fields = {
      {"providers", Into(n.providers)},
      {"processing_within", Into(n.processing_within)},
      {"processing_excludes", Into(n.processing_excludes)},
      {"storage_within", Into(n.storage_within)},
      {"cn_filing", Into(n.cn_filing)},
      {"eu_transfer_basis", Into(n.eu_transfer_basis)},
      {"zdr", Into(n.zdr)},
      {"on_prem", Into(n.on_prem)},
      {"trains_on_data", Into(n.trains_on_data)},
      {"max_retention_days", Into(n.max_retention_days)},
  };
  if (e.value.IsNull() || (e.value.IsMap() && e.value.size() == 0)) {
    Error(e.pos, "narrow has no requirement (write at least one of: " + KeyList(fields) + ")");
    return std::nullopt;
  }
  if (!ExpectMapping(e)) {
    return std::nullopt;
  }
  ReadFields(e.value, e.pos, "narrow", fields);
  return n;
}

void Parser::ReadRoute(const YAML::Node& node, SourcePos pos, std::vector<RouteSpec>& out) {
  RouteSpec r;
  r.pos = pos;
  ReadFields(node, pos, "route",
             {
                 {"id", Into(r.id), kRequired},
                 {"description", Into(r.description)},
                 {"when", [&](const Entry& e) { r.when = ReadCondition(e.value, e.pos); }},
                 {"allow", Into(r.allow), kRequired},
                 {"prefer", Into(r.prefer)},
             });
  out.push_back(std::move(r));
}

void Parser::ReadTests(const Entry& e, std::vector<TestCaseSpec>& out) {
  ForEachItem(e, [&](const YAML::Node& item, SourcePos pos) {
    if (!ExpectMappingItem(e, item, pos)) {
      return;
    }
    TestCaseSpec t;
    t.pos = pos;
    t.file = file_;
    ReadFields(
        item, pos, "test",
        {
            {"name", Into(t.name), kRequired},
            {"request",
             [&](const Entry& request) {
               t.request_pos = request.pos;
               if (ExpectMapping(request)) {
                 CheckRequestKeys(request.value);
                 t.request = YamlToJson(request.value);
               }
             },
             kRequired},
            {"expect", [&](const Entry& expect) { t.expect = ReadExpect(expect); }, kRequired},
        });
    out.push_back(std::move(t));
  });
}

TestExpectSpec Parser::ReadExpect(const Entry& e) {
  TestExpectSpec x;
  x.pos = e.pos;
  ReadSubFields(e, "expect",
                {
                    {"decision", Into(x.decision)},
                    {"provider", Into(x.provider)},
                    {"rule", Into(x.rule)},
                    {"guards", Into(x.guards)},
                    {"reason", Into(x.reason)},
                    {"candidates", Into(x.candidates)},
                });
  return x;
}

// The request is free-form JSON, checked by the policy engine; here only what JSON cannot
// express is reported (repeated or composite keys), since YamlToJson would drop it silently.
void Parser::CheckRequestKeys(const YAML::Node& node) {
  if (node.IsMap()) {
    ForEachEntry(node, [&](const Entry& e) { CheckRequestKeys(e.value); });
  } else if (node.IsSequence()) {
    for (const YAML::Node& item : node) {
      CheckRequestKeys(item);
    }
  }
}

// Errors come from several passes (keys, then required keys, then effects); sorting them by
// position makes the report read top to bottom like the file.
void SortByPosition(std::vector<FileDiagnostic>& errors, std::size_t first) {
  std::stable_sort(errors.begin() + static_cast<std::ptrdiff_t>(first), errors.end(),
                   [](const FileDiagnostic& a, const FileDiagnostic& b) {
                     return std::pair(a.pos.line, a.pos.column) <
                            std::pair(b.pos.line, b.pos.column);
                   });
}

// yaml-cpp reports misuse by throwing; nothing may escape the loader, so any exception that
// gets this far is reported as an error of the file.
template <class Result, class Read>
Result Guarded(std::string_view text, const std::string& file, std::string_view file_kind,
               std::vector<FileDiagnostic>& errors, Read read) {
  const std::size_t first = errors.size();
  Parser parser(file, errors);
  Result result{};
  try {
    if (const std::optional<YAML::Node> root = parser.Load(text, file_kind)) {
      result = read(parser, *root);
    }
  } catch (const std::exception& e) {
    parser.Error({}, std::string("internal error while reading the file: ") + e.what());
  } catch (...) {
    parser.Error({}, "internal error while reading the file");
  }
  SortByPosition(errors, first);
  return result;
}

}  // namespace

std::string FormatDiagnostic(const FileDiagnostic& d) {
  if (d.pos.line == 0) {
    return d.file + ": " + d.message;
  }
  return d.file + ":" + std::to_string(d.pos.line) + ":" + std::to_string(d.pos.column) + ": " +
         d.message;
}

PolicyDocument ParsePolicyYaml(std::string_view text, const std::string& file,
                               std::vector<FileDiagnostic>& errors) {
  return Guarded<PolicyDocument>(
      text, file, "policy file", errors,
      [](Parser& parser, const YAML::Node& root) { return parser.ReadPolicy(root); });
}

std::vector<policy::TestCaseSpec> ParseTestsYaml(std::string_view text, const std::string& file,
                                                 std::vector<FileDiagnostic>& errors) {
  return Guarded<std::vector<TestCaseSpec>>(
      text, file, "tests file", errors,
      [](Parser& parser, const YAML::Node& root) { return parser.ReadTestsFile(root); });
}

}  // namespace meridian::config
