// JSON lines parsing for read_table (rules in table_reader.h).
#include <nlohmann/json.hpp>

#include "common/data/table_parsers.h"
#include "common/error.h"

namespace mpibert::data::detail {
namespace {

using Json = nlohmann::ordered_json;  // keeps the keys in file order: they become the column order

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
}

Cell cell_of(Json& value, const std::string& where, const std::string& key) {
  const auto bad = [&](const std::string& what) {
    return UsageError(where + ": key '" + key + "': " + what +
                      "; a value must be a string, a number, a boolean or a list of strings");
  };
  switch (value.type()) {
    case Json::value_t::string:
      return Cell::string(std::move(value.get_ref<std::string&>()));
    case Json::value_t::boolean:
      return Cell::string(value.get<bool>() ? "True" : "False");
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: {
      Cell c;
      c.kind = Cell::Kind::kNumber;
      c.text = value.dump();
      c.number = value.get<double>();
      c.integral = !value.is_number_float();
      return c;
    }
    case Json::value_t::array: {
      std::vector<std::string> items;
      for (const Json& item : value) {
        if (item.is_string()) {
          items.push_back(item.get<std::string>());
        } else if (item.is_number_integer()) {
          items.push_back(item.dump());
        } else {
          throw bad("a list item is " + std::string(item.type_name()) + " (list items must be strings or integers)");
        }
      }
      return Cell::list(std::move(items));
    }
    default:
      throw bad("the value is " + std::string(value.type_name()));
  }
}

Json parse_line(std::string_view line, const std::string& where) {
  Json object;
  try {
    object = Json::parse(line);
  } catch (const Json::parse_error& e) {
    // Keep "column C: problem; last read: ..." of the parser's message; the line is ours.
    const std::string message = e.what();
    const size_t column = message.find("column ");
    throw UsageError(where + ": malformed JSON at " + (column == std::string::npos ? message : message.substr(column)));
  }
  if (!object.is_object()) {
    throw UsageError(where + ": expected a JSON object per line (JSON lines), got " + std::string(object.type_name()) +
                     (object.is_array() ? " (a JSON array file is not supported: write one object per line)" : ""));
  }
  return object;
}

void set_columns(Table& table, const Json& first, const std::string& where, size_t line) {
  for (const auto& item : first.items()) table.columns.push_back(item.key());
  if (table.columns.empty()) throw UsageError(where + ": the first object has no keys, so the table has no columns");
  check_header(table, line);
}

std::vector<Cell> row_of(const Table& table, Json& object, const std::string& where) {
  std::vector<Cell> row;
  row.reserve(table.columns.size());
  for (const std::string& key : table.columns) {
    const auto it = object.find(key);
    if (it == object.end()) {
      throw UsageError(where + ": key '" + key + "' is missing (every line needs the keys of the first line)");
    }
    row.push_back(cell_of(*it, where, key));
  }
  if (object.size() != table.columns.size()) {
    for (const auto& item : object.items()) {
      if (table.column_index(item.key()) < 0) {
        throw UsageError(where + ": key '" + item.key() + "' is not among the first line's keys");
      }
    }
  }
  return row;
}

}  // namespace

Table parse_json_lines(std::string_view text, const std::string& source) {
  Table table;
  table.source = source;
  bool have_columns = false;
  size_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? text.size() : nl;
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (is_blank(line)) continue;
    const std::string where = source + ":" + std::to_string(line_number);
    Json object = parse_line(line, where);
    if (!have_columns) {
      set_columns(table, object, where, line_number);
      have_columns = true;
    }
    table.rows.push_back(row_of(table, object, where));
    table.lines.push_back(line_number);
  }
  if (!have_columns) throw UsageError(source + ": empty file: no JSON lines");
  return table;
}

}  // namespace mpibert::data::detail
