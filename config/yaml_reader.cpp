#include "config/yaml_reader.h"

#include <yaml-cpp/depthguard.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "config/yaml_json.h"
#include "policy/suggest.h"

namespace meridian::config {

using policy::Located;
using policy::LocatedString;
using policy::SourcePos;
using policy::StringList;

namespace {

// Compared after lower-casing and dropping '_' and '-', so API_KEY, apiKey and api-key are all
// caught.
constexpr std::array<std::string_view, 7> kSecretKeys = {
    "apikey", "key", "secret", "token", "password", "authorization", "bearer"};

}  // namespace

std::string FormatDiagnostic(const FileDiagnostic& d) {
  if (d.pos.line == 0) {
    return d.file + ": " + d.message;
  }
  return d.file + ":" + std::to_string(d.pos.line) + ":" + std::to_string(d.pos.column) + ": " +
         d.message;
}

bool ReadFileText(const std::string& path, std::string_view file_kind, std::string& out,
                  std::vector<FileDiagnostic>& errors) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    errors.push_back({path, {}, "is a directory, not a " + std::string(file_kind)});
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back({path, {}, std::string("cannot read: ") + std::strerror(errno)});
    return false;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  out = std::move(buf).str();
  return true;
}

bool IsSecretKeyName(std::string_view key) {
  std::string normalized;
  for (const char c : key) {
    if (c == '_' || c == '-') {
      continue;
    }
    normalized += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return std::find(kSecretKeys.begin(), kSecretKeys.end(), normalized) != kSecretKeys.end();
}

SourcePos ToPos(const YAML::Mark& mark) {
  // yaml-cpp marks are 0-based; a null mark (-1) has no position.
  if (mark.line < 0 || mark.column < 0) {
    return {};
  }
  return {static_cast<std::uint32_t>(mark.line) + 1, static_cast<std::uint32_t>(mark.column) + 1};
}

std::string Quoted(std::string_view name) {
  return "'" + std::string(name) + "'";
}

YamlEntry MakeEntry(const YAML::Node& key, const YAML::Node& value) {
  YamlEntry e{key, value, key.IsScalar() ? key.Scalar() : std::string(), ToPos(key.Mark()), {}};
  e.pos = value.IsNull() ? e.key_pos : ToPos(value.Mark());
  return e;
}

void YamlReader::Error(SourcePos pos, std::string message) {
  errors_.push_back({file_, pos, std::move(message)});
}

std::string YamlReader::KeyList(const Fields& fields) {
  std::string keys;
  for (const Field& f : fields) {
    keys += (keys.empty() ? "" : ", ") + std::string(f.key);
  }
  return keys;
}

YamlReader::Handler YamlReader::Section(Handler read) {
  return [read = std::move(read)](const YamlEntry& e) {
    if (!e.value.IsNull()) {
      read(e);
    }
  };
}

// yaml-cpp reports misuse by throwing; nothing may escape a loader, so any exception that
// gets this far is reported as an error of the file. Errors come from several passes (keys,
// then required keys, then cross-checks); sorting them by position makes the report read top
// to bottom like the file.
void YamlReader::ReadDocument(std::string_view text, std::string_view file_kind,
                              const std::function<void(const YAML::Node& root)>& read) {
  const std::size_t first = errors_.size();
  try {
    if (const std::optional<YAML::Node> root = Load(text, file_kind)) {
      read(*root);
    }
  } catch (const std::exception& e) {
    Error({}, std::string("internal error while reading the file: ") + e.what());
  } catch (...) {
    Error({}, "internal error while reading the file");
  }
  std::stable_sort(errors_.begin() + static_cast<std::ptrdiff_t>(first), errors_.end(),
                   [](const FileDiagnostic& a, const FileDiagnostic& b) {
                     return std::pair(a.pos.line, a.pos.column) <
                            std::pair(b.pos.line, b.pos.column);
                   });
}

namespace {

bool IsBlankOrComment(std::string_view line) {
  const auto first = line.find_first_not_of(" \t\r");
  return first == std::string_view::npos || line[first] == '#';
}

bool IsDocumentMarker(std::string_view line) {
  return line.starts_with("---") &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
}

/// Where a second YAML document starts: the first content after a `---` marker that follows
/// content. A `---` line at column 0 is always a document marker in YAML.
std::optional<SourcePos> SecondDocument(std::string_view text) {
  bool content = false;
  bool after_marker = false;
  std::uint32_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (IsDocumentMarker(line)) {
      if (content) after_marker = true;
      continue;
    }
    if (IsBlankOrComment(line) || line.starts_with("%")) continue;
    if (after_marker) return SourcePos{line_no, 1};
    content = true;
  }
  return std::nullopt;
}

}  // namespace

std::optional<YAML::Node> YamlReader::Load(std::string_view text, std::string_view file_kind) {
  text_ = text;
  std::vector<YAML::Node> docs;
  try {
    // Not YAML::LoadAll: yaml-cpp 0.7's LoadAll never returns on some malformed input (a file
    // holding just ",") while allocating without bound. Load reads the first document only;
    // a second one is found by its marker below.
    docs.push_back(YAML::Load(std::string(text)));
    if (auto second = SecondDocument(text)) {
      Error(*second, "the " + std::string(file_kind) +
                         " must hold a single YAML document, but a second one starts here "
                         "(after '---')");
      return std::nullopt;
    }
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file", which tells the operator nothing.
    Error(ToPos(e.mark), "invalid YAML: values are nested too deeply");
    return std::nullopt;
  } catch (const YAML::ParserException& e) {
    // yaml-cpp names a tab in the indentation only by its consequence ("illegal block
    // entry", "illegal map value"): name the tab, on the first line before the error that has one.
    const SourcePos at = ToPos(e.mark);
    std::uint32_t line_no = 0;
    for (std::string_view rest = text; !rest.empty() && line_no < at.line;) {
      ++line_no;
      const auto nl = rest.find('\n');
      const std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
      const auto first = line.find_first_not_of(" \t");
      const auto tab = line.substr(0, first).find('\t');
      if (tab != std::string_view::npos) {
        Error({line_no, static_cast<std::uint32_t>(tab + 1)},
              "invalid YAML: a tab in the indentation (YAML indents with spaces only)");
        return std::nullopt;
      }
    }
    Error(at, "invalid YAML: " + e.msg);
    return std::nullopt;
  }
  const std::string kind(file_kind);
  if (docs.empty() || docs.front().IsNull()) {
    // yaml-cpp reads some malformed text (e.g. a leading ",") as an empty document; say where
    // the content is rather than calling a non-empty file empty.
    std::uint32_t line_no = 0;
    for (std::string_view rest = text; !rest.empty();) {
      ++line_no;
      const auto nl = rest.find('\n');
      const std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
      if (!IsBlankOrComment(line) && !IsDocumentMarker(line) && !line.starts_with("%")) {
        Error({line_no, 1}, "invalid YAML: no value could be read here");
        return std::nullopt;
      }
    }
    Error({}, "the " + kind + " is empty");
    return std::nullopt;
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

// Bounds every later walk (see kMaxYamlDepth): with this checked, reading nested values and
// converting them to JSON cannot loop on a self-referencing alias or expand without limit.
bool YamlReader::CheckTree(const YAML::Node& node, int depth, std::size_t& count) {
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

// yaml-cpp 0.7 accepts two things the YAML spec rejects, and both silently change a file: an
// unclosed quote swallows the rest of the file into one string (dropping every entry after
// it), and `!= none` unquoted is read as a tag `!=` on the value `none`.
bool YamlReader::CheckScalar(const YAML::Node& node) {
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
void YamlReader::ForEachEntry(const YAML::Node& map, const Handler& fn) {
  std::map<std::string, std::uint32_t, std::less<>> first_line;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YamlEntry e = MakeEntry(it->first, it->second);
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

void YamlReader::ReadFields(const YAML::Node& map, SourcePos pos, std::string_view what,
                            const Fields& fields, const UnknownKeyHook& unknown) {
  std::vector<bool> present(fields.size(), false);
  ForEachEntry(map, [&](const YamlEntry& e) {
    const auto field =
        std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == e.name; });
    if (field == fields.end()) {
      if (unknown && unknown(e)) {
        return;
      }
      std::vector<std::string> keys;
      for (const Field& f : fields) keys.emplace_back(f.key);
      const std::string closest = policy::ClosestName(e.name, keys);
      Error(e.key_pos, "unknown key " + Quoted(e.name) + " in " + std::string(what) +
                           (closest.empty() ? "" : "; did you mean " + Quoted(closest) + "?") +
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

bool YamlReader::ExpectMapping(const YamlEntry& e) {
  if (!e.value.IsMap()) {
    Error(e.pos, Quoted(e.name) + " must be a mapping");
    return false;
  }
  return true;
}

void YamlReader::ReadSubFields(const YamlEntry& e, std::string_view what, const Fields& fields) {
  if (ExpectMapping(e)) {
    ReadFields(e.value, e.pos, what, fields);
  }
}

void YamlReader::ForEachItem(const YamlEntry& e, const ItemHandler& fn) {
  if (!e.value.IsSequence()) {
    Error(e.pos, Quoted(e.name) + " must be a list");
    return;
  }
  for (const YAML::Node& item : e.value) {
    fn(item, ToPos(item.Mark()));
  }
}

bool YamlReader::ExpectMappingItem(const YamlEntry& list, const YAML::Node& item, SourcePos pos) {
  if (!item.IsMap()) {
    Error(pos, "each item of " + Quoted(list.name) + " must be a mapping");
    return false;
  }
  return true;
}

// String fields take any scalar as written, so `api_version: 2024-10-21` and
// `meter: {sensitive: 10000}` read as text without quoting.
bool YamlReader::Read(const YamlEntry& e, LocatedString& out) {
  if (!e.value.IsScalar()) {
    Error(e.pos, Quoted(e.name) + " must be a string");
    return false;
  }
  out = {e.value.Scalar(), e.pos};
  return true;
}

bool YamlReader::Read(const YamlEntry& e, std::optional<LocatedString>& out) {
  LocatedString value;
  if (!Read(e, value)) {
    return false;
  }
  out = std::move(value);
  return true;
}

// Booleans and integers follow YamlToJson's typing, so a file value and a test request value
// written the same way mean the same thing (`"true"` is text in both).
bool YamlReader::Read(const YamlEntry& e, std::optional<Located<bool>>& out) {
  const boost::json::value v = e.value.IsScalar() ? YamlToJson(e.value) : nullptr;
  if (!v.is_bool()) {
    Error(e.pos, Quoted(e.name) + " must be true or false");
    return false;
  }
  out = Located<bool>{v.get_bool(), e.pos};
  return true;
}

bool YamlReader::Read(const YamlEntry& e, bool& out) {
  std::optional<Located<bool>> value;
  if (!Read(e, value)) {
    return false;
  }
  out = value->value;
  return true;
}

bool YamlReader::Read(const YamlEntry& e, std::optional<Located<std::int64_t>>& out) {
  const boost::json::value v = e.value.IsScalar() ? YamlToJson(e.value) : nullptr;
  if (!v.is_int64()) {
    Error(e.pos, Quoted(e.name) + " must be an integer");
    return false;
  }
  out = Located<std::int64_t>{v.get_int64(), e.pos};
  return true;
}

bool YamlReader::ReadInt(const YamlEntry& e, std::int64_t min, std::int64_t max,
                         std::int64_t& out) {
  std::optional<Located<std::int64_t>> value;
  if (!Read(e, value)) {
    return false;
  }
  if (value->value < min || value->value > max) {
    Error(e.pos, Quoted(e.name) + " must be between " + std::to_string(min) + " and " +
                     std::to_string(max) + " (got " + std::to_string(value->value) + ")");
    return false;
  }
  out = value->value;
  return true;
}

bool YamlReader::Read(const YamlEntry& e, StringList& out) {
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

bool YamlReader::Read(const YamlEntry& e, std::optional<StringList>& out) {
  StringList list;
  if (!Read(e, list)) {
    return false;
  }
  out = std::move(list);
  return true;
}

}  // namespace meridian::config
