// Metrics: counters, gauges and histograms rendered in the Prometheus text exposition format
// 0.0.4. Standard library only (prometheus-cpp is not packaged for Debian 12).
//
// Hot path (Counter::Inc/Add, Histogram::Observe, Gauge::*) is lock-free and allocation-free.
// Counters and histograms are sharded over kShards cache-line-aligned slots; each thread picks a
// slot once (round-robin, thread-local) and updates it with relaxed atomics, so threads do not
// share cache lines (up to kShards threads). Slots are summed at scrape time (Render). Gauges
// are one cache-line-aligned atomic, because Set() must be a single store.
//
// Usage: register families at startup, create children once with With({...}) when a table is
// built, and keep the returned references (valid for the Registry's lifetime). Nothing is looked
// up by name per request. With() takes a mutex (slow path) and may allocate.
//
// Registration errors (invalid metric/label name, duplicate name, bad buckets, wrong number of
// label values) are programming errors and throw std::invalid_argument.
//
// Rendering: families in registration order, children in creation order; a labelled family
// with no child yet is omitted (like the Go client). Histograms render cumulative
// _bucket{le="..."} samples ending with le="+Inf", then _sum and _count. Names are rendered as
// given: no suffix (such as _total) is added.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meridian::metrics {

/// Number of slots a counter / histogram is sharded over (threads share slots round-robin).
inline constexpr std::size_t kShards = 16;
inline constexpr std::size_t kCacheLine = 64;

namespace detail {

/// Returns the next slot for a new thread (round-robin); slow path, called once per thread.
std::size_t NextShard() noexcept;

/// The calling thread's slot in [0, kShards).
inline std::size_t ThisThreadShard() noexcept {
  thread_local const std::size_t shard = NextShard();
  return shard;
}

struct alignas(kCacheLine) PaddedU64 {
  std::atomic<std::uint64_t> value{0};
};

inline constexpr std::size_t kSlotsPerLine = kCacheLine / sizeof(std::uint64_t);

/// Eight 64-bit atomics filling one cache line.
struct alignas(kCacheLine) Line {
  std::atomic<std::uint64_t> slot[kSlotsPerLine] = {};
};

/// A registered family, callback or info metric: renders its HELP/TYPE lines and samples.
class Collector {
 public:
  virtual ~Collector() = default;
  virtual void Render(std::string& out) const = 0;
};

}  // namespace detail

/// Monotonic counter (uint64).
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Inc() noexcept { Add(1); }
  void Add(std::uint64_t n) noexcept {
    shards_[detail::ThisThreadShard()].value.fetch_add(n, std::memory_order_relaxed);
  }
  /// Sum over the shards (scrape path).
  std::uint64_t Value() const noexcept;

 private:
  detail::PaddedU64 shards_[kShards];
};

/// Gauge (int64) that can go up and down or be set.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void Add(std::int64_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  void Sub(std::int64_t n) noexcept { value_.fetch_sub(n, std::memory_order_relaxed); }
  void Inc() noexcept { Add(1); }
  void Dec() noexcept { Sub(1); }
  std::int64_t Value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  alignas(kCacheLine) std::atomic<std::int64_t> value_{0};
};

/// Histogram with fixed bucket upper bounds (strictly increasing, finite; +Inf is implicit).
class Histogram {
 public:
  /// Throws std::invalid_argument if `bounds` is not strictly increasing or not finite.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  /// Counts `v` in the first bucket with v <= le (NaN goes to +Inf) and adds it to the sum.
  void Observe(double v) noexcept;

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  ///< one per bound, then +Inf (== count)
    double sum = 0;
    std::uint64_t count = 0;
  };
  /// Sum over the shards (scrape path; allocates).
  Snapshot Collect() const;
  const std::vector<double>& bounds() const noexcept { return bounds_; }

 private:
  // Per shard: bounds_.size() + 1 bucket counts, then the sum (double bits); padded to lines.
  std::atomic<std::uint64_t>& Slot(std::size_t shard, std::size_t i) const noexcept {
    return lines_[shard * lines_per_shard_ + i / detail::kSlotsPerLine]
        .slot[i % detail::kSlotsPerLine];
  }

  std::vector<double> bounds_;
  std::size_t lines_per_shard_;
  std::unique_ptr<detail::Line[]> lines_;
};

/// Default latency buckets in seconds, 0.0005 .. 60 (request duration, time to first token).
std::vector<double> DefaultLatencyBuckets();

/// Metrics of one name sharing fixed label names; one child per distinct label-value tuple.
template <class T>
class Family final : public detail::Collector {
 public:
  /// Use Registry::Add*. `bounds` is only used by Family<Histogram>.
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds);

  /// The child for these label values (same count and order as label_names()), created on
  /// first use. The reference stays valid for the registry's lifetime: keep it, do not call
  /// With() per request. Throws std::invalid_argument on a wrong number of values.
  T& With(std::initializer_list<std::string_view> values);
  T& With(const std::vector<std::string>& values);

  const std::string& name() const noexcept { return name_; }
  const std::vector<std::string>& label_names() const noexcept { return label_names_; }
  std::size_t size() const;

  void Render(std::string& out) const override;

 private:
  struct Child {
    std::string labels;  ///< rendered `a="x",b="y"` (escaped), empty without labels
    std::unique_ptr<T> metric;
  };

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<Child> children_;                       // creation order
  std::map<std::vector<std::string>, T*> by_values_;  // lookup on the slow path
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

/// Owns every metric; Render() produces the /metrics body.
class Registry {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names);
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> label_names);
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names, std::vector<double> bounds);

  /// Unlabelled convenience: a family without labels and its only child.
  Counter& AddCounter(std::string name, std::string help);
  Gauge& AddGauge(std::string name, std::string help);
  Histogram& AddHistogram(std::string name, std::string help, std::vector<double> bounds);

  /// Unlabelled gauge / counter whose value is `fn()` evaluated at every Render() (under the
  /// registry's lock: `fn` must not call back into this registry).
  void AddGaugeCallback(std::string name, std::string help, std::function<double()> fn);
  void AddCounterCallback(std::string name, std::string help, std::function<double()> fn);

  /// A labelled gauge whose samples are `fn()` at every Render(), one per (label values,
  /// value) pair, each with one value per name in `label_names` (e.g. circuit states of the
  /// loaded policy's providers). An empty result renders the family with no samples.
  using Samples = std::vector<std::pair<std::vector<std::string>, double>>;
  void AddGaugeFamilyCallback(std::string name, std::string help,
                              std::vector<std::string> label_names, std::function<Samples()> fn);

  /// Info metric: renders `name{k="v",...} 1` as a gauge. The first call registers `name`;
  /// later calls with the same name replace help and labels (e.g. the loaded policy version).
  void SetInfo(const std::string& name, std::string help, const Labels& labels);

  /// Prometheus text exposition format 0.0.4.
  std::string Render() const;

 private:
  class CallbackMetric;
  class FamilyCallbackMetric;
  class InfoMetric;

  // Validates `name`, reserves it (and the _bucket/_sum/_count names of a histogram), and
  // validates label names. Caller holds mu_.
  void Reserve(const std::string& name, const std::vector<std::string>& label_names,
               bool histogram);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<detail::Collector>> collectors_;  // registration order
  std::set<std::string, std::less<>> sample_names_;
  std::map<std::string, InfoMetric*, std::less<>> infos_;
};

/// Prometheus name rules: metric [a-zA-Z_:][a-zA-Z0-9_:]*; label [a-zA-Z_][a-zA-Z0-9_]* and
/// not starting with "__" (reserved).
bool IsValidMetricName(std::string_view name) noexcept;
bool IsValidLabelName(std::string_view name) noexcept;

/// Escaping per the text format: label values escape \, " and newline; HELP escapes \ and
/// newline.
std::string EscapeLabelValue(std::string_view v);
std::string EscapeHelp(std::string_view v);

}  // namespace meridian::metrics
