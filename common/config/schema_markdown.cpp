#include "common/config/schema_markdown.h"

#include <cmath>
#include <cstdint>
#include <sstream>

namespace mpibert::config {
namespace {

std::string section_of(const Field& field) {
  return field.key.substr(0, field.key.find('.'));
}

// A table cell must not contain a raw '|' (it would start a new cell) or a line break.
std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

// Help is prose: '*' and '<' would otherwise start emphasis or HTML.
std::string prose(const std::string& text) {
  std::string out;
  for (char c : cell(text)) {
    if (c == '*')
      out += "\\*";
    else if (c == '<')
      out += "&lt;";
    else
      out += c;
  }
  return out;
}

std::string code(const std::string& text) {
  return "`" + cell(text) + "`";
}

// Bounds as the validation compares them: integers in full digits, other numbers in their shortest
// exact form without a trailing ".0" (0.5, 1e-12, 4096).
std::string bound(const Field& field, double value) {
  if (field.type == ValueType::Int && std::fabs(value) < 9.2e18) return std::to_string(static_cast<long long>(value));
  std::string s = format_float_shortest(value);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s;
}

std::string valid_values(const Field& field) {
  std::ostringstream os;
  switch (field.type) {
    case ValueType::Bool:  // a bare bool flag always means true; the prose says so once
      return "`true` or `false`";
    case ValueType::Int:
      os << "integer";
      break;
    case ValueType::Float:
      os << "number";
      break;
    case ValueType::String:
      if (field.choices.empty()) {
        os << "string";
      } else {
        os << "one of ";
        for (size_t i = 0; i < field.choices.size(); ++i) os << (i ? ", " : "") << code(field.choices[i]);
      }
      break;
    case ValueType::List:
      os << "repeatable" << (field.expected.empty() ? "" : ": " + field.expected);
      break;
  }
  if (field.min && field.max)
    os << " in [" << bound(field, *field.min) << ", " << bound(field, *field.max) << "]";
  else if (field.min)
    os << " >= " << bound(field, *field.min);
  else if (field.max)
    os << " <= " << bound(field, *field.max);
  if (field.implicit_value) os << "; a bare flag means " << code(*field.implicit_value);
  return os.str();
}

std::string aliases(const Field& field) {
  std::string out;
  for (const auto& a : field.aliases) out += (out.empty() ? "" : ", ") + code("--" + a);
  return out;
}

std::string default_value(const Field& field) {
  return field.default_text.empty() ? std::string("`\"\"`") : code(field.default_text);
}

}  // namespace

std::string markdown_reference(const SchemaBase& schema) {
  std::ostringstream os;
  std::string section;
  for (const Field& field : schema.fields()) {
    if (section_of(field) != section) {
      if (!section.empty()) os << "\n";
      section = section_of(field);
      os << "### Section `" << section << "`\n\n"
         << "| key | type | default | valid values | flat aliases | help |\n"
         << "|---|---|---|---|---|---|\n";
    }
    os << "| " << code(field.key) << " | " << value_type_name(field.type) << " | " << default_value(field) << " | "
       << valid_values(field) << " | " << aliases(field) << " | " << prose(field.help) << " |\n";
  }
  if (!section.empty()) os << "\n";
  return os.str();
}

}  // namespace mpibert::config
