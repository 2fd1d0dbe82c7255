// The PIPL cross-border export meter at run time. Individuals are counted per exporting
// entity (the tenant) and calendar year in China Standard Time (UTC+8), apart for
// non-sensitive and sensitive personal information, by a keyed digest of the request's
// subject id (OpenAI `user`, gRPC subject_id), never the id. The counts are read before the
// decision (they feed the policy's `meter` conditions); an individual is added only when the
// request is about to be sent to a provider processing outside the mainland, and only while
// the count stays inside the band the decision relied on (ExportGate).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/status.h"
#include "gateway/router.h"
#include "gateway/store/export_meter.h"
#include "policy/decide.h"

namespace meridian::gateway {

struct GatewayState;

/// The calendar year in China Standard Time of `unix_ms`.
int CstYear(std::int64_t unix_ms);

/// HMAC-SHA256 of tenant and subject under `key`, 32 hex digits (128 bits: no collision among
/// the millions the law's bands count).
std::string SubjectDigest(std::string_view key, std::string_view tenant, std::string_view subject);

/// The smallest count above `count` at which a condition of `snapshot` on the (sensitive or
/// non-sensitive) meter, or a band of the law (10,000 sensitive; 100,000 and 1,000,000
/// non-sensitive individuals), changes its truth; max when there is none.
std::uint64_t NextBoundary(const policy::Snapshot& snapshot, bool sensitive, std::uint64_t count);

/// The request is metered: a user in the mainland (region CN) and personal information.
bool Metered(const policy::Decision& decision);
/// The provider may process outside the mainland (its processing is not within {CN}).
bool Exports(const policy::Provider& provider);

/// The band of the law (PIPL 2024 provisions) a count of individuals is in, for operators:
/// sensitive "below 10000" | "10000 or more"; non-sensitive "below 100000" |
/// "100000 to 999999" | "1000000 or more".
std::string_view LawBand(bool sensitive, std::uint64_t count);

/// One tenant's meter as read for a report.
struct MeterRow {
  std::string tenant;
  store::MeterCounts counts;
};

/// The meter of `tenants` for `year` (CST), read from `meter` one tenant after the other.
boost::asio::awaitable<std::vector<MeterRow>> ReadMeter(store::ExportMeterStore& meter,
                                                        std::vector<std::string> tenants, int year);

/// {"year":Y,"tenants":[{"tenant":..,"non_sensitive":N,"non_sensitive_band":..,"sensitive":N,
/// "sensitive_band":..}, ...]}; a tenant the store could not answer for has "error" instead
/// of the counts. GET /admin/meter and `meridian meter export`. With `snapshot`, each count
/// also has the next boundary (NextBoundary) as "non_sensitive_next" / "sensitive_next" (absent
/// when there is none): where the next band, or a condition of the policy, begins.
std::string MeterReportJson(int year, const std::vector<MeterRow>& rows,
                            const policy::Snapshot* snapshot = nullptr);

/// An attempt the export gate refused before anything was sent (its status).
bool IsExportGateRefusal(const core::Status& attempt);

/// What one request's attempts check before a provider is tried. Single-threaded.
class ExportGate final : public AttemptGate {
 public:
  ExportGate(GatewayState& state, store::ExportMeterStore& meter, std::string tenant,
             std::string subject, int year, const store::MeterCounts& read)
      : state_(state),
        meter_(meter),
        tenant_(std::move(tenant)),
        subject_(std::move(subject)),
        year_(year),
        read_(read) {}
  /// Ok to try `provider`; otherwise the reason not to (retryable: the router moves on to the
  /// decision's next candidate, e.g. one in the mainland).
  boost::asio::awaitable<core::Status> Check(const policy::Decision& decision,
                                             policy::ProviderIndex provider) override;
  /// This request added a new individual to the meter (for its audit line).
  bool added() const { return added_; }

 private:
  GatewayState& state_;
  store::ExportMeterStore& meter_;
  std::string tenant_;
  std::string subject_;
  int year_;
  store::MeterCounts read_;
  bool counted_ = false;  ///< this request's individual is counted already
  bool added_ = false;    ///< ... and was new to the meter
};

}  // namespace meridian::gateway
