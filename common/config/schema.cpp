#include "common/config/schema.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace mpibert::config {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Range bounds as a person writes them: 1, 0.5, 1e+12 (no trailing ".0").
std::string bound(double v) {
  std::string s = format_float_shortest(v);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s;
}

std::string describe_valid(const Field& f) {
  if (!f.expected.empty()) return f.expected;
  std::ostringstream os;
  switch (f.type) {
    case ValueType::Bool:
      return "true or false";
    case ValueType::Int:
      os << "an integer";
      break;
    case ValueType::Float:
      os << "a number";
      break;
    case ValueType::String:
    case ValueType::List:
      if (f.choices.empty()) return "a string";
      os << "one of ";
      for (size_t i = 0; i < f.choices.size(); ++i) os << (i ? ", " : "") << f.choices[i];
      return os.str();
  }
  if (f.min && f.max)
    os << " in [" << bound(*f.min) << ", " << bound(*f.max) << "]";
  else if (f.min)
    os << " >= " << bound(*f.min);
  else if (f.max)
    os << " <= " << bound(*f.max);
  return os.str();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Quoted so that YAML reads it back as the same string (empty, "true", "1e5", ": "). Control characters
// are escaped: YAML folds a raw line break in a quoted scalar into a space.
std::string yaml_quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string yaml_scalar(const std::string& text, ValueType type) {
  return type == ValueType::String ? yaml_quoted(text) : text;
}

// "data" for "data.seq_len"; "" for a flat key, which sits at the top level of a YAML file.
std::string section_of(const std::string& key) {
  auto dot = key.find('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}

}  // namespace

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::Bool:
      return "bool";
    case ValueType::Int:
      return "int";
    case ValueType::Float:
      return "float";
    case ValueType::String:
      return "string";
    case ValueType::List:
      return "list";
  }
  return "?";
}

std::string yaml_flow_list(const std::vector<std::string>& texts) {
  std::string out = "[";
  for (size_t i = 0; i < texts.size(); ++i) out += (i ? ", " : "") + yaml_quoted(texts[i]);
  return out + "]";
}

std::string format_float_shortest(double v) {
  // Shortest text that reads back to the same double (so dumps round-trip exactly).
  char buf[64];
  if (std::floor(v) == v && std::fabs(v) < 1e15) {  // integral: plain digits, not 1e+01
    std::snprintf(buf, sizeof(buf), "%.1f", v);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // keep it a float in YAML
  return s;
}

std::string nearest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(3, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(lower(word), lower(c));
    // Also match when the word is the last part of a dotted key ("learning_rate" vs "train.learning_rate").
    auto dot = c.rfind('.');
    if (dot != std::string::npos) d = std::min(d, edit_distance(lower(word), lower(c.substr(dot + 1))) + 1);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

Field& SchemaBase::add_field(Field field) {
  auto check_new = [&](const std::string& name) {
    if (index_.count(name)) throw std::logic_error("config key declared twice: " + name);
  };
  check_new(field.key);
  for (const auto& a : field.aliases) check_new(a);
  fields_.push_back(std::move(field));
  // Aliases may be added after add() returns; the index is rebuilt lazily in find().
  index_[fields_.back().key] = fields_.size() - 1;
  return fields_.back();
}

const Field* SchemaBase::find(const std::string& name) const {
  auto it = index_.find(name);
  if (it != index_.end()) return &fields_[it->second];
  for (const auto& f : fields_)
    for (const auto& a : f.aliases)
      if (a == name) return &f;
  return nullptr;
}

namespace {

// The type's own check: canonical text, or UsageError naming where, the value and what is valid.
std::string canonical_text(const Field& f, const std::string& raw, const std::string& where) {
  auto bad = [&](const std::string& why) -> UsageError {
    return UsageError(where + ": '" + raw + "' " + why + " (expected " + describe_valid(f) + ")");
  };
  const std::string& text = raw;
  switch (f.type) {
    case ValueType::Bool: {
      std::string l = lower(text);
      if (l == "true" || l == "yes" || l == "on" || l == "1") return "true";
      if (l == "false" || l == "no" || l == "off" || l == "0") return "false";
      throw bad("is not a boolean");
    }
    case ValueType::Int: {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE) {
        // Accept integral floats written as 1e5 or 100000.0.
        double d = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || std::floor(d) != d || std::fabs(d) > 9.0e18) throw bad("is not an integer");
        v = static_cast<long long>(d);
      }
      if ((f.min && v < *f.min) || (f.max && v > *f.max)) throw bad("is out of range");
      return std::to_string(v);
    }
    case ValueType::Float: {
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(v)) throw bad("is not a number");
      if ((f.min && v < *f.min) || (f.max && v > *f.max)) throw bad("is out of range");
      return format_float_shortest(v);
    }
    case ValueType::String:
    case ValueType::List:
      if (!f.choices.empty() && std::find(f.choices.begin(), f.choices.end(), text) == f.choices.end()) {
        std::string hint = nearest(text, f.choices);
        throw UsageError(where + ": '" + raw + "' is not valid (expected " + describe_valid(f) + ")" +
                         (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      }
      return text;
  }
  return text;
}

}  // namespace

std::string SchemaBase::validate(const Field& f, const std::string& raw, const std::string& where) const {
  if (f.optional && raw.empty()) return raw;  // not set
  std::string text = canonical_text(f, raw, where);
  if (f.accepts && !f.accepts(text))
    throw UsageError(where + ": '" + raw + "' is not valid (expected " + describe_valid(f) + ")");
  return text;
}

void SchemaBase::set(void* root, const std::string& name, const std::string& value, const std::string& where) const {
  const Field* f = find(name);
  if (!f) {
    std::vector<std::string> names;
    for (const auto& fd : fields_) {
      names.push_back(fd.key);
      names.insert(names.end(), fd.aliases.begin(), fd.aliases.end());
    }
    std::string hint = nearest(name, names);
    throw UsageError(where + ": unknown key '" + name + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
  }
  f->assign(root, validate(*f, value, where));
}

std::string SchemaBase::get(const void* root, const std::string& key) const {
  const Field* f = find(key);
  if (!f) throw std::logic_error("config: no key " + key);
  return f->format(root);
}

void SchemaBase::set_default(const std::string& key, const std::string& value) {
  auto it = index_.find(key);
  if (it == index_.end()) throw std::logic_error("set_default: no key " + key);
  Field& f = fields_[it->second];
  f.default_text = validate(f, value, "default of " + f.key);
}

void SchemaBase::apply_defaults(void* root) const {
  for (const auto& f : fields_) {
    if (f.reset)
      f.reset(root);
    else
      f.assign(root, f.default_text);
  }
}

void SchemaBase::load_yaml_file(void* root, const std::string& path) const {
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) throw UsageError(path + ": cannot open config file");
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, fp)) > 0) text.append(buf, n);
  std::fclose(fp);
  load_yaml_text(root, text, path);
}

namespace {

// One YAML value for a field: a scalar (or null = empty), or for list fields a sequence of scalars.
void load_yaml_value(const SchemaBase& schema, void* root, const Field& f, const YAML::Node& node,
                     const std::string& where) {
  if (f.type == ValueType::List && (node.IsSequence() || node.IsNull())) {
    for (const auto& item : node) {
      if (!item.IsScalar()) throw UsageError(where + ": expected a list of single values");
      f.assign(root, schema.validate(f, item.Scalar(), where));
    }
    return;
  }
  if (!node.IsScalar() && !node.IsNull()) throw UsageError(where + ": expected a single value, not a list or mapping");
  f.assign(root, schema.validate(f, node.IsNull() ? std::string() : node.Scalar(), where));
}

// A mapping key as text; a list or mapping used as a key is a UsageError (yaml-cpp would throw its own
// "bad conversion").
std::string key_text(const YAML::Node& key, const std::string& source) {
  if (key.IsSequence() || key.IsMap())
    throw UsageError(source + ": line " + std::to_string(key.Mark().line + 1) +
                     ": a list or mapping cannot be a key (expected section: key: value)");
  return key.as<std::string>();
}

}  // namespace

void SchemaBase::load_yaml_text(void* root, const std::string& text, const std::string& source) const {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UsageError(source + ": invalid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (doc.IsNull()) return;
  // Top-level names: sections of dotted keys, and flat keys themselves.
  std::vector<std::string> sections, top_level;
  for (const auto& f : fields_) {
    std::string s = section_of(f.key);
    std::string name = s.empty() ? f.key : s;
    if (std::find(top_level.begin(), top_level.end(), name) == top_level.end()) top_level.push_back(name);
    if (!s.empty() && std::find(sections.begin(), sections.end(), s) == sections.end()) sections.push_back(s);
  }
  std::string valid;
  for (const auto& name : top_level) valid += (valid.empty() ? "" : ", ") + name;
  if (!doc.IsMap()) throw UsageError(source + ": expected a mapping of sections (" + valid + ")");
  for (const auto& entry : doc) {
    std::string name = key_text(entry.first, source);
    if (const Field* flat = find(name); flat && flat->key == name && section_of(name).empty()) {
      load_yaml_value(*this, root, *flat, entry.second, source + ": " + name);
      continue;
    }
    if (std::find(sections.begin(), sections.end(), name) == sections.end()) {
      std::string hint = nearest(name, top_level);
      throw UsageError(source + ": unknown section '" + name + "'" +
                       (hint.empty() ? " (valid: " + valid + ")" : "; did you mean '" + hint + "'?"));
    }
    if (entry.second.IsNull()) continue;
    if (!entry.second.IsMap()) throw UsageError(source + ": section '" + name + "' must be a mapping of key: value");
    for (const auto& kv : entry.second) {
      std::string key = name + "." + key_text(kv.first, source);
      const Field* f = find(key);
      if (!f || f->key != key) {
        std::vector<std::string> keys;
        for (const auto& fd : fields_) keys.push_back(fd.key);
        std::string hint = nearest(key, keys);
        throw UsageError(source + ": unknown key '" + key + "'" +
                         (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      }
      load_yaml_value(*this, root, *f, kv.second, source + ": " + key);
    }
  }
}

std::string SchemaBase::to_yaml(const void* root) const {
  std::ostringstream os;
  std::string section;
  for (const auto& f : fields_) {
    std::string s = section_of(f.key);
    if (s != section && !s.empty()) os << s << ":\n";
    section = s;
    os << (s.empty() ? "" : "  ") << f.key.substr(s.empty() ? 0 : s.size() + 1) << ": "
       << yaml_scalar(f.format(root), f.type) << "\n";
  }
  return os.str();
}

std::string SchemaBase::help_text(const std::string& usage) const {
  std::ostringstream os;
  os << usage << "\n\nEvery key can be set in the YAML file (section: key: value) or as a flag --section.key VALUE;\n"
     << "flags override the file. Flat aliases are Hugging Face TrainingArguments names.\n";
  std::string section;
  for (const auto& f : fields_) {
    std::string s = f.key.substr(0, f.key.find('.'));
    if (s != section) {
      os << "\n" << s << ":\n";
      section = s;
    }
    os << "  --" << f.key << " <" << value_type_name(f.type) << ">";
    for (const auto& a : f.aliases) os << ", --" << a;
    os << "\n      " << f.help << " (default: " << (f.default_text.empty() ? "\"\"" : f.default_text);
    if (f.type != ValueType::Bool && (f.min || f.max || !f.choices.empty())) os << "; " << describe_valid(f);
    os << ")\n";
  }
  return os.str();
}

namespace {

// "0" rather than "0.0" in help: defaults as a person writes them.
std::string display_default(const Field& f) {
  if (f.optional) return f.unset_means;
  if (f.is_switch || f.type == ValueType::List) return "";
  if (f.type == ValueType::Float) return bound(std::strtod(f.default_text.c_str(), nullptr));
  return f.default_text;
}

// Writes `text` (the cursor is at `column`), wrapping at `width` columns with continuation lines indented to `indent`;
// '\n' in text starts a new line.
void wrap_into(std::ostringstream& os, size_t column, size_t indent, const std::string& text, size_t width = 100) {
  std::istringstream lines(text);
  std::string line;
  bool first_line = true;
  while (std::getline(lines, line)) {
    if (!first_line) os << "\n" << std::string(indent, ' '), column = indent;
    first_line = false;
    std::istringstream words(line);
    std::string word;
    bool first_word = true;
    while (words >> word) {
      if (!first_word && column + 1 + word.size() > width)
        os << "\n" << std::string(indent, ' '), column = indent;
      else if (!first_word)
        os << ' ', ++column;
      os << word;
      column += word.size();
      first_word = false;
    }
  }
}

}  // namespace

std::string SchemaBase::options_help() const {
  auto left_of = [](const Field& f) {
    std::string left = "  --" + f.key;
    for (const auto& a : f.aliases) left += ", --" + a;
    if (!f.is_switch)
      left += " " + (f.value_name.empty() ? "<" + std::string(value_type_name(f.type)) + ">" : f.value_name);
    return left;
  };
  const std::string help_flags = "  -h, --help";
  constexpr size_t kMaxColumn = 24;  // a longer option name puts its help on the next line
  size_t column = help_flags.size() + 2;
  for (const auto& f : fields_) column = std::max(column, std::min(kMaxColumn, left_of(f).size() + 2));
  std::ostringstream os;
  auto line = [&](const std::string& left, const std::string& help) {
    os << left;
    if (left.size() + 2 > column)
      os << "\n" << std::string(column, ' ');
    else
      os << std::string(column - left.size(), ' ');
    wrap_into(os, column, column, help);
    os << "\n";
  };
  for (const auto& f : fields_) {
    std::string notes = display_default(f);
    if (!notes.empty()) notes = "default: " + notes;
    // Ranges and choices are worth saying up front; other checks speak in their errors.
    if (!f.is_switch && (f.min || f.max || !f.choices.empty()))
      notes += (notes.empty() ? "" : "; ") + describe_valid(f);
    line(left_of(f), f.help + (notes.empty() ? "" : " (" + notes + ")"));
  }
  line(help_flags, "this help");
  return os.str();
}

namespace {

// One option as read from the command line, before it is applied.
struct ReadOption {
  std::string spelled;  // as typed, without "=value": "--world-size"
  std::string name;     // canonical: "world_size"
  std::optional<std::string> value;
};

bool is_bool_word(const std::string& word) {
  std::string l = lower(word);
  return l == "true" || l == "false" || l == "yes" || l == "no" || l == "1" || l == "0" || l == "on" || l == "off";
}

bool looks_like_flag(const std::string& word) {
  return word.size() > 2 && word.compare(0, 2, "--") == 0;
}

bool is_option_word(const std::string& word, const ArgsSyntax& syntax) {
  if (syntax.stop_at_first_positional) return word.size() > 1 && word[0] == '-';
  return looks_like_flag(word);
}

std::string canonical_name(const std::string& spelled, const ArgsSyntax& syntax) {
  const size_t start = spelled.find_first_not_of('-');
  std::string name = start == std::string::npos ? "" : spelled.substr(start);
  if (syntax.dashes_as_underscores) std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

[[noreturn]] void throw_unknown_option(const SchemaBase& schema, const std::string& spelled, const std::string& name,
                                       const ArgsSyntax& syntax) {
  std::string hint;
  if (auto it = syntax.foreign_spellings.find(spelled); it != syntax.foreign_spellings.end()) {
    hint = it->second;
  } else {
    std::vector<std::string> names{"help"};
    if (syntax.config_file) names.push_back("config");
    for (const auto& fd : schema.fields()) {
      names.push_back(fd.key);
      names.insert(names.end(), fd.aliases.begin(), fd.aliases.end());
    }
    for (const auto& ex : syntax.extra_flags) names.push_back(ex.first);
    hint = nearest(name, names);
  }
  const std::string note =
      looks_like_flag(spelled) ? syntax.unknown_option_note : "options start with --; " + syntax.unknown_option_note;
  throw UsageError("unknown option '" + spelled + "'" + (hint.empty() ? "" : "; did you mean '--" + hint + "'?") +
                   " (" + note + ")");
}

// Reads one option starting at args[i] (advancing i past its value); throws on unknown options and
// missing or unwanted values.
ReadOption read_option(const SchemaBase& schema, const std::vector<std::string>& args, size_t& i,
                       const ArgsSyntax& syntax) {
  const std::string& word = args[i];
  ReadOption o;
  auto eq = word.find('=');
  o.spelled = word.substr(0, eq);
  if (eq != std::string::npos) o.value = word.substr(eq + 1);
  o.name = canonical_name(o.spelled, syntax);
  // --config first, then program-specific flags, then the declared keys.
  const bool double_dash = looks_like_flag(o.spelled);
  const bool is_config = double_dash && syntax.config_file && o.name == "config";
  const auto extra = syntax.extra_flags.find(o.name);
  const bool is_extra = double_dash && !is_config && extra != syntax.extra_flags.end();
  const Field* field = double_dash && !is_config && !is_extra ? schema.find(o.name) : nullptr;
  if (!field && !is_extra && !is_config) throw_unknown_option(schema, o.spelled, o.name, syntax);

  const std::optional<std::string> implicit = field ? field->implicit_value : std::nullopt;
  if (field && field->is_switch) {
    if (o.value) throw UsageError("option '" + o.spelled + "' takes no value (got '" + *o.value + "')");
    o.value = implicit.value_or("true");
  } else if (!o.value && is_extra && !extra->second) {
    o.value = "";
  } else if (!o.value) {
    // A value follows unless the next word is another option and the flag has an implicit value.
    bool next_is_value = i + 1 < args.size() && (syntax.value_always_next || !looks_like_flag(args[i + 1]));
    // `--do_eval false` and `--do_eval` both work; a positional after a bare bool is not a value.
    if (next_is_value && implicit && field && field->type == ValueType::Bool) next_is_value = is_bool_word(args[i + 1]);
    if (next_is_value)
      o.value = args[++i];
    else if (implicit)
      o.value = *implicit;
    else
      throw UsageError("option '" + o.spelled + "' needs a value");
  }
  return o;
}

}  // namespace

ParsedArgs SchemaBase::parse_args(void* root, const std::vector<std::string>& args, const ArgsSyntax& syntax) const {
  ParsedArgs out;
  // Read every option first, so that --config is applied before any flag overrides it.
  std::vector<ReadOption> options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--") {
      out.positionals.insert(out.positionals.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (word == "--help" || word == "-h") {
      out.help = true;
      continue;
    }
    if (!is_option_word(word, syntax)) {
      if (!syntax.stop_at_first_positional) {
        out.positionals.push_back(word);
        continue;
      }
      out.positionals.insert(out.positionals.end(), args.begin() + static_cast<long>(i), args.end());
      break;
    }
    options.push_back(read_option(*this, args, i, syntax));
  }
  auto is_config = [&](const ReadOption& o) { return syntax.config_file && o.name == "config"; };
  for (const auto& o : options)
    if (is_config(o)) {
      out.config_file = *o.value;
      load_yaml_file(root, out.config_file);
    }
  for (const auto& o : options) {
    if (is_config(o)) continue;
    if (syntax.extra_flags.count(o.name))
      out.extras[o.name] = *o.value;
    else
      set(root, o.name, *o.value, o.spelled);
  }
  return out;
}

ParsedArgs SchemaBase::parse_args(void* root, int argc, const char* const* argv,
                                  const std::map<std::string, bool>& extra_flags) const {
  ArgsSyntax syntax;
  syntax.extra_flags = extra_flags;
  return parse_args(root, std::vector<std::string>(argv + 1, argv + argc), syntax);
}

}  // namespace mpibert::config
