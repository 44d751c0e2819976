#pragma once
// Declare-once configuration: each key is declared exactly once (name, type, default, help, valid
// range or choices, aliases) with an accessor into the config struct. From that single declaration
// come the defaults, YAML loading (sections + keys), `--section.key VALUE` flags, flat aliases,
// validation with precise errors, `--help`, and the resolved YAML dump.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace mpibert::config {

enum class ValueType { Bool, Int, Float, String };
const char* value_type_name(ValueType type);

// One declared key, type-erased over the config struct (void* is the struct the schema is for).
struct Field {
  std::string key;  // "section.name"
  ValueType type = ValueType::String;
  std::string help;
  std::string default_text;
  std::optional<double> min, max;             // numeric range, inclusive
  std::vector<std::string> choices;           // allowed strings (String fields)
  std::vector<std::string> aliases;           // flat flag names, e.g. "learning_rate"
  std::optional<std::string> implicit_value;  // value of a bare `--flag` (bools: "true")
  std::function<void(void*, const std::string&)> assign;  // canonical text -> member
  std::function<std::string(const void*)> format;         // member -> text

  Field& range(double lo, double hi) { min = lo; max = hi; return *this; }
  Field& at_least(double lo) { min = lo; return *this; }
  Field& one_of(std::vector<std::string> c) { choices = std::move(c); return *this; }
  Field& alias(const std::string& a) { aliases.push_back(a); return *this; }
  Field& implicit(const std::string& v) { implicit_value = v; return *this; }
};

// Levenshtein-nearest candidate within a small distance, or "".
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);

// What the command line held besides config keys.
struct ParsedArgs {
  std::vector<std::string> positionals;
  std::map<std::string, std::string> extras;  // program-specific flags: name -> value ("" when bare)
  bool help = false;
  std::string config_file;
};

// The type-erased machinery; Schema<Root> below adds the typed declaration.
class SchemaBase {
 public:
  const std::vector<Field>& fields() const { return fields_; }
  const Field* find(const std::string& key_or_alias) const;

  // Checks text against the field; returns canonical text or throws UsageError naming `where`
  // (e.g. "run.yaml: train.learning_rate" or "--learning_rate"), the value and what is valid.
  std::string validate(const Field& field, const std::string& text, const std::string& where) const;
  void set(void* root, const std::string& key_or_alias, const std::string& value, const std::string& where) const;
  std::string get(const void* root, const std::string& key) const;
  // Replaces a declared key's default (a program whose defaults differ from another's for a shared
  // key); the text is validated like any value.
  void set_default(const std::string& key, const std::string& value);
  void apply_defaults(void* root) const;
  // YAML: a mapping of sections to mappings of key: value. Unknown sections and keys are errors.
  void load_yaml_file(void* root, const std::string& path) const;
  void load_yaml_text(void* root, const std::string& text, const std::string& source) const;
  std::string to_yaml(const void* root) const;
  std::string help_text(const std::string& usage) const;
  // argv[0] is skipped. `--config FILE` is applied first, then the flags in order (flags override the
  // file). `extra_flags` maps program-specific flag names to whether they take a value.
  ParsedArgs parse_args(void* root, int argc, const char* const* argv,
                        const std::map<std::string, bool>& extra_flags = {}) const;

 protected:
  Field& add_field(Field field);

 private:
  std::vector<Field> fields_;
  std::map<std::string, size_t> index_;  // keys and aliases -> position
};

template <class Root>
class Schema : public SchemaBase {
 public:
  template <class T>
  Field& add(const std::string& key, T& (*access)(Root&), T default_value, const std::string& help) {
    Field f;
    f.key = key;
    f.help = help;
    if constexpr (std::is_same_v<T, bool>) {
      f.type = ValueType::Bool;
      f.implicit_value = "true";
    } else if constexpr (std::is_integral_v<T>) {
      f.type = ValueType::Int;
    } else if constexpr (std::is_floating_point_v<T>) {
      f.type = ValueType::Float;
    } else {
      static_assert(std::is_same_v<T, std::string>, "config fields are bool, integers, floats or strings");
      f.type = ValueType::String;
    }
    f.assign = [access](void* root, const std::string& text) { access(*static_cast<Root*>(root)) = parse<T>(text); };
    f.format = [access](const void* root) { return format<T>(access(*const_cast<Root*>(static_cast<const Root*>(root)))); };
    f.default_text = format<T>(default_value);
    return add_field(std::move(f));
  }

  Root defaults() const {
    Root root{};
    apply_defaults(&root);
    return root;
  }

 private:
  template <class T>
  static T parse(const std::string& text) {
    if constexpr (std::is_same_v<T, bool>) return text == "true";
    else if constexpr (std::is_integral_v<T>) return static_cast<T>(std::stoll(text));
    else if constexpr (std::is_floating_point_v<T>) return static_cast<T>(std::stod(text));
    else return text;
  }
  template <class T>
  static std::string format(const T& v) {
    if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
    else if constexpr (std::is_integral_v<T>) return std::to_string(v);
    else if constexpr (std::is_floating_point_v<T>) return format_float(static_cast<double>(v));
    else return v;
  }
  static std::string format_float(double v);
};

std::string format_float_shortest(double v);
template <class Root>
std::string Schema<Root>::format_float(double v) { return format_float_shortest(v); }

}  // namespace mpibert::config
