// Text corpus reading: document separators, directory expansion order, JSON lines and JSON arrays,
// and errors that name the path (and line) at fault.
#include "common/data/text_corpus.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"

namespace mpibert::data {
namespace {

namespace fs = std::filesystem;
using Docs = std::vector<std::vector<std::string>>;

class TextCorpus : public ::testing::Test {
 protected:
  std::string root;
  void SetUp() override {
    root = ::testing::TempDir() + "text_corpus_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
    fs::remove_all(root);
    fs::create_directories(root);
  }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = fs::path(root) / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  static Docs read(const CorpusOptions& options) {
    Docs docs;
    for_each_document(options, [&](const std::vector<std::string>& lines) { docs.push_back(lines); });
    return docs;
  }
  static std::string usage_error(const std::function<void()>& f) {
    try {
      f();
    } catch (const UsageError& e) {
      return e.what();
    }
    return "(no UsageError)";
  }
};

TEST_F(TextCorpus, BlankLineSeparatorGroupsRunsOfNonBlankLines) {
  // Whitespace-only lines (spaces, tabs, CR) are blank; several blank lines count as one break.
  const std::string f = write("a.txt", "s1\ns2\n\n \t\ns3\r\n\r\n\n\ns4\ns5");
  CorpusOptions o;
  o.input = f;
  EXPECT_EQ(read(o), (Docs{{"s1", "s2"}, {"s3"}, {"s4", "s5"}}));
  o.document_separator = "line";
  EXPECT_EQ(read(o), (Docs{{"s1"}, {"s2"}, {"s3"}, {"s4"}, {"s5"}}));
}

TEST_F(TextCorpus, DocumentsNeverSpanFiles) {
  const std::string a = write("a.txt", "a1\na2");
  const std::string b = write("b.txt", "b1\n");
  CorpusOptions o;
  o.input = a + "," + b;
  EXPECT_EQ(read(o), (Docs{{"a1", "a2"}, {"b1"}}));
}

TEST_F(TextCorpus, DirectoriesExpandRecursivelyInSortedOrder) {
  write("d/b.txt", "b");
  write("d/a.txt", "a");
  write("d/sub/c.jsonl", "{\"text\": \"c\"}\n");
  write("d/sub/z.json", "[{\"text\": \"z\"}]");
  write("d/notes.md", "ignored");
  write("d/sub/data.csv", "ignored");
  const std::string extra = write("extra.dat", "e");  // named explicitly: read as plain text
  CorpusOptions o;
  o.input = root + "d , " + extra;  // spaces around commas are ignored
  const auto files = list_corpus_files(o);
  ASSERT_EQ(files.size(), 5u);
  EXPECT_EQ(fs::path(files[0]).filename(), "a.txt");
  EXPECT_EQ(fs::path(files[1]).filename(), "b.txt");
  EXPECT_EQ(fs::path(files[2]).filename(), "c.jsonl");
  EXPECT_EQ(fs::path(files[3]).filename(), "z.json");
  EXPECT_EQ(files[4], extra);
  EXPECT_EQ(read(o), (Docs{{"a"}, {"b"}, {"c"}, {"z"}, {"e"}}));
}

TEST_F(TextCorpus, JsonLinesReadTheTextField) {
  // Each record is a document (split further at blank lines inside the text); blank lines are skipped.
  const std::string f = write(
      "x.jsonl", "{\"content\": \"l1\\nl2\\n\\nl3\", \"id\": 1}\n\n{\"content\": \"r2\"}\n{\"content\": \"  \"}\n");
  CorpusOptions o;
  o.input = f;
  o.text_field = "content";
  EXPECT_EQ(read(o), (Docs{{"l1", "l2"}, {"l3"}, {"r2"}}));
  o.document_separator = "line";
  EXPECT_EQ(read(o), (Docs{{"l1"}, {"l2"}, {"l3"}, {"r2"}}));
}

TEST_F(TextCorpus, JsonArraysAndJsonLinesInDotJsonFiles) {
  const std::string arr = write("a.json", "[\n {\"text\": \"one\"},\n \"two\",\n {\"text\": \"three\"}\n]\n");
  const std::string lines = write("b.json", "{\"text\": \"four\"}\n{\"text\": \"five\"}\n");
  CorpusOptions o;
  o.input = arr + "," + lines;
  EXPECT_EQ(read(o), (Docs{{"one"}, {"two"}, {"three"}, {"four"}, {"five"}}));
}

TEST_F(TextCorpus, BadJsonLinesAreUsageErrorsNamingFileAndLine) {
  const std::string bad = write("bad.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": oops}\n");
  CorpusOptions o;
  o.input = bad;
  EXPECT_NE(usage_error([&] { read(o); }).find(bad + ":3: invalid JSON"), std::string::npos);

  const std::string missing = write("missing.jsonl", "{\"body\": \"x\", \"id\": 2}\n");
  o.input = missing;
  const std::string msg = usage_error([&] { read(o); });
  EXPECT_NE(msg.find(missing + ":1: no \"text\" field"), std::string::npos) << msg;
  EXPECT_NE(msg.find("body, id"), std::string::npos) << msg;

  const std::string not_string = write("num.jsonl", "{\"text\": 5}\n");
  o.input = not_string;
  EXPECT_NE(usage_error([&] { read(o); }).find(not_string + ":1: field \"text\" is number"), std::string::npos);
}

TEST_F(TextCorpus, MissingPathsAndBadOptionsAreUsageErrors) {
  CorpusOptions o;
  o.input = write("a.txt", "a") + "," + root + "nope.txt";
  EXPECT_NE(usage_error([&] { list_corpus_files(o); }).find(root + "nope.txt"), std::string::npos);
  o.input = " , ";
  EXPECT_NE(usage_error([&] { list_corpus_files(o); }).find("data.input is empty"), std::string::npos);
  fs::create_directories(root + "empty");
  write("empty/readme.md", "x");
  o.input = root + "empty";
  EXPECT_NE(usage_error([&] { list_corpus_files(o); }).find("holds no *.txt"), std::string::npos);
  o.input = root + "a.txt";
  o.document_separator = "paragraph";
  EXPECT_NE(usage_error([&] { read(o); }).find("blank_line, line"), std::string::npos);
}

}  // namespace
}  // namespace mpibert::data
