#include "common/data/table_reader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "common/data/table_parsers.h"
#include "common/error.h"

namespace mpibert::data {

Cell Cell::string(std::string value) {
  Cell c;
  c.text = std::move(value);
  return c;
}

Cell Cell::list(std::vector<std::string> items) {
  Cell c;
  c.kind = Kind::kList;
  for (size_t i = 0; i < items.size(); ++i) c.text += (i ? ", " : "") + items[i];
  c.items = std::move(items);
  return c;
}

namespace {

// Length of the run of ASCII digits at text[i...].
size_t digits_at(std::string_view text, size_t i) {
  size_t n = 0;
  while (i + n < text.size() && text[i + n] >= '0' && text[i + n] <= '9') ++n;
  return n;
}

}  // namespace

bool Cell::parse_number(std::string_view text, Cell& out) {
  size_t i = (!text.empty() && (text[0] == '+' || text[0] == '-')) ? 1 : 0;
  const size_t int_digits = digits_at(text, i);
  i += int_digits;
  bool integral = true;
  size_t frac_digits = 0;
  if (i < text.size() && text[i] == '.') {
    integral = false;
    frac_digits = digits_at(text, i + 1);
    i += 1 + frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    integral = false;
    size_t j = i + 1;
    if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
    const size_t exp_digits = digits_at(text, j);
    if (exp_digits == 0) return false;
    i = j + exp_digits;
  }
  if (i != text.size()) return false;
  // from_chars rejects a leading '+'.
  const std::string_view body = text[0] == '+' ? text.substr(1) : text;
  double value = 0;
  if (integral) {
    int64_t whole = 0;
    const auto r = std::from_chars(body.data(), body.data() + body.size(), whole);
    if (r.ec != std::errc()) integral = false;  // beyond int64: a float, as pandas would make it
    value = static_cast<double>(whole);
  }
  if (!integral) std::from_chars(body.data(), body.data() + body.size(), value);
  out.kind = Kind::kNumber;
  out.text = std::string(text);
  out.number = value;
  out.integral = integral;
  return true;
}

int Table::column_index(std::string_view name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::string Table::where(size_t row) const {
  return source + ":" + std::to_string(lines.at(row));
}

TableFormat table_format_of(const std::string& path) {
  const size_t dot = path.find_last_of('.');
  const size_t slash = path.find_last_of('/');
  std::string ext = (dot == std::string::npos || (slash != std::string::npos && dot < slash)) ? "" : path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".csv") return TableFormat::kCsv;
  if (ext == ".tsv") return TableFormat::kTsv;
  if (ext == ".json" || ext == ".jsonl") return TableFormat::kJsonLines;
  throw UsageError(path + ": unknown table format '" + ext + "'; valid extensions: .csv, .tsv, .json, .jsonl");
}

Table read_table(const std::string& path) {
  const TableFormat format = table_format_of(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(path + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw UsageError(path + ": read failed: " + std::strerror(errno));
  return parse_table(text.str(), format, path);
}

Table parse_table(std::string_view text, TableFormat format, const std::string& source) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (format == TableFormat::kJsonLines) return detail::parse_json_lines(text, source);
  Table table = detail::parse_delimited(text, format == TableFormat::kCsv ? ',' : '\t', source);
  detail::type_delimited_columns(table);
  return table;
}

namespace detail {

void check_header(const Table& table, size_t line) {
  const std::string where = table.source + ":" + std::to_string(line);
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < table.columns.size(); ++i) {
    const std::string& name = table.columns[i];
    if (name.empty()) {
      throw UsageError(where + ": column " + std::to_string(i + 1) + " of the header has an empty name");
    }
    const auto [it, added] = seen.emplace(name, i);
    if (!added) {
      throw UsageError(where + ": column name '" + name + "' appears twice in the header (columns " +
                       std::to_string(it->second + 1) + " and " + std::to_string(i + 1) + ")");
    }
  }
}

}  // namespace detail
}  // namespace mpibert::data
