// Table reader: every CSV/TSV/JSON-lines rule of table_reader.h and each error message.
#include "common/data/table_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "tests/common/unique_temp_dir.h"
#include "tests/usage_error_of.h"

namespace mpibert::data {
namespace {

using mpibert::testing::usage_error_of;
using ::testing::HasSubstr;
using Strings = std::vector<std::string>;

Table csv(const std::string& text) {
  return parse_table(text, TableFormat::kCsv, "t.csv");
}
Table tsv(const std::string& text) {
  return parse_table(text, TableFormat::kTsv, "t.tsv");
}
Table jsonl(const std::string& text) {
  return parse_table(text, TableFormat::kJsonLines, "t.jsonl");
}

Strings texts(const Table& t, size_t row) {
  Strings out;
  for (const Cell& c : t.rows.at(row)) out.push_back(c.text);
  return out;
}

TEST(TableReaderCsv, ReadsHeaderRowsAndLineNumbers) {
  const Table t = csv("text,label\nhello,pos\nbye,neg\n");
  EXPECT_EQ(t.columns, (Strings{"text", "label"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(texts(t, 0), (Strings{"hello", "pos"}));
  EXPECT_EQ(texts(t, 1), (Strings{"bye", "neg"}));
  EXPECT_EQ(t.lines, (std::vector<size_t>{2, 3}));
  EXPECT_EQ(t.column_index("label"), 1);
  EXPECT_EQ(t.column_index("nope"), -1);
  EXPECT_EQ(t.where(1), "t.csv:3");
}

TEST(TableReaderCsv, QuotedFieldsHoldCommasDoubledQuotesAndLineBreaks) {
  const Table t = csv("a,b\n\"x, y\",\"say \"\"hi\"\"\"\n\"two\nlines\",\"\"\nlast,\"crlf\r\ninside\"\n");
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(texts(t, 0), (Strings{"x, y", "say \"hi\""}));
  EXPECT_EQ(texts(t, 1), (Strings{"two\nlines", ""}));
  EXPECT_EQ(texts(t, 2), (Strings{"last", "crlf\r\ninside"}));
  // A record's line is where it starts; the line break inside row 2 moves row 3 down.
  EXPECT_EQ(t.lines, (std::vector<size_t>{2, 3, 5}));
}

TEST(TableReaderCsv, BomCrlfLoneCrAndEmptyLines) {
  const Table t = csv("\xEF\xBB\xBFid,v\r\n1,a\r\n\r\n\n2,b\r3,c");
  EXPECT_EQ(t.columns, (Strings{"id", "v"}));  // the BOM is not part of the first name
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(texts(t, 1), (Strings{"2", "b"}));
  EXPECT_EQ(texts(t, 2), (Strings{"3", "c"}));  // no newline at the end of the file
  EXPECT_EQ(t.lines, (std::vector<size_t>{2, 5, 6}));
}

TEST(TableReaderCsv, EmptyFieldsAndAQuoteInsideAnUnquotedField) {
  const Table t = csv("a,b,c\n,,\nx,5'10\" tall,\n");
  EXPECT_EQ(texts(t, 0), (Strings{"", "", ""}));
  EXPECT_EQ(texts(t, 1), (Strings{"x", "5'10\" tall", ""}));
}

TEST(TableReaderCsv, HeaderOnlyGivesNoRows) {
  const Table t = csv("text,label\n");
  EXPECT_EQ(t.columns.size(), 2u);
  EXPECT_TRUE(t.rows.empty());
}

TEST(TableReaderCsv, UnterminatedQuoteNamesTheLineWhereItOpened) {
  const std::string msg = usage_error_of([] { csv("a,b\n1,2\n3,\"open\nmore\nstill open\n"); });
  EXPECT_THAT(msg, HasSubstr("t.csv:3: unterminated quote"));
  EXPECT_THAT(msg, HasSubstr("field 2"));
}

TEST(TableReaderCsv, TextAfterAClosingQuoteIsAnError) {
  EXPECT_THAT(usage_error_of([] { csv("a,b\n\"x\"y,2\n"); }),
              HasSubstr("t.csv:2: field 1: text after the closing quote"));
}

TEST(TableReaderCsv, WrongFieldCountSaysHowManyVersusTheHeader) {
  EXPECT_THAT(usage_error_of([] { csv("a,b\n1,2\n1,2,3\n"); }),
              HasSubstr("t.csv:3: 3 comma-separated fields, but the header has 2 (a,b)"));
  EXPECT_THAT(usage_error_of([] { csv("a,b,c\n\"multi\nline\",2,3\nonly\n"); }),
              HasSubstr("t.csv:4: 1 comma-separated fields, but the header has 3 (a,b,c)"));
}

TEST(TableReaderCsv, EmptyFileIsAnError) {
  EXPECT_THAT(usage_error_of([] { csv(""); }), HasSubstr("t.csv: empty file"));
  EXPECT_THAT(usage_error_of([] { csv("\xEF\xBB\xBF\n\r\n"); }), HasSubstr("t.csv: empty file"));
}

TEST(TableReaderCsv, HeaderWithEmptyOrRepeatedNamesIsAnError) {
  EXPECT_THAT(usage_error_of([] { csv(",text,label\n0,a,b\n"); }),
              HasSubstr("t.csv:1: column 1 of the header has an empty name"));
  EXPECT_THAT(usage_error_of([] { csv("\n\ntext,label,text\n"); }),
              HasSubstr("t.csv:3: column name 'text' appears twice in the header (columns 1 and 3)"));
}

TEST(TableReaderCsv, ColumnsAreTypedAsPandasTypesThem) {
  const Table t = csv("i,f,s,m,e\n1,1.5,1,-2,\n+3,2,x,1e3,\n-0,.5,2,7,\n");
  // i: all integers -> integral numbers
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(t.rows[r][0].kind, Cell::Kind::kNumber);
    EXPECT_TRUE(t.rows[r][0].integral);
  }
  EXPECT_EQ(t.rows[1][0].number, 3);
  EXPECT_EQ(t.rows[1][0].text, "+3");  // as written
  // f: one float makes every number of the column a float, "2" included
  EXPECT_EQ(t.rows[1][1].kind, Cell::Kind::kNumber);
  EXPECT_FALSE(t.rows[1][1].integral);
  EXPECT_EQ(t.rows[2][1].number, 0.5);
  // s: one non-number keeps the whole column strings
  EXPECT_EQ(t.rows[0][2].kind, Cell::Kind::kString);
  // m: an exponent is a float
  EXPECT_FALSE(t.rows[1][3].integral);
  EXPECT_EQ(t.rows[1][3].number, 1000);
  // e: all empty -> strings
  EXPECT_EQ(t.rows[0][4].kind, Cell::Kind::kString);
}

TEST(TableReaderCsv, EmptyFieldsStayEmptyStringsInNumericColumns) {
  const Table t = csv("n\n1\n\"\"\n2\n");
  EXPECT_EQ(t.rows[0][0].kind, Cell::Kind::kNumber);
  EXPECT_EQ(t.rows[1][0].kind, Cell::Kind::kString);
  EXPECT_EQ(t.rows[1][0].text, "");
  EXPECT_TRUE(t.rows[2][0].integral);
}

TEST(TableReaderCsv, NumberSyntax) {
  Cell c;
  for (const char* yes : {"0", "-12", "+7", "1.", ".5", "1.5e-3", "2E+4", "123456789012345678901"}) {
    EXPECT_TRUE(Cell::parse_number(yes, c)) << yes;
  }
  EXPECT_FALSE(c.integral);  // beyond int64: a float
  for (const char* no : {"", "-", ".", "1e", "e5", " 1", "1 ", "1,000", "0x10", "nan", "inf", "1.2.3"}) {
    EXPECT_FALSE(Cell::parse_number(no, c)) << no;
  }
}

TEST(TableReaderTsv, TabDelimitedWithTheSameQuoting) {
  const Table t = tsv("sentence1\tsentence2\tlabel\nA, b\t\"tab\there\"\t1\n\"q \"\"x\"\"\"\tc\t0\n");
  EXPECT_EQ(t.columns, (Strings{"sentence1", "sentence2", "label"}));
  EXPECT_EQ(texts(t, 0), (Strings{"A, b", "tab\there", "1"}));
  EXPECT_EQ(texts(t, 1), (Strings{"q \"x\"", "c", "0"}));
  EXPECT_TRUE(t.rows[0][2].integral);
  EXPECT_THAT(usage_error_of([] { tsv("a\tb\n1\n"); }),
              HasSubstr("t.tsv:2: 1 tab-separated fields, but the header has 2 (a,b)"));
}

TEST(TableReaderJsonLines, ValuesOfEveryKindInFirstLineKeyOrder) {
  const Table t = jsonl(
      "{\"text\": \"hi\", \"score\": 1.0, \"n\": 3, \"ok\": true, \"tags\": [\"a\", 2]}\r\n"
      "\n"
      "{\"tags\": [], \"ok\": false, \"n\": -1, \"score\": 2, \"text\": \"caf\\u00e9\"}\n");
  EXPECT_EQ(t.columns, (Strings{"text", "score", "n", "ok", "tags"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.lines, (std::vector<size_t>{1, 3}));
  const auto& r0 = t.rows[0];
  EXPECT_EQ(r0[0].text, "hi");
  EXPECT_EQ(r0[1].kind, Cell::Kind::kNumber);
  EXPECT_FALSE(r0[1].integral);  // 1.0 is a JSON float
  EXPECT_EQ(r0[1].text, "1.0");
  EXPECT_TRUE(r0[2].integral);
  EXPECT_EQ(r0[3].text, "True");  // Python's str(True)
  EXPECT_EQ(r0[4].kind, Cell::Kind::kList);
  EXPECT_EQ(r0[4].items, (Strings{"a", "2"}));
  EXPECT_EQ(t.rows[1][0].text, "caf\xC3\xA9");
  EXPECT_EQ(t.rows[1][3].text, "False");
  EXPECT_TRUE(t.rows[1][4].items.empty());
  EXPECT_EQ(t.rows[1][2].number, -1);
}

TEST(TableReaderJsonLines, MalformedJsonNamesTheLine) {
  EXPECT_THAT(usage_error_of([] { jsonl("{\"a\": 1}\n{\"a\": }\n"); }),
              HasSubstr("t.jsonl:2: malformed JSON at column"));
}

TEST(TableReaderJsonLines, KeysMustMatchTheFirstLine) {
  EXPECT_THAT(usage_error_of([] { jsonl("{\"a\": 1, \"b\": 2}\n{\"a\": 1}\n"); }),
              HasSubstr("t.jsonl:2: key 'b' is missing"));
  EXPECT_THAT(usage_error_of([] { jsonl("{\"a\": 1}\n{\"a\": 1, \"c\": 2}\n"); }),
              HasSubstr("t.jsonl:2: key 'c' is not among the first line's keys"));
  EXPECT_THAT(usage_error_of([] { jsonl("{\"\": 1}\n"); }),
              HasSubstr("t.jsonl:1: column 1 of the header has an empty name"));
}

TEST(TableReaderJsonLines, UnsupportedValuesAndNonObjects) {
  EXPECT_THAT(usage_error_of([] { jsonl("{\"a\": null}\n"); }), HasSubstr("t.jsonl:1: key 'a': the value is null"));
  EXPECT_THAT(usage_error_of([] { jsonl("{\"a\": {\"b\": 1}}\n"); }), HasSubstr("key 'a': the value is object"));
  EXPECT_THAT(usage_error_of([] { jsonl("{\"a\": [1.5]}\n"); }), HasSubstr("a list item is number"));
  EXPECT_THAT(usage_error_of([] { jsonl("[{\"a\": 1}]\n"); }), HasSubstr("a JSON array file is not supported"));
  EXPECT_THAT(usage_error_of([] { jsonl("\n\"text\"\n"); }), HasSubstr("t.jsonl:2: expected a JSON object per line"));
  EXPECT_THAT(usage_error_of([] { jsonl("{}\n"); }), HasSubstr("t.jsonl:1: the first object has no keys"));
}

TEST(TableReaderJsonLines, EmptyFileIsAnError) {
  EXPECT_THAT(usage_error_of([] { jsonl(" \n\n"); }), HasSubstr("t.jsonl: empty file"));
}

TEST(TableReaderFiles, FormatFromTheExtension) {
  EXPECT_EQ(table_format_of("d/train.csv"), TableFormat::kCsv);
  EXPECT_EQ(table_format_of("d/train.TSV"), TableFormat::kTsv);
  EXPECT_EQ(table_format_of("train.json"), TableFormat::kJsonLines);
  EXPECT_EQ(table_format_of("train.jsonl"), TableFormat::kJsonLines);
  EXPECT_THAT(usage_error_of([] { table_format_of("d.csv/train.txt"); }),
              HasSubstr("d.csv/train.txt: unknown table format '.txt'; valid extensions: .csv, .tsv, .json, .jsonl"));
  EXPECT_THAT(usage_error_of([] { table_format_of("data/train"); }), HasSubstr("unknown table format ''"));
}

TEST(TableReaderFiles, ReadsFilesAndNamesThemInErrors) {
  const mpibert::testing::UniqueTempDir temp("table_reader_test");
  const std::string good = temp.write("train.csv", "sentence,label\n\"a, b\",1\n");
  const Table t = read_table(good);
  EXPECT_EQ(t.source, good);
  EXPECT_EQ(texts(t, 0), (Strings{"a, b", "1"}));
  const std::string bad = temp.write("bad.jsonl", "{\"a\": 1}\nnope\n");
  EXPECT_THAT(usage_error_of([&] { read_table(bad); }), HasSubstr(bad + ":2: malformed JSON"));
  EXPECT_THAT(usage_error_of([&] { read_table(temp.dir() + "missing.csv"); }), HasSubstr("missing.csv: cannot read"));
}

}  // namespace
}  // namespace mpibert::data
