#include "gateway/metrics.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <system_error>
#include <type_traits>

namespace meridian::metrics {

namespace detail {

std::size_t NextShard() noexcept {
  static std::atomic<std::size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed) % kShards;
}

}  // namespace detail

namespace {

void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  // Shortest round-trip digits, laid out like Go's strconv.FormatFloat(v, 'g', -1, 64) (what
  // the Go client writes): scientific ("1e-05", "1.5e+06") when the decimal exponent is < -4 or
  // >= 6, else fixed ("0.0005", "123456"). Keeps `le` values identical to other exporters'.
  char buf[64];
  const auto sci = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const std::string_view s(buf, static_cast<std::size_t>(sci.ptr - buf));
  const std::size_t e = s.find('e');
  int exp = 0;
  std::from_chars(s.data() + e + (s[e + 1] == '+' ? 2 : 1), s.data() + s.size(), exp);
  if (exp < -4 || exp >= 6) {
    out += s;
    return;
  }
  const auto fixed = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  out.append(buf, fixed.ptr);
}

template <class Int>
void AppendInt(std::string& out, Int v) {
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

void AppendHeader(std::string& out, std::string_view name, std::string_view help,
                  std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += EscapeHelp(help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

/// `name{labels} ` (braces omitted when labels is empty); the caller appends the value.
void AppendSampleStart(std::string& out, std::string_view name, std::string_view suffix,
                       std::string_view labels) {
  out += name;
  out += suffix;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
}

void AppendLabelPair(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out += ',';
  out += name;
  out += "=\"";
  out += EscapeLabelValue(value);
  out += '"';
}

void ValidateBounds(const std::vector<double>& bounds) {
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      throw std::invalid_argument("histogram bucket bounds must be finite (+Inf is implicit)");
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      throw std::invalid_argument("histogram bucket bounds must be strictly increasing");
    }
  }
}

void ValidateLabelNames(const std::string& name, const std::vector<std::string>& label_names,
                        bool histogram) {
  std::set<std::string_view> seen;
  for (const std::string& l : label_names) {
    if (!IsValidLabelName(l)) {
      throw std::invalid_argument("metric " + name + ": invalid label name: " + l);
    }
    if (histogram && l == "le") {
      throw std::invalid_argument("histogram " + name + ": label name \"le\" is reserved");
    }
    if (!seen.insert(l).second) {
      throw std::invalid_argument("metric " + name + ": duplicate label name: " + l);
    }
  }
}

void RenderChild(std::string& out, std::string_view name, std::string_view labels,
                 const Counter& c) {
  AppendSampleStart(out, name, "", labels);
  AppendInt(out, c.Value());
  out += '\n';
}

void RenderChild(std::string& out, std::string_view name, std::string_view labels, const Gauge& g) {
  AppendSampleStart(out, name, "", labels);
  AppendInt(out, g.Value());
  out += '\n';
}

void RenderChild(std::string& out, std::string_view name, std::string_view labels,
                 const Histogram& h) {
  const Histogram::Snapshot snap = h.Collect();
  const std::vector<double>& bounds = h.bounds();
  std::string bucket_labels;
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    bucket_labels.assign(labels);
    if (!bucket_labels.empty()) bucket_labels += ',';
    bucket_labels += "le=\"";
    if (i < bounds.size()) {
      AppendDouble(bucket_labels, bounds[i]);
    } else {
      bucket_labels += "+Inf";
    }
    bucket_labels += '"';
    AppendSampleStart(out, name, "_bucket", bucket_labels);
    AppendInt(out, snap.cumulative[i]);
    out += '\n';
  }
  AppendSampleStart(out, name, "_sum", labels);
  AppendDouble(out, snap.sum);
  out += '\n';
  AppendSampleStart(out, name, "_count", labels);
  AppendInt(out, snap.count);
  out += '\n';
}

template <class T>
constexpr std::string_view TypeName() {
  if constexpr (std::is_same_v<T, Counter>) {
    return "counter";
  } else if constexpr (std::is_same_v<T, Gauge>) {
    return "gauge";
  } else {
    return "histogram";
  }
}

}  // namespace

// ---- names and escaping ----

bool IsValidMetricName(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) noexcept {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

namespace {

// Backslash and newline always; the double quote only inside label values.
std::string Escape(std::string_view v, bool quote) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string EscapeLabelValue(std::string_view v) {
  return Escape(v, true);
}

std::string EscapeHelp(std::string_view v) {
  return Escape(v, false);
}

// ---- metrics ----

std::uint64_t Counter::Value() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& s : shards_) sum += s.value.load(std::memory_order_relaxed);
  return sum;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_((ValidateBounds(bounds), std::move(bounds))),
      lines_per_shard_((bounds_.size() + 2 + detail::kSlotsPerLine - 1) / detail::kSlotsPerLine),
      lines_(std::make_unique<detail::Line[]>(kShards * lines_per_shard_)) {}

void Histogram::Observe(double v) noexcept {
  // First bound with v <= bound; NaN compares false everywhere and lands in +Inf.
  std::size_t bucket = bounds_.size();
  if (!std::isnan(v)) {
    bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                      bounds_.begin());
  }
  const std::size_t shard = detail::ThisThreadShard();
  Slot(shard, bucket).fetch_add(1, std::memory_order_relaxed);
  // The sum slot is written by this shard's threads only (usually one): the CAS rarely retries.
  std::atomic<std::uint64_t>& sum = Slot(shard, bounds_.size() + 1);
  std::uint64_t old = sum.load(std::memory_order_relaxed);
  while (!sum.compare_exchange_weak(old,
                                    std::bit_cast<std::uint64_t>(std::bit_cast<double>(old) + v),
                                    std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot snap;
  const std::size_t n = bounds_.size() + 1;
  snap.cumulative.assign(n, 0);
  for (std::size_t s = 0; s < kShards; ++s) {
    for (std::size_t i = 0; i < n; ++i) {
      snap.cumulative[i] += Slot(s, i).load(std::memory_order_relaxed);
    }
    snap.sum += std::bit_cast<double>(Slot(s, n).load(std::memory_order_relaxed));
  }
  for (std::size_t i = 1; i < n; ++i) snap.cumulative[i] += snap.cumulative[i - 1];
  snap.count = snap.cumulative[n - 1];
  return snap;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

// ---- Family ----

template <class T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {
  if constexpr (std::is_same_v<T, Histogram>) ValidateBounds(bounds_);
}

template <class T>
T& Family<T>::With(std::initializer_list<std::string_view> values) {
  std::vector<std::string> v;
  v.reserve(values.size());
  for (const std::string_view s : values) v.emplace_back(s);
  return With(v);
}

template <class T>
T& Family<T>::With(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument("metric " + name_ + ": expected " +
                                std::to_string(label_names_.size()) + " label values, got " +
                                std::to_string(values.size()));
  }
  const std::lock_guard lock(mu_);
  if (const auto it = by_values_.find(values); it != by_values_.end()) return *it->second;
  Child child;
  for (std::size_t i = 0; i < values.size(); ++i) {
    AppendLabelPair(child.labels, label_names_[i], values[i]);
  }
  if constexpr (std::is_same_v<T, Histogram>) {
    child.metric = std::make_unique<Histogram>(bounds_);
  } else {
    child.metric = std::make_unique<T>();
  }
  T& ref = *child.metric;
  children_.push_back(std::move(child));
  by_values_.emplace(values, &ref);
  return ref;
}

template <class T>
std::size_t Family<T>::size() const {
  const std::lock_guard lock(mu_);
  return children_.size();
}

template <class T>
void Family<T>::Render(std::string& out) const {
  const std::lock_guard lock(mu_);
  if (children_.empty()) return;
  AppendHeader(out, name_, help_, TypeName<T>());
  for (const Child& c : children_) RenderChild(out, name_, c.labels, *c.metric);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- Registry ----

class Registry::CallbackMetric final : public detail::Collector {
 public:
  CallbackMetric(std::string name, std::string help, std::string_view type,
                 std::function<double()> fn)
      : name_(std::move(name)), help_(std::move(help)), type_(type), fn_(std::move(fn)) {}

  void Render(std::string& out) const override {
    AppendHeader(out, name_, help_, type_);
    AppendSampleStart(out, name_, "", "");
    AppendDouble(out, fn_());
    out += '\n';
  }

 private:
  std::string name_;
  std::string help_;
  std::string_view type_;
  std::function<double()> fn_;
};

class Registry::FamilyCallbackMetric final : public detail::Collector {
 public:
  FamilyCallbackMetric(std::string name, std::string help, std::vector<std::string> label_names,
                       std::function<Samples()> fn)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        fn_(std::move(fn)) {}

  void Render(std::string& out) const override {
    AppendHeader(out, name_, help_, "gauge");
    std::string labels;
    for (const auto& [values, value] : fn_()) {
      if (values.size() != label_names_.size()) continue;  // a caller's mistake: skipped
      labels.clear();
      for (std::size_t i = 0; i < values.size(); ++i) {
        AppendLabelPair(labels, label_names_[i], values[i]);
      }
      AppendSampleStart(out, name_, "", labels);
      AppendDouble(out, value);
      out += '\n';
    }
  }

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::function<Samples()> fn_;
};

class Registry::InfoMetric final : public detail::Collector {
 public:
  explicit InfoMetric(std::string name) : name_(std::move(name)) {}

  // Both called under the registry's mutex.
  void Set(std::string help, const Labels& labels) {
    help_ = std::move(help);
    labels_.clear();
    for (const auto& [k, v] : labels) AppendLabelPair(labels_, k, v);
  }
  void Render(std::string& out) const override {
    AppendHeader(out, name_, help_, "gauge");
    AppendSampleStart(out, name_, "", labels_);
    out += "1\n";
  }

 private:
  std::string name_;
  std::string help_;
  std::string labels_;
};

Registry::Registry() = default;
Registry::~Registry() = default;

void Registry::Reserve(const std::string& name, const std::vector<std::string>& label_names,
                       bool histogram) {
  if (!IsValidMetricName(name)) throw std::invalid_argument("invalid metric name: " + name);
  ValidateLabelNames(name, label_names, histogram);
  std::vector<std::string> names{name};
  if (histogram) {
    names.push_back(name + "_bucket");
    names.push_back(name + "_sum");
    names.push_back(name + "_count");
  }
  for (const std::string& n : names) {
    if (sample_names_.contains(n)) {
      throw std::invalid_argument("duplicate metric name: " + n + " (registering " + name + ")");
    }
  }
  sample_names_.insert(names.begin(), names.end());
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  const std::lock_guard lock(mu_);
  Reserve(name, label_names, false);
  auto f = std::make_unique<Family<Counter>>(std::move(name), std::move(help),
                                             std::move(label_names), std::vector<double>{});
  Family<Counter>& ref = *f;
  collectors_.push_back(std::move(f));
  return ref;
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  const std::lock_guard lock(mu_);
  Reserve(name, label_names, false);
  auto f = std::make_unique<Family<Gauge>>(std::move(name), std::move(help), std::move(label_names),
                                           std::vector<double>{});
  Family<Gauge>& ref = *f;
  collectors_.push_back(std::move(f));
  return ref;
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds) {
  const std::lock_guard lock(mu_);
  ValidateBounds(bounds);
  Reserve(name, label_names, true);
  auto f = std::make_unique<Family<Histogram>>(std::move(name), std::move(help),
                                               std::move(label_names), std::move(bounds));
  Family<Histogram>& ref = *f;
  collectors_.push_back(std::move(f));
  return ref;
}

Counter& Registry::AddCounter(std::string name, std::string help) {
  return AddCounter(std::move(name), std::move(help), std::vector<std::string>{}).With({});
}

Gauge& Registry::AddGauge(std::string name, std::string help) {
  return AddGauge(std::move(name), std::move(help), std::vector<std::string>{}).With({});
}

Histogram& Registry::AddHistogram(std::string name, std::string help, std::vector<double> bounds) {
  return AddHistogram(std::move(name), std::move(help), std::vector<std::string>{},
                      std::move(bounds))
      .With({});
}

void Registry::AddGaugeCallback(std::string name, std::string help, std::function<double()> fn) {
  if (!fn) throw std::invalid_argument("metric " + name + ": empty callback");
  const std::lock_guard lock(mu_);
  Reserve(name, {}, false);
  collectors_.push_back(
      std::make_unique<CallbackMetric>(std::move(name), std::move(help), "gauge", std::move(fn)));
}

void Registry::AddGaugeFamilyCallback(std::string name, std::string help,
                                      std::vector<std::string> label_names,
                                      std::function<Samples()> fn) {
  if (!fn) throw std::invalid_argument("metric " + name + ": empty callback");
  const std::lock_guard lock(mu_);
  Reserve(name, label_names, false);
  collectors_.push_back(std::make_unique<FamilyCallbackMetric>(
      std::move(name), std::move(help), std::move(label_names), std::move(fn)));
}

void Registry::AddCounterCallback(std::string name, std::string help, std::function<double()> fn) {
  if (!fn) throw std::invalid_argument("metric " + name + ": empty callback");
  const std::lock_guard lock(mu_);
  Reserve(name, {}, false);
  collectors_.push_back(
      std::make_unique<CallbackMetric>(std::move(name), std::move(help), "counter", std::move(fn)));
}

void Registry::SetInfo(const std::string& name, std::string help, const Labels& labels) {
  std::vector<std::string> label_names;
  label_names.reserve(labels.size());
  for (const auto& kv : labels) label_names.push_back(kv.first);
  const std::lock_guard lock(mu_);
  if (const auto it = infos_.find(name); it != infos_.end()) {
    ValidateLabelNames(name, label_names, false);  // the name is already reserved
    it->second->Set(std::move(help), labels);
    return;
  }
  Reserve(name, label_names, false);
  auto info = std::make_unique<InfoMetric>(name);
  info->Set(std::move(help), labels);
  infos_.emplace(name, info.get());
  collectors_.push_back(std::move(info));
}

std::string Registry::Render() const {
  std::string out;
  const std::lock_guard lock(mu_);
  for (const auto& c : collectors_) c->Render(out);
  return out;
}

}  // namespace meridian::metrics
