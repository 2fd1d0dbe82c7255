#include "policy/matrix.h"

#include <algorithm>
#include <boost/json.hpp>
#include <optional>

#include "policy/decide.h"
#include "policy/explain.h"
#include "policy/model.h"

namespace meridian::policy {

namespace json = boost::json;

namespace {

std::vector<MatrixCell> RowCells(const SnapshotPtr& snapshot, std::string_view tenant,
                                 std::string_view model, std::optional<RegionCode> region,
                                 std::string_view city) {
  std::vector<MatrixCell> cells;
  std::vector<std::optional<DataClass>> classes;
  for (std::size_t i = 0; i < kDataClassNames.size(); ++i) {
    classes.emplace_back(static_cast<DataClass>(i));
  }
  classes.emplace_back(std::nullopt);
  for (const std::optional<DataClass>& c : classes) {
    RequestAttributes a;
    a.tenant = tenant;
    a.region = region;
    a.region_source = region ? RegionSource::kTenantBinding : RegionSource::kUnknown;
    a.city = city;
    a.data_class = c;
    a.model = model;
    MatrixCell cell;
    cell.data_class = c ? std::string(Name(*c)) : std::string();
    cell.outcome = OutcomeOf(Decide(a, snapshot));
    cells.push_back(std::move(cell));
  }
  return cells;
}

bool SameCells(const MatrixRow& a, const MatrixRow& b) {
  for (std::size_t i = 0; i < a.cells.size(); ++i) {
    if (!(a.cells[i].outcome == b.cells[i].outcome)) return false;
  }
  return a.cells.size() == b.cells.size();
}

}  // namespace

Matrix ResidencyMatrix(const SnapshotPtr& snapshot, std::string_view tenant,
                       std::string_view model) {
  Matrix m;
  m.tenant = std::string(tenant);
  m.model = std::string(model);
  std::vector<std::string> cities;
  for (const auto& [name, id] : snapshot->city_ids) cities.push_back(name);
  std::sort(cities.begin(), cities.end());
  const Snapshot* const one[] = {snapshot.get()};
  std::vector<RegionClass> classes = RegionClasses(one);
  classes.push_back(RegionClass{{"unknown"}, false});
  for (const RegionClass& c : classes) {
    MatrixRow row;
    row.codes = c.codes;
    // The EU as one place stands for the EEA codes a policy names alongside it.
    if (const auto eu = std::find(row.codes.begin(), row.codes.end(), "EU");
        eu != row.codes.end()) {
      std::rotate(row.codes.begin(), eu, eu + 1);
    }
    row.region = row.codes.front();
    row.unnamed = c.unnamed;
    const std::optional<RegionCode> code =
        row.region == "unknown" ? std::nullopt : RegionCode::Parse(row.region);
    row.cells = RowCells(snapshot, tenant, model, code, "");
    std::vector<MatrixRow> city_rows;
    for (const std::string& city : cities) {
      MatrixRow r;
      r.region = row.region;
      r.codes = row.codes;
      r.unnamed = row.unnamed;
      r.city = city;
      r.cities = {city};
      r.cells = RowCells(snapshot, tenant, model, code, city);
      if (SameCells(r, row)) continue;
      const auto alike = std::find_if(city_rows.begin(), city_rows.end(),
                                      [&](const MatrixRow& o) { return SameCells(o, r); });
      if (alike != city_rows.end()) {
        alike->cities.push_back(city);
      } else {
        city_rows.push_back(std::move(r));
      }
    }
    m.rows.push_back(std::move(row));
    for (auto& r : city_rows) m.rows.push_back(std::move(r));
  }
  return m;
}

std::string MatrixJson(const Matrix& matrix, const Snapshot& snapshot) {
  json::object out;
  out["policy_version"] = snapshot.version;
  out["tenant"] = matrix.tenant;
  out["model"] = matrix.model;
  json::array classes;
  for (const auto n : kDataClassNames) classes.emplace_back(n);
  classes.emplace_back("");
  out["classes"] = std::move(classes);
  json::array providers;
  for (const Provider& p : snapshot.providers) {
    json::object o;
    o["id"] = p.id;
    o["kind"] = Name(p.kind);
    o["processing"] = p.processing ? p.processing->ToString() : "undeclared";
    o["storage"] = p.storage ? p.storage->ToString() : "undeclared";
    if (p.on_prem) o["on_prem"] = *p.on_prem;
    providers.push_back(std::move(o));
  }
  out["providers"] = std::move(providers);
  json::array rows;
  for (const MatrixRow& r : matrix.rows) {
    json::object row;
    row["region"] = r.region;
    row["codes"] = JsonStrings(r.codes);
    row["unnamed"] = r.unnamed;
    row["city"] = r.city;
    row["cities"] = JsonStrings(r.cities);
    json::array cells;
    for (const MatrixCell& c : r.cells) {
      json::object cell;
      cell["class"] = c.data_class;
      cell["allowed"] = c.outcome.allowed;
      cell["reason"] = c.outcome.reason;
      cell["rule"] = c.outcome.rule;
      cell["guards"] = JsonStrings(c.outcome.guards);
      cell["providers"] = JsonStrings(c.outcome.providers);
      cell["chosen"] = c.outcome.providers.empty() ? "" : c.outcome.providers.front();
      cells.push_back(std::move(cell));
    }
    row["cells"] = std::move(cells);
    rows.push_back(std::move(row));
  }
  out["rows"] = std::move(rows);
  return json::serialize(out);
}

}  // namespace meridian::policy
