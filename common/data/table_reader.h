#pragma once
// Tables of labelled examples as Hugging Face datasets loads them for run_classification / run_glue:
// CSV (RFC 4180), TSV (the same quoting with a tab delimiter, as Python's csv module reads it) and
// JSON lines. The format comes from the file name: .csv, .tsv, .json or .jsonl.
//
// CSV/TSV: the first record is the header. A field that starts with '"' is quoted: it runs to the
// next lone '"' and may hold delimiters, line breaks and '""' (one quote); after the closing quote
// only a delimiter or the end of the record may follow. A '"' inside an unquoted field is kept as
// is. Records end at LF, CRLF or CR; empty lines are skipped; a UTF-8 BOM is dropped. Every record
// must have as many fields as the header. Columns are typed as datasets' CSV loader (pandas) types
// them: a column whose non-empty fields are all integers holds integer numbers, one whose non-empty
// fields are all numbers holds floats, any other column holds strings; empty fields stay empty
// strings.
//
// JSON lines: one object per line (blank lines skipped). The columns are the first object's keys in
// their order and every line must have exactly those keys. A value is a string, a number, a boolean
// (kept as the string "True"/"False", as Python's str() prints it) or a list of strings and integers
// (multi-label labels). null and nested objects are rejected.
//
// Errors are UsageError with one line "FILE:LINE: problem" (see read_table).
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mpibert::data {

struct Cell {
  enum class Kind { kString, kNumber, kList };
  Kind kind = Kind::kString;
  // The value as text: a string's value, a number as written in the file, a list's items joined by
  // ", " (for messages).
  std::string text;
  double number = 0;               // kNumber only
  bool integral = false;           // kNumber written as an integer (an int64 column in pandas/pyarrow terms)
  std::vector<std::string> items;  // kList only; integers as their decimal text

  static Cell string(std::string value);
  static Cell list(std::vector<std::string> items);
  // Parses `text` as a CSV number: [+-]digits, or a decimal with optional fraction and exponent.
  // Returns false (and leaves `out` alone) when it is not one.
  static bool parse_number(std::string_view text, Cell& out);
};

struct Table {
  std::string source;                   // the file name, for messages
  std::vector<std::string> columns;     // unique, non-empty
  std::vector<std::vector<Cell>> rows;  // each row has columns.size() cells
  std::vector<size_t> lines;            // lines[i]: the 1-based line where row i starts

  // Index of the column called `name`, or -1.
  int column_index(std::string_view name) const;
  // "FILE:LINE" of row i, for messages.
  std::string where(size_t row) const;
};

enum class TableFormat { kCsv, kTsv, kJsonLines };

// The format of a file from its extension (case-insensitive). Throws UsageError naming the file and
// the valid extensions for any other.
TableFormat table_format_of(const std::string& path);

// Reads a table file. Throws UsageError "FILE:LINE: problem" for: an unknown extension, an unreadable
// or empty file, a header with an empty or repeated column name, an unterminated quote (naming the
// line where the quoted field opened), text after a closing quote, a record whose number of fields
// differs from the header's, malformed JSON, a JSON line that is not an object or whose keys differ
// from the first line's, and an unsupported JSON value.
Table read_table(const std::string& path);

// The same from text in memory; `source` names it in messages.
Table parse_table(std::string_view text, TableFormat format, const std::string& source);

}  // namespace mpibert::data
