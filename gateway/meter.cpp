#include "gateway/meter.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "gateway/core/json_text.h"
#include "gateway/gateway_metrics.h"
#include "gateway/gateway_state.h"
#include "gateway/log.h"

namespace meridian::gateway {

namespace asio = boost::asio;
using core::Status;
using core::StatusCode;

int CstYear(std::int64_t unix_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds(unix_ms) + hours(8)};
  return static_cast<int>(year_month_day{floor<days>(t)}.year());
}

std::string SubjectDigest(std::string_view key, std::string_view tenant, std::string_view subject) {
  std::string message(tenant);
  message += '\0';
  message += subject;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < 16 && i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0xf];
  }
  return out;
}

std::uint64_t NextBoundary(const policy::Snapshot& snapshot, bool sensitive, std::uint64_t count) {
  constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t next = kNone;
  auto consider = [&](std::uint64_t b) {
    if (b > count && b < next) next = b;
  };
  // The law's bands.
  if (sensitive) {
    consider(10'000);
  } else {
    consider(100'000);
    consider(1'000'000);
  }
  const auto kind = sensitive ? policy::CondNode::Kind::kMeterSensitive
                              : policy::CondNode::Kind::kMeterNonSensitive;
  for (const policy::CondNode& n : snapshot.nodes) {
    if (n.kind != kind) continue;
    // A condition `<op> v` changes its truth between v-1 and v, or between v and v+1.
    consider(n.value);
    if (n.value < kNone) consider(n.value + 1);
  }
  return next;
}

bool Metered(const policy::Decision& decision) {
  return decision.region == *policy::RegionCode::Parse("CN") &&
         decision.data_class >= policy::DataClass::kPersonal;
}

bool Exports(const policy::Provider& provider) {
  static const policy::RegionSet kMainland = [] {
    policy::RegionSet s;
    s.set(policy::RegionCode::Parse("CN")->index());
    return s;
  }();
  return !provider.processing || !provider.processing->Within(kMainland);
}

asio::awaitable<Status> ExportGate::Check(const policy::Decision& decision,
                                          policy::ProviderIndex provider) {
  const policy::Provider& p = decision.snapshot->providers[provider];
  if (counted_ || !Metered(decision) || !Exports(p)) co_return Status::Ok();
  const bool sensitive = decision.data_class >= policy::DataClass::kSensitivePersonal;
  auto refuse = [&](StatusCode code, std::string message, std::string reason) {
    if (state_.metrics) state_.metrics->RecordMeter(reason);
    Status st = Status::Error(code, std::move(message), std::move(reason));
    st.retryable = true;  // the next candidate may process in the mainland
    return st;
  };
  if (subject_.empty()) {
    if (state_.config.export_meter->allow_uncounted) {
      if (state_.metrics) state_.metrics->RecordMeter("exported_uncounted");
      co_return Status::Ok();
    }
    co_return refuse(StatusCode::kPermissionDenied,
                     "personal information of a user in the mainland goes to provider '" + p.id +
                         "' (outside the mainland) only with the request's subject (the `user` "
                         "field, or gRPC subject_id), so the export meter can count the "
                         "individual",
                     "export_needs_subject");
  }
  // The band the decision relied on: a count it read, or none (then no meter condition held).
  const std::uint64_t read = sensitive ? read_.sensitive : read_.non_sensitive;
  const std::uint64_t limit = read_.status.ok() ? NextBoundary(*decision.snapshot, sensitive, read)
                                                : std::numeric_limits<std::uint64_t>::max();
  const store::MeterAdd added = co_await meter_.Add(
      tenant_, year_, sensitive, SubjectDigest(state_.meter_key, tenant_, subject_), limit);
  if (!added.status.ok()) {
    Log(LogLevel::kWarning, "export meter of tenant '" + tenant_ +
                                "' unavailable, nothing exported: " + added.status.message);
    co_return refuse(StatusCode::kUnavailable,
                     "the export meter cannot count this individual right now; nothing was sent "
                     "outside the mainland",
                     "export_meter_unavailable");
  }
  if (added.result == store::MeterAdd::Result::kLimitReached) {
    co_return refuse(StatusCode::kPermissionDenied,
                     "the export meter of tenant '" + tenant_ + "' holds " +
                         std::to_string(added.count) + " individuals (" +
                         (sensitive ? "sensitive" : "non-sensitive") + "); one more would reach " +
                         std::to_string(limit) +
                         ", a band this request was not decided on (it read " +
                         std::to_string(read) + "), so nothing was sent outside the mainland",
                     "export_meter_band_reached");
  }
  counted_ = true;
  added_ = added.result == store::MeterAdd::Result::kAdded;
  if (state_.metrics && added_) {
    state_.metrics->RecordMeter(sensitive ? "added_sensitive" : "added_non_sensitive");
  }
  co_return Status::Ok();
}

bool IsExportGateRefusal(const core::Status& attempt) {
  return attempt.reason == "export_needs_subject" ||
         attempt.reason == "export_meter_band_reached" ||
         attempt.reason == "export_meter_unavailable";
}

std::string_view LawBand(bool sensitive, std::uint64_t count) {
  if (sensitive) return count < 10'000 ? "below 10000" : "10000 or more";
  if (count < 100'000) return "below 100000";
  return count < 1'000'000 ? "100000 to 999999" : "1000000 or more";
}

asio::awaitable<std::vector<MeterRow>> ReadMeter(store::ExportMeterStore& meter,
                                                 std::vector<std::string> tenants, int year) {
  std::vector<MeterRow> rows;
  for (auto& tenant : tenants) {
    store::MeterCounts counts = co_await meter.Read(tenant, year);
    rows.push_back({std::move(tenant), std::move(counts)});
  }
  co_return rows;
}

std::string MeterReportJson(int year, const std::vector<MeterRow>& rows,
                            const policy::Snapshot* snapshot) {
  auto next = [&](std::string_view name, bool sensitive, std::uint64_t count) {
    if (snapshot == nullptr) return std::string();
    const std::uint64_t b = NextBoundary(*snapshot, sensitive, count);
    if (b == std::numeric_limits<std::uint64_t>::max()) return std::string();
    return ",\"" + std::string(name) + "\":" + std::to_string(b);
  };
  std::string out = "{\"year\":" + std::to_string(year) + ",\"tenants\":[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const MeterRow& r = rows[i];
    if (i) out += ',';
    out += "{\"tenant\":";
    core::AppendJsonString(out, r.tenant);
    if (!r.counts.status.ok()) {
      out += ",\"error\":";
      core::AppendJsonString(out, r.counts.status.message);
    } else {
      out += ",\"non_sensitive\":" + std::to_string(r.counts.non_sensitive) +
             ",\"non_sensitive_band\":";
      core::AppendJsonString(out, LawBand(false, r.counts.non_sensitive));
      out += next("non_sensitive_next", false, r.counts.non_sensitive);
      out += ",\"sensitive\":" + std::to_string(r.counts.sensitive) + ",\"sensitive_band\":";
      core::AppendJsonString(out, LawBand(true, r.counts.sensitive));
      out += next("sensitive_next", true, r.counts.sensitive);
    }
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace meridian::gateway
