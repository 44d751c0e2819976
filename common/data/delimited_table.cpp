// CSV/TSV parsing for read_table (rules in table_reader.h).
#include <cstring>

#include "common/data/table_parsers.h"
#include "common/error.h"

namespace mpibert::data::detail {
namespace {

// Walks the text record by record, keeping the line number (LF, CRLF and a lone CR each end a line).
class RecordScanner {
 public:
  RecordScanner(std::string_view text, char delimiter, const std::string& source)
      : text_(text), delim_(delimiter), source_(source) {}

  // Reads the next non-empty record into `fields`; false at the end of the text. `line` is where
  // the record starts.
  bool next(std::vector<std::string>& fields, size_t& line) {
    while (pos_ < text_.size() && is_line_end(text_[pos_])) skip_line_end();
    if (pos_ >= text_.size()) return false;
    line = line_;
    fields.clear();
    for (;;) {
      fields.emplace_back();
      if (text_[pos_] == '"') {
        read_quoted(fields.back(), fields.size());
      } else {
        read_plain(fields.back());
      }
      if (pos_ < text_.size() && text_[pos_] == delim_) {
        ++pos_;
        if (pos_ < text_.size()) continue;
        fields.emplace_back();  // a delimiter at the very end: one more empty field
      }
      if (pos_ < text_.size()) skip_line_end();
      return true;
    }
  }

 private:
  static bool is_line_end(char c) { return c == '\n' || c == '\r'; }

  void skip_line_end() {
    if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
  }

  void read_plain(std::string& field) {
    const size_t begin = pos_;
    while (pos_ < text_.size() && text_[pos_] != delim_ && !is_line_end(text_[pos_])) ++pos_;
    field.assign(text_.data() + begin, pos_ - begin);
  }

  // A quoted field from the opening quote at pos_; '""' is one quote, line breaks are kept.
  void read_quoted(std::string& field, size_t field_number) {
    const size_t open_line = line_;
    ++pos_;
    for (;;) {
      const char* quote = static_cast<const char*>(std::memchr(text_.data() + pos_, '"', text_.size() - pos_));
      if (quote == nullptr) {
        throw UsageError(source_ + ":" + std::to_string(open_line) + ": unterminated quote: field " +
                         std::to_string(field_number) + " opens a quote on this line that is never closed");
      }
      const size_t end = static_cast<size_t>(quote - text_.data());
      count_lines(pos_, end);
      field.append(text_.data() + pos_, end - pos_);
      pos_ = end + 1;
      if (pos_ < text_.size() && text_[pos_] == '"') {
        field += '"';
        ++pos_;
        continue;
      }
      break;
    }
    if (pos_ < text_.size() && text_[pos_] != delim_ && !is_line_end(text_[pos_])) {
      throw UsageError(source_ + ":" + std::to_string(line_) + ": field " + std::to_string(field_number) +
                       ": text after the closing quote (a quote inside a quoted field must be doubled: \"\")");
    }
  }

  void count_lines(size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (text_[i] == '\n' || (text_[i] == '\r' && (i + 1 >= text_.size() || text_[i + 1] != '\n'))) ++line_;
    }
  }

  std::string_view text_;
  char delim_;
  const std::string& source_;
  size_t pos_ = 0;
  size_t line_ = 1;
};

std::string column_list(const std::vector<std::string>& columns) {
  std::string out;
  for (size_t i = 0; i < columns.size() && i < 8; ++i) out += (i ? "," : "") + columns[i];
  if (columns.size() > 8) out += ",...";
  return out;
}

}  // namespace

Table parse_delimited(std::string_view text, char delimiter, const std::string& source) {
  Table table;
  table.source = source;
  RecordScanner scanner(text, delimiter, source);
  std::vector<std::string> fields;
  size_t line = 0;
  if (!scanner.next(fields, line)) throw UsageError(source + ": empty file: no header line");
  table.columns = fields;
  check_header(table, line);
  const std::string kind = delimiter == '\t' ? "tab-separated" : "comma-separated";
  while (scanner.next(fields, line)) {
    if (fields.size() != table.columns.size()) {
      throw UsageError(source + ":" + std::to_string(line) + ": " + std::to_string(fields.size()) + " " + kind +
                       " fields, but the header has " + std::to_string(table.columns.size()) + " (" +
                       column_list(table.columns) + "); quote a field that holds the delimiter");
    }
    std::vector<Cell> row;
    row.reserve(fields.size());
    for (std::string& f : fields) row.push_back(Cell::string(std::move(f)));
    table.rows.push_back(std::move(row));
    table.lines.push_back(line);
  }
  return table;
}

void type_delimited_columns(Table& table) {
  for (size_t c = 0; c < table.columns.size(); ++c) {
    bool any = false, all_numbers = true, all_integers = true;
    Cell parsed;
    for (const auto& row : table.rows) {
      const std::string& text = row[c].text;
      if (text.empty()) continue;
      any = true;
      if (!Cell::parse_number(text, parsed)) {
        all_numbers = false;
        break;
      }
      all_integers = all_integers && parsed.integral;
    }
    if (!any || !all_numbers) continue;
    for (auto& row : table.rows) {
      Cell& cell = row[c];
      if (cell.text.empty()) continue;
      Cell::parse_number(cell.text, cell);
      if (!all_integers) cell.integral = false;  // an int beside floats is a float, as in pandas
    }
  }
}

}  // namespace mpibert::data::detail
