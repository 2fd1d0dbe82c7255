#include "policy/compile.h"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <map>
#include <set>
#include <tuple>

#include "policy/env_name.h"
#include "policy/suggest.h"

namespace meridian::policy {
namespace {

namespace json = boost::json;

bool IsLowerName(std::string_view s) {
  if (s.empty() || !(std::islower(static_cast<unsigned char>(s[0])) != 0)) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) != 0 ||
           std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
  });
}

template <std::size_t N>
std::string JoinNames(const std::array<std::string_view, N>& names) {
  std::string out;
  for (auto n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

/// Parses "<op> <rest>" where op is one of == != < <= > >= (default ==).
std::pair<CompareOp, std::string_view> SplitComparison(std::string_view text) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  static constexpr std::pair<std::string_view, CompareOp> kOps[] = {
      {">=", CompareOp::kGe}, {"<=", CompareOp::kLe}, {"==", CompareOp::kEq},
      {"!=", CompareOp::kNe}, {">", CompareOp::kGt},  {"<", CompareOp::kLt}};
  for (const auto& [spelling, op] : kOps) {
    if (text.starts_with(spelling)) return {op, trim(text.substr(spelling.size()))};
  }
  return {CompareOp::kEq, text};
}

std::string SetText(const std::vector<std::string>& names) {
  std::string out = "{";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i != 0) out += ", ";
    out += names[i];
  }
  return out + "}";
}

std::vector<std::string> Values(const StringList& list) {
  std::vector<std::string> out;
  out.reserve(list.size());
  for (const auto& s : list) out.push_back(s.value);
  return out;
}

class Compiler {
 public:
  explicit Compiler(Diagnostics& errors) : errors_(errors) {}

  std::shared_ptr<Snapshot> Run(const PolicySpec& spec) {
    auto snap = std::make_shared<Snapshot>();
    s_ = snap.get();
    if (spec.version && spec.version->value != 1) {
      Error(spec.version->pos, "unsupported policy version " + std::to_string(spec.version->value) +
                                   " (this Meridian reads 1)");
    }
    CompileRegionGroups(spec.region_groups);
    CompileSettings(spec.settings);
    CompileCityGroups(spec.city_groups);
    CompileFlags(spec.tenant_flags);
    for (const auto& c : spec.conditions) {
      if (!named_conditions_.emplace(c.name.value, &c.condition).second) {
        Error(c.name.pos, "duplicate condition name '" + c.name.value + "'");
      }
    }
    CompileProviders(spec.providers);
    CompileGuards(spec.guards);
    CompileRoutes(spec.routes);
    // Named conditions that no guard or route uses still have to be valid.
    for (const auto& c : spec.conditions) CompileNamed(c.name.value, c.name.pos);
    return snap;
  }

 private:
  void Error(SourcePos pos, std::string message) { errors_.push_back({pos, std::move(message)}); }

  // ---- names and sets -------------------------------------------------------------------

  std::optional<RegionSet> ResolveRegions(const StringList& items, std::string_view what) {
    RegionSet set;
    bool ok = true;
    for (const auto& item : items) {
      if (auto code = RegionCode::Parse(item.value)) {
        set.set(code->index());
      } else if (auto g = region_groups_.find(item.value); g != region_groups_.end()) {
        set |= g->second;
      } else if (item.value == "unknown") {
        Error(item.pos, std::string(what) +
                            ": 'unknown' never reaches a condition: settings.unknown_region_as "
                            "decides which region an unknown one is treated as");
        ok = false;
      } else {
        const std::string hint = RegionHint(item.value);
        Error(item.pos, std::string(what) + ": unknown region code or region group '" + item.value +
                            "'" +
                            (hint.empty() ? " (codes are ISO 3166-1 alpha-2 such as CN, HK, MO, "
                                            "TW, or EU; groups are declared under region_groups)"
                                          : hint));
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return set;
  }

  std::uint32_t InternCity(const std::string& name) {
    auto [it, inserted] =
        s_->city_ids.emplace(name, static_cast<std::uint32_t>(s_->city_ids.size()));
    (void)inserted;
    return it->second;
  }

  std::uint32_t InternTenant(const std::string& name) {
    auto [it, inserted] =
        s_->tenant_ids.emplace(name, static_cast<std::uint32_t>(s_->tenant_ids.size()));
    (void)inserted;
    return it->second;
  }

  std::uint32_t AddIdList(std::vector<std::uint32_t> ids) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    s_->id_lists.push_back(std::move(ids));
    return static_cast<std::uint32_t>(s_->id_lists.size() - 1);
  }

  std::optional<ProviderSet> ResolveProviders(const StringList& ids, std::string_view what,
                                              std::vector<ProviderIndex>* order = nullptr) {
    ProviderSet set;
    bool ok = true;
    for (const auto& id : ids) {
      auto index = s_->FindProvider(id.value);
      if (!index) {
        std::vector<std::string> known;
        for (const auto& p : s_->providers) known.push_back(p.id);
        Error(id.pos, std::string(what) + ": unknown provider '" + id.value + "'" +
                          DidYouMean(id.value, known));
        ok = false;
        continue;
      }
      if (set.test(*index)) {
        Error(id.pos, std::string(what) + ": provider '" + id.value + "' is listed twice");
        ok = false;
        continue;
      }
      set.set(*index);
      if (order != nullptr) order->push_back(*index);
    }
    if (!ok) return std::nullopt;
    return set;
  }

  template <class E, std::size_t N>
  std::optional<E> ParseEnum(const LocatedString& s, const std::array<std::string_view, N>& names,
                             std::string_view what) {
    auto e = ParseName<E>(names, s.value);
    if (!e) {
      Error(s.pos, "unknown " + std::string(what) + " '" + s.value +
                       "' (expected one of: " + JoinNames(names) + ")");
    }
    return e;
  }

  template <class E, std::size_t N>
  std::optional<std::uint32_t> ParseMask(const StringList& list,
                                         const std::array<std::string_view, N>& names,
                                         std::string_view what) {
    std::uint32_t mask = 0;
    bool ok = true;
    for (const auto& s : list) {
      if (auto e = ParseEnum<E>(s, names, what)) {
        mask |= Bit(*e);
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return mask;
  }

  // ---- top-level sections ---------------------------------------------------------------

  void CompileRegionGroups(const std::vector<GroupSpec>& groups) {
    for (const auto& g : groups) {
      if (!IsLowerName(g.name.value)) {
        Error(g.name.pos, "region group name '" + g.name.value +
                              "' must be lower case (letters, digits, _ or -), so it cannot be "
                              "mistaken for a region code");
        continue;
      }
      if (region_groups_.count(g.name.value) != 0) {
        Error(g.name.pos, "duplicate region group '" + g.name.value + "'");
        continue;
      }
      if (g.members.empty()) Error(g.name.pos, "region group '" + g.name.value + "' is empty");
      RegionSet set;
      for (const auto& m : g.members) {
        if (auto code = RegionCode::Parse(m.value)) {
          set.set(code->index());
        } else {
          const std::string hint = RegionHint(m.value);
          Error(m.pos,
                "region group '" + g.name.value + "': unknown region code '" + m.value + "'" +
                    (hint.empty() ? " (ISO 3166-1 alpha-2 such as CN, HK, MO, TW, or EU)" : hint));
        }
      }
      region_groups_.emplace(g.name.value, set);
    }
  }

  void CompileSettings(const SettingsSpec& st) {
    if (st.unknown_region_as) {
      if (auto code = RegionCode::Parse(st.unknown_region_as->value)) {
        s_->settings.unknown_region_as = *code;
      } else {
        Error(st.unknown_region_as->pos, "settings.unknown_region_as: unknown region code '" +
                                             st.unknown_region_as->value + "'" +
                                             RegionHint(st.unknown_region_as->value));
      }
    }
    if (st.default_data_class) {
      if (auto c = ParseEnum<DataClass>(*st.default_data_class, kDataClassNames, "data class")) {
        s_->settings.default_data_class = *c;
      }
    }
    if (st.image_data_class) {
      if (auto c = ParseEnum<DataClass>(*st.image_data_class, kDataClassNames, "data class")) {
        if (*c == DataClass::kNone) {
          Error(st.image_data_class->pos,
                "settings.image_data_class: 'none' is not allowed (images cannot be scanned; "
                "use personal or higher)");
        } else {
          s_->settings.image_data_class = *c;
        }
      }
    }
    if (st.region_restrictiveness) {
      for (const auto& r : *st.region_restrictiveness) {
        if (auto code = RegionCode::Parse(r.value)) {
          s_->settings.region_restrictiveness.push_back(*code);
        } else {
          Error(r.pos, "settings.region_restrictiveness: unknown region code '" + r.value + "'" +
                           RegionHint(r.value));
        }
      }
    } else {
      s_->settings.region_restrictiveness = {s_->settings.unknown_region_as};
    }
  }

  void CompileCityGroups(const std::vector<GroupSpec>& groups) {
    for (const auto& g : groups) {
      if (!IsLowerName(g.name.value)) {
        Error(g.name.pos, "city group name '" + g.name.value +
                              "' must be lower case (letters, digits, _ or -)");
        continue;
      }
      if (city_groups_.count(g.name.value) != 0) {
        Error(g.name.pos, "duplicate city group '" + g.name.value + "'");
        continue;
      }
      if (g.members.empty()) Error(g.name.pos, "city group '" + g.name.value + "' is empty");
      std::vector<std::uint32_t> ids;
      for (const auto& m : g.members) {
        if (!IsLowerName(m.value)) {
          Error(m.pos, "city group '" + g.name.value + "': city name '" + m.value +
                           "' must be lower case (letters, digits, _ or -)");
          continue;
        }
        ids.push_back(InternCity(m.value));
      }
      city_groups_.emplace(g.name.value, std::move(ids));
    }
  }

  void CompileFlags(const std::vector<DeclaredFlagSpec>& declared) {
    for (auto f : kBuiltinTenantFlags) s_->flag_names.emplace_back(f);
    for (const auto& f : declared) {
      if (!IsLowerName(f.name.value)) {
        Error(f.name.pos, "tenant flag name '" + f.name.value +
                              "' must be lower case (letters, digits, _ or -)");
      } else if (std::find(s_->flag_names.begin(), s_->flag_names.end(), f.name.value) !=
                 s_->flag_names.end()) {
        Error(f.name.pos, "tenant flag '" + f.name.value + "' is declared twice or is built in");
      } else if (s_->flag_names.size() >= 32) {
        Error(f.name.pos, "too many tenant flags (at most 32 including the built-in ones)");
      } else {
        s_->flag_names.push_back(f.name.value);
      }
    }
  }

  std::optional<LocationSet> CompileLocation(const LocationSpec& loc, std::string_view what) {
    auto regions = ResolveRegions(loc.items, what);
    if (!regions) return std::nullopt;
    if (!loc.anywhere && regions->none()) {
      Error(loc.pos, std::string(what) + " is empty: list where data goes, or write 'anywhere'");
      return std::nullopt;
    }
    return LocationSet{*regions, loc.anywhere};
  }

  void CompileProviders(const std::vector<ProviderSpec>& providers) {
    if (providers.size() > kMaxProviders) {
      Error(providers[kMaxProviders].pos,
            "too many providers (at most " + std::to_string(kMaxProviders) + ")");
      return;
    }
    for (const auto& ps : providers) {
      Provider p;
      p.pos = ps.pos;
      p.id = ps.id.value;
      const std::string where = "provider '" + p.id + "'";
      if (!IsValidId(p.id)) {
        Error(ps.id.pos, "provider id '" + p.id +
                             "' must start with a letter or digit and use only letters, digits, "
                             "'.', '_' or '-'");
      }
      const auto index = static_cast<ProviderIndex>(s_->providers.size());
      if (!s_->provider_ids.emplace(p.id, index).second) {
        Error(ps.id.pos, "duplicate provider id '" + p.id + "'");
      }
      auto kind = ParseEnum<ProviderKind>(ps.kind, kProviderKindNames, "provider kind");
      if (kind) p.kind = *kind;
      if (ps.description) p.description = ps.description->value;

      CompileEndpoint(ps, p, where, kind);
      CompileCredential(ps, p, where, kind);
      CompileKindSettings(ps, p, where, kind);

      if (ps.models.empty()) {
        Error(ps.pos, where + " serves no models: add `models: {alias: upstream-name}`");
      }
      for (const auto& m : ps.models) {
        if (m.alias.value.empty() || m.alias.value.find_first_of(" \t") != std::string::npos) {
          Error(m.alias.pos, where + ": model alias '" + m.alias.value +
                                 "' must be non-empty and contain no spaces");
        } else if (p.UpstreamModel(m.alias.value) != nullptr) {
          Error(m.alias.pos, where + ": model alias '" + m.alias.value + "' is listed twice");
        }
        if (m.upstream.value.empty()) {
          Error(m.upstream.pos, where + ": upstream model for '" + m.alias.value + "' is empty");
        }
        std::optional<std::uint32_t> model_caps;
        if (m.capabilities) {
          model_caps = ParseMask<Capability>(*m.capabilities, kCapabilityNames, "capability");
        }
        p.models.push_back({m.alias.value, m.upstream.value, model_caps});
        auto [it, inserted] = s_->model_ids.emplace(
            m.alias.value, static_cast<std::uint32_t>(s_->model_names.size()));
        if (inserted) {
          s_->model_names.push_back(m.alias.value);
          s_->serving_model.emplace_back();
          s_->model_capability.emplace_back(kCapabilityNames.size());
        }
        s_->serving_model[it->second].set(index);
      }
      if (ps.capabilities) {
        p.capabilities = ParseMask<Capability>(*ps.capabilities, kCapabilityNames, "capability");
      }
      for (const ModelMapping& m : p.models) {
        const std::optional<std::uint32_t>& caps = m.capabilities ? m.capabilities : p.capabilities;
        if (!caps) continue;
        std::vector<ProviderSet>& by_cap = s_->model_capability[s_->model_ids.at(m.alias)];
        for (std::size_t c = 0; c < kCapabilityNames.size(); ++c) {
          if ((*caps & (1u << c)) != 0) by_cap[c].set(index);
        }
        if (kind == ProviderKind::kAnthropic && (*caps & Bit(Capability::kEmbeddings)) != 0) {
          Error(ps.pos, where +
                            ": capability 'embeddings' cannot be served by kind anthropic "
                            "(Anthropic has no embeddings API)");
        }
      }
      if (ps.processing) p.processing = CompileLocation(*ps.processing, where + " processing");
      if (ps.storage) p.storage = CompileLocation(*ps.storage, where + " storage");
      if (ps.on_prem) p.on_prem = ps.on_prem->value;
      if (ps.cn_filing)
        p.cn_filing = ParseEnum<CnFiling>(*ps.cn_filing, kCnFilingNames, "cn_filing");
      if (ps.cn_filing_number) p.cn_filing_number = ps.cn_filing_number->value;
      if (ps.retention_days) {
        if (ps.retention_days->value < 0) {
          Error(ps.retention_days->pos, where + ": retention_days must be 0 or more");
        } else {
          p.retention_days = ps.retention_days->value;
        }
      }
      if (ps.zdr) p.zdr = ps.zdr->value;
      if (ps.trains_on_data) p.trains_on_data = ps.trains_on_data->value;
      if (ps.eu_transfer_basis) {
        p.eu_transfer_basis = ParseEnum<EuTransferBasis>(
            *ps.eu_transfer_basis, kEuTransferBasisNames, "eu_transfer_basis");
      }
      if (ps.operator_jurisdiction) {
        if (!RegionCode::Parse(ps.operator_jurisdiction->value)) {
          Error(ps.operator_jurisdiction->pos,
                where + ": operator_jurisdiction: unknown region code '" +
                    ps.operator_jurisdiction->value + "'" +
                    RegionHint(ps.operator_jurisdiction->value));
        }
        p.operator_jurisdiction = ps.operator_jurisdiction->value;
      }
      s_->all_providers.set(index);
      s_->providers.push_back(std::move(p));
    }
  }

  void CompileEndpoint(const ProviderSpec& ps, Provider& p, const std::string& where,
                       std::optional<ProviderKind> kind) {
    if (!ps.endpoint) {
      if (kind && *kind != ProviderKind::kSim) {
        Error(ps.pos, where + " needs an endpoint URL");
      }
      return;
    }
    p.endpoint = ps.endpoint->value;
    auto url = boost::urls::parse_absolute_uri(p.endpoint);
    if (!url) {
      Error(ps.endpoint->pos, where + ": endpoint '" + p.endpoint +
                                  "' is not a valid absolute URL (" + url.error().message() + ")");
      return;
    }
    const auto scheme = url->scheme();
    if (scheme != "http" && scheme != "https") {
      Error(ps.endpoint->pos, where + ": endpoint must be an http:// or https:// URL, not '" +
                                  std::string(scheme) + "://'");
    } else if (url->host().empty()) {
      Error(ps.endpoint->pos, where + ": endpoint '" + p.endpoint + "' has no host");
    } else if (url->has_userinfo()) {
      Error(ps.endpoint->pos,
            where +
                ": endpoint must not carry credentials; name an environment variable with "
                "credential_env");
    } else if (url->has_query() || url->has_fragment()) {
      Error(ps.endpoint->pos, where + ": endpoint must not have a query or fragment");
    }
  }

  void CompileCredential(const ProviderSpec& ps, Provider& p, const std::string& where,
                         std::optional<ProviderKind> kind) {
    if (!ps.credential_env) {
      const bool needs_key =
          kind && (*kind == ProviderKind::kOpenAi || *kind == ProviderKind::kAzureOpenAi ||
                   *kind == ProviderKind::kDashScope || *kind == ProviderKind::kAnthropic);
      if (needs_key) {
        Error(ps.pos, where +
                          " needs credential_env: the name of the environment variable that "
                          "holds its API key");
      }
      return;
    }
    const auto& value = ps.credential_env->value;
    if (!IsEnvVarName(value)) {
      // Never echo the value: it may be the secret itself.
      Error(ps.credential_env->pos,
            where +
                ": credential_env must be the NAME of an environment variable (upper case, "
                "digits and _; e.g. OPENAI_API_KEY), not the secret itself");
      return;
    }
    p.credential_env = value;
  }

  void CompileKindSettings(const ProviderSpec& ps, Provider& p, const std::string& where,
                           std::optional<ProviderKind> kind) {
    auto only_for = [&](const auto& field, std::string_view key, ProviderKind for_kind) {
      if (field && kind && *kind != for_kind) {
        Error(field->pos, where + ": '" + std::string(key) + "' applies only to kind " +
                              std::string(Name(for_kind)));
        return false;
      }
      return static_cast<bool>(field);
    };
    if (only_for(ps.api_version, "api_version", ProviderKind::kAzureOpenAi)) {
      p.api_version = ps.api_version->value;
    }
    if (kind == ProviderKind::kAzureOpenAi && p.api_version.empty()) p.api_version = "2024-10-21";
    if (only_for(ps.dashscope_region, "dashscope_region", ProviderKind::kDashScope)) {
      static constexpr std::array<std::string_view, 4> kRegions = {"beijing", "singapore",
                                                                   "virginia", "hongkong"};
      if (ParseName<int>(kRegions, ps.dashscope_region->value)) {
        p.dashscope_region = ps.dashscope_region->value;
      } else {
        Error(ps.dashscope_region->pos, where + ": unknown dashscope_region '" +
                                            ps.dashscope_region->value +
                                            "' (expected one of: " + JoinNames(kRegions) + ")");
      }
    }
    if (only_for(ps.anthropic_version, "anthropic_version", ProviderKind::kAnthropic)) {
      p.anthropic_version = ps.anthropic_version->value;
    }
    if (kind == ProviderKind::kAnthropic && p.anthropic_version.empty()) {
      p.anthropic_version = "2023-06-01";
    }
    if (only_for(ps.max_tokens_default, "max_tokens_default", ProviderKind::kAnthropic)) {
      if (ps.max_tokens_default->value < 1 || ps.max_tokens_default->value > 1000000) {
        Error(ps.max_tokens_default->pos,
              where + ": max_tokens_default must be between 1 and 1000000");
      } else {
        p.max_tokens_default = ps.max_tokens_default->value;
      }
    }
    if (only_for(ps.sim_tokens, "sim_tokens", ProviderKind::kSim)) {
      if (ps.sim_tokens->value < 1 || ps.sim_tokens->value > 100000) {
        Error(ps.sim_tokens->pos, where + ": sim_tokens must be between 1 and 100000");
      } else {
        p.sim_tokens = ps.sim_tokens->value;
      }
    }
    if (ps.max_duration_ms) {
      if (ps.max_duration_ms->value < 1 || ps.max_duration_ms->value > 86'400'000) {
        Error(ps.max_duration_ms->pos,
              where + ": max_duration_ms must be between 1 and 86400000 (24 h)");
      } else {
        p.max_duration_ms = ps.max_duration_ms->value;
      }
    }
    p.responses_api = kind == ProviderKind::kOpenAi;
    if (ps.responses_api) {
      if (kind && *kind != ProviderKind::kOpenAi && *kind != ProviderKind::kOpenAiCompatible) {
        Error(ps.responses_api->pos,
              where + ": 'responses_api' applies only to kinds openai and openai_compatible");
      } else {
        p.responses_api = ps.responses_api->value;
      }
    }
    if (ps.on_echo_mismatch) {
      if (ps.on_echo_mismatch->value == "quarantine") {
        p.quarantine_on_echo_mismatch = true;
      } else if (ps.on_echo_mismatch->value != "alert") {
        Error(ps.on_echo_mismatch->pos,
              where + ": on_echo_mismatch must be alert or quarantine, not '" +
                  ps.on_echo_mismatch->value + "'");
      }
    }
    if (only_for(ps.sim_delay_ms, "sim_delay_ms", ProviderKind::kSim)) {
      if (ps.sim_delay_ms->value < 0 || ps.sim_delay_ms->value > 60000) {
        Error(ps.sim_delay_ms->pos, where + ": sim_delay_ms must be between 0 and 60000");
      } else {
        p.sim_delay_ms = ps.sim_delay_ms->value;
      }
    }
  }

  // ---- conditions ------------------------------------------------------------------------

  std::uint32_t AddNode(CondNode node) {
    s_->nodes.push_back(node);
    return static_cast<std::uint32_t>(s_->nodes.size() - 1);
  }

  std::uint32_t AddParent(CondNode::Kind kind, const std::vector<std::uint32_t>& parts) {
    CondNode node;
    node.kind = kind;
    node.a = static_cast<std::uint32_t>(s_->children.size());
    node.b = static_cast<std::uint32_t>(parts.size());
    s_->children.insert(s_->children.end(), parts.begin(), parts.end());
    return AddNode(node);
  }

  std::uint32_t CompileNamed(const std::string& name, SourcePos ref_pos) {
    if (auto done = compiled_named_.find(name); done != compiled_named_.end()) return done->second;
    auto spec = named_conditions_.find(name);
    if (spec == named_conditions_.end()) {
      Error(ref_pos, "ref: unknown condition '" + name + "' (declare it under conditions:)");
      return AddNode({});
    }
    if (!in_progress_.insert(name).second) {
      Error(ref_pos, "ref: condition '" + name + "' refers to itself");
      return AddNode({});
    }
    const std::uint32_t node = CompileCondition(*spec->second);
    in_progress_.erase(name);
    compiled_named_.emplace(name, node);
    return node;
  }

  void CompileFlagsLeaf(const std::vector<std::pair<LocatedString, bool>>& flags,
                        std::vector<std::uint32_t>& parts) {
    CondNode node;
    node.kind = CondNode::Kind::kFlags;
    for (const auto& [name, value] : flags) {
      auto bit = s_->FlagBit(name.value);
      if (!bit) {
        Error(name.pos, "unknown tenant flag '" + name.value +
                            "' (built in: ciio, public_facing_cn, require_zdr; declare others "
                            "under tenant_flags:)");
        continue;
      }
      (value ? node.a : node.b) |= *bit;
    }
    parts.push_back(AddNode(node));
  }

  void CompileConsentLeaf(const std::vector<std::pair<LocatedString, bool>>& consent,
                          std::vector<std::uint32_t>& parts) {
    CondNode node;
    node.kind = CondNode::Kind::kConsent;
    for (const auto& [name, value] : consent) {
      if (auto c = ParseEnum<Consent>(name, kConsentNames, "consent")) {
        (value ? node.a : node.b) |= Bit(*c);
      }
    }
    parts.push_back(AddNode(node));
  }

  void CompileMeterLeaf(const LocatedString& text, CondNode::Kind kind,
                        std::vector<std::uint32_t>& parts) {
    auto [op, rest] = SplitComparison(text.value);
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec != std::errc() || end != rest.data() + rest.size() || rest.empty()) {
      Error(text.pos,
            "meter: expected a comparison with a whole number such as \"< 100000\", "
            "got '" +
                text.value + "'");
      return;
    }
    CondNode node;
    node.kind = kind;
    node.op = op;
    node.value = value;
    parts.push_back(AddNode(node));
  }

  std::uint32_t CompileCondition(const ConditionSpec& c) {
    std::vector<std::uint32_t> parts;
    if (c.region) {
      auto set = ResolveRegions(*c.region, "region");
      CondNode node;
      node.kind = CondNode::Kind::kRegion;
      node.a = static_cast<std::uint32_t>(s_->region_sets.size());
      s_->region_sets.push_back(set.value_or(RegionSet{}));
      parts.push_back(AddNode(node));
    }
    if (c.city) {
      std::vector<std::uint32_t> ids;
      for (const auto& item : *c.city) {
        if (auto g = city_groups_.find(item.value); g != city_groups_.end()) {
          ids.insert(ids.end(), g->second.begin(), g->second.end());
        } else if (IsLowerName(item.value)) {
          ids.push_back(InternCity(item.value));
        } else {
          Error(item.pos,
                "city: '" + item.value + "' is neither a city group nor a lower-case city name");
        }
      }
      parts.push_back(AddNode({CondNode::Kind::kCity, CompareOp::kEq, AddIdList(ids), 0, 0}));
    }
    if (c.tenant) {
      std::vector<std::uint32_t> ids;
      for (const auto& t : *c.tenant) {
        if (!IsValidId(t.value)) {
          Error(t.pos, "tenant: '" + t.value + "' is not a valid tenant id");
          continue;
        }
        ids.push_back(InternTenant(t.value));
      }
      parts.push_back(AddNode({CondNode::Kind::kTenant, CompareOp::kEq, AddIdList(ids), 0, 0}));
    }
    if (c.model) {
      std::vector<std::uint32_t> ids;
      for (const auto& m : *c.model) {
        if (auto id = Lookup(s_->model_ids, m.value)) {
          ids.push_back(*id);
        } else {
          Error(m.pos, "model: no provider serves the alias '" + m.value + "'");
        }
      }
      parts.push_back(AddNode({CondNode::Kind::kModel, CompareOp::kEq, AddIdList(ids), 0, 0}));
    }
    if (c.data_class) {
      auto [op, name] = SplitComparison(c.data_class->value);
      if (auto cls = ParseName<DataClass>(kDataClassNames, name)) {
        CondNode node;
        node.kind = CondNode::Kind::kDataClass;
        node.op = op;
        node.value = static_cast<std::uint64_t>(*cls);
        parts.push_back(AddNode(node));
      } else {
        Error(c.data_class->pos, "data_class: expected a class such as \">= personal\" (classes: " +
                                     JoinNames(kDataClassNames) + "), got '" + c.data_class->value +
                                     "'");
      }
    }
    if (!c.consent.empty()) CompileConsentLeaf(c.consent, parts);
    if (!c.tenant_flags.empty()) CompileFlagsLeaf(c.tenant_flags, parts);
    const std::pair<const std::optional<StringList>*, CondNode::Kind> mechs[] = {
        {&c.mechanisms_any_of, CondNode::Kind::kMechAnyOf},
        {&c.mechanisms_all_of, CondNode::Kind::kMechAllOf},
        {&c.mechanisms_none_of, CondNode::Kind::kMechNoneOf}};
    for (const auto& [list, kind] : mechs) {
      if (!*list) continue;
      auto mask = ParseMask<Mechanism>(**list, kMechanismNames, "mechanism");
      parts.push_back(AddNode({kind, CompareOp::kEq, mask.value_or(0), 0, 0}));
    }
    if (c.meter_non_sensitive) {
      CompileMeterLeaf(*c.meter_non_sensitive, CondNode::Kind::kMeterNonSensitive, parts);
    }
    if (c.meter_sensitive) {
      CompileMeterLeaf(*c.meter_sensitive, CondNode::Kind::kMeterSensitive, parts);
    }
    if (c.requires_capability) {
      auto mask = ParseMask<Capability>(*c.requires_capability, kCapabilityNames, "capability");
      parts.push_back(AddNode({CondNode::Kind::kRequires, CompareOp::kEq, mask.value_or(0), 0, 0}));
    }
    for (const auto& sub : c.all) parts.push_back(CompileCondition(sub));
    if (c.has_any) {
      std::vector<std::uint32_t> alternatives;
      for (const auto& sub : c.any) alternatives.push_back(CompileCondition(sub));
      parts.push_back(AddParent(CondNode::Kind::kAny, alternatives));
    }
    if (!c.not_.empty()) {
      const std::uint32_t child = CompileCondition(c.not_.front());
      parts.push_back(AddNode({CondNode::Kind::kNot, CompareOp::kEq, child, 0, 0}));
    }
    if (c.ref) parts.push_back(CompileNamed(c.ref->value, c.ref->pos));
    if (parts.empty()) return AddNode({});
    if (parts.size() == 1) return parts.front();
    return AddParent(CondNode::Kind::kAll, parts);
  }

  // ---- guards and routes -----------------------------------------------------------------

  bool ClaimRuleId(const LocatedString& id, std::string_view what) {
    if (!IsValidId(id.value)) {
      Error(id.pos, std::string(what) + " id '" + id.value +
                        "' must start with a letter or digit and use only letters, digits, "
                        "'.', '_' or '-'");
      return false;
    }
    if (auto prev = rule_ids_.find(id.value); prev != rule_ids_.end()) {
      Error(id.pos, "duplicate id '" + id.value +
                        "' (guard and route ids share one namespace; "
                        "first used at line " +
                        std::to_string(prev->second.line) + ")");
      return false;
    }
    rule_ids_.emplace(id.value, id.pos);
    return true;
  }

  void CompileGuards(const std::vector<GuardSpec>& guards) {
    for (const auto& gs : guards) {
      ClaimRuleId(gs.id, "guard");
      Guard g;
      g.id = gs.id.value;
      g.pos = gs.pos;
      if (gs.description) g.description = gs.description->value;
      g.when = CompileCondition(gs.when);
      if (gs.deny) {
        g.deny = true;
        g.deny_reason = gs.deny->value;
        if (g.deny_reason.empty()) Error(gs.deny->pos, "guard '" + g.id + "': deny needs a reason");
        g.eligible = s_->all_providers;
        g.effect = "deny";
      } else if (gs.narrow) {
        CompileNarrow(*gs.narrow, g);
      }
      s_->guards.push_back(std::move(g));
    }
  }

  template <class E, std::size_t N>
  std::optional<std::vector<E>> ParseEnumList(const StringList& list,
                                              const std::array<std::string_view, N>& names,
                                              std::string_view what) {
    std::vector<E> out;
    bool ok = true;
    for (const auto& s : list) {
      if (auto e = ParseEnum<E>(s, names, what)) {
        out.push_back(*e);
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  void CompileNarrow(const NarrowSpec& n, Guard& g) {
    // Each requirement is a predicate over a provider; the guard keeps the providers that
    // pass all of them. A provider that does not state an attribute a requirement reads fails.
    std::vector<std::function<bool(const Provider&, ProviderIndex)>> reqs;
    std::vector<std::string> effects;
    auto location_req = [&](const std::optional<StringList>& list, std::string_view label,
                            auto check) {
      if (!list) return;
      auto set = ResolveRegions(*list, "guard '" + g.id + "' " + std::string(label));
      if (!set) return;
      effects.push_back(std::string(label) + " " + ToString(*set));
      reqs.emplace_back(
          [set = *set, check](const Provider& p, ProviderIndex) { return check(p, set); });
    };
    if (n.providers) {
      auto set = ResolveProviders(*n.providers, "guard '" + g.id + "' providers");
      if (set) {
        effects.push_back("providers in " + SetText(Values(*n.providers)));
        reqs.emplace_back([set = *set](const Provider&, ProviderIndex i) { return set.test(i); });
      }
    }
    location_req(n.processing_within, "processing within",
                 [](const Provider& p, const RegionSet& s) {
                   return p.processing && p.processing->Within(s);
                 });
    location_req(n.processing_excludes, "processing excludes",
                 [](const Provider& p, const RegionSet& s) {
                   return p.processing && p.processing->Excludes(s);
                 });
    location_req(n.storage_within, "storage within", [](const Provider& p, const RegionSet& s) {
      return p.storage && p.storage->Within(s);
    });
    if (n.cn_filing) {
      if (auto allowed = ParseEnumList<CnFiling>(*n.cn_filing, kCnFilingNames, "cn_filing")) {
        effects.push_back("cn_filing in " + SetText(Values(*n.cn_filing)));
        reqs.emplace_back([allowed = *allowed](const Provider& p, ProviderIndex) {
          return p.cn_filing &&
                 std::find(allowed.begin(), allowed.end(), *p.cn_filing) != allowed.end();
        });
      }
    }
    if (n.eu_transfer_basis) {
      if (auto allowed = ParseEnumList<EuTransferBasis>(*n.eu_transfer_basis, kEuTransferBasisNames,
                                                        "eu_transfer_basis")) {
        effects.push_back("eu_transfer_basis in " + SetText(Values(*n.eu_transfer_basis)));
        reqs.emplace_back([allowed = *allowed](const Provider& p, ProviderIndex) {
          return p.eu_transfer_basis &&
                 std::find(allowed.begin(), allowed.end(), *p.eu_transfer_basis) != allowed.end();
        });
      }
    }
    auto bool_req = [&](const std::optional<Located<bool>>& want, std::string_view label,
                        std::optional<bool> Provider::*field) {
      if (!want) return;
      effects.push_back(std::string(label) + " = " + (want->value ? "true" : "false"));
      reqs.emplace_back([v = want->value, field](const Provider& p, ProviderIndex) {
        return (p.*field).has_value() && *(p.*field) == v;
      });
    };
    bool_req(n.zdr, "zdr", &Provider::zdr);
    bool_req(n.on_prem, "on_prem", &Provider::on_prem);
    bool_req(n.trains_on_data, "trains_on_data", &Provider::trains_on_data);
    if (n.max_retention_days) {
      const std::int64_t max = n.max_retention_days->value;
      if (max < 0) Error(n.max_retention_days->pos, "max_retention_days must be 0 or more");
      effects.push_back("retention_days <= " + std::to_string(max));
      reqs.emplace_back([max](const Provider& p, ProviderIndex) {
        return p.retention_days && *p.retention_days <= max;
      });
    }
    for (std::size_t i = 0; i < effects.size(); ++i) {
      g.effect += (i == 0 ? "" : " and ") + effects[i];
    }
    for (std::size_t i = 0; i < s_->providers.size(); ++i) {
      const auto index = static_cast<ProviderIndex>(i);
      if (std::all_of(reqs.begin(), reqs.end(),
                      [&](const auto& r) { return r(s_->providers[i], index); })) {
        g.eligible.set(i);
      }
    }
  }

  void CompileRoutes(const std::vector<RouteSpec>& routes) {
    for (const auto& rs : routes) {
      ClaimRuleId(rs.id, "route");
      Route r;
      r.id = rs.id.value;
      r.pos = rs.pos;
      if (rs.description) r.description = rs.description->value;
      r.when = CompileCondition(rs.when);
      const std::string where = "route '" + r.id + "'";
      if (rs.allow.empty()) Error(rs.pos, where + ": allow must list at least one provider");
      std::vector<ProviderIndex> allow_order;
      if (auto allow = ResolveProviders(rs.allow, where + " allow", &allow_order)) {
        r.allow = *allow;
      }
      std::vector<ProviderIndex> prefer_order;
      if (auto prefer = ResolveProviders(rs.prefer, where + " prefer", &prefer_order)) {
        for (std::size_t i = 0; i < rs.prefer.size(); ++i) {
          auto idx = s_->FindProvider(rs.prefer[i].value);
          if (idx && !r.allow.test(*idx)) {
            Error(rs.prefer[i].pos, where + ": prefer lists '" + rs.prefer[i].value +
                                        "', which is not in allow (prefer only orders allow)");
          }
        }
        (void)prefer;
      }
      ProviderSet placed;
      for (auto i : prefer_order) {
        if (r.allow.test(i) && !placed.test(i)) {
          r.order.push_back(i);
          placed.set(i);
        }
      }
      for (auto i : allow_order) {
        if (!placed.test(i)) {
          r.order.push_back(i);
          placed.set(i);
        }
      }
      s_->routes.push_back(std::move(r));
    }
  }

  Diagnostics& errors_;
  Snapshot* s_ = nullptr;
  std::map<std::string, RegionSet, std::less<>> region_groups_;
  std::map<std::string, std::vector<std::uint32_t>, std::less<>> city_groups_;
  std::map<std::string, const ConditionSpec*, std::less<>> named_conditions_;
  std::map<std::string, std::uint32_t, std::less<>> compiled_named_;
  std::set<std::string, std::less<>> in_progress_;
  std::map<std::string, SourcePos, std::less<>> rule_ids_;
};

// ---- canonical content and version ---------------------------------------------------------
// The version hashes what the policy means, not how it is written: comments, descriptions,
// key order, quoting, spacing and tests do not change it. 64 bits of SHA-256 identify a
// version; they are not a security boundary.

json::array Strings(const StringList& list) {
  json::array a;
  for (const auto& s : list) a.emplace_back(s.value);
  return a;
}

template <class T>
void Put(json::object& o, std::string_view key, const std::optional<T>& v) {
  if (!v) return;
  if constexpr (std::is_same_v<T, StringList>) {
    o[key] = Strings(*v);
  } else {
    o[key] = v->value;
  }
}

json::value CanonicalLocation(const std::optional<LocationSpec>& loc) {
  if (!loc) return nullptr;
  return json::object{{"anywhere", loc->anywhere}, {"items", Strings(loc->items)}};
}

json::value CanonicalCondition(const ConditionSpec& c) {
  json::object o;
  Put(o, "region", c.region);
  Put(o, "city", c.city);
  Put(o, "data_class", c.data_class);
  auto pairs = [](const std::vector<std::pair<LocatedString, bool>>& ps) {
    json::array a;
    for (const auto& [k, v] : ps) a.push_back(json::array{json::string(k.value), v});
    return a;
  };
  if (!c.consent.empty()) o["consent"] = pairs(c.consent);
  if (!c.tenant_flags.empty()) o["tenant_flags"] = pairs(c.tenant_flags);
  Put(o, "mechanisms_any_of", c.mechanisms_any_of);
  Put(o, "mechanisms_all_of", c.mechanisms_all_of);
  Put(o, "mechanisms_none_of", c.mechanisms_none_of);
  Put(o, "model", c.model);
  Put(o, "tenant", c.tenant);
  Put(o, "meter_non_sensitive", c.meter_non_sensitive);
  Put(o, "meter_sensitive", c.meter_sensitive);
  Put(o, "requires", c.requires_capability);
  auto list = [](const std::vector<ConditionSpec>& cs) {
    json::array a;
    for (const auto& sub : cs) a.push_back(CanonicalCondition(sub));
    return a;
  };
  if (!c.all.empty()) o["all"] = list(c.all);
  if (c.has_any) o["any"] = list(c.any);
  if (!c.not_.empty()) o["not"] = CanonicalCondition(c.not_.front());
  Put(o, "ref", c.ref);
  return o;
}

json::value Canonical(const PolicySpec& spec) {
  json::object root;
  json::object settings;
  Put(settings, "unknown_region_as", spec.settings.unknown_region_as);
  Put(settings, "default_data_class", spec.settings.default_data_class);
  Put(settings, "image_data_class", spec.settings.image_data_class);
  Put(settings, "region_restrictiveness", spec.settings.region_restrictiveness);
  root["settings"] = std::move(settings);
  auto groups = [](const std::vector<GroupSpec>& gs) {
    json::array a;
    for (const auto& g : gs)
      a.push_back(json::array{json::string(g.name.value), Strings(g.members)});
    return a;
  };
  root["region_groups"] = groups(spec.region_groups);
  root["city_groups"] = groups(spec.city_groups);
  json::array flags;
  for (const auto& f : spec.tenant_flags) flags.emplace_back(f.name.value);
  root["tenant_flags"] = std::move(flags);
  json::array conditions;
  for (const auto& c : spec.conditions) {
    conditions.push_back(json::array{json::string(c.name.value), CanonicalCondition(c.condition)});
  }
  root["conditions"] = std::move(conditions);
  json::array providers;
  for (const auto& p : spec.providers) {
    json::object o;
    o["id"] = p.id.value;
    o["kind"] = p.kind.value;
    Put(o, "endpoint", p.endpoint);
    Put(o, "credential_env", p.credential_env);
    json::array models;
    for (const auto& m : p.models) {
      json::array entry{json::string(m.alias.value), json::string(m.upstream.value)};
      if (m.capabilities) entry.push_back(Strings(*m.capabilities));  // absent: same version
      models.push_back(std::move(entry));
    }
    o["models"] = std::move(models);
    Put(o, "capabilities", p.capabilities);
    o["processing"] = CanonicalLocation(p.processing);
    o["storage"] = CanonicalLocation(p.storage);
    Put(o, "on_prem", p.on_prem);
    Put(o, "cn_filing", p.cn_filing);
    Put(o, "cn_filing_number", p.cn_filing_number);
    Put(o, "retention_days", p.retention_days);
    Put(o, "zdr", p.zdr);
    Put(o, "trains_on_data", p.trains_on_data);
    Put(o, "eu_transfer_basis", p.eu_transfer_basis);
    Put(o, "operator_jurisdiction", p.operator_jurisdiction);
    Put(o, "api_version", p.api_version);
    Put(o, "dashscope_region", p.dashscope_region);
    Put(o, "anthropic_version", p.anthropic_version);
    Put(o, "max_tokens_default", p.max_tokens_default);
    Put(o, "responses_api", p.responses_api);
    Put(o, "on_echo_mismatch", p.on_echo_mismatch);
    Put(o, "sim_tokens", p.sim_tokens);
    Put(o, "sim_delay_ms", p.sim_delay_ms);
    Put(o, "max_duration_ms", p.max_duration_ms);
    providers.push_back(std::move(o));
  }
  root["providers"] = std::move(providers);
  json::array guards;
  for (const auto& g : spec.guards) {
    json::object o;
    o["id"] = g.id.value;
    o["when"] = CanonicalCondition(g.when);
    Put(o, "deny", g.deny);
    if (g.narrow) {
      json::object n;
      Put(n, "providers", g.narrow->providers);
      Put(n, "processing_within", g.narrow->processing_within);
      Put(n, "processing_excludes", g.narrow->processing_excludes);
      Put(n, "storage_within", g.narrow->storage_within);
      Put(n, "cn_filing", g.narrow->cn_filing);
      Put(n, "eu_transfer_basis", g.narrow->eu_transfer_basis);
      Put(n, "zdr", g.narrow->zdr);
      Put(n, "on_prem", g.narrow->on_prem);
      Put(n, "trains_on_data", g.narrow->trains_on_data);
      Put(n, "max_retention_days", g.narrow->max_retention_days);
      o["narrow"] = std::move(n);
    }
    guards.push_back(std::move(o));
  }
  root["guards"] = std::move(guards);
  json::array routes;
  for (const auto& r : spec.routes) {
    routes.push_back(json::object{{"id", r.id.value},
                                  {"when", CanonicalCondition(r.when)},
                                  {"allow", Strings(r.allow)},
                                  {"prefer", Strings(r.prefer)}});
  }
  root["routes"] = std::move(routes);
  return root;
}

std::string VersionOf(const std::string& canonical) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < 8 && i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace

bool IsEnvVarName(std::string_view s) {
  if (s.empty() || s.size() > 128 || std::isdigit(static_cast<unsigned char>(s[0])) != 0) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isupper(static_cast<unsigned char>(c)) != 0 ||
           std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

CompileResult Compile(const PolicySpec& spec) {
  CompileResult result;
  Compiler compiler(result.errors);
  auto snapshot = compiler.Run(spec);
  std::stable_sort(result.errors.begin(), result.errors.end(), [](const auto& a, const auto& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });
  if (!result.errors.empty()) return result;
  snapshot->version = VersionOf(json::serialize(Canonical(spec)));
  result.snapshot = std::move(snapshot);
  return result;
}

}  // namespace meridian::policy
