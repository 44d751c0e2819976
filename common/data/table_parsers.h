#pragma once
// The per-format parsers behind read_table (table_reader.h); internal to common/data.
#include <string>
#include <string_view>

#include "common/data/table_reader.h"

namespace mpibert::data::detail {

// CSV or TSV text (the BOM already removed) into a table of string cells, before column typing.
Table parse_delimited(std::string_view text, char delimiter, const std::string& source);

// Gives every column the pandas type of its fields: integers, floats or strings (see table_reader.h).
void type_delimited_columns(Table& table);

// JSON lines text (the BOM already removed).
Table parse_json_lines(std::string_view text, const std::string& source);

// Throws UsageError for an empty or repeated column name; `line` is the header's line.
void check_header(const Table& table, size_t line);

}  // namespace mpibert::data::detail
