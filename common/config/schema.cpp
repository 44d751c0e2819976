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
  std::ostringstream os;
  switch (f.type) {
    case ValueType::Bool: return "true or false";
    case ValueType::Int: os << "an integer"; break;
    case ValueType::Float: os << "a number"; break;
    case ValueType::String:
      if (f.choices.empty()) return "a string";
      os << "one of ";
      for (size_t i = 0; i < f.choices.size(); ++i) os << (i ? ", " : "") << f.choices[i];
      return os.str();
  }
  if (f.min && f.max) os << " in [" << bound(*f.min) << ", " << bound(*f.max) << "]";
  else if (f.min) os << " >= " << bound(*f.min);
  else if (f.max) os << " <= " << bound(*f.max);
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

std::string yaml_scalar(const std::string& text, ValueType type) {
  if (type != ValueType::String) return text;
  // Quote strings so that YAML reads them back as the same string (empty, "true", "1e5", ": ").
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::Bool: return "bool";
    case ValueType::Int: return "int";
    case ValueType::Float: return "float";
    case ValueType::String: return "string";
  }
  return "?";
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

std::string SchemaBase::validate(const Field& f, const std::string& raw, const std::string& where) const {
  auto bad = [&](const std::string& why) -> UsageError {
    return UsageError(where + ": '" + raw + "' " + why + " (expected " + describe_valid(f) + ")");
  };
  std::string text = raw;
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
      if (!f.choices.empty() && std::find(f.choices.begin(), f.choices.end(), text) == f.choices.end()) {
        std::string hint = nearest(text, f.choices);
        throw UsageError(where + ": '" + raw + "' is not valid (expected " + describe_valid(f) + ")" +
                         (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      }
      return text;
  }
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
  for (const auto& f : fields_) f.assign(root, f.default_text);
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

void SchemaBase::load_yaml_text(void* root, const std::string& text, const std::string& source) const {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UsageError(source + ": invalid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (doc.IsNull()) return;
  if (!doc.IsMap()) throw UsageError(source + ": expected a mapping of sections (data, model, train, dist)");
  std::vector<std::string> sections;
  for (const auto& f : fields_) {
    std::string s = f.key.substr(0, f.key.find('.'));
    if (std::find(sections.begin(), sections.end(), s) == sections.end()) sections.push_back(s);
  }
  for (const auto& sec : doc) {
    std::string name = sec.first.as<std::string>();
    if (std::find(sections.begin(), sections.end(), name) == sections.end()) {
      std::string hint = nearest(name, sections);
      throw UsageError(source + ": unknown section '" + name + "'" +
                       (hint.empty() ? " (valid: data, model, train, dist)" : "; did you mean '" + hint + "'?"));
    }
    if (sec.second.IsNull()) continue;
    if (!sec.second.IsMap()) throw UsageError(source + ": section '" + name + "' must be a mapping of key: value");
    for (const auto& kv : sec.second) {
      std::string key = name + "." + kv.first.as<std::string>();
      std::string where = source + ": " + key;
      if (!kv.second.IsScalar() && !kv.second.IsNull())
        throw UsageError(where + ": expected a single value, not a list or mapping");
      const Field* f = find(key);
      if (!f || f->key != key) {
        std::vector<std::string> keys;
        for (const auto& fd : fields_) keys.push_back(fd.key);
        std::string hint = nearest(key, keys);
        throw UsageError(source + ": unknown key '" + key + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      }
      std::string value = kv.second.IsNull() ? std::string() : kv.second.Scalar();
      f->assign(root, validate(*f, value, where));
    }
  }
}

std::string SchemaBase::to_yaml(const void* root) const {
  std::ostringstream os;
  std::string section;
  for (const auto& f : fields_) {
    std::string s = f.key.substr(0, f.key.find('.'));
    if (s != section) {
      os << s << ":\n";
      section = s;
    }
    os << "  " << f.key.substr(s.size() + 1) << ": " << yaml_scalar(f.format(root), f.type) << "\n";
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

ParsedArgs SchemaBase::parse_args(void* root, int argc, const char* const* argv,
                                  const std::map<std::string, bool>& extra_flags) const {
  ParsedArgs out;
  std::vector<std::string> args(argv + 1, argv + argc);
  // Split into (name, value?) pairs first, so --config is applied before any flag overrides it.
  struct Opt {
    std::string name;
    std::optional<std::string> value;
  };
  std::vector<Opt> opts;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      for (++i; i < args.size(); ++i) out.positionals.push_back(args[i]);
      break;
    }
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      out.positionals.push_back(a);
      continue;
    }
    if (a == "--help" || a == "-h") {
      out.help = true;
      continue;
    }
    Opt o;
    auto eq = a.find('=');
    o.name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (eq != std::string::npos) o.value = a.substr(eq + 1);
    bool takes_value = true;
    std::optional<std::string> implicit;
    if (o.name == "config") {
    } else if (auto ex = extra_flags.find(o.name); ex != extra_flags.end()) {
      takes_value = ex->second;
      if (!takes_value) implicit = "";
    } else if (const Field* f = find(o.name)) {
      implicit = f->implicit_value;
    } else {
      std::vector<std::string> names{"config", "help"};
      for (const auto& fd : fields_) {
        names.push_back(fd.key);
        names.insert(names.end(), fd.aliases.begin(), fd.aliases.end());
      }
      for (const auto& ex : extra_flags) names.push_back(ex.first);
      std::string hint = nearest(o.name, names);
      throw UsageError("unknown option '--" + o.name + "'" + (hint.empty() ? "" : "; did you mean '--" + hint + "'?") +
                       " (--help lists every option)");
    }
    if (!o.value && takes_value) {
      // A value follows unless the next word is another option and the flag has an implicit value.
      bool next_is_value = i + 1 < args.size() && !(args[i + 1].rfind("--", 0) == 0 && args[i + 1].size() > 2);
      if (next_is_value && implicit && find(o.name) && find(o.name)->type == ValueType::Bool) {
        // `--do_eval false` and `--do_eval` both work; a positional after a bare bool is not a value.
        std::string l = lower(args[i + 1]);
        next_is_value = l == "true" || l == "false" || l == "yes" || l == "no" || l == "1" || l == "0" || l == "on" || l == "off";
      }
      if (next_is_value) o.value = args[++i];
      else if (implicit) o.value = *implicit;
      else throw UsageError("option '--" + o.name + "' needs a value");
    } else if (!o.value) {
      o.value = implicit ? *implicit : "";
    }
    opts.push_back(std::move(o));
  }
  for (const auto& o : opts)
    if (o.name == "config") {
      out.config_file = *o.value;
      load_yaml_file(root, out.config_file);
    }
  for (const auto& o : opts) {
    if (o.name == "config") continue;
    if (extra_flags.count(o.name)) {
      out.extras[o.name] = *o.value;
      continue;
    }
    set(root, o.name, *o.value, "--" + o.name);
  }
  return out;
}

}  // namespace mpibert::config
