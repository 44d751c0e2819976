#pragma once
// Declare-once configuration: each key is declared exactly once (name, type, default, help, valid
// range or choices, aliases) with an accessor into the config struct. From that single declaration
// come the defaults, YAML loading (sections + keys), `--section.key VALUE` flags, flat aliases,
// validation with precise errors, `--help`, and the resolved YAML dump. A schema may also describe a
// flag-only command line (gaudi_spawn: flat keys, switches, repeatable flags, options then PROGRAM;
// see ArgsSyntax and options_help()).
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/error.h"

namespace mpibert::config {

// List: a repeatable flag; every occurrence adds to a std::vector member (Schema::add_list).
enum class ValueType { Bool, Int, Float, String, List };
const char* value_type_name(ValueType type);

// One declared key, type-erased over the config struct (void* is the struct the schema is for).
struct Field {
  std::string key;  // "section.name", or a flat "name" in flag-only schemas
  ValueType type = ValueType::String;
  std::string help;
  std::string default_text;
  std::optional<double> min, max;             // numeric range, inclusive
  std::vector<std::string> choices;           // allowed strings (String fields)
  std::vector<std::string> aliases;           // flat flag names, e.g. "learning_rate"
  std::optional<std::string> implicit_value;  // value of a bare `--flag` (bools: "true")
  bool optional = false;                      // a std::optional member: empty text means "not set"
  bool is_switch = false;   // only a bare `--flag`: `--flag=V` is an error, the next word is never its value
  std::string expected;     // replaces the generated "what is valid" text (errors and help)
  std::string unset_means;  // optional fields: what "not set" does, shown as the default in help
  std::string value_name;   // the value's name in options_help(): "--world_size N"
  std::function<bool(const std::string&)> accepts;        // extra check of the text, after the type's own
  std::function<void(void*, const std::string&)> assign;  // canonical text -> member (lists: append)
  std::function<std::string(const void*)> format;         // member -> text (lists: a YAML flow sequence)
  std::function<void(void*)> reset;                       // member -> its default when set (lists: empty)

  Field& range(double lo, double hi) {
    min = lo;
    max = hi;
    return *this;
  }
  Field& at_least(double lo) {
    min = lo;
    return *this;
  }
  Field& one_of(std::vector<std::string> c) {
    choices = std::move(c);
    return *this;
  }
  Field& alias(const std::string& a) {
    aliases.push_back(a);
    return *this;
  }
  Field& implicit(const std::string& v) {
    implicit_value = v;
    return *this;
  }
  Field& as_switch() {
    is_switch = true;
    return *this;
  }
  Field& expects(const std::string& what) {
    expected = what;
    return *this;
  }
  Field& satisfies(std::function<bool(const std::string&)> ok, const std::string& what) {
    accepts = std::move(ok);
    expected = what;
    return *this;
  }
  Field& when_unset(const std::string& what) {
    unset_means = what;
    return *this;
  }
  Field& value_named(const std::string& name) {
    value_name = name;
    return *this;
  }
};

// Levenshtein-nearest candidate within a small distance, or "".
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);

// ["a", "b c"]: texts as a YAML flow sequence of quoted strings (list fields' dumps).
std::string yaml_flow_list(const std::vector<std::string>& texts);

// How parse_args reads a command line. The defaults are run_mlm's and prepare_data's.
struct ArgsSyntax {
  bool config_file = true;  // `--config FILE` loads YAML before the flags are applied
  // `[options] PROGRAM [ARGS...]` (gaudi_spawn): the first word that is not an option, and every word
  // after it, are positionals, untouched. A word starting with '-' is then always an option attempt
  // (a PROGRAM starting with '-' follows `--`). Otherwise positionals may sit between flags, and a
  // word starting with a single '-' is a positional.
  bool stop_at_first_positional = false;
  // A flag that needs a value takes the next word even when it starts with '-' (getopt's rule:
  // `--mpirun_args --report-bindings`). Otherwise such a word is not taken and the flag lacks a value.
  bool value_always_next = false;
  bool dashes_as_underscores = false;  // `--world-size` means `--world_size`
  // Spellings of other tools, as typed, and the flag (without --) to suggest: {"-np", "world_size"}.
  std::map<std::string, std::string> foreign_spellings;
  // Said in parentheses after an unknown --option and its "did you mean".
  std::string unknown_option_note = "--help lists every option";
  // Program-specific flags: name -> whether it takes a value. They land in ParsedArgs::extras.
  std::map<std::string, bool> extra_flags;
};

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
  // The flags as a help list in declaration order, then -h/--help, e.g.
  //   "  --world_size N        number of ranks (default: ...; an integer in [1, 1048576])".
  std::string options_help() const;
  // argv[0] is skipped. `--config FILE` is applied first, then the flags in order (flags override the
  // file). `extra_flags` maps program-specific flag names to whether they take a value.
  ParsedArgs parse_args(void* root, int argc, const char* const* argv,
                        const std::map<std::string, bool>& extra_flags = {}) const;
  // The same for words without argv[0], read as `syntax` says. Throws UsageError with one line:
  // unknown flags name the nearest known one, values are checked against their declarations.
  ParsedArgs parse_args(void* root, const std::vector<std::string>& args, const ArgsSyntax& syntax) const;

 protected:
  Field& add_field(Field field);

 private:
  std::vector<Field> fields_;
  std::map<std::string, size_t> index_;  // keys and aliases -> position
};

template <class T>
struct OptionalTraits {
  static constexpr bool is_optional = false;
  using Value = T;
};
template <class T>
struct OptionalTraits<std::optional<T>> {
  static constexpr bool is_optional = true;
  using Value = T;
};

template <class Root>
class Schema : public SchemaBase {
 public:
  // T: bool, an integer, a floating-point type or std::string, or std::optional of one of them (unset
  // by default when default_value is std::nullopt; an empty value unsets it).
  template <class T>
  Field& add(const std::string& key, T& (*access)(Root&), T default_value, const std::string& help) {
    using V = typename OptionalTraits<T>::Value;
    Field f;
    f.key = key;
    f.help = help;
    f.optional = OptionalTraits<T>::is_optional;
    if constexpr (std::is_same_v<V, bool>) {
      f.type = ValueType::Bool;
      f.implicit_value = "true";
    } else if constexpr (std::is_integral_v<V>) {
      f.type = ValueType::Int;
    } else if constexpr (std::is_floating_point_v<V>) {
      f.type = ValueType::Float;
    } else {
      static_assert(std::is_same_v<V, std::string>, "config fields are bool, integers, floats or strings");
      f.type = ValueType::String;
    }
    f.assign = [access](void* root, const std::string& text) { access(*static_cast<Root*>(root)) = parse<T>(text); };
    f.format = [access](const void* root) {
      return format<T>(access(*const_cast<Root*>(static_cast<const Root*>(root))));
    };
    f.default_text = format<T>(default_value);
    return add_field(std::move(f));
  }

  // A string-valued key held as an enum: `names` lists every spelling and its value (the choices).
  template <class E>
  Field& add_enum(const std::string& key, E& (*access)(Root&), E default_value, const std::string& help,
                  std::vector<std::pair<std::string, E>> names) {
    Field f;
    f.key = key;
    f.help = help;
    f.type = ValueType::String;
    for (const auto& n : names) f.choices.push_back(n.first);
    auto name_of = [names](E value) {
      for (const auto& n : names)
        if (n.second == value) return n.first;
      return std::string();
    };
    f.assign = [access, names](void* root, const std::string& text) {
      for (const auto& n : names)
        if (n.first == text) access(*static_cast<Root*>(root)) = n.second;
    };
    f.format = [access, name_of](const void* root) {
      return name_of(access(*const_cast<Root*>(static_cast<const Root*>(root))));
    };
    f.default_text = name_of(default_value);
    return add_field(std::move(f));
  }

  // A repeatable key (`--env A=1 --env B`): every occurrence's text, once valid, is turned into items by
  // items_of and appended, in order; the default is an empty list. text_of writes an item back (dumps),
  // so that items_of(text_of(item)) == {item}. In YAML the key takes a list of such texts.
  template <class Item>
  Field& add_list(const std::string& key, std::vector<Item>& (*access)(Root&), const std::string& help,
                  std::function<std::vector<Item>(const std::string&)> items_of,
                  std::function<std::string(const Item&)> text_of) {
    Field f;
    f.key = key;
    f.help = help;
    f.type = ValueType::List;
    auto list = [access](void* root) -> std::vector<Item>& { return access(*static_cast<Root*>(root)); };
    f.assign = [list, items_of](void* root, const std::string& text) {
      for (auto& item : items_of(text)) list(root).push_back(std::move(item));
    };
    f.format = [list, text_of](const void* root) {
      std::vector<std::string> texts;
      for (const auto& item : list(const_cast<void*>(root))) texts.push_back(text_of(item));
      return yaml_flow_list(texts);
    };
    f.reset = [list](void* root) { list(root).clear(); };
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
    if constexpr (OptionalTraits<T>::is_optional) {
      if (text.empty()) return std::nullopt;
      return parse<typename OptionalTraits<T>::Value>(text);
    } else if constexpr (std::is_same_v<T, bool>)
      return text == "true";
    else if constexpr (std::is_integral_v<T>)
      return static_cast<T>(std::stoll(text));
    else if constexpr (std::is_floating_point_v<T>)
      return static_cast<T>(std::strtod(text.c_str(), nullptr));  // validated; stod would throw on subnormals
    else
      return text;
  }
  template <class T>
  static std::string format(const T& v) {
    if constexpr (OptionalTraits<T>::is_optional)
      return v ? format(*v) : std::string();
    else if constexpr (std::is_same_v<T, bool>)
      return v ? "true" : "false";
    else if constexpr (std::is_integral_v<T>)
      return std::to_string(v);
    else if constexpr (std::is_floating_point_v<T>)
      return format_float(static_cast<double>(v));
    else
      return v;
  }
  static std::string format_float(double v);
};

std::string format_float_shortest(double v);
template <class Root>
std::string Schema<Root>::format_float(double v) {
  return format_float_shortest(v);
}

}  // namespace mpibert::config
