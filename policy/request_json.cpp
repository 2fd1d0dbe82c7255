#include "policy/request_json.h"

#include <array>
#include <boost/json.hpp>
#include <string>
#include <vector>

#include "policy/suggest.h"

namespace meridian::policy {
namespace {

namespace json = boost::json;

class RequestReader {
 public:
  RequestReader(const Snapshot& snapshot, std::string& error) : s_(snapshot), error_(error) {}

  std::optional<ParsedRequest> Read(const json::value& v) {
    const auto* obj = v.if_object();
    if (obj == nullptr) return Fail("request", "must be a JSON object");
    static constexpr std::array<std::string_view, 12> kKeys = {
        "tenant",       "region",     "region_signals", "city",  "data_class", "consent",
        "tenant_flags", "mechanisms", "meter",          "model", "requires",   "unhealthy"};
    for (const auto& kv : *obj) {
      if (std::find(kKeys.begin(), kKeys.end(), kv.key()) == kKeys.end()) {
        const std::vector<std::string> keys(kKeys.begin(), kKeys.end());
        std::string valid;
        for (const auto k : kKeys) valid += (valid.empty() ? "" : ", ") + std::string(k);
        return Fail("request." + std::string(kv.key()),
                    "unknown field" + DidYouMean(kv.key(), keys) + "; the fields are " + valid);
      }
    }
    ParsedRequest r;
    if (!String(*obj, "tenant", r.tenant) || !String(*obj, "city", r.city) ||
        !String(*obj, "model", r.model)) {
      return std::nullopt;
    }
    if (!Region(*obj, r) || !DataClassField(*obj, r)) return std::nullopt;
    if (const auto* consent = obj->if_contains("consent")) {
      const auto* o = consent->if_object();
      if (o == nullptr) return Fail("request.consent", "must be an object of booleans");
      for (const auto& kv : *o) {
        auto c = ParseName<Consent>(kConsentNames, kv.key());
        if (!c) return Fail("request.consent." + std::string(kv.key()), "unknown consent");
        if (!kv.value().is_bool()) {
          return Fail("request.consent." + std::string(kv.key()), "must be true or false");
        }
        if (kv.value().get_bool()) r.consent |= Bit(*c);
      }
    }
    if (!StringArray(*obj, "tenant_flags", r.tenant_flags)) return std::nullopt;
    for (const auto& f : r.tenant_flags) {
      if (!s_.FlagBit(f)) return Fail("request.tenant_flags", "unknown tenant flag '" + f + "'");
    }
    if (!Mask<Mechanism>(*obj, "mechanisms", kMechanismNames, r.mechanisms) ||
        !Mask<Capability>(*obj, "requires", kCapabilityNames, r.required_capabilities)) {
      return std::nullopt;
    }
    if (const auto* meter = obj->if_contains("meter")) {
      const auto* o = meter->if_object();
      if (o == nullptr) return Fail("request.meter", "must be an object");
      for (const auto& kv : *o) {
        const std::string field = "request.meter." + std::string(kv.key());
        std::optional<std::uint64_t>* target = nullptr;
        if (kv.key() == "non_sensitive") target = &r.meter_non_sensitive;
        if (kv.key() == "sensitive") target = &r.meter_sensitive;
        if (target == nullptr) return Fail(field, "unknown field");
        if (kv.value().is_uint64()) {
          *target = kv.value().get_uint64();
        } else if (kv.value().is_int64() && kv.value().get_int64() >= 0) {
          *target = static_cast<std::uint64_t>(kv.value().get_int64());
        } else {
          return Fail(field, "must be a whole number of individuals");
        }
      }
    }
    std::vector<std::string> names;
    if (!StringArray(*obj, "unhealthy", names)) return std::nullopt;
    for (const auto& id : names) {
      auto index = s_.FindProvider(id);
      if (!index) return Fail("request.unhealthy", "unknown provider '" + id + "'");
      r.unhealthy.set(*index);
    }
    return r;
  }

 private:
  std::nullopt_t Fail(const std::string& field, const std::string& message) {
    error_ = field + ": " + message;
    return std::nullopt;
  }

  bool String(const json::object& o, std::string_view key, std::string& out) {
    const auto* v = o.if_contains(key);
    if (v == nullptr) return true;
    if (!v->is_string()) {
      Fail("request." + std::string(key), "must be a string");
      return false;
    }
    out = std::string(v->get_string());
    return true;
  }

  bool StringArray(const json::object& o, std::string_view key, std::vector<std::string>& out) {
    const auto* v = o.if_contains(key);
    if (v == nullptr) return true;
    const auto* a = v->if_array();
    if (a == nullptr) {
      Fail("request." + std::string(key), "must be an array of strings");
      return false;
    }
    for (const auto& item : *a) {
      if (!item.is_string()) {
        Fail("request." + std::string(key), "must be an array of strings");
        return false;
      }
      out.emplace_back(item.get_string());
    }
    return true;
  }

  template <class E, std::size_t N>
  bool Mask(const json::object& o, std::string_view key,
            const std::array<std::string_view, N>& names, std::uint32_t& out) {
    std::vector<std::string> items;
    if (!StringArray(o, key, items)) return false;
    for (const auto& item : items) {
      auto e = ParseName<E>(names, item);
      if (!e) {
        Fail("request." + std::string(key), "unknown value '" + item + "'");
        return false;
      }
      out |= Bit(*e);
    }
    return true;
  }

  bool DataClassField(const json::object& o, ParsedRequest& r) {
    std::string name;
    if (!String(o, "data_class", name)) return false;
    if (name.empty()) return true;
    r.data_class = ParseName<DataClass>(kDataClassNames, name);
    if (!r.data_class) {
      Fail("request.data_class", "unknown data class '" + name + "'");
      return false;
    }
    return true;
  }

  bool Region(const json::object& o, ParsedRequest& r) {
    std::vector<RegionSignal> signals;
    std::vector<RegionSignal> ip_geo;
    std::string shorthand;
    if (!String(o, "region", shorthand)) return false;
    if (!shorthand.empty() && shorthand != "unknown") {
      auto code = RegionCode::Parse(shorthand);
      if (!code) {
        Fail("request.region", "unknown region code '" + shorthand + "'" + RegionHint(shorthand));
        return false;
      }
      signals.push_back({RegionSource::kTenantBinding, *code});
    }
    if (const auto* v = o.if_contains("region_signals")) {
      const auto* a = v->if_array();
      if (a == nullptr) {
        Fail("request.region_signals", "must be an array of {source, region}");
        return false;
      }
      for (const auto& item : *a) {
        const auto* sig = item.if_object();
        const auto* source = sig != nullptr ? sig->if_contains("source") : nullptr;
        const auto* region = sig != nullptr ? sig->if_contains("region") : nullptr;
        if (source == nullptr || region == nullptr || !source->is_string() ||
            !region->is_string()) {
          Fail("request.region_signals", "each signal needs string fields source and region");
          return false;
        }
        const std::string src(source->get_string());
        const std::string reg(region->get_string());
        auto code = RegionCode::Parse(reg);
        if (!code) {
          Fail("request.region_signals", "unknown region code '" + reg + "'" + RegionHint(reg));
          return false;
        }
        if (src == "client_header") {
          // An unsigned client claim is never a source of the region.
          r.ignored_signals.push_back("client_header " + reg + " (untrusted)");
          continue;
        }
        if (src == "ip_geo") {
          ip_geo.push_back({RegionSource::kConflict, *code});
          continue;
        }
        auto parsed = ParseName<RegionSource>(kRegionSourceNames, src);
        if (!parsed || *parsed == RegionSource::kUnknown || *parsed == RegionSource::kConflict) {
          Fail("request.region_signals", "unknown source '" + src +
                                             "' (tenant_binding, trusted_proxy, idp_claim, "
                                             "ingress, certificate, ip_geo, client_header)");
          return false;
        }
        signals.push_back({*parsed, *code});
      }
    }
    // IP geolocation only corroborates: it may make a known region more restrictive but
    // never establishes one on its own.
    if (signals.empty()) {
      for (const auto& g : ip_geo) {
        r.ignored_signals.push_back("ip_geo " + g.region.ToString() + " (corroboration only)");
      }
    } else {
      signals.insert(signals.end(), ip_geo.begin(), ip_geo.end());
    }
    auto resolved = ResolveRegion(signals, s_.settings);
    r.region = resolved.region;
    r.region_source = resolved.source;
    return true;
  }

  const Snapshot& s_;
  std::string& error_;
};

}  // namespace

RequestAttributes ParsedRequest::Attributes() const {
  RequestAttributes a;
  a.tenant = tenant;
  a.region = region;
  a.region_source = region_source;
  a.city = city;
  a.data_class = data_class;
  a.consent = consent;
  a.tenant_flags = tenant_flags;
  a.mechanisms = mechanisms;
  a.meter_non_sensitive = meter_non_sensitive;
  a.meter_sensitive = meter_sensitive;
  a.model = model;
  a.required_capabilities = required_capabilities;
  return a;
}

ParseRequestResult ParseRequestJson(const boost::json::value& json, const Snapshot& snapshot) {
  ParseRequestResult result;
  result.request = RequestReader(snapshot, result.error).Read(json);
  return result;
}

}  // namespace meridian::policy
