// Generic reading of operator YAML files (policy, tests, gateway config): loading with the
// safety checks yaml-cpp lacks, reading mappings through key tables, typed getters, and
// FILE:LINE:COL error reporting. Schema readers build on YamlReader and add only their keys.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "config/file_diagnostic.h"
#include "policy/spec.h"

namespace meridian::config {

/// The 1-based position of a yaml-cpp mark; an unknown mark gives the unknown position.
policy::SourcePos ToPos(const YAML::Mark& mark);

/// `name` in single quotes, as messages quote keys and values.
std::string Quoted(std::string_view name);

/// Reads the whole file at `path` into `out`. When it cannot (missing, unreadable, a
/// directory), appends an error without a position and returns false. `file_kind` names the
/// expected file in messages ("gateway config").
bool ReadFileText(const std::string& path, std::string_view file_kind, std::string& out,
                  std::vector<FileDiagnostic>& errors);

/// True for key names under which operators habitually paste credentials (api_key, apiKey,
/// API-KEY, token, secret, password, ...), so loaders can say where the secret belongs
/// instead of "unknown key".
bool IsSecretKeyName(std::string_view key);

/// One `key: value` of a mapping, with the positions errors about it point at.
struct YamlEntry {
  YAML::Node key;
  YAML::Node value;
  std::string name;
  policy::SourcePos key_pos;
  /// The value's position; an empty value (`id:`) has no text of its own, and yaml-cpp marks
  /// it at the next token, possibly lines further down, so it points at the key instead.
  policy::SourcePos pos;
};

YamlEntry MakeEntry(const YAML::Node& key, const YAML::Node& value);

/// Reads one file's YAML tree, collecting every error instead of stopping at the first. Each
/// mapping is read through a table of Fields, which is the single list of keys that mapping
/// accepts: it drives unknown-key errors ("expected one of: ..."), required-key checks and the
/// reading. Schema readers derive from this class (or hold one) and add only their schema.
class YamlReader {
 public:
  using Handler = std::function<void(const YamlEntry&)>;
  using ItemHandler = std::function<void(const YAML::Node& item, policy::SourcePos pos)>;
  /// Returns true when it reported the key itself (instead of the generic unknown-key error).
  using UnknownKeyHook = std::function<bool(const YamlEntry&)>;

  /// One key a mapping accepts.
  struct Field {
    std::string_view key;
    Handler read;
    bool required = false;
  };
  using Fields = std::vector<Field>;

  static constexpr bool kRequired = true;

  /// Errors are appended to `errors`, attributed to `file`; both must outlive the reader.
  YamlReader(const std::string& file, std::vector<FileDiagnostic>& errors)
      : file_(file), errors_(errors) {}

  /// Loads `text` and calls `read` with its root mapping. Before `read` runs, the document is
  /// checked: it parses, is a single non-empty document whose root is a mapping, stays within
  /// kMaxYamlDepth / kMaxYamlNodes (so later walks cannot loop on alias cycles), and has no
  /// unclosed quote or stray tag. `file_kind` names the file in messages ("policy file").
  /// Never throws: an exception from yaml-cpp or `read` becomes an error of the file. Errors
  /// added by this call are sorted by position, so the report reads top to bottom.
  void ReadDocument(std::string_view text, std::string_view file_kind,
                    const std::function<void(const YAML::Node& root)>& read);

  const std::string& file() const { return file_; }
  void Error(policy::SourcePos pos, std::string message);

  /// "a, b, c": the keys of a table, for messages.
  static std::string KeyList(const Fields& fields);

  /// Calls `fn` for each entry of `map` in file order. Reports (and skips) duplicate keys,
  /// non-scalar keys and YAML merge keys; the first occurrence of a repeated key counts.
  void ForEachEntry(const YAML::Node& map, const Handler& fn);
  /// Reads `map` through `fields`: unknown keys are reported (unless `unknown` reports them),
  /// then missing required keys at `pos`. `what` names the mapping in messages.
  void ReadFields(const YAML::Node& map, policy::SourcePos pos, std::string_view what,
                  const Fields& fields, const UnknownKeyHook& unknown = {});
  /// Reports unless the entry's value is a mapping.
  bool ExpectMapping(const YamlEntry& e);
  /// ReadFields on the entry's value, after checking it is a mapping.
  void ReadSubFields(const YamlEntry& e, std::string_view what, const Fields& fields);
  /// Calls `fn` for each item of a list value; reports a value that is not a list.
  void ForEachItem(const YamlEntry& e, const ItemHandler& fn);
  /// Reports unless `item` (of the list `list`) is a mapping.
  bool ExpectMappingItem(const YamlEntry& list, const YAML::Node& item, policy::SourcePos pos);

  // Typed getters: each reports a wrongly typed value at its position and returns false.
  // Strings take any scalar as written; booleans and integers follow YamlToJson's typing.

  bool Read(const YamlEntry& e, policy::LocatedString& out);
  bool Read(const YamlEntry& e, std::optional<policy::LocatedString>& out);
  bool Read(const YamlEntry& e, std::optional<policy::Located<bool>>& out);
  bool Read(const YamlEntry& e, std::optional<policy::Located<std::int64_t>>& out);
  /// A list of strings, or a single string standing for a one-item list.
  bool Read(const YamlEntry& e, policy::StringList& out);
  bool Read(const YamlEntry& e, std::optional<policy::StringList>& out);
  bool Read(const YamlEntry& e, bool& out);
  /// An integer within [min, max]; "'key' must be between min and max" otherwise.
  bool ReadInt(const YamlEntry& e, std::int64_t min, std::int64_t max, std::int64_t& out);

  /// A Handler that reads the entry into `out` with the matching Read overload.
  template <class T>
  Handler Into(T& out) {
    return [this, &out](const YamlEntry& e) { Read(e, out); };
  }

  /// A Handler that reads an integer within [min, max] into `out`.
  template <class T>
  requires std::is_integral_v<T> Handler IntIn(T& out, std::int64_t min, std::int64_t max) {
    return [this, &out, min, max](const YamlEntry& e) {
      std::int64_t value = 0;
      if (ReadInt(e, min, max, value)) {
        out = static_cast<T>(value);
      }
    };
  }

  /// A section left empty (all its items commented out) is an empty section: `read` is
  /// skipped for a null value.
  static Handler Section(Handler read);

 private:
  std::optional<YAML::Node> Load(std::string_view text, std::string_view file_kind);
  bool CheckTree(const YAML::Node& node, int depth, std::size_t& count);
  bool CheckScalar(const YAML::Node& node);

  const std::string& file_;
  std::vector<FileDiagnostic>& errors_;
  std::string_view text_;  ///< the document being loaded (for checks yaml-cpp skips)
};

}  // namespace meridian::config
