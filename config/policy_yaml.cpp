#include "config/policy_yaml.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/yaml_json.h"
#include "config/yaml_reader.h"

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

using Entry = YamlEntry;

constexpr std::string_view kSecretMessage =
    "secrets must not be written in the policy file: put the secret in an environment variable "
    "and name it with credential_env";

/// Reads a policy or tests file's YAML tree into specs; the generic reading (keys, types,
/// positions, safety checks) is YamlReader's, this class adds only the policy schema.
class Parser : public YamlReader {
 public:
  using YamlReader::YamlReader;

  PolicyDocument ReadPolicy(const YAML::Node& root);
  std::vector<TestCaseSpec> ReadTestsFile(const YAML::Node& root);

 private:
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
};

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
                    {"image_data_class", Into(settings.image_data_class)},
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
                 {"max_tokens_default", Into(p.max_tokens_default)},
                 {"sim_tokens", Into(p.sim_tokens)},
                 {"sim_delay_ms", Into(p.sim_delay_ms)},
                 {"max_duration_ms", Into(p.max_duration_ms)},
                 {"responses_api", Into(p.responses_api)},
                 {"on_echo_mismatch", Into(p.on_echo_mismatch)},
             },
             [this](const Entry& e) {
               if (!IsSecretKeyName(e.name)) {
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
    ModelSpec spec{{model.name, model.key_pos}, {}, {}};
    if (model.value.IsMap()) {
      // alias: {upstream: NAME, capabilities: [...]}
      bool have_upstream = false;
      ReadFields(model.value, model.pos, "model '" + model.name + "'",
                 {
                     {"upstream", [&](const Entry& u) { have_upstream = Read(u, spec.upstream); },
                      kRequired},
                     {"capabilities", Into(spec.capabilities)},
                 });
      if (have_upstream) out.push_back(std::move(spec));
      return;
    }
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
    t.file = file();
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

}  // namespace

PolicyDocument ParsePolicyYaml(std::string_view text, const std::string& file,
                               std::vector<FileDiagnostic>& errors) {
  Parser parser(file, errors);
  PolicyDocument doc;
  parser.ReadDocument(text, "policy file",
                      [&](const YAML::Node& root) { doc = parser.ReadPolicy(root); });
  return doc;
}

std::vector<policy::TestCaseSpec> ParseTestsYaml(std::string_view text, const std::string& file,
                                                 std::vector<FileDiagnostic>& errors) {
  Parser parser(file, errors);
  std::vector<TestCaseSpec> tests;
  parser.ReadDocument(text, "tests file",
                      [&](const YAML::Node& root) { tests = parser.ReadTestsFile(root); });
  return tests;
}

}  // namespace meridian::config
