// encode_file (prepare_data encode): output format, blank-line handling, and identical output for
// any number of threads.
#include "common/data/encode_file.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/data/wordpiece.h"
#include "common/error.h"

namespace mpibert::data {
namespace {

namespace fs = std::filesystem;

WordPieceTokenizer small_tokenizer() {
  return WordPieceTokenizer::from_tokens(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", ".", "a", "##t"}, true);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class EncodeFile : public ::testing::Test {
 protected:
  std::string dir;
  void SetUp() override {
    dir = ::testing::TempDir() + "encode_file_test_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
          "/";
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir + name, std::ios::binary) << text;
    return dir + name;
  }
};

TEST_F(EncodeFile, WritesOneIdLinePerNonBlankLine) {
  // the cat sat . -> 5 6 7 11 ; "The mats" -> the mat ##s -> 5 9 10 ; blank lines give nothing;
  // "\x01" is not blank (a control is not whitespace) but has no tokens -> an empty line;
  // unknown words -> [UNK] = 1; the last line has no newline.
  const std::string in = write("in.txt", "the cat sat.\n\n   \t\nThe mats\n\x01\nzebra [MASK]\r\n\nat");
  const EncodeStats s = encode_file(small_tokenizer(), in, dir + "out.txt", 1);
  EXPECT_EQ(slurp(dir + "out.txt"), "5 6 7 11\n5 9 10\n\n1 4\n12 13\n");
  EXPECT_EQ(s.lines, 5u);
  EXPECT_EQ(s.tokens, 11u);
  EXPECT_EQ(s.bytes, slurp(in).size());
  EXPECT_GE(s.seconds, 0.0);
}

TEST_F(EncodeFile, EmptyInputGivesEmptyOutput) {
  const std::string in = write("empty.txt", "");
  const EncodeStats s = encode_file(small_tokenizer(), in, dir + "out.txt", 4);
  EXPECT_TRUE(fs::exists(dir + "out.txt"));
  EXPECT_EQ(slurp(dir + "out.txt"), "");
  EXPECT_EQ(s.lines, 0u);
}

TEST_F(EncodeFile, MultiThreadedOutputIsIdenticalToSingleThreaded) {
  // About 4.4 MB: several 1 MiB blocks, with blank lines and unknown words scattered through.
  const char* words[] = {"the", "cat", "sat", "on", "mat", "mats", "zebra", ".", "a", "at", "The", "CATS"};
  std::string text;
  uint64_t state = 7;
  size_t non_blank = 0;
  for (int line = 0; line < 200000; ++line) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const int n = static_cast<int>((state >> 33) % 12);
    if (n == 0) {
      text += (state >> 50) % 2 ? "\n" : "  \n";
      continue;
    }
    for (int w = 0; w < n; ++w) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      text += words[(state >> 33) % 12];
      text += ' ';
    }
    text += '\n';
    ++non_blank;
  }
  const std::string in = write("big.txt", text);
  ASSERT_GT(text.size(), 3u << 20);
  const auto tok = small_tokenizer();
  const EncodeStats one = encode_file(tok, in, dir + "one.txt", 1);
  const std::string expected = slurp(dir + "one.txt");
  EXPECT_EQ(one.lines, non_blank);
  for (int threads : {2, 3, 8, 0}) {
    const EncodeStats many = encode_file(tok, in, dir + "many.txt", threads);
    EXPECT_EQ(slurp(dir + "many.txt"), expected) << threads << " threads";
    EXPECT_EQ(many.lines, one.lines);
    EXPECT_EQ(many.tokens, one.tokens);
    EXPECT_EQ(many.bytes, one.bytes);
  }
  // Spot check: line 1 of the output is the encoding of the first non-blank input line.
  std::istringstream lines(text);
  std::string first;
  while (std::getline(lines, first) && first.find_first_not_of(' ') == std::string::npos) {
  }
  std::string ids;
  for (int32_t id : tok.encode(first)) ids += (ids.empty() ? "" : " ") + std::to_string(id);
  EXPECT_EQ(expected.substr(0, expected.find('\n')), ids);
}

TEST_F(EncodeFile, MissingInputIsAUsageErrorAndLeavesNoOutput) {
  try {
    encode_file(small_tokenizer(), dir + "nope.txt", dir + "out.txt", 1);
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "nope.txt"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(dir + "out.txt"));
  EXPECT_THROW(encode_file(small_tokenizer(), write("in.txt", "the"), dir + "no/such/dir/out.txt", 1),
               std::runtime_error);
}

}  // namespace
}  // namespace mpibert::data
